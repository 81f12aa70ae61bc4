//! `heft check` on the real captures: what each finds, the stable JSON, `--fail-on` as a CI
//! gate, and certificates judged at a given time. (What Envoy does about each predicted finding
//! is checked in crates/heft/tests/trace_envoy.rs, on a real Envoy.)

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

const REGISTRY_ONLY: &str = "testdata/real/registry-only/config_dump.json.gz";
/// An hour after the captures were made: their certificates (valid a day) are still valid.
const CAPTURED: &str = "2026-11-24T19:00:00Z";

fn findings(args: &[&str]) -> Vec<Value> {
    let out = heft(args, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"].as_array().unwrap().clone()
}

fn codes(f: &[Value]) -> BTreeSet<String> {
    f.iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn named(f: &[Value], code: &str) -> Vec<String> {
    f.iter()
        .filter(|f| f["code"] == code)
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_sidecar_capture_shows_what_its_scenario_broke() {
    let f = findings(&["check", "-o", "json", "--at", CAPTURED, SIDECAR]);
    for finding in &f {
        let keys: BTreeSet<&str> = finding.as_object().unwrap().keys().map(|k| &**k).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["severity", "code", "kind", "name", "message"])
        );
    }
    assert_eq!(named(&f, "rejected"), ["127.0.0.1_15001"]);
    assert_eq!(
        named(&f, "warming"),
        [
            "outbound|8080||checkout.shop.svc.cluster.local",
            "file-cert:/etc/certs/cert-chain.pem~/etc/certs/key.pem",
            "file-root:/etc/certs/root-cert.pem"
        ]
    );
    // reviews v3's only endpoint is reported UNHEALTHY (testdata/README.md).
    assert_eq!(
        named(&f, "all-unhealthy"),
        ["outbound|9080|v3|reviews.default.svc.cluster.local"]
    );
    // The capture's routes go to subsets only: the plain clusters serve nothing (as why says).
    let why: Value =
        serde_json::from_slice(&heft(&["why", "-o", "json", SIDECAR], None).stdout).unwrap();
    assert_eq!(
        named(&f, "unused-cluster").len() as u64,
        why["dead_weight"]["unreferenced_clusters"]["count"]
            .as_u64()
            .unwrap()
    );
    // The certificates were issued for a day: within 30 days of expiry an hour after capture.
    assert_eq!(named(&f, "cert-expiring"), ["ROOTCA", "default", "default"]);
    // Nothing the scenario did not make.
    for clean in [
        "missing-cluster",
        "shadowed-route",
        "duplicate-domain",
        "missing-secret",
        "no-endpoints",
        "cert-expired",
    ] {
        assert!(named(&f, clean).is_empty(), "{clean}");
    }
    // Most severe first.
    let severities: Vec<&str> = f.iter().map(|f| f["severity"].as_str().unwrap()).collect();
    let rank = |s: &str| {
        ["error", "warning", "info"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    assert!(
        severities.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
        "{severities:?}"
    );
}

#[test]
fn the_clean_captures_have_no_broken_routing() {
    for dump in [GATEWAY, REGISTRY_ONLY] {
        let f = findings(&["check", "-o", "json", "--at", CAPTURED, dump]);
        let broken: BTreeSet<String> = codes(&f)
            .into_iter()
            .filter(|c| {
                !matches!(
                    c.as_str(),
                    "unused-cluster" | "cert-expiring" | "warming" | "all-unhealthy"
                )
            })
            .collect();
        assert!(broken.is_empty(), "{dump}: {broken:?}");
    }
}

#[test]
fn certificates_are_judged_at_the_time_asked_for() {
    let later = findings(&[
        "check",
        "-o",
        "json",
        "--at",
        "2027-01-01T00:00:00Z",
        GATEWAY,
    ]);
    assert_eq!(
        named(&later, "cert-expired").len(),
        7,
        "4 secrets, 7 certificates"
    );
    assert!(named(&later, "cert-expiring").is_empty());
    let f = findings(&["check", "-o", "json", "--at", CAPTURED, GATEWAY]);
    assert!(named(&f, "cert-expired").is_empty());
    assert_eq!(named(&f, "cert-expiring").len(), 7);
    let narrow = findings(&[
        "check", "-o", "json", "--at", CAPTURED, "--within", "0", GATEWAY,
    ]);
    assert!(named(&narrow, "cert-expiring").is_empty());
    let err = heft(&["check", "--at", "tomorrow", GATEWAY], None);
    assert_eq!(err.status.code(), Some(2));
}

#[test]
fn fail_on_gates_ci_with_its_own_exit_code() {
    let code = |args: &[&str]| heft(args, None).status.code();
    assert_eq!(
        code(&["check", "--at", CAPTURED, SIDECAR]),
        Some(0),
        "no gate, no failure"
    );
    assert_eq!(
        code(&["check", "--at", CAPTURED, "--fail-on", "error", SIDECAR]),
        Some(1)
    );
    assert_eq!(
        code(&["check", "--at", CAPTURED, "--fail-on", "error", GATEWAY]),
        Some(0)
    );
    assert_eq!(
        code(&["check", "--at", CAPTURED, "--fail-on", "warning", GATEWAY]),
        Some(1)
    );
    assert_eq!(
        code(&[
            "check",
            "--at",
            CAPTURED,
            "--within",
            "0",
            "--fail-on",
            "warning",
            GATEWAY
        ]),
        Some(0)
    );
    // Bad input stays 2, gate or not.
    assert_eq!(
        code(&["check", "--fail-on", "error", "no-such-file"]),
        Some(2)
    );
    let text = String::from_utf8(heft(&["check", "--at", CAPTURED, SIDECAR], None).stdout).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("error    rejected"),
        "{text}"
    );
    assert!(
        text.contains("finding(s): 1 error(s), 7 warning(s)"),
        "{text}"
    );
}
