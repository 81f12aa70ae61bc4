//! Renders a [`heft::Summary`] as text for people.

use crate::size::size;
use heft::summary_types::{ByState, Counted};
use heft::views::bootstrap::VersionSummary;
use heft::Summary;
use std::fmt::Write;

fn row(out: &mut String, label: &str, total: u64, s: &ByState) {
    let _ = writeln!(
        out,
        "  {label:<16} {total:>9} {:>9} {:>9} {:>9} {:>9}",
        s.static_, s.active, s.warming, s.draining
    );
}

fn counted(out: &mut String, label: &str, c: &Counted) {
    row(out, label, c.total, &c.by_state);
}

fn breakdown<'a>(pairs: impl Iterator<Item = (&'a String, &'a u64)>) -> String {
    pairs
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text report; the bootstrap's versions are shown as `istioctl`'s version summary shows
/// them.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let n = &s.node;
    if let Some(id) = &n.id {
        let _ = writeln!(out, "Proxy      {id}");
    }
    if let Some(c) = &n.cluster {
        let _ = writeln!(out, "Cluster    {c}");
    }
    if let (Some(w), Some(ns)) = (&n.workload_name, &n.namespace) {
        let _ = writeln!(out, "Workload   {w} in namespace {ns}");
    }
    let i = &s.input;
    let format = serde_json::to_value(i.format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Input      {format}, {}{}, {}",
        i.encoding,
        if i.compression == "none" {
            String::new()
        } else {
            format!(" ({})", i.compression)
        },
        size(i.bytes)
    );
    let _ = writeln!(out);
    let lines: Vec<Vec<String>> = n
        .versions
        .as_ref()
        .map(VersionSummary::lines)
        .unwrap_or_default()
        .into_iter()
        .map(|(label, value)| vec![format!("{label}:"), value.to_string()])
        .collect();
    if !lines.is_empty() {
        out.push_str(&crate::table::tabwriter(&lines, 1));
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "total", "static", "active", "warming", "draining"
    );
    row(&mut out, "Clusters", s.clusters.total, &s.clusters.by_state);
    counted(&mut out, "Listeners", &s.listeners);
    counted(&mut out, "Route configs", &s.route_configs);
    counted(&mut out, "Secrets", &s.secrets);
    let _ = writeln!(out);
    if !s.clusters.by_type.is_empty() {
        let _ = writeln!(
            out,
            "  Cluster types    {}",
            breakdown(s.clusters.by_type.iter())
        );
    }
    let _ = writeln!(out, "  Virtual hosts    {}", s.virtual_hosts);
    let _ = writeln!(out, "  Routes           {}", s.routes);
    let _ = writeln!(out, "  Endpoint configs {}", s.endpoint_configs);
    let _ = write!(out, "  Endpoints        {}", s.endpoints.total);
    if !s.endpoints.by_health.is_empty() {
        let _ = write!(out, " ({})", breakdown(s.endpoints.by_health.iter()));
    }
    let _ = writeln!(out);
    if s.opaque.total > 0 {
        let _ = writeln!(
            out,
            "  Opaque           {} ({}, kept as type and size)",
            s.opaque.total,
            size(s.opaque.bytes)
        );
    }
    if !s.sections.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Sections");
        for sec in &s.sections {
            let name = sec.type_url.rsplit('.').next().unwrap_or(&sec.type_url);
            let _ = writeln!(out, "  {name:<28} {:>10}", size(sec.bytes));
        }
    }
    if !s.skipped.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Skipped    {} resource(s):", s.skipped.len());
        for k in &s.skipped {
            let at = k.offset.map(|o| format!(" (byte {o})")).unwrap_or_default();
            let _ = writeln!(out, "  {}{at}: {}", k.path, k.reason);
        }
    }
    out
}

/// The predicted heap, for the text report.
pub fn render_cost(t: &heft::cost::stream::CostTotals) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    out.push_str(&crate::cost_cmd::heap_header(
        t.total(),
        t.baseline.total(),
        &t.model_used,
        &t.proxy,
        t.concurrency,
        t.concurrency_source,
    ));
    let _ = writeln!(out, "  {:<16} {:>10}", "baseline", size(t.baseline.total()));
    for k in &t.by_kind {
        let _ = writeln!(
            out,
            "  {:<16} {:>10}  {} object(s)",
            k.kind.name(),
            size(k.bytes),
            k.objects
        );
    }
    out
}
