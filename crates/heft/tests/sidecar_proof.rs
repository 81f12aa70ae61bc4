//! Sidecar scopes against real Envoys: what Heft predicts a scope saves is what the real Envoy
//! saves (within ±5%, on every Envoy version the project installs), Heft's scope leaves exactly
//! what istiod's would, and the stats of real traffic give the narrowest scope that keeps every
//! called service.
//!
//! `testdata/capture/sidecar_proof.py` serves an Envoy a full mesh and each scope of it as istiod
//! would send it (its own implementation of Istio's egress semantics), measures `/memory`, and
//! captures `/stats` after real requests. Every version is measured under istio-agent's bootstrap
//! (the sidecars Istio runs); the pinned one also under Envoy's defaults, with the usage phase.
//! `HEFT_SIDECAR_PROOF_DIR` names a directory it already wrote (`<dir>/<version>/<bootstrap>`);
//! without it the test measures into `target/sidecar-proof` (about 40 s per version and bootstrap).
//! Without the virtualenvs the test says so and passes, unless `HEFT_REQUIRE_ENVOY` is set.

mod common;

use heft::cost::{models, proxy_version, ConcurrencySource, Settings};
use heft::scope::Scope;
use heft::sidecar::{narrowest_egress, used_services, WhatIf};
use heft::usage::Usage;
use heft::Dump;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOLERANCE: f64 = 0.05;
const VERSIONS: [&str; 5] = ["1.36.4", "1.37.0", "1.38.3", "1.39.3", "1.40.0"];
const PINNED: &str = "1.40.0";

/// The scopes measured on Envoy `version` under `bootstrap` (`envoy` or `istio-agent`), or `None`
/// when that Envoy is not installed. The pinned Envoy's default-bootstrap run also holds `usage/`.
fn measure(version: &str, bootstrap: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HEFT_SIDECAR_PROOF_DIR") {
        let dir = PathBuf::from(dir).join(version).join(bootstrap);
        return dir.exists().then_some(dir);
    }
    let python = common::oracle_python_of("sidecar_proof")?;
    let envoy = common::envoy_of("sidecar_proof", version)?;
    let repo = common::repo();
    let out = repo
        .join("target/sidecar-proof")
        .join(version)
        .join(bootstrap);
    // Measured afresh every run: nothing from an earlier run may count.
    let _ = std::fs::remove_dir_all(&out);
    let usage = version == PINNED && bootstrap == "envoy";
    let status = Command::new(python)
        .arg(repo.join("testdata/capture/sidecar_proof.py"))
        .arg("--envoy")
        .arg(envoy)
        .args(["--bootstrap", bootstrap])
        .args((!usage).then_some("--no-usage"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("the sidecar proof driver runs");
    assert!(
        status.success(),
        "measuring the sidecar scopes on Envoy {version} ({bootstrap}) failed"
    );
    Some(out)
}

/// The pinned Envoy under its default bootstrap, measured once per test run (both tests read it).
fn pinned() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| measure(PINNED, "envoy")).clone()
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    it.map(str::to_string).collect()
}

/// Checks every scope measured in `dir` (Envoy `version` under `bootstrap`): what it leaves, and
/// its predicted saving against the measured one. Returns how many scopes were checked.
fn check_scopes(
    version: &str,
    bootstrap: &str,
    dir: &Path,
    comparisons: &mut common::Comparisons,
) -> usize {
    let full_dir = dir.join("full");
    let full = Dump::from_path(full_dir.join("config_dump.json.gz")).unwrap();
    let full_point = common::point_json(&full_dir);
    // The model Heft picks from the dump's own Envoy version; the bootstrap's stats matcher and
    // deferrals are read from the dump.
    let settings = Settings {
        concurrency: full_point["concurrency"].as_u64().unwrap() as u32,
        concurrency_source: ConcurrencySource::Given,
        ..Settings::default()
    };
    let (model, used) = models::for_version(proxy_version(&full, &settings));
    assert_eq!(
        used.matched,
        heft::cost::Match::Exact,
        "Envoy {version}: {}",
        used.describe()
    );
    let mut checked = 0;
    for scope_dir in common::point_dirs(dir) {
        let p = common::point_json(&scope_dir);
        let Some(egress) = p["egress"].as_array() else {
            continue;
        };
        let hosts: Vec<&str> = egress.iter().map(|h| h.as_str().unwrap()).collect();
        let id = format!("{version} {bootstrap} {}", p["id"].as_str().unwrap());
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
        let what_if = WhatIf::of(&full, &scope, model, &settings, None);
        let measured = full_point["allocated"].as_u64().unwrap() as f64
            - p["allocated"].as_u64().unwrap() as f64;
        comparisons.record(
            &format!("{version} | {bootstrap} | {}", p["id"].as_str().unwrap()),
            what_if.saving_bytes as f64,
            measured,
            TOLERANCE,
        );
        checked += 1;
    }
    checked
}

#[test]
fn scopes_remove_what_istiod_removes_and_save_what_envoy_saves() {
    let mut comparisons = common::Comparisons::default();
    for version in VERSIONS {
        let mut runs = vec![("istio-agent", measure(version, "istio-agent"))];
        if version == PINNED {
            runs.push(("envoy", pinned()));
        }
        for (bootstrap, dir) in runs {
            let Some(dir) = dir else { continue };
            let checked = check_scopes(version, bootstrap, &dir, &mut comparisons);
            assert!(
                checked >= 3,
                "{version} {bootstrap}: only {checked} scopes measured"
            );
        }
    }
    eprintln!(
        "| Envoy | bootstrap | scope | predicted saving | measured | error |\n|---|---|---|---|---|---|\n{}",
        comparisons.rows.join("\n")
    );
    assert!(
        comparisons.failures.is_empty(),
        "predicted savings off by more than ±5%:\n{}",
        comparisons.failures.join("\n")
    );
}

#[test]
fn stats_of_real_traffic_give_the_narrowest_scope() {
    let Some(dir) = pinned() else { return };
    let dir = dir.join("usage");
    let p = common::point_json(&dir);
    let called: BTreeSet<String> = p["called"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert!(called.len() >= 3);
    let dump = Dump::from_path(dir.join("config_dump.json.gz")).unwrap();
    let (model, _) = models::for_version(proxy_version(&dump, &Settings::default()));
    for stats in ["stats.json.gz", "stats.prom.gz"] {
        let usage = Usage::from_stats(&std::fs::read(dir.join(stats)).unwrap()).unwrap();
        let used: BTreeSet<String> = used_services(&dump, &usage).into_keys().collect();
        assert_eq!(used, called, "{stats}");

        let egress = narrowest_egress(&dump, &usage).expect("the stats show calls");
        let hosts: Vec<&str> = egress.iter().map(String::as_str).collect();
        let scope = Scope::parse(&hosts, p["workload_namespace"].as_str().unwrap()).unwrap();
        let scoped = scope.apply(&dump);
        let kept: BTreeSet<String> = scoped.kept_services.keys().cloned().collect();
        assert_eq!(
            kept, called,
            "{stats}: the scope keeps exactly the called services"
        );
        let w = WhatIf::of(&dump, &scope, model, &Settings::default(), Some(&usage));
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
        let w = WhatIf::of(&dump, &scope, model, &Settings::default(), Some(&usage));
        let cut: Vec<&str> = w.used_but_removed.iter().map(|c| &*c.service).collect();
        assert_eq!(cut, [missed.as_str()], "{stats}");
        assert!(
            w.used_but_removed[0].counter.value > 0,
            "{stats}: the counter that shows the call is given"
        );
    }
}
