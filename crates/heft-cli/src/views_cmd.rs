//! `heft clusters|listeners|routes|endpoints|secrets|bootstrap|ecds`: the proxy-config views.
//!
//! The library makes the rows (`heft::views`); this module reads the input, prices the rows,
//! and prints them: Heft's tables (with COST), `istioctl`'s tables byte for byte
//! (`--istioctl`), rows as JSON or YAML, `istioctl`'s JSON and YAML of the resources, or the
//! resources' own text (`--raw`; YAML and protobuf input is converted to JSON text for these).

use crate::cost_cmd::ModelArgs;
use crate::proto_json::{istioctl_json, may_hold_secrets, redact};
use crate::raw::{self, Source, Wrapper};
use crate::size::size;
use crate::table::{tabwriter, Layout, Table};
use clap::{Subcommand, ValueEnum};
use heft::cost::Estimate;
use heft::model::{Meta, Span, State};
use heft::stream::Resource;
use heft::views::{
    bootstrap, cluster, ecds, endpoint, listener, rejected, route, secret, EstimatePricing,
    NoPricing, Order, Pricing,
};
use heft::Dump;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

/// What every view takes.
#[derive(clap::Args)]
pub struct Common {
    /// The dump: a file (JSON, YAML or protobuf; plain, gzip or zstd), or `-` for standard input
    /// (the default when piped).
    file: Option<PathBuf>,
    /// Output: `table` (alias `short`), `wide` (more columns), `json` or `yaml` (one row per
    /// object).
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Print what `istioctl proxy-config` prints for the same dump: its table, or with `-o
    /// json|yaml` the resources in its proto3 JSON naming.
    #[arg(long)]
    istioctl: bool,
    /// Print the resources themselves as a JSON array: from JSON input byte for byte as the dump
    /// holds them, from YAML or protobuf converted to JSON (a note on stderr says so).
    #[arg(long, conflicts_with = "istioctl")]
    raw: bool,
    /// Only resources in this state: `static` (from the bootstrap), `active`, `warming`
    /// (received, waiting for what they need: endpoints, a secret), `draining`, or `rejected`
    /// (updates Envoy refused, each with its reason: a table of its own).
    #[arg(long, value_enum, conflicts_with = "istioctl")]
    state: Option<StateFilter>,
    /// Skip resources that fail to decode, and report how many were skipped and why.
    #[arg(long)]
    keep_going: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// `--state`: the model's states, and the rejected updates.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StateFilter {
    Static,
    Active,
    Warming,
    Draining,
    Rejected,
}

impl StateFilter {
    /// Whether a resource with this metadata is in the state (`rejected` is shown apart).
    fn keeps(filter: Option<StateFilter>, meta: &Meta) -> bool {
        let want = match filter {
            None => return true,
            Some(StateFilter::Static) => State::Static,
            Some(StateFilter::Active) => State::Active,
            Some(StateFilter::Warming) => State::Warming,
            Some(StateFilter::Draining) => State::Draining,
            Some(StateFilter::Rejected) => return meta.error.is_some(),
        };
        meta.state == want
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    #[value(alias = "short")]
    Table,
    Wide,
    Json,
    Yaml,
}

/// The views.
#[derive(Subcommand)]
pub enum View {
    /// Clusters: service, port, subset, direction, type, DestinationRule, cost
    /// (`istioctl proxy-config cluster`).
    Clusters {
        #[command(flatten)]
        common: Common,
        /// Only clusters whose name contains this FQDN.
        #[arg(long)]
        fqdn: Option<String>,
        /// Only clusters of this port (`|port|` in the name).
        #[arg(long)]
        port: Option<u32>,
        /// Only clusters whose name contains this subset.
        #[arg(long)]
        subset: Option<String>,
        /// Only clusters whose name contains this direction (`inbound`, `outbound`).
        #[arg(long)]
        direction: Option<String>,
    },
    /// Listeners: addresses, port, and each filter chain's match and destination
    /// (`istioctl proxy-config listener`).
    Listeners {
        #[command(flatten)]
        common: Common,
        /// Only listeners with this address.
        #[arg(long)]
        address: Option<String>,
        /// Only listeners on this port.
        #[arg(long)]
        port: Option<u32>,
        /// Only listeners of this type: HTTP, TCP, HTTP+TCP or UNKNOWN.
        #[arg(long = "type")]
        kind: Option<String>,
        /// One line per filter chain (`--verbose=false`: one per listener, with its type).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
              require_equals = true, default_missing_value = "true")]
        verbose: bool,
    },
    /// Routes: route configuration, virtual host, domains, match, VirtualService
    /// (`istioctl proxy-config route`).
    Routes {
        #[command(flatten)]
        common: Common,
        /// Only the route configuration of this name.
        #[arg(long)]
        name: Option<String>,
        /// One line per route (`--verbose=false`: one per route configuration).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
              require_equals = true, default_missing_value = "true")]
        verbose: bool,
    },
    /// Endpoints: from a config dump's load assignments, or from Envoy's `/clusters?format=json`
    /// with outlier-detection status (`istioctl proxy-config endpoint`).
    Endpoints {
        #[command(flatten)]
        common: Common,
        /// Only endpoints with this address (`ip:port` in a config dump, the IP in `/clusters`).
        #[arg(long)]
        address: Option<String>,
        /// Only endpoints on this port.
        #[arg(long)]
        port: Option<u32>,
        /// Only endpoints of this cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Only endpoints with this health status (HEALTHY, UNHEALTHY, DRAINING, …).
        #[arg(long)]
        status: Option<String>,
    },
    /// Secrets: certificates, validity, serial numbers, trust domains
    /// (`istioctl proxy-config secret`).
    Secrets {
        #[command(flatten)]
        common: Common,
    },
    /// The bootstrap: node, versions, admin, stats settings (`istioctl proxy-config bootstrap`).
    Bootstrap {
        #[command(flatten)]
        common: Common,
    },
    /// Extension configs delivered over ECDS (`istioctl proxy-config ecds`).
    Ecds {
        #[command(flatten)]
        common: Common,
    },
}

/// The input, and where its text can be read again when the output needs it.
struct Input {
    dump: Dump,
    source: Option<Source>,
}

/// Which resources a view needs: its own and the bootstrap (stats settings and versions), and,
/// when it prices its rows, what prices them as `heft cost` does (a cluster's endpoints; the
/// listeners whose inline route configurations are not priced again). The rest of a dump of any
/// size is dropped as it is read.
fn needed(view: &View, priced: bool) -> fn(&Resource) -> bool {
    use Resource as R;
    match (view, priced) {
        (View::Clusters { .. }, false) => {
            |r| matches!(r, R::Bootstrap(_) | R::Cluster(_) | R::Rejected(_))
        }
        (View::Clusters { .. } | View::Endpoints { .. }, true) => |r| {
            matches!(
                r,
                R::Bootstrap(_)
                    | R::Cluster(_)
                    | R::LoadAssignment(_)
                    | R::ClusterStatus(_)
                    | R::Rejected(_)
            )
        },
        (View::Endpoints { .. }, false) => |r| {
            matches!(
                r,
                R::Bootstrap(_) | R::LoadAssignment(_) | R::ClusterStatus(_) | R::Rejected(_)
            )
        },
        (View::Listeners { .. }, _) => {
            |r| matches!(r, R::Bootstrap(_) | R::Listener(_) | R::Rejected(_))
        }
        (View::Routes { .. }, false) => {
            |r| matches!(r, R::Bootstrap(_) | R::RouteConfig(_) | R::Rejected(_))
        }
        (View::Routes { .. }, true) => |r| {
            matches!(
                r,
                R::Bootstrap(_) | R::Listener(_) | R::RouteConfig(_) | R::Rejected(_)
            )
        },
        (View::Secrets { .. }, _) => |r| matches!(r, R::Bootstrap(_) | R::Secret(_)),
        (View::Bootstrap { .. }, _) => |r| matches!(r, R::Bootstrap(_)),
        (View::Ecds { .. }, _) => |r| matches!(r, R::Bootstrap(_) | R::Opaque(_)),
    }
}

fn read(common: &Common, need_text: bool, keep: fn(&Resource) -> bool) -> Result<Input, String> {
    let (_bar, progress) = crate::progress::Bar::new();
    let opts = heft::ReadOptions {
        keep_going: common.keep_going,
        progress,
    };
    let stdin = match &common.file {
        Some(p) => p.as_os_str() == "-",
        None => {
            if std::io::stdin().is_terminal() {
                return Err("no input: give a dump FILE, or pipe one in (`-` reads stdin)".into());
            }
            true
        }
    };
    let input = if stdin {
        if need_text {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|e| format!("<stdin>: reading input: {e}"))?;
            if bytes.is_empty() {
                return Err("<stdin>: the input is empty".into());
            }
            let dump = Dump::from_slice_keeping(&bytes, &opts, keep)
                .map_err(|e| format!("<stdin>: {e}"))?;
            Input {
                dump,
                source: Some(Source::Memory(bytes)),
            }
        } else {
            Input {
                dump: Dump::from_path_keeping("-", &opts, keep)
                    .map_err(|e| format!("<stdin>: {e}"))?,
                source: None,
            }
        }
    } else {
        let path = common.file.clone().expect("a file when not stdin");
        let dump = Dump::from_path_keeping(&path, &opts, keep)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Input {
            dump,
            source: Some(Source::file(path)?),
        }
    };
    let d = &input.dump;
    crate::warn_skipped(&d.skipped);
    if need_text && d.source.encoding != "json" {
        return as_json(input, &opts, keep);
    }
    Ok(input)
}

/// YAML or protobuf input for the outputs that print resources: converted whole into JSON text
/// (YAML as Heft reads it, protobuf with Envoy's API descriptors) and read again from that text,
/// whose resources are then printed.
fn as_json(
    input: Input,
    opts: &heft::ReadOptions,
    keep: fn(&Resource) -> bool,
) -> Result<Input, String> {
    let source = input
        .source
        .as_ref()
        .ok_or("the input cannot be read again")?;
    let (encoding, kind) = (input.dump.source.encoding, input.dump.source.format);
    drop(input.dump);
    let bytes = source.bytes()?;
    let json = match encoding {
        "yaml" => heft::yaml::to_json(&bytes).map_err(|e| e.to_string())?,
        _ => crate::pb_json::to_json(&bytes, kind)?,
    };
    drop(bytes);
    eprintln!(
        "heft: note: the input is {encoding}: resources are printed as JSON converted from it"
    );
    let dump = Dump::from_slice_keeping(&json, opts, keep)
        .map_err(|e| format!("the input converted to JSON: {e}"))?;
    Ok(Input {
        dump,
        source: Some(Source::Memory(json)),
    })
}

/// How rows are printed, from the flags.
#[derive(Clone, Copy)]
enum Mode {
    /// Heft's table; `wide` adds columns.
    Table { wide: bool, layout: Layout },
    /// Rows as JSON or YAML.
    Rows { yaml: bool },
    /// `istioctl`'s table.
    IstioctlTable,
    /// `istioctl`'s JSON or YAML of the resources.
    IstioctlResources { yaml: bool },
    /// The resources' own text.
    Raw,
}

fn mode(common: &Common) -> Result<Mode, String> {
    let yaml = common.output == Output::Yaml;
    Ok(match (common.raw, common.istioctl, common.output) {
        (true, _, Output::Table | Output::Json) => Mode::Raw,
        (true, _, _) => {
            return Err(
                "--raw prints the resources' own JSON: use it without -o, or -o json".into(),
            )
        }
        (_, true, Output::Table) => Mode::IstioctlTable,
        (_, true, Output::Wide) => {
            return Err(
                "--istioctl: istioctl has no wide output (use -o table, json or yaml)".into(),
            )
        }
        (_, true, _) => Mode::IstioctlResources { yaml },
        (_, _, Output::Table | Output::Wide) => {
            let out = std::io::stdout();
            let layout = if out.is_terminal() {
                Layout {
                    width: terminal_size::terminal_size().map(|(w, _)| w.0 as usize),
                    color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
                }
            } else {
                Layout::default()
            };
            Mode::Table {
                wide: common.output == Output::Wide,
                layout,
            }
        }
        (_, _, _) => Mode::Rows { yaml },
    })
}

fn needs_text(m: Mode) -> bool {
    matches!(m, Mode::Raw | Mode::IstioctlResources { .. })
}

fn text(s: String) -> Result<Printed, String> {
    Ok(Printed::Text(s))
}

fn cost(c: Option<u64>) -> String {
    c.map_or_else(|| "-".into(), size)
}

/// A route configuration the estimate does not price on its own is a listener's inline one
/// (the dump lists it again among the static ones): its cost is in its listener's.
fn route_config_cost(c: Option<u64>) -> String {
    c.map_or_else(|| "in listener".into(), size)
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn emit_rows<T: Serialize>(rows: &T, yaml: bool) -> Result<String, String> {
    if yaml {
        yaml_serde::to_string(rows).map_err(|e| format!("writing YAML: {e}"))
    } else {
        serde_json::to_string_pretty(rows)
            .map(|s| s + "\n")
            .map_err(|e| format!("writing JSON: {e}"))
    }
}

fn emit_value(v: &Value, yaml: bool) -> Result<String, String> {
    if yaml {
        return yaml_serde::to_string(v).map_err(|e| format!("writing YAML: {e}"));
    }
    // istioctl indents its JSON by four spaces.
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)
        .map_err(|e| format!("writing JSON: {e}"))?;
    Ok(String::from_utf8(out).expect("JSON is UTF-8") + "\n")
}

fn state_name(s: State) -> &'static str {
    s.name()
}

/// A state worth a column of its own when any row is in it.
fn unusual(s: State) -> bool {
    matches!(s, State::Warming | State::Draining)
}

/// What a view prints: text made whole, or resources streamed one at a time.
enum Printed {
    /// A table or rows.
    Text(String),
    /// Resources from the dump, in this order.
    Resources(Vec<(Span, Wrapper)>, Shape),
}

/// How streamed resources are printed.
enum Shape {
    /// Their own text.
    Raw,
    /// `istioctl`'s JSON or YAML list; `keep` lists, per resource, the endpoints to keep.
    Istioctl {
        yaml: bool,
        keep: Option<Vec<Vec<usize>>>,
    },
}

/// The resource's own bytes, cut out of its entry (borrowed from a mapped input).
fn resource_text<'a>(entry: Cow<'a, [u8]>, wrapper: Wrapper) -> Result<Cow<'a, [u8]>, String> {
    Ok(match entry {
        Cow::Borrowed(e) => Cow::Borrowed(raw::resource(e, wrapper)?),
        Cow::Owned(e) => Cow::Owned(raw::resource(&e, wrapper)?.to_vec()),
    })
}

fn write_resources(
    out: &mut dyn Write,
    source: &Source,
    items: &[(Span, Wrapper)],
    shape: &Shape,
) -> Result<std::io::Result<()>, String> {
    let spans: Vec<Span> = items.iter().map(|(s, _)| *s).collect();
    let entries = source.texts(&spans)?;
    let (open, sep, close, empty) = match shape {
        Shape::Istioctl { yaml: true, .. } => ("", "", "", "[]\n"),
        _ => ("[\n", ",\n", "\n]\n", "[]\n"),
    };
    if items.is_empty() {
        return Ok(out.write_all(empty.as_bytes()));
    }
    if let Err(e) = out.write_all(open.as_bytes()) {
        return Ok(Err(e));
    }
    for (i, (entry, (_, wrapper))) in entries.into_iter().zip(items).enumerate() {
        let text = resource_text(entry, *wrapper)?;
        let piece: Cow<[u8]> = match shape {
            Shape::Raw => raw_piece(text)?,
            Shape::Istioctl { yaml, keep } => {
                let v: Value = serde_json::from_slice(&text)
                    .map_err(|e| format!("re-reading a resource: {e}"))?;
                let mut v = istioctl_json(&v, true);
                redact(&mut v);
                if let Some(keep) = keep {
                    keep_endpoints(&mut v, &keep[i]);
                }
                Cow::Owned(list_item(&v, *yaml)?.into_bytes())
            }
        };
        let written = (if i > 0 {
            out.write_all(sep.as_bytes())
        } else {
            Ok(())
        })
        .and_then(|()| out.write_all(&piece));
        source.release(spans[i]);
        if let Err(e) = written {
            return Ok(Err(e));
        }
    }
    Ok(out.write_all(close.as_bytes()))
}

/// A resource's own text, unless it holds secret material Envoy did not redact.
fn raw_piece(text: Cow<'_, [u8]>) -> Result<Cow<'_, [u8]>, String> {
    if !may_hold_secrets(&text) {
        return Ok(text);
    }
    let mut v: Value =
        serde_json::from_slice(&text).map_err(|e| format!("re-reading a resource: {e}"))?;
    if !redact(&mut v) {
        return Ok(text);
    }
    eprintln!("heft: warning: replaced secret material in the output with [redacted]");
    Ok(Cow::Owned(
        serde_json::to_string_pretty(&v).expect("JSON").into_bytes(),
    ))
}

/// One element of a JSON array (indented one level) or of a YAML list.
fn list_item(v: &Value, yaml: bool) -> Result<String, String> {
    let text = emit_value(v, yaml)?;
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.trim_end_matches('\n').lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(match (yaml, i) {
            (true, 0) => "- ",
            (true, _) => "  ",
            (false, _) => "    ",
        });
        out.push_str(line);
    }
    if yaml {
        out.push('\n');
    }
    Ok(out)
}

/// Sections and single documents, as `istioctl` prints them: parsed, renamed, secrets redacted.
fn istioctl_values(
    source: &Source,
    items: &[(Span, Wrapper)],
    drop_type: bool,
) -> Result<Vec<Value>, String> {
    let spans: Vec<Span> = items.iter().map(|(s, _)| *s).collect();
    source
        .texts(&spans)?
        .into_iter()
        .zip(items)
        .map(|(entry, (_, w))| {
            let t = resource_text(entry, *w)?;
            let v: Value =
                serde_json::from_slice(&t).map_err(|e| format!("re-reading a resource: {e}"))?;
            let mut v = istioctl_json(&v, drop_type);
            redact(&mut v);
            Ok(v)
        })
        .collect()
}

fn spans<T>(
    rows: &[T],
    f: impl Fn(&T) -> Option<(Span, Wrapper)>,
) -> Result<Vec<(Span, Wrapper)>, String> {
    rows.iter()
        .map(|r| f(r).ok_or_else(|| "a resource has no recorded position in the input".to_string()))
        .collect()
}

/// Runs a view, writing what it prints to `out`; a failure to write is the inner error.
pub fn run(view: View, out: &mut dyn Write) -> Result<std::io::Result<()>, String> {
    let common = match &view {
        View::Clusters { common, .. }
        | View::Listeners { common, .. }
        | View::Routes { common, .. }
        | View::Endpoints { common, .. }
        | View::Secrets { common }
        | View::Bootstrap { common }
        | View::Ecds { common } => common,
    };
    let m = mode(common)?;
    let priced = matches!(m, Mode::Table { .. } | Mode::Rows { .. });
    let Input { dump, source } = read(common, needs_text(m), needed(&view, priced))?;
    let source = source.as_ref();
    let printed = if priced {
        let resolved = common.model.resolve()?;
        let estimate = Estimate::of(&dump, resolved.model_for(&dump), &resolved.settings);
        let pricing = EstimatePricing::new(&estimate);
        printed(&view, m, &dump, source, common.state, &pricing)?
    } else {
        printed(&view, m, &dump, source, common.state, &NoPricing)?
    };
    // Resources are printed from the input's own text: the model is no longer needed.
    drop(dump);
    match printed {
        Printed::Text(text) => Ok(out.write_all(text.as_bytes())),
        Printed::Resources(items, shape) => {
            write_resources(out, source_of(source)?, &items, &shape)
        }
    }
}

fn printed(
    view: &View,
    m: Mode,
    dump: &Dump,
    source: Option<&Source>,
    state: Option<StateFilter>,
    pricing: &dyn Pricing,
) -> Result<Printed, String> {
    let order = match m {
        Mode::IstioctlTable | Mode::IstioctlResources { .. } => Order::Istioctl,
        _ => Order::Heft,
    };
    if state == Some(StateFilter::Rejected) {
        return rejected_out(rejected_rows(view, dump)?, m);
    }
    let keeps = |meta: &Meta| StateFilter::keeps(state, meta);
    match view {
        View::Clusters {
            fqdn,
            port,
            subset,
            direction,
            ..
        } => {
            let filter = cluster::ClusterFilter {
                fqdn: fqdn.clone(),
                port: *port,
                subset: subset.clone(),
                direction: direction.clone(),
            };
            let rows: Vec<_> = dump
                .clusters
                .iter()
                .filter(|c| keeps(&c.meta))
                .filter_map(|c| cluster::cluster_row(c, &filter, pricing))
                .collect();
            clusters_out(cluster::arrange(rows, order), m)
        }
        View::Listeners {
            address,
            port,
            kind,
            verbose,
            ..
        } => {
            let filter = listener::ListenerFilter {
                address: address.clone(),
                port: *port,
                r#type: kind.clone(),
            };
            let rows: Vec<_> = dump
                .listeners
                .iter()
                .filter(|l| keeps(&l.meta))
                .filter_map(|l| listener::listener_row(l, &filter, pricing))
                .collect();
            listeners_out(listener::arrange(rows, order), *verbose, m)
        }
        View::Routes { name, verbose, .. } => {
            let filter = route::RouteFilter { name: name.clone() };
            let rows: Vec<_> = dump
                .route_configs
                .iter()
                .filter(|rc| keeps(&rc.meta))
                .filter_map(|rc| route::route_rows(rc, &filter, pricing))
                .collect();
            routes_out(route::arrange(rows, order), *verbose, m)
        }
        View::Endpoints {
            address,
            port,
            cluster,
            status,
            ..
        } => {
            let filter = endpoint::EndpointFilter {
                address: address.clone(),
                port: *port,
                cluster: cluster.clone(),
                status: status.clone(),
            };
            if dump.cluster_statuses.is_empty() {
                let rows: Vec<_> = dump
                    .endpoint_configs
                    .iter()
                    .filter(|la| keeps(&la.meta))
                    .filter_map(|la| endpoint::load_assignment_rows(la, &filter, pricing))
                    .collect();
                endpoints_out(endpoint::arrange(rows, order), m)
            } else {
                let mut rows = Vec::new();
                let mut clusters = Vec::new();
                for c in dump.cluster_statuses.iter().filter(|c| keeps(&c.meta)) {
                    let hosts = endpoint::host_rows(c, &filter);
                    if !hosts.is_empty() {
                        clusters.extend(c.meta.span);
                    }
                    rows.extend(hosts);
                }
                hosts_out(endpoint::arrange_hosts(rows), clusters, m)
            }
        }
        View::Secrets { .. } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let rows: Vec<_> = dump
                .secrets
                .iter()
                .filter(|s| keeps(&s.meta))
                .flat_map(|s| secret::secret_rows(s, now, pricing))
                .collect();
            secrets_out(secret::arrange(rows, order), dump, m, source)
        }
        View::Bootstrap { .. } if state.is_some() => {
            Err("--state: the bootstrap has no state to choose".into())
        }
        View::Bootstrap { .. } => bootstrap_out(dump, m, source),
        View::Ecds { .. } => {
            let rows: Vec<_> = dump
                .opaque
                .iter()
                .filter(|o| keeps(&o.meta))
                .filter_map(ecds::ecds_row)
                .collect();
            ecds_out(ecds::arrange(rows, order), m, source)
        }
    }
}

/// The view's resources whose last update Envoy rejected, and the rejected updates of its kind
/// that left nothing behind.
fn rejected_rows(view: &View, dump: &Dump) -> Result<Vec<rejected::RejectedRow>, String> {
    use rejected::kept_row;
    let (kind, mut rows): (&str, Vec<_>) = match view {
        View::Clusters { .. } => (
            "cluster",
            dump.clusters
                .iter()
                .filter_map(|c| kept_row("cluster", &c.name, &c.meta))
                .collect(),
        ),
        View::Listeners { .. } => (
            "listener",
            dump.listeners
                .iter()
                .filter_map(|l| kept_row("listener", &l.name, &l.meta))
                .collect(),
        ),
        View::Routes { .. } => (
            "route_config",
            dump.route_configs
                .iter()
                .filter_map(|rc| kept_row("route_config", &rc.name, &rc.meta))
                .collect(),
        ),
        View::Endpoints { .. } => (
            "endpoint_config",
            dump.endpoint_configs
                .iter()
                .filter_map(|la| kept_row("endpoint_config", &la.cluster_name, &la.meta))
                .collect(),
        ),
        View::Secrets { .. } => (
            "secret",
            dump.secrets
                .iter()
                .filter_map(|s| kept_row("secret", &s.name, &s.meta))
                .collect(),
        ),
        View::Ecds { .. } => (
            "extension_config",
            dump.opaque
                .iter()
                .filter_map(|o| {
                    kept_row("extension_config", o.name.as_deref().unwrap_or(""), &o.meta)
                })
                .collect(),
        ),
        View::Bootstrap { .. } => {
            return Err("--state: the bootstrap has no state to choose".into())
        }
    };
    rows.extend(
        dump.rejected
            .iter()
            .filter(|r| r.kind == kind)
            .filter_map(rejected::lone_row),
    );
    Ok(rejected::arrange(rows))
}

fn rejected_out(rows: Vec<rejected::RejectedRow>, m: Mode) -> Result<Printed, String> {
    match m {
        // The whole entry, whose `error_state` holds the rejected configuration.
        Mode::Raw => Ok(Printed::Resources(
            spans(&rows, |r| r.span.map(|s| (s, Wrapper::Whole)))?,
            Shape::Raw,
        )),
        Mode::IstioctlTable | Mode::IstioctlResources { .. } => {
            Err("--state rejected: istioctl has no such view".into())
        }
        Mode::Rows { yaml } => emit_rows(&rows, yaml).map(Printed::Text),
        Mode::Table { layout, .. } => {
            let mut t = Table::new(&rejected::COLUMNS, &[]);
            for r in &rows {
                t.row(vec![
                    dash(&r.name),
                    r.state.map_or("-", State::name).into(),
                    r.version_info.clone().unwrap_or_else(|| "-".into()),
                    r.last_update_attempt.clone().unwrap_or_else(|| "-".into()),
                    r.details.clone(),
                ]);
            }
            text(t.render(layout))
        }
    }
}

fn source_of(source: Option<&Source>) -> Result<&Source, String> {
    source.ok_or_else(|| "the input cannot be read again".to_string())
}

fn clusters_out(rows: Vec<cluster::ClusterRow>, m: Mode) -> Result<Printed, String> {
    let items = || spans(&rows, |r| r.span.map(|s| (s, Wrapper::Cluster)));
    match m {
        Mode::Raw => Ok(Printed::Resources(items()?, Shape::Raw)),
        Mode::IstioctlResources { yaml } => Ok(Printed::Resources(
            items()?,
            Shape::Istioctl { yaml, keep: None },
        )),
        Mode::IstioctlTable => {
            let mut lines = vec![cells(&cluster::ISTIOCTL_COLUMNS)];
            lines.extend(rows.iter().map(|r| r.istioctl_cells().to_vec()));
            text(tabwriter(&lines, 5))
        }
        Mode::Rows { yaml } => emit_rows(&rows, yaml).map(Printed::Text),
        Mode::Table { wide, layout } => {
            let state = wide || rows.iter().any(|r| unusual(r.state));
            let mut headers = cluster::ISTIOCTL_COLUMNS.to_vec();
            if state {
                headers.push("STATE");
            }
            headers.push("COST");
            if wide {
                headers.push("NAME");
            }
            let mut t = Table::new(&headers, &["COST"]);
            for r in &rows {
                let mut c = vec![
                    dash(&r.service_fqdn),
                    r.port.map_or_else(|| "-".into(), |p| p.to_string()),
                    r.subset.clone().unwrap_or_else(|| "-".into()),
                    r.direction.clone().unwrap_or_else(|| "-".into()),
                    r.discovery.clone(),
                    dash(&r.destination_rule),
                ];
                if state {
                    c.push(state_name(r.state).into());
                }
                c.push(cost(r.cost));
                if wide {
                    c.push(r.name.clone());
                }
                t.row(c);
            }
            text(t.render(layout))
        }
    }
}

fn cells(headers: &[&str]) -> Vec<String> {
    headers.iter().map(|h| h.to_string()).collect()
}

fn listeners_out(
    rows: Vec<listener::ListenerRow>,
    verbose: bool,
    m: Mode,
) -> Result<Printed, String> {
    let items = || spans(&rows, |r| r.span.map(|s| (s, Wrapper::Listener(r.state))));
    match m {
        Mode::Raw => Ok(Printed::Resources(items()?, Shape::Raw)),
        // istioctl sorts listeners for its table only: its JSON keeps dynamic ones, then static
        // ones, in dump order.
        Mode::IstioctlResources { yaml } => {
            let mut items = items()?;
            items.sort_by_key(|(span, w)| {
                let rank = matches!(w, Wrapper::Listener(State::Static));
                (rank, span.offset)
            });
            Ok(Printed::Resources(
                items,
                Shape::Istioctl { yaml, keep: None },
            ))
        }
        Mode::IstioctlTable if verbose => {
            let mut lines = vec![cells(&listener::ISTIOCTL_COLUMNS)];
            for r in &rows {
                lines.extend(r.istioctl_cells().into_iter().map(|c| c.to_vec()));
            }
            text(tabwriter(&lines, 1))
        }
        Mode::IstioctlTable => {
            let mut lines = vec![cells(&listener::ISTIOCTL_SHORT_COLUMNS)];
            lines.extend(rows.iter().map(|r| r.istioctl_short_cells().to_vec()));
            text(tabwriter(&lines, 1))
        }
        Mode::Rows { yaml } => emit_rows(&rows, yaml).map(Printed::Text),
        Mode::Table { wide, layout } => {
            let mut headers: Vec<&'static str> = if verbose {
                listener::ISTIOCTL_COLUMNS.to_vec()
            } else {
                listener::ISTIOCTL_SHORT_COLUMNS.to_vec()
            };
            let state = wide || rows.iter().any(|r| unusual(r.state));
            if state {
                headers.push("STATE");
            }
            headers.push("COST");
            if wide {
                headers.push("NAME");
                if verbose {
                    headers.extend(["CHAIN", "CHAIN COST"]);
                }
            }
            let mut t = Table::new(&headers, &["COST", "CHAIN COST"]);
            for r in &rows {
                let addresses = r.addresses.join(",");
                // Most of a listener's cost is its own (stats, per-worker state), not any one
                // chain's: COST is the whole listener's, once, on its first line, so the column
                // adds up to what `heft cost` puts in listeners; wide shows each chain's own.
                let lines: Vec<(Vec<String>, Vec<String>)> = if verbose && r.chains.is_empty() {
                    let c = vec![addresses, r.port.to_string(), "-".into(), "-".into()];
                    vec![(c, vec!["-".into(), "-".into()])]
                } else if verbose {
                    r.chains
                        .iter()
                        .map(|ch| {
                            let chain = match (&ch.name, ch.default) {
                                (Some(n), _) => n.clone(),
                                (None, true) => "(default)".into(),
                                (None, false) => "-".into(),
                            };
                            let c = vec![
                                addresses.clone(),
                                r.port.to_string(),
                                ch.matches.clone(),
                                ch.destination.clone(),
                            ];
                            (c, vec![chain, cost(ch.cost)])
                        })
                        .collect()
                } else {
                    vec![(
                        vec![addresses, r.port.to_string(), r.kind.clone()],
                        Vec::new(),
                    )]
                };
                for (i, (mut c, chain)) in lines.into_iter().enumerate() {
                    if state {
                        c.push(state_name(r.state).into());
                    }
                    c.push(if i == 0 { cost(r.cost) } else { String::new() });
                    if wide {
                        c.push(r.name.clone());
                        c.extend(chain);
                    }
                    t.row(c);
                }
            }
            text(t.render(layout))
        }
    }
}

fn routes_out(
    configs: Vec<route::RouteConfigRows>,
    verbose: bool,
    m: Mode,
) -> Result<Printed, String> {
    let items = || spans(&configs, |r| r.span.map(|s| (s, Wrapper::RouteConfig)));
    match m {
        Mode::Raw => Ok(Printed::Resources(items()?, Shape::Raw)),
        Mode::IstioctlResources { yaml } => Ok(Printed::Resources(
            items()?,
            Shape::Istioctl { yaml, keep: None },
        )),
        Mode::IstioctlTable if verbose => {
            let mut lines = vec![cells(&route::ISTIOCTL_COLUMNS)];
            for c in &configs {
                lines.extend(c.routes.iter().map(|r| r.istioctl_cells().to_vec()));
            }
            text(tabwriter(&lines, 5))
        }
        Mode::IstioctlTable => {
            let mut lines = vec![cells(&route::ISTIOCTL_SHORT_COLUMNS)];
            lines.extend(configs.iter().map(|c| c.istioctl_short_cells().to_vec()));
            text(tabwriter(&lines, 5))
        }
        Mode::Rows { yaml } if verbose => {
            let rows: Vec<&route::RouteRow> = configs.iter().flat_map(|c| &c.routes).collect();
            emit_rows(&rows, yaml).map(Printed::Text)
        }
        Mode::Rows { yaml } => emit_rows(&configs, yaml).map(Printed::Text),
        Mode::Table { wide, layout } => {
            let mut headers: Vec<&'static str> = if verbose {
                route::ISTIOCTL_COLUMNS.to_vec()
            } else {
                route::ISTIOCTL_SHORT_COLUMNS.to_vec()
            };
            headers.push("COST");
            if wide {
                headers.extend(if verbose {
                    &["DESTINATION", "STATE", "ROUTE COST"][..]
                } else {
                    &["STATE"][..]
                });
            }
            let mut t = Table::new(&headers, &["COST", "VIRTUAL HOSTS", "ROUTE COST"]);
            for c in &configs {
                if verbose {
                    // COST is the whole route configuration's (its virtual hosts' and its own
                    // share too), once, on its first line, so the column adds up to what
                    // `heft cost` puts in route configurations; wide shows each route's own.
                    for (i, r) in c.routes.iter().enumerate() {
                        let mut cells = vec![
                            r.route_config.clone(),
                            r.virtual_host.clone(),
                            r.domains.clone(),
                            r.matches.clone(),
                            dash(&r.virtual_service),
                            if i == 0 {
                                route_config_cost(c.cost)
                            } else {
                                String::new()
                            },
                        ];
                        if wide {
                            cells.extend([
                                dash(&r.destination),
                                state_name(r.state).into(),
                                cost(r.cost),
                            ]);
                        }
                        t.row(cells);
                    }
                } else {
                    let mut cells = vec![
                        c.name.clone(),
                        c.virtual_hosts.to_string(),
                        route_config_cost(c.cost),
                    ];
                    if wide {
                        cells.push(state_name(c.state).into());
                    }
                    t.row(cells);
                }
            }
            text(t.render(layout))
        }
    }
}

fn endpoints_out(
    assignments: Vec<endpoint::LoadAssignmentRows>,
    m: Mode,
) -> Result<Printed, String> {
    let items = || {
        spans(&assignments, |a| {
            a.span.map(|s| (s, Wrapper::EndpointConfig))
        })
    };
    match m {
        Mode::Raw => Ok(Printed::Resources(items()?, Shape::Raw)),
        // istioctl prints each assignment with only the endpoints the filter kept.
        Mode::IstioctlResources { yaml } => Ok(Printed::Resources(
            items()?,
            Shape::Istioctl {
                yaml,
                keep: Some(
                    assignments
                        .iter()
                        .map(|a| a.endpoints.iter().map(|e| e.index).collect())
                        .collect(),
                ),
            },
        )),
        Mode::IstioctlTable => {
            let mut lines = vec![cells(&endpoint::ISTIOCTL_COLUMNS)];
            for a in &assignments {
                lines.extend(a.endpoints.iter().map(|e| e.istioctl_cells().to_vec()));
            }
            text(tabwriter(&lines, 5))
        }
        Mode::Rows { yaml } => {
            let rows: Vec<&endpoint::EndpointRow> =
                assignments.iter().flat_map(|a| &a.endpoints).collect();
            emit_rows(&rows, yaml).map(Printed::Text)
        }
        Mode::Table { wide, layout } => {
            let mut headers = endpoint::ISTIOCTL_COLUMNS.to_vec();
            headers.push("COST");
            if wide {
                headers.extend(["WEIGHT", "PRIORITY", "STATE"]);
            }
            let mut t = Table::new(&headers, &["COST", "WEIGHT", "PRIORITY"]);
            for a in &assignments {
                for e in &a.endpoints {
                    let mut c = vec![
                        e.addresses.join(","),
                        e.status.clone(),
                        dash(&e.locality),
                        e.cluster.clone(),
                        cost(e.cost),
                    ];
                    if wide {
                        c.extend([
                            e.weight.map_or_else(|| "-".into(), |w| w.to_string()),
                            e.priority.to_string(),
                            state_name(e.state).into(),
                        ]);
                    }
                    t.row(c);
                }
            }
            text(t.render(layout))
        }
    }
}

/// Keeps, in an assignment's JSON, the endpoints at these positions (counted over all
/// localities); a locality left with none loses its `lbEndpoints`, as proto3 JSON omits an empty
/// list.
fn keep_endpoints(v: &mut Value, keep: &[usize]) {
    let mut index = 0;
    let Some(localities) = v.get_mut("endpoints").and_then(Value::as_array_mut) else {
        return;
    };
    for l in localities {
        let Some(obj) = l.as_object_mut() else {
            continue;
        };
        if let Some(Value::Array(eps)) = obj.get_mut("lbEndpoints") {
            let mut kept = Vec::new();
            for e in eps.drain(..) {
                if keep.contains(&index) {
                    kept.push(e);
                }
                index += 1;
            }
            *eps = kept;
            if eps.is_empty() {
                obj.shift_remove("lbEndpoints");
            }
        }
    }
}

fn hosts_out(
    rows: Vec<endpoint::HostRow>,
    clusters: Vec<Span>,
    m: Mode,
) -> Result<Printed, String> {
    let items: Vec<(Span, Wrapper)> = clusters.iter().map(|s| (*s, Wrapper::Whole)).collect();
    match m {
        Mode::Raw => Ok(Printed::Resources(items, Shape::Raw)),
        Mode::IstioctlResources { yaml } => Ok(Printed::Resources(
            items,
            Shape::Istioctl { yaml, keep: None },
        )),
        Mode::IstioctlTable => {
            let mut lines = vec![cells(&endpoint::ISTIOCTL_HOST_COLUMNS)];
            lines.extend(rows.iter().map(|r| r.istioctl_cells().to_vec()));
            text(tabwriter(&lines, 5))
        }
        Mode::Rows { yaml } => emit_rows(&rows, yaml).map(Printed::Text),
        Mode::Table { wide, layout } => {
            let mut headers = endpoint::ISTIOCTL_HOST_COLUMNS.to_vec();
            if wide {
                headers.extend(["WEIGHT", "PRIORITY", "LOCALITY", "ACTIVE HC"]);
            }
            let mut t = Table::new(&headers, &["WEIGHT", "PRIORITY"]);
            for r in &rows {
                let mut c = r.istioctl_cells().to_vec();
                if wide {
                    c.extend([
                        r.weight.to_string(),
                        r.priority.to_string(),
                        dash(&r.locality),
                        if r.failed_active_health_check {
                            "FAILED"
                        } else {
                            "OK"
                        }
                        .into(),
                    ]);
                }
                t.row(c);
            }
            text(t.render(layout))
        }
    }
}

/// The dump's sections of this type, as `istioctl` prints a section: renamed, without `@type`.
fn section_value(dump: &Dump, source: &Source, type_name: &str) -> Result<Value, String> {
    let items: Vec<(Span, Wrapper)> = dump
        .sections
        .iter()
        .filter(|s| s.type_url.ends_with(type_name))
        .map(|s| (s.span, Wrapper::Whole))
        .collect();
    let mut values = istioctl_values(source, &items, true)?;
    match values.len() {
        0 => Err(format!("the input has no {type_name} section")),
        _ => Ok(values.swap_remove(0)),
    }
}

fn secrets_out(
    rows: Vec<secret::SecretRow>,
    dump: &Dump,
    m: Mode,
    source: Option<&Source>,
) -> Result<Printed, String> {
    match m {
        Mode::Raw => {
            let mut items = Vec::new();
            for r in &rows {
                let item = r
                    .span
                    .map(|s| (s, Wrapper::Secret))
                    .ok_or("a resource has no recorded position in the input")?;
                // A SPIFFE bundle gives one row per trust domain, but is one resource.
                if items.last() != Some(&item) {
                    items.push(item);
                }
            }
            Ok(Printed::Resources(items, Shape::Raw))
        }
        Mode::IstioctlResources { yaml } => emit_value(
            &section_value(dump, source_of(source)?, "SecretsConfigDump")?,
            yaml,
        )
        .map(Printed::Text),
        Mode::IstioctlTable => {
            if rows.is_empty() {
                return text("No active or warming secrets found.\n".into());
            }
            let trust = secret::shows_trust_domain(&rows);
            let mut header = cells(&secret::ISTIOCTL_COLUMNS);
            if trust {
                header.push(secret::TRUST_DOMAIN_COLUMN.into());
            }
            let mut lines = vec![header];
            lines.extend(rows.iter().map(|r| r.istioctl_cells(trust)));
            text(tabwriter(&lines, 5))
        }
        Mode::Rows { yaml } => emit_rows(&rows, yaml).map(Printed::Text),
        Mode::Table { wide, layout } => {
            let trust = secret::shows_trust_domain(&rows);
            let mut headers = secret::ISTIOCTL_COLUMNS.to_vec();
            if trust {
                headers.push(secret::TRUST_DOMAIN_COLUMN);
            }
            headers.push("COST");
            if wide {
                headers.push("SANS");
            }
            let mut t = Table::new(&headers, &["COST"]);
            for r in &rows {
                let mut c: Vec<String> = r
                    .istioctl_cells(trust)
                    .into_iter()
                    .map(|s| dash(&s))
                    .collect();
                c.push(cost(r.cost));
                if wide {
                    c.push(dash(&r.sans.join(",")));
                }
                t.row(c);
            }
            text(t.render(layout))
        }
    }
}

fn bootstrap_out(dump: &Dump, m: Mode, source: Option<&Source>) -> Result<Printed, String> {
    let b = dump
        .bootstrap
        .as_ref()
        .ok_or("the input has no bootstrap")?;
    match m {
        Mode::Raw => {
            let span = b
                .meta
                .span
                .ok_or("the bootstrap has no recorded position")?;
            Ok(Printed::Resources(vec![(span, Wrapper::Whole)], Shape::Raw))
        }
        Mode::IstioctlResources { yaml } => emit_value(
            &section_value(dump, source_of(source)?, "BootstrapConfigDump")?,
            yaml,
        )
        .map(Printed::Text),
        Mode::IstioctlTable => {
            let v = bootstrap::VersionSummary::of(&b.node);
            let lines: Vec<Vec<String>> = v
                .lines()
                .into_iter()
                .map(|(label, value)| vec![format!("{label}:"), value.to_string()])
                .collect();
            text(tabwriter(&lines, 1))
        }
        Mode::Rows { yaml } => emit_rows(&[bootstrap::bootstrap_row(b)], yaml).map(Printed::Text),
        Mode::Table { layout, .. } => {
            let row = bootstrap::bootstrap_row(b);
            let value = serde_json::to_value(&row).expect("a row serialises");
            let mut t = Table::new(&["FIELD", "VALUE"], &[]);
            if let Value::Object(m) = value {
                for (k, v) in m {
                    let text = match v {
                        Value::String(s) => s,
                        Value::Null => "-".into(),
                        other => other.to_string(),
                    };
                    t.row(vec![k, text]);
                }
            }
            text(t.render(layout))
        }
    }
}

fn ecds_out(rows: Vec<ecds::EcdsRow>, m: Mode, source: Option<&Source>) -> Result<Printed, String> {
    match m {
        Mode::Raw => {
            let items = spans(&rows, |r| r.span.map(|s| (s, Wrapper::Whole)))?;
            Ok(Printed::Resources(items, Shape::Raw))
        }
        Mode::IstioctlResources { yaml } => {
            // istioctl prints one EcdsConfigDump holding every entry, in dump order.
            let mut in_order = rows.clone();
            in_order.sort_by_key(|r| r.span.map(|s| s.offset));
            let items = spans(&in_order, |r| r.span.map(|s| (s, Wrapper::Whole)))?;
            let entries = istioctl_values(source_of(source)?, &items, false)?;
            let mut doc = serde_json::Map::new();
            doc.insert("ecdsFilters".into(), Value::Array(entries));
            emit_value(&Value::Object(doc), yaml).map(Printed::Text)
        }
        Mode::IstioctlTable => {
            let mut lines = vec![cells(&ecds::ISTIOCTL_COLUMNS)];
            lines.extend(rows.iter().map(|r| r.istioctl_cells().to_vec()));
            text(tabwriter(&lines, 5))
        }
        Mode::Rows { yaml } => emit_rows(&rows, yaml).map(Printed::Text),
        Mode::Table { wide, layout } => {
            let mut headers = ecds::ISTIOCTL_COLUMNS.to_vec();
            if wide {
                headers.extend(["VERSION", "LAST UPDATED", "STATE"]);
            }
            let mut t = Table::new(&headers, &[]);
            for r in &rows {
                let mut c = vec![r.name.clone(), dash(r.config_type())];
                if wide {
                    c.extend([
                        r.version_info.clone().unwrap_or_else(|| "-".into()),
                        r.last_updated.clone().unwrap_or_else(|| "-".into()),
                        state_name(r.state).into(),
                    ]);
                }
                t.row(c);
            }
            text(t.render(layout))
        }
    }
}
