//! Advice a user can apply safely, on real captures: Sidecar scopes only from stats that show
//! traffic, with the evidence printed; the outbound traffic policy read from the dump; manifests
//! that select the workload and pass Istio's own CRD schema; what incomplete input cannot show;
//! and the levers besides a Sidecar.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Output;

const REGISTRY_ONLY: &str = "testdata/real/registry-only/config_dump.json.gz";
const NO_EDS: &str = "testdata/real/registry-only/config_dump_no_eds.json.gz";
const CLUSTER_STATUSES: &str = "testdata/real/sidecar/clusters.json";
const SIDECAR_STATS: &str = "testdata/real/sidecar/stats.json.gz";
/// A real Envoy 1.40 sidecar of 1,200 services after real requests to 150 of them, Envoy's
/// default stats (`testdata/capture/calibrate.py`, holdout point `istio-traffic-1200-defaults-c2`).
const TRAFFIC: &str = "testdata/calibration/envoy-1.40.0/holdout/istio-traffic-1200-defaults-c2";
/// The same under Istio's stats inclusion list: the calls leave no cluster counter.
const TRAFFIC_ISTIO_LIST: &str =
    "testdata/calibration/envoy-1.40.0/holdout/istio-traffic-1200-agent-c2";

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_str(&ok(&heft(args, None))).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = heft(args, None);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn traffic(file: &str) -> String {
    format!("{TRAFFIC}/{file}")
}

fn called_hosts() -> BTreeSet<String> {
    let point: Value =
        serde_json::from_slice(&std::fs::read(repo().join(traffic("point.json"))).unwrap())
            .unwrap();
    point["traffic_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_scope_from_real_traffic_keeps_what_was_called_and_shows_the_counters() {
    let (dump, stats) = (traffic("config_dump.json.zst"), traffic("stats.json.zst"));
    let v = json_of(&["sidecar", "-o", "json", &dump, "--stats", &stats]);
    let called = called_hosts();
    assert_eq!(called.len(), 150);
    let evidence = &v["evidence"];
    let kept: BTreeSet<String> = evidence["called"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, called, "exactly the services the requests went to");
    for c in evidence["called"].as_array().unwrap() {
        let name = c["counter"]["name"].as_str().unwrap();
        assert!(
            name.contains(c["service"].as_str().unwrap()) && name.starts_with("cluster.outbound|"),
            "{c}"
        );
        assert!(c["counter"]["value"].as_u64().unwrap() > 0, "{c}");
    }
    let window = evidence["window_seconds"].as_u64().unwrap();
    assert!(
        window > 0 && window < 600,
        "the point's Envoy ran {window} s"
    );
    assert_eq!(v["kept_services"], 150);
    assert_eq!(v["used_but_removed"], json!([]));
    assert_eq!(v["outbound_policy"]["mode"], "ALLOW_ANY");
    assert_eq!(v["unmatched_hosts"], json!([]));

    let text = ok(&heft(&["sidecar", &dump, "--stats", &stats], None));
    for says in [
        "evidence: json stats over the last",
        "150 service(s) called",
        "kept svc-",
        "upstream_",
        "… and 130 more",
        "outside the scope: outbound traffic policy ALLOW_ANY",
        "warning: the stats cover only",
        "(150 in all",
    ] {
        assert!(text.contains(says), "{says}:\n{text}");
    }
}

#[test]
fn a_given_scope_that_cuts_called_services_names_them_and_their_counters() {
    let (dump, stats) = (traffic("config_dump.json.zst"), traffic("stats.json.zst"));
    // The workload lives in `default`, which has no services: `./*` keeps none of the 150.
    let v = json_of(&[
        "sidecar", "-o", "json", &dump, "--stats", &stats, "--egress", "./*",
    ]);
    let cut: BTreeSet<String> = v["used_but_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cut, called_hosts());
    assert_eq!(v["unmatched_hosts"], json!(["./*"]));
    let text = ok(&heft(
        &["sidecar", &dump, "--stats", &stats, "--egress", "./*"],
        None,
    ));
    assert!(text.contains("warning: the scope cuts 150 service(s) the stats show called"));
    assert!(text.contains("cut svc-0.ns-0.svc.cluster.local: cluster.outbound|8080||svc-0.ns-0.svc.cluster.local.upstream_"));
    assert!(text.contains("egress host ./* selects no service in this dump"));
}

#[test]
fn stats_that_cannot_show_calls_derive_nothing() {
    // Real requests went out, but Istio's inclusion list keeps no cluster counter and the
    // proxy has no Istio stats filter: nothing shows them.
    let dump = format!("{TRAFFIC_ISTIO_LIST}/config_dump.json.zst");
    let stats = format!("{TRAFFIC_ISTIO_LIST}/stats.json.zst");
    let err = fails(&["sidecar", &dump, "--stats", &stats]);
    assert!(err.contains("no call to any service"), "{err}");
    assert!(err.contains("inclusion list"), "{err}");
    // The idle sidecar capture: counters, all zero.
    let err = fails(&["sidecar", SIDECAR, "--stats", SIDECAR_STATS]);
    assert!(err.contains("service counters read, none above 0"), "{err}");
}

#[test]
fn the_outbound_traffic_policy_comes_from_the_dump() {
    let allow = json_of(&["sidecar", "-o", "json", SIDECAR, "--egress", "./*"]);
    assert_eq!(allow["outbound_policy"]["mode"], "ALLOW_ANY");
    assert!(allow["outbound_policy"]["evidence"]
        .as_str()
        .unwrap()
        .contains("PassthroughCluster"));
    let block = json_of(&["sidecar", "-o", "json", REGISTRY_ONLY, "--egress", "./*"]);
    assert_eq!(block["outbound_policy"]["mode"], "REGISTRY_ONLY");
    assert!(block["outbound_policy"]["evidence"]
        .as_str()
        .unwrap()
        .contains("BlackHoleCluster"));
    let text = ok(&heft(&["sidecar", REGISTRY_ONLY, "--egress", "./*"], None));
    assert!(text.contains("REGISTRY_ONLY: calls to them fail"), "{text}");
    // The gateway has no virtualOutbound and no catch-all virtual host.
    let gw = json_of(&["sidecar", "-o", "json", GATEWAY, "--egress", "./*"]);
    assert_eq!(gw["outbound_policy"]["mode"], "UNKNOWN");
}

#[test]
fn egress_hosts_that_select_nothing_are_warned_about() {
    let v = json_of(&[
        "sidecar",
        "-o",
        "json",
        SIDECAR,
        "--egress",
        "./*",
        "--egress",
        "nosuchns/*",
        "--egress",
        "shop/nosuch.shop.svc.cluster.local",
        "--egress",
        "~/*",
    ]);
    assert_eq!(
        v["unmatched_hosts"],
        json!(["nosuchns/*", "shop/nosuch.shop.svc.cluster.local"])
    );
    let out = heft(
        &[
            "sidecar",
            SIDECAR,
            "--egress",
            "./*",
            "--egress",
            "nosuchns/*",
            "--emit",
            "yaml",
        ],
        None,
    );
    let yaml = ok(&out);
    assert!(yaml.contains("# warning: egress host nosuchns/* selects no service"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuchns/*"));
}

/// The `v1` OpenAPI schema of Istio's Sidecar CRD, as istio/api publishes it.
fn sidecar_schema() -> jsonschema::Validator {
    let crd: Value = yaml_serde::from_str(
        &std::fs::read_to_string(repo().join("testdata/istio-api/sidecar-crd.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(crd["spec"]["names"]["kind"], "Sidecar");
    let v1 = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1" && v["served"] == true)
        .expect("the CRD serves v1");
    jsonschema::validator_for(&v1["schema"]["openAPIV3Schema"]).unwrap()
}

/// Parses an emitted manifest and checks it against the CRD: the schema for `spec`, and what the
/// API server checks beside it (group/version, kind, a DNS-1123 name, no wildcard in labels).
fn valid_manifest(text: &str) -> Value {
    let m: Value = yaml_serde::from_str(text).unwrap();
    assert_eq!(m["apiVersion"], "networking.istio.io/v1");
    assert_eq!(m["kind"], "Sidecar");
    let name = m["metadata"]["name"].as_str().unwrap();
    assert!(
        !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && name.as_bytes()[0].is_ascii_alphanumeric(),
        "{name}"
    );
    assert!(m["metadata"]["namespace"].as_str().is_some());
    let object = json!({"spec": m["spec"]});
    let errors: Vec<String> = sidecar_schema()
        .iter_errors(&object)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{text}");
    if let Some(labels) = m["spec"]["workloadSelector"]["labels"].as_object() {
        assert!(labels.values().all(|v| !v.as_str().unwrap().contains('*')));
    }
    m
}

#[test]
fn manifests_select_the_workload_by_its_labels_or_say_they_cannot() {
    // A labelled node: app and version.
    let m = valid_manifest(&ok(&heft(
        &["sidecar", SIDECAR, "--egress", "./*", "--emit", "yaml"],
        None,
    )));
    assert_eq!(
        m["spec"]["workloadSelector"]["labels"],
        json!({"app": "productpage", "version": "v1"})
    );
    assert_eq!(m["metadata"]["name"], "productpage-v1");
    // Derived from real traffic: every kept service is listed.
    let (dump, stats) = (traffic("config_dump.json.zst"), traffic("stats.json.zst"));
    let m = valid_manifest(&ok(&heft(
        &["sidecar", &dump, "--stats", &stats, "--emit", "yaml"],
        None,
    )));
    assert_eq!(
        m["spec"]["egress"][0]["hosts"].as_array().unwrap().len(),
        150
    );
    assert_eq!(
        m["spec"]["workloadSelector"]["labels"],
        json!({"app": "mesh", "version": "v1"})
    );

    // An unlabelled node: refused, unless told.
    let err = fails(&[
        "sidecar",
        REGISTRY_ONLY,
        "--egress",
        "./*",
        "--emit",
        "yaml",
    ]);
    assert!(err.contains("no app or version label"), "{err}");
    assert!(err.contains("--namespace-wide"), "{err}");
    let text = ok(&heft(
        &[
            "sidecar",
            REGISTRY_ONLY,
            "--egress",
            "./*",
            "--emit",
            "yaml",
            "--namespace-wide",
        ],
        None,
    ));
    let m = valid_manifest(&text);
    assert!(m["spec"].get("workloadSelector").is_none());
    assert_eq!(m["metadata"]["name"], "default");
    assert_eq!(m["metadata"]["namespace"], "shop");
    assert!(text.contains("applies to every workload of the namespace"));
    let m = valid_manifest(&ok(&heft(
        &[
            "sidecar",
            REGISTRY_ONLY,
            "--egress",
            "./*",
            "--emit",
            "yaml",
            "--selector",
            "app=ratings",
            "--selector",
            "tier=vm",
        ],
        None,
    )));
    assert_eq!(
        m["spec"]["workloadSelector"]["labels"],
        json!({"app": "ratings", "tier": "vm"})
    );
    assert_eq!(m["metadata"]["name"], "ratings");
    let err = fails(&[
        "sidecar",
        REGISTRY_ONLY,
        "--egress",
        "./*",
        "--emit",
        "yaml",
        "--selector",
        "app=rat*",
    ]);
    assert!(err.contains("wildcard"), "{err}");
}

#[test]
fn the_schema_check_itself_rejects_what_istio_rejects() {
    let bad = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: x, namespace: y}\nspec:\n  egress: [{hosts: 5}]\n";
    let m: Value = yaml_serde::from_str(bad).unwrap();
    assert!(!sidecar_schema().is_valid(&json!({"spec": m["spec"]})));
}

#[test]
fn incomplete_inputs_say_what_they_lack_and_counts_agree() {
    // Without ?include_eds: the EDS clusters' endpoints are missing.
    let s = json_of(&["summary", "-o", "json", NO_EDS]);
    let codes = |v: &Value| -> Vec<String> {
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(codes(&s), ["no-endpoints"]);
    let w = json_of(&["why", "-o", "json", NO_EDS]);
    assert_eq!(codes(&w), ["no-endpoints"]);
    assert_eq!(
        codes(&json_of(&["cost", "-o", "json", NO_EDS])),
        ["no-endpoints"]
    );
    assert_eq!(
        codes(&json_of(&["top", "-o", "json", NO_EDS])),
        ["no-endpoints"]
    );
    assert!(ok(&heft(&["why", NO_EDS], None))
        .starts_with("warning: 24 EDS clusters and no endpoint configuration"));
    // The full dump of the same proxy has none, and prices more.
    let full = json_of(&["summary", "-o", "json", REGISTRY_ONLY]);
    assert_eq!(codes(&full), Vec::<String>::new());
    assert!(full["cost"]["total_bytes"].as_u64() > s["cost"]["total_bytes"].as_u64());

    // istioctl's clusters-only array: no bootstrap, clusters only.
    let array = heft(&["clusters", "--istioctl", "-o", "json", SIDECAR], None);
    let array = ok(&array);
    let s: Value = serde_json::from_str(&ok(&heft(
        &["summary", "-o", "json", "-"],
        Some(array.as_bytes()),
    )))
    .unwrap();
    assert_eq!(codes(&s), ["no-endpoints", "no-bootstrap", "partial-dump"]);
    let w: Value = serde_json::from_str(&ok(&heft(
        &["why", "-o", "json", "-"],
        Some(array.as_bytes()),
    )))
    .unwrap();
    assert_eq!(codes(&w), codes(&s));

    // Counts agree between summary and why on every real input.
    for (name, input) in [
        ("sidecar", std::fs::read(repo().join(SIDECAR)).unwrap()),
        ("gateway", std::fs::read(repo().join(GATEWAY)).unwrap()),
        ("no eds", std::fs::read(repo().join(NO_EDS)).unwrap()),
        ("clusters array", array.clone().into_bytes()),
    ] {
        let s: Value =
            serde_json::from_str(&ok(&heft(&["summary", "-o", "json", "-"], Some(&input))))
                .unwrap();
        let w: Value =
            serde_json::from_str(&ok(&heft(&["why", "-o", "json", "-"], Some(&input)))).unwrap();
        assert_eq!(
            s["endpoints"]["total"], w["multipliers"]["endpoints"]["count"],
            "{name}: endpoints"
        );
        assert_eq!(s["cost"]["total_bytes"], w["total_bytes"], "{name}: heap");
    }

    // /clusters?format=json: counted by summary, refused by what prices.
    let s = json_of(&["summary", "-o", "json", CLUSTER_STATUSES]);
    assert_eq!(codes(&s), ["cluster-statuses"]);
    assert_eq!(s["clusters"]["total"], 34);
    let text = ok(&heft(&["summary", CLUSTER_STATUSES], None));
    assert!(text.starts_with("warning: this is Envoy's /clusters?format=json"));
    assert!(!text.contains("Predicted"), "{text}");
    for cmd in ["why", "cost", "top"] {
        let err = fails(&[cmd, CLUSTER_STATUSES]);
        assert!(err.contains("/clusters?format=json"), "{cmd}: {err}");
    }
    let err = fails(&["sidecar", CLUSTER_STATUSES, "--egress", "./*"]);
    assert!(err.contains("not their configuration"), "{err}");
}

#[test]
fn why_prices_the_other_levers_and_their_combination() {
    let (dump, stats) = (traffic("config_dump.json.zst"), traffic("stats.json.zst"));
    let w = json_of(&["why", "-o", "json", &dump, "--stats", &stats]);
    let n = &w["next_step"];
    assert_eq!(n["sidecar"]["kind"], "derived");
    let lever = |kind: &str| {
        n["levers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["kind"] == kind)
            .cloned()
    };
    // Every stat kept: Istio's list saves what `heft cost --stats-matcher istio` says.
    let stats_lever = lever("stats_inclusion_list").expect("every stat is kept");
    let total = w["total_bytes"].as_u64().unwrap();
    let narrow = json_of(&[
        "cost",
        "-o",
        "json",
        &dump,
        "--stats",
        &stats,
        "--stats-matcher",
        "istio",
    ]);
    assert_eq!(
        stats_lever["saving_bytes"].as_u64().unwrap(),
        total - narrow["total_bytes"].as_u64().unwrap()
    );
    assert!(stats_lever["setting"]
        .as_str()
        .unwrap()
        .contains("proxyStatsMatcher"));
    // Combined: more than either alone, less than their sum (they overlap).
    let sidecar_saving = n["sidecar"]["saving_bytes"].as_u64().unwrap();
    let lever_saving = stats_lever["saving_bytes"].as_u64().unwrap();
    let combined = n["combined_saving_bytes"].as_u64().unwrap();
    assert!(combined > sidecar_saving.max(lever_saving), "{n}");
    assert!(combined < sidecar_saving + lever_saving, "{n}");
    // The calls reach every namespace: none to hide.
    assert!(lever("hide_namespaces").is_none());

    // The same real stats with the calls outside ns-0 and ns-1 left out: a workload that calls
    // two namespaces only. The other ten can be hidden from it.
    let mut narrow_stats: Value = serde_json::from_slice(
        &zstd::decode_all(std::fs::File::open(repo().join(&stats)).unwrap()).unwrap(),
    )
    .unwrap();
    for s in narrow_stats["stats"].as_array_mut().unwrap() {
        if let Some(name) = s["name"].as_str() {
            if name.starts_with("cluster.outbound|")
                && !name.contains(".ns-0.svc")
                && !name.contains(".ns-1.svc")
                && s["value"].as_u64().is_some()
            {
                s["value"] = json!(0);
            }
        }
    }
    let path = repo().join("target/advice-two-namespaces-stats.json");
    std::fs::write(&path, serde_json::to_vec(&narrow_stats).unwrap()).unwrap();
    let w = json_of(&[
        "why",
        "-o",
        "json",
        &dump,
        "--stats",
        path.to_str().unwrap(),
    ]);
    let hide = w["next_step"]["levers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "hide_namespaces")
        .cloned()
        .expect("ten namespaces are never called");
    let hidden: Vec<&str> = hide["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(hidden.len(), 10);
    assert!(!hidden.contains(&"ns-0") && !hidden.contains(&"ns-1"));
    assert!(hide["saving_bytes"].as_u64().unwrap() > 0);
    assert!(hide["caution"].as_str().unwrap().contains("every proxy"));

    // No stats: no namespace-hiding advice (nothing shows what is called).
    let w = json_of(&["why", "-o", "json", &dump]);
    assert!(!w["next_step"]["levers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["kind"] == "hide_namespaces"));
}

#[test]
fn gateways_get_cluster_filtering_instead_of_a_sidecar() {
    let w = json_of(&["why", "-o", "json", GATEWAY]);
    let n = &w["next_step"];
    assert_eq!(n["sidecar"]["kind"], "gateway");
    let filter = n["levers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "gateway_cluster_filter")
        .expect("the capture has service clusters no route uses");
    assert!(filter["setting"]
        .as_str()
        .unwrap()
        .contains("PILOT_FILTER_GATEWAY_CLUSTER_CONFIG=true"));
    // It drops the clusters `why` lists as dead weight, priced again without them (what they
    // share with the rest, as endpoint metadata, stays).
    let saving = filter["saving_bytes"].as_u64().unwrap() as f64;
    let dead = w["dead_weight"]["unreferenced_clusters"]["bytes"]
        .as_u64()
        .unwrap() as f64;
    assert!(saving > 0.9 * dead && saving <= dead, "{saving} vs {dead}");
    let err = fails(&["sidecar", GATEWAY, "--egress", "./*", "--emit", "yaml"]);
    assert!(err.contains("gateway"), "{err}");
}

#[test]
fn summary_and_why_show_what_envoy_rejected_and_what_waits() {
    for cmd in ["summary", "why"] {
        let text = ok(&heft(&[cmd, SIDECAR], None));
        for says in [
            "Rejected by Envoy (1;",
            "listener 127.0.0.1_15001 at 2026-",
            "duplicate address",
            "Warming (3;",
            "cluster outbound|8080||checkout.shop.svc.cluster.local: waits for endpoints (EDS)",
            "secret file-root:/etc/certs/root-cert.pem: waits for its first SDS answer",
        ] {
            assert!(text.contains(says), "{cmd}: {says}:\n{text}");
        }
        let v = json_of(&[cmd, "-o", "json", SIDECAR]);
        assert_eq!(v["rejected"].as_array().unwrap().len(), 1, "{cmd}");
        assert_eq!(v["rejected"][0]["name"], "127.0.0.1_15001");
        assert_eq!(v["warming"].as_array().unwrap().len(), 3, "{cmd}");
        assert_eq!(v["warming"][0]["waits_for"], json!(["endpoints (EDS)"]));
    }
    // A capture with nothing rejected or waiting prints neither heading.
    let text = ok(&heft(&["summary", GATEWAY], None));
    assert!(
        !text.contains("Rejected by Envoy") && !text.contains("Warming ("),
        "{text}"
    );
}
