//! `heft diff` on real captures whose differences are known: the registry-only scenario serves
//! the sidecar scenario's services in one push under REGISTRY_ONLY, where the sidecar scenario
//! made two more pushes (testdata/README.md). Also: the same content in other forms compares
//! equal, and bookkeeping is summarised.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const REGISTRY_ONLY: &str = "testdata/real/registry-only/config_dump.json.gz";
const NO_EDS: &str = "testdata/real/registry-only/config_dump_no_eds.json.gz";

fn ok(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let out = heft(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn diff(old: &str, new: &str, extra: &[&str]) -> Value {
    let mut args = vec!["diff", "-o", "json", old, new];
    args.extend(extra);
    serde_json::from_slice(&ok(&args, None)).unwrap()
}

fn names(v: &Value, list: &str) -> BTreeSet<(String, String)> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["name"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn field<'a>(v: &'a Value, kind: &str, name: &str, path: &str) -> &'a Value {
    let c = v["changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} not changed"));
    c["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{kind} {name}: no {path} in {}", c["fields"]))
}

fn total(file: &str) -> u64 {
    let v: Value = serde_json::from_slice(&ok(&["cost", "-o", "json", file], None)).unwrap();
    v["total_bytes"].as_u64().unwrap()
}

#[test]
fn the_known_differences_between_two_real_captures_and_nothing_else() {
    let v = diff(SIDECAR, REGISTRY_ONLY, &[]);
    // Push 3 (the checkout cluster) and push 2's draining listener exist only in the sidecar.
    assert_eq!(
        names(&v, "removed"),
        BTreeSet::from([
            (
                "cluster".into(),
                "outbound|8080||checkout.shop.svc.cluster.local".into()
            ),
            ("listener".into(), "0.0.0.0_27017 (draining)".into()),
        ])
    );
    assert_eq!(names(&v, "added"), BTreeSet::new());
    // REGISTRY_ONLY: the catch-alls go to BlackHoleCluster and block_all.
    let target = field(
        &v,
        "listener",
        "virtualOutbound",
        "filter_chains[0].filters[0].tcp_proxy.config.target.cluster",
    );
    assert_eq!(
        (&target["old"], &target["new"]),
        (&json!("PassthroughCluster"), &json!("BlackHoleCluster"))
    );
    let allow = field(&v, "route_config", "9080", "virtual_hosts[allow_any]");
    assert!(allow["new"].is_null() && allow["old"]["name"] == "allow_any");
    assert!(field(&v, "route_config", "9080", "virtual_hosts[block_all]")["old"].is_null());
    // Push 2 changed 27017's weights from 80/20 to 50/50 and added TLS inspection.
    let w = field(
        &v,
        "listener",
        "0.0.0.0_27017",
        "filter_chains[0].filters[0].tcp_proxy.config.target.weighted[0][1]",
    );
    assert_eq!((&w["old"], &w["new"]), (&json!(50), &json!(80)));
    // The node is another workload.
    let id = field(&v, "bootstrap", "bootstrap", "node.id");
    assert!(id["new"].as_str().unwrap().contains("ratings-vm"));
    // Nothing else changed in what the services are: every other changed resource is a
    // bootstrap cluster whose loopback port moved.
    let expected = BTreeSet::from([
        "bootstrap",
        "listener virtualOutbound",
        "listener 0.0.0.0_27017",
        "route_config 9080",
        "route_config 8080",
        "cluster prometheus_stats",
        "cluster xds-grpc",
        "cluster sds-grpc",
        "endpoint_config prometheus_stats",
        "endpoint_config xds-grpc",
        "endpoint_config sds-grpc",
    ]);
    let changed: BTreeSet<String> = v["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            if c["kind"] == "bootstrap" {
                "bootstrap".to_string()
            } else {
                format!(
                    "{} {}",
                    c["kind"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                )
            }
        })
        .collect();
    let expected: BTreeSet<String> = expected.into_iter().map(String::from).collect();
    assert!(
        changed.is_subset(&expected),
        "{:?}",
        changed.difference(&expected).collect::<Vec<_>>()
    );
    // The heap of each side is what `heft cost` predicts for it.
    assert_eq!(v["before_bytes"].as_u64().unwrap(), total(SIDECAR));
    assert_eq!(v["after_bytes"].as_u64().unwrap(), total(REGISTRY_ONLY));
    let text = String::from_utf8(ok(&["diff", SIDECAR, REGISTRY_ONLY], None)).unwrap();
    assert!(text.starts_with("Predicted Envoy heap "), "{text}");
    assert!(
        text.contains("- cluster outbound|8080||checkout.shop.svc.cluster.local"),
        "{text}"
    );
    assert!(
        text.contains("\"PassthroughCluster\" → \"BlackHoleCluster\""),
        "{text}"
    );
}

#[test]
fn a_dump_taken_without_endpoints_loses_exactly_its_endpoint_configurations() {
    let v = diff(REGISTRY_ONLY, NO_EDS, &[]);
    let removed = names(&v, "removed");
    assert!(!removed.is_empty());
    assert!(
        removed.iter().all(|(kind, _)| kind == "endpoint_config"),
        "{removed:?}"
    );
    assert_eq!(names(&v, "added"), BTreeSet::new());
    assert!(v["after_bytes"].as_u64() < v["before_bytes"].as_u64());
}

#[test]
fn the_same_content_in_other_forms_compares_equal() {
    // The clusters as the dump holds them (snake_case JSON), as istioctl prints them
    // (lowerCamelCase JSON, and YAML), and piped: no difference.
    let raw = ok(&["clusters", "--raw", SIDECAR], None);
    let camel = ok(&["clusters", "--istioctl", "-o", "json", SIDECAR], None);
    let yaml = ok(&["clusters", "--istioctl", "-o", "yaml", SIDECAR], None);
    let dir = repo().join("target/diff-forms");
    std::fs::create_dir_all(&dir).unwrap();
    let (raw_path, camel_path, yaml_path) = (
        dir.join("raw.json"),
        dir.join("camel.json"),
        dir.join("clusters.yaml"),
    );
    std::fs::write(&raw_path, &raw).unwrap();
    std::fs::write(&camel_path, &camel).unwrap();
    std::fs::write(&yaml_path, &yaml).unwrap();
    let camel_vs_yaml = diff(
        camel_path.to_str().unwrap(),
        yaml_path.to_str().unwrap(),
        &[],
    );
    for list in ["added", "removed", "changed"] {
        assert_eq!(camel_vs_yaml[list], json!([]), "{list}");
    }
    assert!(camel_vs_yaml["unchanged"].as_u64().unwrap() >= 30);
    // istioctl leaves out the warming cluster; everything else is the same in both namings.
    let raw_vs_camel = diff(
        raw_path.to_str().unwrap(),
        camel_path.to_str().unwrap(),
        &[],
    );
    assert_eq!(raw_vs_camel["changed"], json!([]));
    assert_eq!(raw_vs_camel["added"], json!([]));
    assert_eq!(
        names(&raw_vs_camel, "removed"),
        BTreeSet::from([(
            "cluster".into(),
            "outbound|8080||checkout.shop.svc.cluster.local".into()
        )])
    );
    let v: Value = serde_json::from_slice(&ok(
        &["diff", "-o", "json", SIDECAR, "-"],
        Some(&std::fs::read(repo().join(SIDECAR)).unwrap()),
    ))
    .unwrap();
    assert_eq!(v["changed"], json!([]));
    let both = heft(&["diff", "-", "-"], Some(b"{}"));
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn bookkeeping_is_counted_and_listed_only_when_asked() {
    // The same real dump with every version renamed: nothing Envoy does changed.
    let text = {
        let gz = std::fs::read(repo().join(SIDECAR)).unwrap();
        let mut s = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    assert!(text.contains("2025-06-01T12:00:00Z/1"));
    let renamed = text.replace("2025-06-01T12:00:00Z/1", "v-one");
    let dir = repo().join("target/diff-forms");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("renamed.json");
    std::fs::write(&path, renamed).unwrap();
    let v = diff(SIDECAR, path.to_str().unwrap(), &[]);
    assert_eq!(v["changed"], json!([]));
    assert!(v["bookkeeping_only"].as_u64().unwrap() > 10);
    let all = diff(SIDECAR, path.to_str().unwrap(), &["--all"]);
    let fields: Vec<&str> = all["changed"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["fields"].as_array().unwrap())
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(!fields.is_empty());
    assert!(
        fields.iter().all(|p| *p == "meta.version_info"),
        "{fields:?}"
    );
}
