//! `heft summary`: reads the dump as a stream, counting and pricing each resource as it is
//! decoded, so the whole model is never held (see `heft::stream`).

use crate::{cost_cmd, progress, summary_text, Format, InputArgs};
use heft::cost::stream::{CostFold, CostTotals};
use heft::stream::{self, Fold, Outline};
use heft::summary_types::SummaryFold;
use heft::Summary;
use serde::Serialize;
use std::io::IsTerminal;

/// The `-o json` object: the summary's fields, then `cost` (docs/summary-json.md).
#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    cost: Cost<'a>,
}

#[derive(Serialize)]
struct Cost<'a> {
    total_bytes: u64,
    #[serde(flatten)]
    totals: &'a CostTotals,
}

/// Reads the input through `fold`, with a progress bar for long reads.
pub fn fold_input<F: Fold>(args: &InputArgs, fold: &F) -> Result<(Outline, F::Acc), String> {
    let (_bar, progress) = progress::Bar::new();
    let opts = heft::ReadOptions {
        keep_going: args.keep_going,
        progress,
    };
    let (outline, acc) = match &args.file {
        Some(path) => stream::fold_path(path, &opts, fold).map_err(|e| {
            if path.as_os_str() == "-" {
                format!("<stdin>: {e}")
            } else {
                format!("{}: {e}", path.display())
            }
        })?,
        None => {
            if std::io::stdin().is_terminal() {
                return Err("no input: give a dump FILE, or pipe one in (`-` reads stdin)".into());
            }
            stream::fold_stdin(&opts, fold).map_err(|e| format!("<stdin>: {e}"))?
        }
    };
    crate::warn_skipped(&outline.skipped);
    Ok((outline, acc))
}

/// The report, as text or JSON.
pub fn run(args: &InputArgs, model: &cost_cmd::ModelArgs) -> Result<String, String> {
    let resolved = model.resolve()?;
    let cost = match &resolved.model {
        Some(m) => CostFold::new(m, &resolved.settings),
        None => CostFold::by_version(&resolved.settings),
    };
    let fold = (SummaryFold, cost);
    let (outline, (counts, costs)) = fold_input(args, &fold)?;
    let summary = SummaryFold.finish(&outline, counts);
    let totals = fold.1.finish(&costs);
    // The cost fold holds a name per cluster, allocated on the reading threads: the process
    // exits sooner by leaving them to the OS than by freeing them one by one.
    std::mem::forget(costs);
    Ok(match args.output {
        Format::Json => {
            let out = Output {
                summary: &summary,
                cost: Cost {
                    total_bytes: totals.total(),
                    totals: &totals,
                },
            };
            let mut text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
            text.push('\n');
            text
        }
        Format::Text => {
            let mut text = crate::warnings_text(&summary.warnings);
            text.push_str(&summary_text::render(&summary));
            text.push_str(&crate::readiness_text::render(
                &summary.rejected,
                &summary.warming,
            ));
            // Nothing in /clusters output can be priced: its warning says so instead.
            if summary.input.format != heft::model::DocumentKind::ClusterStatuses {
                text.push_str(&summary_text::render_cost(&totals));
            }
            text
        }
    })
}
