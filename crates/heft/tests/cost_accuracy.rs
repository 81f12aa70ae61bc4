//! The shipped cost model against a real Envoy, on configurations it was not fitted to.
//!
//! The holdout design (`testdata/capture/calibrate.py --design holdout`: sidecar-shaped meshes of
//! 500 to 10,000 services at concurrency 2 and 4, a gateway, a Knative-shaped mesh, Istio's stats
//! inclusion list) is served to the project's pinned Envoy, and each point's measured `/memory`
//! `allocated` is compared with Heft's prediction from the config dump Envoy printed.
//!
//! Measuring takes a few minutes. `HEFT_HOLDOUT_DIR` names a directory already measured by the
//! driver (the test script measures once and points here); without it the test measures into
//! `target/holdout`.

mod common;

use heft::cost::{CostModel, Estimate, Settings};
use heft::Dump;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOLERANCE: f64 = 0.10;

fn measured_points() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEFT_HOLDOUT_DIR") {
        return PathBuf::from(dir);
    }
    let repo = common::repo();
    let out = repo.join("target/holdout");
    // Measured afresh every run: nothing left from an earlier design may count.
    let _ = std::fs::remove_dir_all(&out);
    let python = common::oracle_python();
    let envoy = common::pinned_envoy();
    let status = Command::new(python)
        .arg(repo.join("testdata/capture/calibrate.py"))
        .args([
            "--envoy", &envoy, "--design", "holdout", "--jobs", "2", "--out",
        ])
        .arg(&out)
        .status()
        .expect("the calibration driver runs");
    assert!(status.success(), "measuring the holdout design failed");
    out
}

fn point_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("point.json").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn predictions_are_within_ten_percent_of_real_envoy_on_unseen_configs() {
    let dir = measured_points();
    let model = CostModel::envoy_1_40();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let (mut concurrencies, mut max_services) = (Vec::new(), 0);
    for point in point_dirs(&dir) {
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(point.join("point.json")).unwrap())
                .unwrap();
        assert_eq!(meta["set"], "holdout", "{}", point.display());
        let id = meta["id"].as_str().unwrap().to_string();
        let concurrency = meta["concurrency"].as_u64().unwrap() as u32;
        let measured = meta["allocated"].as_u64().unwrap();
        let services = meta["services"].as_u64().unwrap_or(0);
        concurrencies.push(concurrency);
        max_services = max_services.max(services);
        let dump = Dump::from_path(point.join("config_dump.json.gz"))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let settings = Settings {
            concurrency,
            stats: None,
            ..Settings::default()
        };
        let predicted = Estimate::of(&dump, &model, &settings).total();
        let error = (predicted as f64 - measured as f64) / measured as f64;
        let row = format!(
            "| {id} | {services} | {concurrency} | {} | {:.1} MB | {:.1} MB | {:+.1}% |",
            meta["stats"].as_str().unwrap_or("?"),
            predicted as f64 / 1e6,
            measured as f64 / 1e6,
            error * 100.0
        );
        if error.abs() > TOLERANCE {
            failures.push(row.clone());
        }
        rows.push(row);
    }
    let table = format!(
        "| config | services | concurrency | stats | predicted | measured | error |\n\
         |---|---|---|---|---|---|---|\n{}\n",
        rows.join("\n")
    );
    eprintln!("{table}");
    std::fs::write(dir.join("accuracy.md"), &table).unwrap();
    assert!(rows.len() >= 6, "only {} holdout points", rows.len());
    assert!(concurrencies.contains(&2) && concurrencies.contains(&4));
    assert!(
        max_services >= 8000,
        "largest holdout mesh: {max_services} services"
    );
    assert!(
        failures.is_empty(),
        "off by more than ±10%:\n{}",
        failures.join("\n")
    );
}
