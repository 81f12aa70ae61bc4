//! `heft::diff` on real Envoy dumps of one mesh before and after known changes
//! (`testdata/capture/diff_pairs.py`): exactly the clusters and route configurations the change
//! added, removed and changed are found, and the predicted change of the heap follows the
//! measured one. Skips (and says so) without the virtualenvs, unless `HEFT_REQUIRE_ENVOY` is set.

mod common;

use heft::cost::{models, proxy_version, Settings};
use heft::diff::{Diff, Options};
use heft::Dump;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn known_pushes_give_exactly_their_changes_and_their_measured_heap_delta() {
    let test = "known_pushes_give_exactly_their_changes_and_their_measured_heap_delta";
    let (Some(python), Some(envoy)) = (
        common::oracle_python_of(test),
        common::pinned_envoy_of(test),
    ) else {
        return;
    };
    let out = std::env::temp_dir().join(format!("heft-diff-pairs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(python)
        .arg(common::repo().join("testdata/capture/diff_pairs.py"))
        .args(["--envoy", &envoy, "--out"])
        .arg(&out)
        .status()
        .expect("the driver runs");
    assert!(status.success(), "diff_pairs.py failed");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(out.join("expected.json")).unwrap()).unwrap();
    let load = |id: &str| {
        let dump = Dump::from_path(out.join(id).join("config_dump.json.gz")).unwrap();
        let point = common::point_json(&out.join(id));
        (dump, point["allocated"].as_u64().unwrap())
    };
    let (before, before_allocated) = load("before");
    let model = |d: &Dump| models::for_version(proxy_version(d, &Settings::default())).0;
    let mut table = Vec::new();
    for (id, want) in expected.as_object().unwrap() {
        let (after, after_allocated) = load(id);
        let d = Diff::of(
            &before,
            &after,
            model(&before),
            model(&after),
            &Settings::default(),
            &Options::default(),
        );
        let of = |list: &[heft::diff::Resource], kind: &str| -> BTreeSet<String> {
            list.iter()
                .filter(|r| r.kind == kind)
                .map(|r| r.name.clone())
                .collect()
        };
        let changed = |kind: &str| -> BTreeSet<String> {
            d.changed
                .iter()
                .filter(|c| c.kind == kind)
                .map(|c| c.name.clone())
                // The bootstrap's own clusters point at this run's loopback ports.
                .filter(|n| {
                    !matches!(
                        n.as_str(),
                        "xds-grpc" | "sds-grpc" | "prometheus_stats" | "agent"
                    )
                })
                .collect()
        };
        for kind in ["cluster", "route_config"] {
            assert_eq!(
                of(&d.added, kind),
                set(&want[kind]["added"]),
                "{id}: {kind} added"
            );
            assert_eq!(
                of(&d.removed, kind),
                set(&want[kind]["removed"]),
                "{id}: {kind} removed"
            );
            assert_eq!(
                changed(kind),
                set(&want[kind]["changed"]),
                "{id}: {kind} changed"
            );
        }
        // Endpoint configurations come and go with their clusters, and nothing else changes.
        assert_eq!(
            of(&d.added, "endpoint_config"),
            set(&want["cluster"]["added"]),
            "{id}"
        );
        assert_eq!(
            of(&d.removed, "endpoint_config"),
            set(&want["cluster"]["removed"]),
            "{id}"
        );
        if id == "circuit-breakers-off" {
            for c in d
                .changed
                .iter()
                .filter(|c| c.kind == "cluster" && changed("cluster").contains(&c.name))
            {
                assert!(
                    c.fields
                        .iter()
                        .all(|f| f.path.starts_with("circuit_breakers")),
                    "{id}: {} {:?}",
                    c.name,
                    c.fields
                );
            }
        }
        let measured = after_allocated as i64 - before_allocated as i64;
        let predicted = d.after_bytes as i64 - d.before_bytes as i64;
        table.push(format!("| {id} | {measured:+} | {predicted:+} |"));
        // The model's error on each side largely cancels between two configurations this close:
        // within a tenth of the measured change, plus half a percent of the heap.
        let allowed = measured.abs() / 10 + before_allocated as i64 / 200;
        assert!(
            (predicted - measured).abs() <= allowed,
            "{id}: predicted {predicted:+} bytes, measured {measured:+} (allowed ±{allowed})"
        );
    }
    eprintln!(
        "| change | measured delta | predicted delta |\n|---|---|---|\n{}",
        table.join("\n")
    );
    let _ = std::fs::remove_dir_all(&out);
}
