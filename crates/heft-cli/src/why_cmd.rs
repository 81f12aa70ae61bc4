//! `heft why` and `heft sidecar`: what bloats this proxy, and what a Sidecar resource would save.

use crate::size::size;
use heft::scope::Scope;
use heft::sidecar::{narrowest_egress, WhatIf, Workload};
use heft::usage::Usage;
use heft::why::{Row, Share, Why};
use serde_json::{json, Value};
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
    #[arg(long, value_enum, value_name = "FORMAT")]
    emit: Option<Emit>,
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
pub fn why_text(w: &Why, file: &str) -> String {
    let t = w.total_bytes;
    let mut o = String::new();
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
    let n = &w.next_step;
    let _ = writeln!(o, "\nNext step");
    if w.workload.is_gateway() {
        let _ = writeln!(
            o,
            "  This proxy is a gateway: Sidecar resources do not apply to it."
        );
        return o;
    }
    let _ = writeln!(
        o,
        "  A Sidecar with egress hosts {} would remove {} services ({} clusters, {} endpoints, {} virtual hosts, {} listeners):",
        n.egress.join(", "),
        n.removed_services,
        n.removed.clusters,
        n.removed.endpoints,
        n.removed.virtual_hosts,
        n.removed.listeners
    );
    let _ = writeln!(
        o,
        "  {} → {}, saving {} ({}).",
        size(n.before_bytes),
        size(n.after_bytes),
        size(n.saving_bytes),
        pct(n.saving_bytes, n.before_bytes)
    );
    let args: String = n
        .egress
        .iter()
        .map(|h| format!(" --egress '{h}'"))
        .collect();
    let _ = writeln!(o, "  heft sidecar {file}{args} --emit yaml > sidecar.yaml");
    o
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
        (true, Some(u)) => narrowest_egress(dump, u),
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
        w.egress.join(", ")
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
    if !w.used_but_removed.is_empty() {
        let _ = writeln!(
            o,
            "  warning: the stats show this workload calling {} service(s) the scope removes: {}",
            w.used_but_removed.len(),
            w.used_but_removed.join(", ")
        );
    }
    if workload.is_gateway() {
        let _ = writeln!(
            o,
            "  note: this proxy is a gateway: Sidecar resources do not apply to it"
        );
    }
    o
}

/// `heft sidecar -o json`.
pub fn sidecar_json(w: &WhatIf, workload: &Workload) -> String {
    let mut v = serde_json::to_value(w).expect("serializes");
    v["workload"] = serde_json::to_value(workload).expect("serializes");
    serde_json::to_string_pretty(&v).expect("serializes") + "\n"
}

/// A `networking.istio.io/v1` Sidecar selecting this workload by its `app` label (else every
/// workload of the namespace), with the scope's egress hosts.
pub fn sidecar_manifest(w: &WhatIf, workload: &Workload) -> Result<String, String> {
    let app = workload.labels.get("app");
    let name = match (app, &workload.name) {
        (Some(app), _) => app.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => "default".to_string(),
    };
    let mut spec = json!({"egress": [{"hosts": w.egress}]});
    if let Some(app) = app {
        spec["workloadSelector"] = json!({"labels": {"app": app}});
    }
    let manifest: Value = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": name, "namespace": w.namespace},
        "spec": spec,
    });
    let mut text = format!(
        "# Generated by heft: predicted heap {} -> {} (saving {}).\n",
        size(w.before_bytes),
        size(w.after_bytes),
        size(w.saving_bytes)
    );
    text.push_str(&yaml_serde::to_string(&manifest).map_err(|e| format!("writing YAML: {e}"))?);
    Ok(text)
}
