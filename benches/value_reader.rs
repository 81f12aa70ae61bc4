//! The baseline Heft is measured against: a `serde_json::Value` reader of the whole dump.
//!
//! It is given its best shot (a file is mapped and parsed with `from_slice`; standard input, `-`,
//! is read whole first, as a `Value` reader must) and does the least useful work a tool would do
//! with a dump: count the clusters.

use std::fs::File;
use std::io::Read;

fn main() {
    let path = std::env::args().nth(1).expect("usage: value-reader FILE|-");
    let value: serde_json::Value = if path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .expect("read stdin");
        serde_json::from_slice(&bytes).expect("parse")
    } else {
        let file = File::open(&path).expect("open");
        // SAFETY: read-only private mapping of a file nothing else writes during the benchmark.
        let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
        serde_json::from_slice(&map).expect("parse")
    };
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
