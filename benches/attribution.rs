//! What cost attribution adds to reading (issue 4: it must not slow reading noticeably).
//!
//! `attribution FILE [ROUNDS]` reads FILE with the streaming reader three ways, rounds interleaved
//! so machine noise hits all alike, and prints each way's best wall time and its ratio to the
//! first:
//!
//! - `read + summary`: the reader folding counts only ([`SummaryFold`]);
//! - `read + summary + cost`: what `heft summary` does (counts and [`CostFold`] in one pass);
//! - `model + Estimate::of`: what `heft cost` and `heft top` do (the whole model collected, then
//!   every object priced with its children listed).

use heft::cost::stream::CostFold;
use heft::cost::{CostModel, Estimate, Settings};
use heft::stream;
use heft::summary_types::SummaryFold;
use heft::{Dump, ReadOptions};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: attribution FILE [ROUNDS]");
    let rounds: usize = args.next().map_or(5, |r| r.parse().expect("ROUNDS"));
    let model = CostModel::envoy_1_40();
    let settings = Settings::default();
    let opts = ReadOptions::default();
    let mut best = [Duration::MAX; 3];
    let mut totals = [0u64; 2];
    for _ in 0..rounds {
        let t = Instant::now();
        let (outline, counts) = stream::fold_path(&path, &opts, &SummaryFold).expect("read");
        std::hint::black_box(SummaryFold.finish(&outline, counts));
        best[0] = best[0].min(t.elapsed());

        let t = Instant::now();
        let fold = (SummaryFold, CostFold::new(&model, &settings));
        let (outline, (counts, costs)) = stream::fold_path(&path, &opts, &fold).expect("read");
        std::hint::black_box(SummaryFold.finish(&outline, counts));
        totals[0] = fold.1.finish(&costs).total();
        best[1] = best[1].min(t.elapsed());

        let t = Instant::now();
        let dump = Dump::from_path_with(&path, &opts).expect("read");
        totals[1] = Estimate::of(&dump, &model, &settings).total();
        best[2] = best[2].min(t.elapsed());
    }
    assert_eq!(totals[0], totals[1], "the two cost paths disagree");
    let size = std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "{path}: {size:.1} MB, best of {rounds} rounds, predicted heap {} bytes",
        totals[0]
    );
    println!("| way | seconds | MB/s | vs read + summary |");
    println!("|---|---|---|---|");
    let names = [
        "read + summary",
        "read + summary + cost (heft summary)",
        "model + Estimate::of (heft cost)",
    ];
    for (name, d) in names.iter().zip(best) {
        let s = d.as_secs_f64();
        println!(
            "| {name} | {s:.3} | {:.0} | {:.2}x |",
            size / s,
            s / best[0].as_secs_f64()
        );
    }
}
