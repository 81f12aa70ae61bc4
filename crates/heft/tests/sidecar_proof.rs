//! Sidecar scopes against a real Envoy: what Heft predicts a scope saves is what the real Envoy
//! saves, Heft's scope leaves exactly what istiod's would, and the stats of real traffic give the
//! narrowest scope that keeps every called service.
//!
//! `testdata/capture/sidecar_proof.py` serves the pinned Envoy a full mesh and each scope of it as
//! istiod would send it (its own implementation of Istio's egress semantics), measures `/memory`,
//! and captures `/stats` after real requests. `HEFT_SIDECAR_PROOF_DIR` names a directory it already
//! wrote; without it the test runs it into `target/sidecar-proof` (about 45 s).

mod common;

use heft::cost::{CostModel, Settings};
use heft::scope::Scope;
use heft::sidecar::{narrowest_egress, used_services, WhatIf};
use heft::usage::Usage;
use heft::Dump;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Measured once per test run (both tests read it).
fn proof_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(measure).clone()
}

fn measure() -> PathBuf {
    if let Some(dir) = std::env::var_os("HEFT_SIDECAR_PROOF_DIR") {
        return PathBuf::from(dir);
    }
    let repo = common::repo();
    let out = repo.join("target/sidecar-proof");
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(common::oracle_python())
        .arg(repo.join("testdata/capture/sidecar_proof.py"))
        .arg("--envoy")
        .arg(common::pinned_envoy())
        .arg("--out")
        .arg(&out)
        .status()
        .expect("the sidecar proof driver runs");
    assert!(status.success(), "measuring the sidecar scopes failed");
    out
}

fn point(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("point.json")).unwrap()).unwrap()
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    it.map(str::to_string).collect()
}

#[test]
fn scopes_remove_what_istiod_removes_and_save_what_envoy_saves() {
    let dir = proof_dir();
    let full_dir = dir.join("full");
    let full = Dump::from_path(full_dir.join("config_dump.json.gz")).unwrap();
    let full_point = point(&full_dir);
    let model = CostModel::envoy_1_40();
    let settings = Settings {
        concurrency: full_point["concurrency"].as_u64().unwrap() as u32,
        stats: None,
        ..Settings::default()
    };
    let mut checked = 0;
    for scope_dir in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        if !scope_dir.join("point.json").exists() {
            continue;
        }
        let p = point(&scope_dir);
        let Some(egress) = p["egress"].as_array() else {
            continue;
        };
        let hosts: Vec<&str> = egress.iter().map(|h| h.as_str().unwrap()).collect();
        let id = p["id"].as_str().unwrap();
        let scope = Scope::parse(&hosts, p["workload_namespace"].as_str().unwrap()).unwrap();
        let real = Dump::from_path(scope_dir.join("config_dump.json.gz")).unwrap();
        let ours = scope.apply(&full).dump;

        // What is left is what istiod sent under the scope.
        let dynamic = |d: &Dump| {
            names(
                d.clusters
                    .iter()
                    .filter(|c| c.meta.state != heft::model::State::Static)
                    .map(|c| &*c.name),
            )
        };
        assert_eq!(dynamic(&ours), dynamic(&real), "{id}: clusters");
        assert_eq!(
            names(ours.listeners.iter().map(|l| &*l.name)),
            names(real.listeners.iter().map(|l| &*l.name)),
            "{id}: listeners"
        );
        let vhosts = |d: &Dump| -> BTreeSet<String> {
            d.route_configs
                .iter()
                .flat_map(|rc| {
                    rc.virtual_hosts
                        .iter()
                        .map(move |v| format!("{}/{}", rc.name, v.name))
                })
                .collect()
        };
        assert_eq!(vhosts(&ours), vhosts(&real), "{id}: virtual hosts");
        assert_eq!(
            names(ours.endpoint_configs.iter().map(|la| &*la.cluster_name)),
            names(real.endpoint_configs.iter().map(|la| &*la.cluster_name)),
            "{id}: endpoint configurations"
        );

        // The predicted saving is the real one.
        let what_if = WhatIf::of(&full, &scope, &model, &settings, None);
        let measured = full_point["allocated"].as_u64().unwrap() as f64
            - p["allocated"].as_u64().unwrap() as f64;
        let error = (what_if.saving_bytes as f64 - measured) / measured;
        eprintln!(
            "{id}: predicted saving {:.1} MB, measured {:.1} MB ({:+.1}%)",
            what_if.saving_bytes as f64 / 1e6,
            measured / 1e6,
            error * 100.0
        );
        assert!(
            error.abs() <= 0.10,
            "{id}: predicted saving {} vs measured {measured} ({:+.1}%)",
            what_if.saving_bytes,
            error * 100.0
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} scopes measured");
}

#[test]
fn stats_of_real_traffic_give_the_narrowest_scope() {
    let dir = proof_dir().join("usage");
    let p = point(&dir);
    let called: BTreeSet<String> = p["called"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert!(called.len() >= 3);
    let dump = Dump::from_path(dir.join("config_dump.json.gz")).unwrap();
    let model = CostModel::envoy_1_40();
    for stats in ["stats.json.gz", "stats.prom.gz"] {
        let usage = Usage::from_stats(&std::fs::read(dir.join(stats)).unwrap()).unwrap();
        assert_eq!(used_services(&dump, &usage), called, "{stats}");

        let egress = narrowest_egress(&dump, &usage);
        let hosts: Vec<&str> = egress.iter().map(String::as_str).collect();
        let scope = Scope::parse(&hosts, p["workload_namespace"].as_str().unwrap()).unwrap();
        let scoped = scope.apply(&dump);
        let kept: BTreeSet<String> = scoped.kept_services.keys().cloned().collect();
        assert_eq!(
            kept, called,
            "{stats}: the scope keeps exactly the called services"
        );
        let w = WhatIf::of(&dump, &scope, &model, &Settings::default(), Some(&usage));
        assert!(w.used_but_removed.is_empty());
        assert!(w.saving_bytes > 0);

        // A scope that misses one called service says so.
        let missed = called.iter().next().unwrap();
        let fewer: Vec<&str> = hosts
            .iter()
            .copied()
            .filter(|h| !h.ends_with(&format!("/{missed}")))
            .collect();
        let scope = Scope::parse(&fewer, "ns-0").unwrap();
        let w = WhatIf::of(&dump, &scope, &model, &Settings::default(), Some(&usage));
        assert_eq!(w.used_but_removed, std::slice::from_ref(missed), "{stats}");
    }
}
