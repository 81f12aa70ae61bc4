//! `heft trace` as users run it, on the committed real captures: flags, the text report, the
//! documented JSON (docs/trace.md) and exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn heft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heft"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

const SIDECAR: &str = "testdata/real/sidecar/config_dump.json.gz";
const GATEWAY: &str = "testdata/real/gateway/config_dump.json";

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn trace_json_has_the_documented_stable_fields() {
    let v = json_of(&heft(&[
        "trace",
        SIDECAR,
        "--port",
        "9080",
        "--address",
        "10.96.0.10",
        "--host",
        "ratings:9080",
        "--path",
        "/ratings/7",
        "-o",
        "json",
    ]));
    for path in [
        "/connection/destination_port",
        "/connection/transport_protocol",
        "/listener/accepted_by",
        "/listener/selected",
        "/listener/handed_off",
        "/listener/candidates/0/verdict",
        "/filter_chain/selected_index",
        "/filter_chain/certain",
        "/network/terminal",
        "/http/route_config/name",
        "/http/request/path",
        "/http/virtual_host/selected",
        "/http/virtual_host/match_kind",
        "/http/route/selected_index",
        "/http/route/candidates/0/reasons",
        "/http/action/kind",
        "/upstreams/0/endpoints",
        "/upstreams/0/priorities",
        "/outcome/kind",
        "/outcome/certain",
        "/outcome/clusters",
        "/notes",
    ] {
        assert!(v.pointer(path).is_some(), "missing {path}");
    }
    // scenario_sidecar.py: /ratings/<digits> goes to ratings v1 by the regex route, after the
    // health path, the canary query and the regex are tried in order.
    assert_eq!(v["http"]["route"]["selected_name"], "ratings-by-id");
    assert_eq!(
        v["outcome"]["clusters"][0],
        "outbound|9080|v1|ratings.default.svc.cluster.local"
    );
    let earlier = v["http"]["route"]["candidates"].as_array().unwrap();
    assert_eq!(earlier.len(), 3);
    assert!(earlier[..2].iter().all(|c| c["verdict"] == "rejected"));
}

#[test]
fn the_text_report_walks_every_step() {
    let out = heft(&[
        "trace",
        GATEWAY,
        "--port",
        "8443",
        "--sni",
        "bookinfo.example.com",
        "--path",
        "/productpage",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for step in [
        "connection",
        "listener",
        "filter chain",
        "network",
        "request",
        "route config",
        "virtual host",
        "route",
        "action",
        "upstream",
        "outcome",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(step)),
            "no {step} line in:\n{text}"
        );
    }
    assert!(text.contains("server name bookinfo.example.com"));
}

#[test]
fn direct_responses_and_redirects_are_reported_with_their_status() {
    // scenario_sidecar.py: ratings' /ratings/health answers 200 directly; details' /old-details
    // redirects with 301.
    let health = json_of(&heft(&[
        "trace",
        SIDECAR,
        "--port",
        "9080",
        "--host",
        "ratings",
        "--path",
        "/ratings/health",
        "-o",
        "json",
    ]));
    assert_eq!(health["outcome"]["kind"], "direct_response");
    assert_eq!(health["outcome"]["status"], 200);
    let moved = json_of(&heft(&[
        "trace",
        SIDECAR,
        "--port",
        "9080",
        "--host",
        "details",
        "--path",
        "/old-details",
        "-o",
        "json",
    ]));
    assert_eq!(moved["outcome"]["kind"], "redirect");
    assert_eq!(moved["outcome"]["status"], 301);
    assert_eq!(
        moved["http"]["action"]["location"],
        "http://details/details"
    );
}

#[test]
fn bad_flags_and_bad_input_exit_2() {
    assert_eq!(heft(&["trace", GATEWAY]).status.code(), Some(2));
    assert_eq!(
        heft(&["trace", GATEWAY, "--port", "1", "--source", "nope"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        heft(&["trace", GATEWAY, "--port", "1", "--tcp", "--host", "x"])
            .status
            .code(),
        Some(2)
    );
    let missing = heft(&["trace", "no/such/dump.json", "--port", "1"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.starts_with("heft: error: ") && err.contains("no/such/dump.json"));
}

#[test]
fn a_port_no_listener_takes_is_refused() {
    let v = json_of(&heft(&["trace", GATEWAY, "--port", "9999", "-o", "json"]));
    assert_eq!(v["outcome"]["kind"], "no_listener");
    assert!(v["filter_chain"].is_null());
}
