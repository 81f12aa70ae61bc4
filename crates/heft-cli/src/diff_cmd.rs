//! `heft diff OLD NEW`: what changed between two dumps, as a review reads it.

use crate::readiness_text::one_line;
use crate::size::size;
use heft::diff::{Delta, Diff};
use std::fmt::Write as _;
use std::path::PathBuf;

/// `heft diff`'s own arguments.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The dump before: a file (JSON, YAML or protobuf; plain, gzip or zstd), or `-` for standard
    /// input (one of the two at most).
    pub old: PathBuf,
    /// The dump after, likewise.
    pub new: PathBuf,
    /// List bookkeeping-only changes too (version_info, last_updated, renewed certificates).
    #[arg(long)]
    pub all: bool,
    /// How the text breaks the heap's change down.
    #[arg(long, value_enum, default_value_t = By::Kind)]
    pub by: By,
}

/// `--by`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum By {
    Kind,
    Namespace,
    Resource,
}

fn signed(before: u64, after: u64) -> String {
    if after >= before {
        format!("+{}", size(after - before))
    } else {
        format!("−{}", size(before - after))
    }
}

fn deltas(o: &mut String, title: &str, rows: &[Delta]) {
    let shown: Vec<String> = rows
        .iter()
        .filter(|d| d.before_bytes != d.after_bytes)
        .take(8)
        .map(|d| {
            format!(
                "{} {} → {} ({})",
                d.key,
                size(d.before_bytes),
                size(d.after_bytes),
                signed(d.before_bytes, d.after_bytes)
            )
        })
        .collect();
    if !shown.is_empty() {
        let _ = writeln!(o, "  by {title}: {}", shown.join(", "));
    }
}

fn value(v: &serde_json::Value) -> String {
    if v.is_null() {
        return "(absent)".to_string();
    }
    one_line(&v.to_string(), 160)
}

/// `heft diff` as text: the heap's change, then added, removed and changed resources, the
/// largest cost changes first.
pub fn text(d: &Diff, by: By) -> String {
    let mut o = String::new();
    let model = |m: &heft::cost::ModelUsed| format!("Envoy {}", m.envoy_version);
    let _ = writeln!(
        o,
        "Predicted Envoy heap {} → {} ({}); models: {} → {}",
        size(d.before_bytes),
        size(d.after_bytes),
        signed(d.before_bytes, d.after_bytes),
        model(&d.before_model),
        model(&d.after_model)
    );
    match by {
        By::Kind => deltas(&mut o, "kind", &d.by_kind),
        By::Namespace => deltas(&mut o, "namespace", &d.by_namespace),
        By::Resource => {}
    }
    let _ = writeln!(
        o,
        "  {} added, {} removed, {} changed, {} unchanged, {} with bookkeeping changes only{}",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged,
        d.bookkeeping_only,
        if d.bookkeeping_only > 0 {
            " (--all lists them)"
        } else {
            ""
        }
    );
    for (sign, title, list) in [("+", "Added", &d.added), ("-", "Removed", &d.removed)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\n{title}");
        for r in list.iter() {
            let _ = writeln!(
                o,
                "  {sign} {} {}  {sign}{}",
                r.kind,
                one_line(&r.name, 200),
                size(r.bytes)
            );
        }
    }
    if !d.changed.is_empty() {
        let _ = writeln!(o, "\nChanged");
        for c in &d.changed {
            let cost = if c.before_bytes == 0 && c.after_bytes == 0 {
                String::new()
            } else {
                format!(
                    "  {} → {} ({})",
                    size(c.before_bytes),
                    size(c.after_bytes),
                    signed(c.before_bytes, c.after_bytes)
                )
            };
            let _ = writeln!(o, "  ~ {} {}{cost}", c.kind, one_line(&c.name, 200));
            for f in c.fields.iter().take(30) {
                let _ = writeln!(
                    o,
                    "      {}: {} → {}",
                    one_line(&f.path, 200),
                    value(&f.old),
                    value(&f.new)
                );
            }
            if c.fields.len() > 30 {
                let _ = writeln!(
                    o,
                    "      … and {} more fields (-o json lists every one)",
                    c.fields.len() - 30
                );
            }
        }
    }
    o
}

/// `heft diff -o json`.
pub fn json(d: &Diff) -> String {
    serde_json::to_string_pretty(d).expect("the diff serializes") + "\n"
}
