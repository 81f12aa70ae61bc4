//! The baseline Heft is measured against: a `serde_json::Value` reader of the whole dump.
//!
//! It is given its best shot (the file is mapped, parsed with `from_slice`) and does the least
//! useful work a tool would do with a dump: count the clusters.

use std::fs::File;

fn main() {
    let path = std::env::args().nth(1).expect("usage: value-reader FILE");
    let file = File::open(&path).expect("open");
    // SAFETY: read-only private mapping of a file nothing else writes during the benchmark.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    let value: serde_json::Value = serde_json::from_slice(&map).expect("parse");
    let mut clusters = 0;
    for config in value["configs"].as_array().into_iter().flatten() {
        for key in [
            "static_clusters",
            "dynamic_active_clusters",
            "dynamic_warming_clusters",
        ] {
            clusters += config[key].as_array().map_or(0, Vec::len);
        }
    }
    println!("{clusters}");
}
