//! `heft why` and `heft sidecar`: what bloats this proxy, and what a Sidecar resource would save.

use crate::size::size;
use heft::scope::Scope;
use heft::sidecar::{duration, narrowest_egress, Called, OutboundMode, WhatIf, Workload};
use heft::usage::Usage;
use heft::why::{Row, Share, SidecarAdvice, Why};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `heft sidecar`'s own flags.
#[derive(clap::Args)]
pub struct SidecarArgs {
    /// An egress host in Istio's `namespace/dnsName` form (`./*`, `istio-system/*`,
    /// `shop/*.shop.svc.cluster.local`, `~/*`); repeat for more. Without it: the narrowest
    /// scope that keeps every service `--stats` shows used.
    #[arg(long, value_name = "HOST")]
    egress: Vec<String>,
    /// The workload's namespace (what `.` means) [default: the bootstrap's node].
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Print a ready-to-apply `networking.istio.io/v1` Sidecar manifest instead of the report.
    /// Its `workloadSelector` is the pod's `app` and `version` labels (node metadata `LABELS`);
    /// without them, give `--selector` or `--namespace-wide`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    emit: Option<Emit>,
    /// A label the manifest's `workloadSelector` matches, as `key=value`, instead of the pod's
    /// `app` and `version`; repeat for more.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    selector: Vec<(String, String)>,
    /// Write a manifest with no `workloadSelector`, named `default`: it applies to every workload
    /// of the namespace that has no Sidecar of its own.
    #[arg(long, conflicts_with = "selector")]
    namespace_wide: bool,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE"))?;
    if k.is_empty() || v.contains('*') {
        return Err(format!(
            "{text:?}: a label needs a key, and a selector takes no wildcard"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Emit {
    Yaml,
}

impl SidecarArgs {
    /// Whether to print the manifest (`--emit yaml`, the one form there is).
    pub fn emit(&self) -> bool {
        matches!(self.emit, Some(Emit::Yaml))
    }
}

fn pct(part: u64, total: u64) -> String {
    if total == 0 {
        return "0%".into();
    }
    format!("{:.0}%", part as f64 * 100.0 / total as f64)
}

fn row_list(rows: &[Row], total: u64, n: usize) -> String {
    rows.iter()
        .filter(|r| r.bytes > 0)
        .take(n)
        .map(|r| format!("{} {} ({})", r.key, size(r.bytes), pct(r.bytes, total)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn share(s: &Share, what: &str, total: u64) -> String {
    format!(
        "{} {what}, {} ({})",
        s.count,
        size(s.bytes),
        pct(s.bytes, total)
    )
}

fn who(w: &Workload) -> String {
    let name = w.name.as_deref().unwrap_or("(unknown workload)");
    let ns = w.namespace.as_deref().unwrap_or("(unknown namespace)");
    let kind = w.proxy_type.as_deref().unwrap_or("proxy");
    format!("{name} in {ns} ({kind})")
}

/// `heft why` as text.
pub fn why_text(w: &Why, file: &str, stats: Option<&str>) -> String {
    let t = w.total_bytes;
    let mut o = crate::warnings_text(&w.warnings);
    let _ = writeln!(o, "{}", who(&w.workload));
    o.push_str(&crate::cost_cmd::heap_header(
        t,
        w.baseline_bytes,
        &w.model,
        &w.proxy,
        w.concurrency,
        w.concurrency_source,
    ));
    o.push('\n');
    let readiness = crate::readiness_text::render(&w.rejected, &w.warming);
    if !readiness.is_empty() {
        o.push_str(readiness.trim_start_matches('\n'));
        o.push('\n');
    }
    let _ = writeln!(o, "Where it goes");
    let _ = writeln!(o, "  by kind:       {}", row_list(&w.by_kind, t, 6));
    let _ = writeln!(o, "  by namespace:  {}", row_list(&w.by_namespace, t, 6));
    let _ = writeln!(o, "  top services:  {}", row_list(&w.top_services, t, 5));
    let own = w.workload.namespace.as_deref().unwrap_or("its namespace");
    let _ = writeln!(o, "\nWhat it serves");
    let m = &w.multipliers;
    let _ = writeln!(
        o,
        "  {} services; outside {own} and istio-system: {}",
        m.services,
        share(&w.outside_namespace, "services", t)
    );
    match (&w.called, &w.never_called) {
        (Some(called), Some(idle)) => {
            let _ = writeln!(
                o,
                "  the stats show {} service(s) called; never called: {}",
                called.len(),
                share(idle, "services", t)
            );
        }
        _ => {
            let _ = writeln!(o, "  (give --stats FILE, the proxy's /stats, to see which services it actually calls)");
        }
    }
    let _ = writeln!(o, "\nMultipliers");
    let _ = writeln!(
        o,
        "  {} clusters for {} services: {:.1} ports each × {:.1} clusters per port; DestinationRule subsets: {}",
        m.service_clusters,
        m.services,
        m.ports_per_service,
        m.clusters_per_port,
        share(&m.subset_clusters, "clusters", t)
    );
    if m.knative_services.count > 0 {
        let _ = writeln!(
            o,
            "  Knative revisions and -private twins: {}",
            share(&m.knative_services, "services", t)
        );
    }
    let _ = writeln!(
        o,
        "  endpoints: {} ({:.1} per cluster, at most {}): {} ({})",
        m.endpoints.count,
        m.endpoints_per_cluster,
        m.max_endpoints,
        size(m.endpoints.bytes),
        pct(m.endpoints.bytes, t)
    );
    let stats_note = if m.stats_saving_with_istio_list > 0 {
        format!(
            "; Istio's default stats inclusion list would save {}",
            size(m.stats_saving_with_istio_list)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "  stats: {} ({}){stats_note}",
        size(m.stats_bytes),
        pct(m.stats_bytes, t)
    );
    let _ = writeln!(
        o,
        "  worker threads: {}, their copies {} ({})",
        m.concurrency,
        size(m.per_worker_bytes),
        pct(m.per_worker_bytes, t)
    );
    let d = &w.dead_weight;
    let _ = writeln!(o, "\nDead weight");
    let _ = writeln!(
        o,
        "  clusters nothing routes to: {}",
        share(&d.unreferenced_clusters, "clusters", t)
    );
    for r in &d.examples {
        let _ = writeln!(o, "    {} {}", size(r.bytes), r.key);
    }
    if d.cluster_header_routes {
        let _ = writeln!(
            o,
            "    (a route picks its cluster from a request header: some of these may be used)"
        );
    }
    let _ = writeln!(
        o,
        "  secrets nothing uses: {}",
        share(&d.unused_secrets, "secrets", t)
    );
    let _ = writeln!(
        o,
        "  route configurations no listener uses: {}",
        share(&d.unused_route_configs, "route configurations", t)
    );
    next_steps(&mut o, w, file, stats.unwrap_or("STATS"));
    o
}

fn next_steps(o: &mut String, w: &Why, file: &str, stats: &str) {
    let n = &w.next_step;
    let _ = writeln!(o, "\nNext steps");
    match &n.sidecar {
        SidecarAdvice::Gateway => {
            let _ = writeln!(
                o,
                "  Sidecar: this proxy is a gateway; Sidecar resources do not apply to it."
            );
        }
        SidecarAdvice::NoEvidence(none) => {
            let _ = writeln!(o, "  Sidecar: no scope derived: {none}.");
        }
        SidecarAdvice::Example(s) => {
            let _ = writeln!(
                o,
                "  Sidecar (an example, not derived from traffic: no --stats given): egress hosts {} would remove {} services and save {} ({}).",
                s.egress.join(", "),
                s.removed_services,
                size(s.saving_bytes),
                pct(s.saving_bytes, s.before_bytes)
            );
            let _ = writeln!(
                o,
                "    warning: nothing shows which services this workload calls; applied, this scope cuts every service outside them ({}).",
                outside_scope(s.outbound_policy.mode)
            );
            let _ = writeln!(
                o,
                "    Derive one from what it calls: heft why --stats STATS {file}   (STATS: the proxy's /stats after real traffic)"
            );
        }
        SidecarAdvice::Derived(s) => {
            let _ = writeln!(
                o,
                "  Sidecar: egress hosts {} would remove {} services ({} clusters, {} endpoints, {} virtual hosts, {} listeners):",
                hosts_text(&s.egress),
                s.removed_services,
                s.removed.clusters,
                s.removed.endpoints,
                s.removed.virtual_hosts,
                s.removed.listeners
            );
            let _ = writeln!(
                o,
                "    {} → {}, saving {} ({}).",
                size(s.before_bytes),
                size(s.after_bytes),
                size(s.saving_bytes),
                pct(s.saving_bytes, s.before_bytes)
            );
            evidence_lines(o, s, "    ");
            let _ = writeln!(
                o,
                "    heft sidecar --stats {stats} {file} --emit yaml > sidecar.yaml"
            );
        }
    }
    for l in &n.levers {
        let _ = writeln!(
            o,
            "  {}: saves {} ({}): {}.",
            lever_title(l.kind),
            size(l.saving_bytes),
            pct(l.saving_bytes, w.total_bytes),
            l.setting
        );
        if !l.namespaces.is_empty() {
            let _ = writeln!(o, "    namespaces: {}", l.namespaces.join(", "));
        }
        let _ = writeln!(o, "    evidence: {}", l.evidence);
        let _ = writeln!(o, "    caution: {}", l.caution);
    }
    if n.combined_saving_bytes > 0 {
        let what = if matches!(n.sidecar, SidecarAdvice::Derived(_)) {
            "the Sidecar and every lever above"
        } else {
            "every lever above"
        };
        let _ = writeln!(
            o,
            "  Together, {what}: {} → {}, saving {} ({}).",
            size(w.total_bytes),
            size(n.combined_after_bytes),
            size(n.combined_saving_bytes),
            pct(n.combined_saving_bytes, w.total_bytes)
        );
    }
}

/// Egress hosts for a line of text: all of them up to 8, else the first 8 and how many more.
fn hosts_text(hosts: &[String]) -> String {
    const SHOWN: usize = 8;
    if hosts.len() <= SHOWN {
        return hosts.join(", ");
    }
    format!(
        "{}, … ({} in all: -o json or --emit yaml lists every one)",
        hosts[..SHOWN].join(", "),
        hosts.len()
    )
}

fn lever_title(kind: &str) -> &str {
    match kind {
        "stats_inclusion_list" => "Stats inclusion list",
        "hide_namespaces" => "Hide namespaces (exportTo, discoverySelectors)",
        "gateway_cluster_filter" => "Gateway cluster filtering",
        other => other,
    }
}

/// What happens to traffic a scope leaves out, under the proxy's outbound traffic policy.
fn outside_scope(mode: OutboundMode) -> &'static str {
    match mode {
        OutboundMode::RegistryOnly => {
            "outbound traffic policy REGISTRY_ONLY: calls to them fail (502, or the connection is reset)"
        }
        OutboundMode::AllowAny => {
            "outbound traffic policy ALLOW_ANY: calls to them still leave the pod, through PassthroughCluster, as plain traffic with no mTLS, routing rules, retries or Istio telemetry"
        }
        OutboundMode::Unknown => {
            "the dump does not show the outbound traffic policy: under REGISTRY_ONLY calls to them fail, under ALLOW_ANY they bypass the mesh"
        }
    }
}

/// The stats a scope rests on, the services it keeps with the counter that kept each, the
/// traffic it would cut, what happens outside it, and egress hosts that select nothing.
fn evidence_lines(o: &mut String, w: &WhatIf, indent: &str) {
    if let Some(e) = &w.evidence {
        let window = e.window_seconds.map_or(
            "an unknown window (the stats have no server.uptime)".to_string(),
            |s| format!("the last {} (server uptime)", duration(s)),
        );
        let _ = writeln!(
            o,
            "{indent}evidence: {} stats over {window}: {} service counters read, {} service(s) called",
            e.stats_format,
            e.counters_seen,
            e.called.len()
        );
        if e.called.is_empty() {
            let _ = writeln!(
                o,
                "{indent}  warning: the stats show no call at all: nothing shows this scope keeps what the workload uses"
            );
        }
        if let Some(s) = e.window_seconds.filter(|s| *s < 3600) {
            let _ = writeln!(
                o,
                "{indent}  warning: the stats cover only {}: a service called less often (a nightly job, a failover path) would be cut",
                duration(s)
            );
        }
        for c in e.called.iter().take(20) {
            let _ = writeln!(o, "{indent}  kept {}: {}", c.service, counter(c));
        }
        if e.called.len() > 20 {
            let _ = writeln!(
                o,
                "{indent}  … and {} more (-o json lists every one)",
                e.called.len() - 20
            );
        }
    }
    if !w.used_but_removed.is_empty() {
        let _ = writeln!(
            o,
            "{indent}warning: the scope cuts {} service(s) the stats show called:",
            w.used_but_removed.len()
        );
        for c in &w.used_but_removed {
            let _ = writeln!(o, "{indent}  cut {}: {}", c.service, counter(c));
        }
    }
    let policy = &w.outbound_policy;
    let _ = writeln!(
        o,
        "{indent}outside the scope: {}{}",
        outside_scope(policy.mode),
        policy
            .evidence
            .as_deref()
            .map_or(String::new(), |e| format!(" ({e})"))
    );
    for h in &w.unmatched_hosts {
        let _ = writeln!(
            o,
            "{indent}warning: egress host {h} selects no service in this dump: a typo, or a namespace this proxy does not know"
        );
    }
}

fn counter(c: &Called) -> String {
    format!("{} = {}", c.counter.name, c.counter.value)
}

/// `heft why -o json`.
pub fn why_json(w: &Why) -> String {
    serde_json::to_string_pretty(w).expect("the report serializes") + "\n"
}

/// The scope `heft sidecar` applies: the given hosts, or the narrowest that keeps what the stats
/// show used.
pub fn scope_of(
    dump: &heft::Dump,
    args: &SidecarArgs,
    usage: Option<&Usage>,
) -> Result<(Scope, Workload), String> {
    let workload = Workload::of(dump);
    let namespace = args
        .namespace
        .clone()
        .or_else(|| workload.namespace.clone())
        .ok_or(
            "the dump does not say the workload's namespace (no bootstrap node): give --namespace",
        )?;
    let hosts: Vec<String> = match (args.egress.is_empty(), usage) {
        (false, _) => args.egress.clone(),
        (true, Some(u)) => narrowest_egress(dump, u).map_err(|none| none.to_string())?,
        (true, None) => {
            return Err("give --egress HOST (e.g. --egress './*' --egress 'istio-system/*'), or --stats FILE to derive the narrowest scope".into())
        }
    };
    let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
    Ok((Scope::parse(&refs, &namespace)?, workload))
}

/// `heft sidecar` as text.
pub fn sidecar_text(w: &WhatIf, workload: &Workload) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Sidecar scope for {}: egress hosts {}",
        who(workload),
        hosts_text(&w.egress)
    );
    let _ = writeln!(
        o,
        "  predicted heap {} → {}, saving {} ({})",
        size(w.before_bytes),
        size(w.after_bytes),
        size(w.saving_bytes),
        pct(w.saving_bytes, w.before_bytes)
    );
    let r = &w.removed;
    let _ = writeln!(
        o,
        "  removes {} services: {} clusters, {} endpoint configurations ({} endpoints), {} virtual hosts ({} routes), {} route configurations, {} listeners, {} secrets",
        w.removed_services, r.clusters, r.endpoint_configs, r.endpoints, r.virtual_hosts, r.routes, r.route_configs, r.listeners, r.secrets
    );
    let _ = writeln!(o, "  keeps {} services", w.kept_services);
    if !w.undecided.is_empty() {
        let _ = writeln!(
            o,
            "  kept {} clusters whose namespace the dump does not say",
            w.undecided.len()
        );
    }
    evidence_lines(&mut o, w, "  ");
    if workload.is_gateway() {
        let _ = writeln!(
            o,
            "  note: this proxy is a gateway: Sidecar resources do not apply to it"
        );
    }
    o
}

/// `heft sidecar -o json`.
pub fn sidecar_json(
    w: &WhatIf,
    workload: &Workload,
    warnings: &[heft::summary_types::Warning],
) -> String {
    let mut v = serde_json::to_value(w).expect("serializes");
    v["workload"] = serde_json::to_value(workload).expect("serializes");
    v["warnings"] = serde_json::to_value(warnings).expect("serializes");
    serde_json::to_string_pretty(&v).expect("serializes") + "\n"
}

/// A `networking.istio.io/v1` Sidecar with the scope's egress hosts, selecting this workload by
/// `--selector`, else its `app` and `version` labels; namespace-wide (named `default`) only when
/// asked. Refused without a selector: a Sidecar with none applies to the whole namespace.
pub fn sidecar_manifest(
    w: &WhatIf,
    workload: &Workload,
    args: &SidecarArgs,
) -> Result<String, String> {
    let selector: Option<BTreeMap<String, String>> = if args.namespace_wide {
        None
    } else if !args.selector.is_empty() {
        Some(args.selector.iter().cloned().collect())
    } else {
        Some(workload.selector().ok_or(
            "the dump's node has no app or version label (node metadata LABELS) to select the workload by: give --selector KEY=VALUE, or --namespace-wide for a Sidecar that applies to every workload of the namespace",
        )?)
    };
    if workload.is_gateway() {
        return Err("this proxy is a gateway: a Sidecar resource does not apply to it".into());
    }
    let name = match (&selector, &workload.name) {
        (None, _) => "default".to_string(),
        (Some(labels), _) if labels.contains_key("app") => {
            let app = &labels["app"];
            match labels.get("version") {
                Some(v) => format!("{app}-{v}"),
                None => app.clone(),
            }
        }
        (Some(_), Some(n)) => n.clone(),
        (Some(_), None) => "workload".to_string(),
    };
    let mut spec = json!({"egress": [{"hosts": w.egress}]});
    if let Some(labels) = &selector {
        spec["workloadSelector"] = json!({ "labels": labels });
    }
    let manifest: Value = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": dns_label(&name), "namespace": w.namespace},
        "spec": spec,
    });
    let mut text = format!(
        "# Generated by heft: predicted heap {} -> {} (saving {}).\n",
        size(w.before_bytes),
        size(w.after_bytes),
        size(w.saving_bytes)
    );
    if selector.is_none() {
        text.push_str("# No workloadSelector: applies to every workload of the namespace without a Sidecar of its own.\n");
    }
    for c in &w.used_but_removed {
        let line = format!(
            "warning: this scope cuts {}, which the stats show called ({})",
            c.service,
            counter(c)
        );
        eprintln!("heft: {line}");
        let _ = writeln!(text, "# {line}");
    }
    for h in &w.unmatched_hosts {
        let line = format!("warning: egress host {h} selects no service in the dump");
        eprintln!("heft: {line}");
        let _ = writeln!(text, "# {line}");
    }
    text.push_str(&yaml_serde::to_string(&manifest).map_err(|e| format!("writing YAML: {e}"))?);
    Ok(text)
}

/// `name` as a Kubernetes object name: lower case, `[a-z0-9-.]`, at most 253 bytes, starting and
/// ending alphanumeric.
fn dns_label(name: &str) -> String {
    let mapped: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(253)
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "workload".to_string()
    } else {
        trimmed.to_string()
    }
}
