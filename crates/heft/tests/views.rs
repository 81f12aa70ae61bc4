//! The proxy-config views on real Envoy captures, against an independent reading of the same
//! files (`tests/oracle/views.py`, Python's standard library): the same rows, with istioctl's
//! cells, in istioctl's order, for every view and for filters built from the data; and the COST
//! column is the cost model's figure for each row's object.

mod common;

use common::*;
use heft::cost::{CostModel, Estimate, Feature, Object, Settings};
use heft::model::State;
use heft::views::{
    cluster, ecds, endpoint, listener, route, secret, EstimatePricing, NoPricing, Order,
};
use heft::Dump;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

type Rows = Vec<Vec<String>>;

/// Runs the oracle on `path` for each spec: (rows, whether their order is istioctl's exactly).
fn oracle(path: &Path, specs: &[Value]) -> Vec<(Rows, bool)> {
    let file = std::env::temp_dir().join(format!(
        "heft-views-specs-{}-{}.json",
        std::process::id(),
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&file, serde_json::to_vec(specs).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("tests/oracle/views.py"))
        .arg(path)
        .arg(&file)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "views.py failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    v.into_iter()
        .map(|o| {
            let rows = serde_json::from_value(o["rows"].clone()).unwrap();
            (rows, o["ordered"].as_bool().unwrap())
        })
        .collect()
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn n(v: &Value, k: &str) -> Option<u32> {
    v.get(k).and_then(Value::as_u64).map(|p| p as u32)
}

/// Heft's rows for a spec, as istioctl's cells.
fn heft_rows(dump: &Dump, spec: &Value) -> Rows {
    let f = &spec["filter"];
    let strings = |cells: &[String]| cells.to_vec();
    match spec["view"].as_str().unwrap() {
        "clusters" => {
            let filter = cluster::ClusterFilter {
                fqdn: s(f, "fqdn"),
                port: n(f, "port"),
                subset: s(f, "subset"),
                direction: s(f, "direction"),
            };
            let rows = dump
                .clusters
                .iter()
                .filter_map(|c| cluster::cluster_row(c, &filter, &NoPricing))
                .collect();
            cluster::arrange(rows, Order::Istioctl)
                .iter()
                .map(|r| strings(&r.istioctl_cells()))
                .collect()
        }
        view @ ("listeners" | "listeners_short") => {
            let filter = listener::ListenerFilter {
                address: s(f, "address"),
                port: n(f, "port"),
                r#type: s(f, "type"),
            };
            let rows = dump
                .listeners
                .iter()
                .filter_map(|l| listener::listener_row(l, &filter, &NoPricing))
                .collect();
            let rows = listener::arrange(rows, Order::Istioctl);
            if view == "listeners" {
                rows.iter()
                    .flat_map(|r| r.istioctl_cells())
                    .map(|c| strings(&c))
                    .collect()
            } else {
                rows.iter()
                    .map(|r| strings(&r.istioctl_short_cells()))
                    .collect()
            }
        }
        view @ ("routes" | "routes_short") => {
            let filter = route::RouteFilter { name: s(f, "name") };
            let configs = dump
                .route_configs
                .iter()
                .filter_map(|rc| route::route_rows(rc, &filter, &NoPricing))
                .collect();
            let configs = route::arrange(configs, Order::Istioctl);
            if view == "routes" {
                configs
                    .iter()
                    .flat_map(|c| &c.routes)
                    .map(|r| strings(&r.istioctl_cells()))
                    .collect()
            } else {
                configs
                    .iter()
                    .map(|c| strings(&c.istioctl_short_cells()))
                    .collect()
            }
        }
        view @ ("endpoints" | "hosts") => {
            let filter = endpoint::EndpointFilter {
                address: s(f, "address"),
                port: n(f, "port"),
                cluster: s(f, "cluster"),
                status: s(f, "status"),
            };
            if view == "endpoints" {
                let rows = dump
                    .endpoint_configs
                    .iter()
                    .filter_map(|la| endpoint::load_assignment_rows(la, &filter, &NoPricing))
                    .collect();
                endpoint::arrange(rows, Order::Istioctl)
                    .iter()
                    .flat_map(|a| &a.endpoints)
                    .map(|e| strings(&e.istioctl_cells()))
                    .collect()
            } else {
                let rows = dump
                    .cluster_statuses
                    .iter()
                    .flat_map(|c| endpoint::host_rows(c, &filter))
                    .collect();
                endpoint::arrange_hosts(rows)
                    .iter()
                    .map(|r| strings(&r.istioctl_cells()))
                    .collect()
            }
        }
        "secrets" => {
            let now = spec["now"].as_i64().unwrap();
            let rows: Vec<_> = dump
                .secrets
                .iter()
                .flat_map(|s| secret::secret_rows(s, now, &NoPricing))
                .collect();
            let rows = secret::arrange(rows, Order::Istioctl);
            let trust = secret::shows_trust_domain(&rows);
            rows.iter().map(|r| r.istioctl_cells(trust)).collect()
        }
        "ecds" => {
            let rows = dump.opaque.iter().filter_map(ecds::ecds_row).collect();
            ecds::arrange(rows, Order::Istioctl)
                .iter()
                .map(|r| strings(&r.istioctl_cells()))
                .collect()
        }
        other => panic!("unknown view {other}"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn spec(view: &str, filter: Value) -> Value {
    json!({"view": view, "filter": filter, "now": now()})
}

/// Distinct values of column `col` of `rows`, in first-seen order.
fn column(rows: &Rows, col: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if let Some(v) = r.get(col) {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
    }
    out
}

/// Filters built from what the unfiltered views show: every value of every filtered column,
/// case changed where istioctl compares without case, values that match nothing, and pairs.
fn filter_specs(all: &[(Rows, bool)], views: &[&str]) -> Vec<Value> {
    let rows = |v: &str| &all[views.iter().position(|x| *x == v).unwrap()].0;
    let mut specs = Vec::new();
    let clusters = rows("clusters");
    for host in column(clusters, 0) {
        specs.push(spec("clusters", json!({"fqdn": host})));
    }
    for sub in ["reviews", "shop.svc", "no-such-service"] {
        specs.push(spec("clusters", json!({"fqdn": sub})));
    }
    for port in column(clusters, 1)
        .iter()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        specs.push(spec("clusters", json!({"port": port})));
        specs.push(spec(
            "clusters",
            json!({"port": port, "direction": "outbound"}),
        ));
    }
    for sub in column(clusters, 2).into_iter().filter(|s| s != "-") {
        specs.push(spec("clusters", json!({"subset": sub})));
    }
    for dir in ["inbound", "outbound", "sideways"] {
        specs.push(spec("clusters", json!({"direction": dir})));
    }
    let listeners = rows("listeners_short");
    for a in column(listeners, 0) {
        for addr in a.split(',') {
            specs.push(spec("listeners", json!({"address": addr})));
            specs.push(spec(
                "listeners_short",
                json!({"address": addr.to_uppercase()}),
            ));
        }
    }
    specs.push(spec("listeners", json!({"address": "10.9.9.9"})));
    for p in column(listeners, 1)
        .iter()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        specs.push(spec("listeners", json!({"port": p})));
    }
    for t in ["HTTP", "tcp", "HTTP+TCP", "unknown"] {
        specs.push(spec("listeners", json!({"type": t})));
        specs.push(spec("listeners_short", json!({"type": t})));
    }
    for name in column(rows("routes_short"), 0) {
        specs.push(spec("routes", json!({"name": name})));
        specs.push(spec("routes_short", json!({"name": name})));
    }
    specs.push(spec("routes", json!({"name": "no-such-route"})));
    let eps = rows("endpoints");
    for a in column(eps, 0).into_iter().take(12) {
        specs.push(spec("endpoints", json!({"address": a})));
    }
    for a in column(eps, 0) {
        if let Some((_, p)) = a.rsplit_once(':') {
            if let Ok(p) = p.parse::<u32>() {
                specs.push(spec("endpoints", json!({"port": p})));
            }
        }
    }
    for c in column(eps, 3) {
        specs.push(spec("endpoints", json!({"cluster": c.to_uppercase()})));
    }
    for st in ["healthy", "UNHEALTHY", "DEGRADED", "DRAINING", "UNKNOWN"] {
        specs.push(spec("endpoints", json!({"status": st})));
        specs.push(spec(
            "endpoints",
            json!({"status": st, "cluster": "outbound|9080||reviews.default.svc.cluster.local"}),
        ));
    }
    specs.dedup();
    specs
}

fn host_filter_specs(all: &Rows) -> Vec<Value> {
    let mut specs = Vec::new();
    for e in column(all, 0) {
        let (addr, port) = e.rsplit_once(':').unwrap_or((&e, "0"));
        specs.push(spec("hosts", json!({"address": addr})));
        if let Ok(p) = port.parse::<u32>() {
            specs.push(spec("hosts", json!({"port": p})));
        }
    }
    for st in ["healthy", "UNHEALTHY", "DRAINING", "DEGRADED"] {
        specs.push(spec("hosts", json!({"status": st})));
    }
    for c in column(all, 3) {
        specs.push(spec("hosts", json!({"cluster": c.to_uppercase()})));
    }
    specs.dedup();
    specs
}

fn compare(dump: &Dump, path: &Path, specs: &[Value], expected: &[(Rows, bool)]) -> usize {
    let mut narrowed = 0;
    for (spec, (want, ordered)) in specs.iter().zip(expected) {
        let mut got = heft_rows(dump, spec);
        let what = format!("{}: {spec}", path.display());
        if *ordered {
            assert_eq!(&got, want, "{what}");
        } else {
            let mut want = want.clone();
            got.sort();
            want.sort();
            assert_eq!(
                got, want,
                "{what} (as sets: istioctl's order is Go's unstable sort)"
            );
        }
        if spec["filter"].as_object().is_some_and(|f| !f.is_empty()) && !want.is_empty() {
            narrowed += 1;
        }
    }
    narrowed
}

const VIEWS: [&str; 9] = [
    "clusters",
    "listeners",
    "listeners_short",
    "routes",
    "routes_short",
    "endpoints",
    "hosts",
    "secrets",
    "ecds",
];

#[test]
fn views_and_their_filters_match_the_oracle_on_every_real_capture() {
    for path in captures(&["config_dump.json"]) {
        let dump = Dump::from_path(&path).unwrap();
        let base: Vec<Value> = VIEWS.iter().map(|v| spec(v, json!({}))).collect();
        let all = oracle(&path, &base);
        let narrowed = compare(&dump, &path, &base, &all);
        assert_eq!(narrowed, 0);
        for (v, (rows, _)) in VIEWS.iter().zip(&all) {
            if !matches!(*v, "hosts" | "ecds") {
                assert!(!rows.is_empty(), "{}: no {v} rows", path.display());
            }
        }
        let specs = filter_specs(&all, &VIEWS);
        let expected = oracle(&path, &specs);
        let narrowed = compare(&dump, &path, &specs, &expected);
        // Filters keep rows of what they name, and fewer than the whole view.
        for (spec, (rows, _)) in specs.iter().zip(&expected) {
            let view = VIEWS
                .iter()
                .position(|v| *v == spec["view"].as_str().unwrap())
                .unwrap();
            for r in rows {
                assert!(all[view].0.contains(r), "{spec}: {r:?} is not in the view");
            }
        }
        assert!(
            narrowed > 20,
            "{}: only {narrowed} filters kept rows",
            path.display()
        );
    }
}

#[test]
fn live_endpoints_and_their_filters_match_the_oracle_on_clusters_json() {
    for path in captures(&["clusters.json"]) {
        let dump = Dump::from_path(&path).unwrap();
        let base = vec![spec("hosts", json!({}))];
        let all = oracle(&path, &base);
        compare(&dump, &path, &base, &all);
        assert!(all[0].0.len() > 5, "{}: too few hosts", path.display());
        let specs = host_filter_specs(&all[0].0);
        let expected = oracle(&path, &specs);
        let narrowed = compare(&dump, &path, &specs, &expected);
        assert!(
            narrowed > 5,
            "{}: only {narrowed} filters kept rows",
            path.display()
        );
    }
}

/// A model where every feature costs something, so each object's figure is its own.
fn priced_model() -> CostModel {
    let coefficients = Feature::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().to_string(), 1.0 + i as f64))
        .collect();
    CostModel::new("test", "views test", coefficients, None).unwrap()
}

#[test]
fn the_cost_column_is_the_estimates_figure_for_each_rows_object() {
    let model = priced_model();
    for path in captures(&["config_dump.json"]) {
        let dump = Dump::from_path(&path).unwrap();
        let estimate = Estimate::of(&dump, &model, &Settings::default());
        let pricing = EstimatePricing::new(&estimate);
        let mut distinct = std::collections::HashSet::new();
        let mut checked = 0;
        for o in &estimate.objects {
            let children = estimate.children(&o.object);
            match o.object {
                Object::Cluster(c, _) => {
                    let row = cluster::cluster_row(c, &Default::default(), &pricing).unwrap();
                    assert_eq!(row.cost, Some(o.bytes()), "cluster {}", c.name);
                    distinct.insert(o.bytes());
                }
                Object::Listener(l) => {
                    let row = listener::listener_row(l, &Default::default(), &pricing).unwrap();
                    assert_eq!(row.cost, Some(o.bytes()), "listener {}", l.name);
                    // Chains are reordered; each keeps its own chain's figure.
                    let mut got: Vec<u64> = row.chains.iter().map(|c| c.cost.unwrap()).collect();
                    let mut want: Vec<u64> = children.iter().map(|c| c.parts.total()).collect();
                    got.sort();
                    want.sort();
                    assert_eq!(got, want, "listener {} chains", l.name);
                }
                Object::RouteConfig(rc) => {
                    let rows = route::route_rows(rc, &Default::default(), &pricing).unwrap();
                    assert_eq!(rows.cost, Some(o.bytes()), "route config {}", rc.name);
                    let mut want = Vec::new();
                    for (v, vh) in rc.virtual_hosts.iter().enumerate() {
                        for (i, r) in vh.routes.iter().enumerate() {
                            let passthrough = matches!(&r.action,
                                heft::model::Action::Route(a) if matches!(&a.target,
                                    heft::model::RouteTarget::Cluster(c) if &**c == "PassthroughCluster"));
                            if !passthrough {
                                want.push(children[v].children[i].parts.total());
                            }
                        }
                        if vh.routes.is_empty() {
                            want.push(children[v].parts.total());
                        }
                    }
                    let got: Vec<u64> = rows.routes.iter().map(|r| r.cost.unwrap()).collect();
                    assert_eq!(got, want, "route config {}", rc.name);
                }
                Object::Secret(s) => {
                    for row in secret::secret_rows(s, now(), &pricing) {
                        assert_eq!(row.cost, Some(o.bytes()), "secret {}", s.name);
                    }
                }
                Object::Endpoints(_) => {}
            }
            checked += 1;
        }
        // Endpoints: every endpoint of every assignment, by its position.
        for la in &dump.endpoint_configs {
            let Some(rows) = endpoint::load_assignment_rows(la, &Default::default(), &pricing)
            else {
                continue;
            };
            let object = estimate
                .objects
                .iter()
                .find(|o| match o.object {
                    Object::Cluster(_, Some(x)) | Object::Endpoints(x) => std::ptr::eq(x, la),
                    _ => false,
                })
                .expect("every assignment is priced");
            let children = estimate.children(&object.object);
            for e in &rows.endpoints {
                assert_eq!(e.cost, Some(children[e.index].parts.total()));
                distinct.insert(e.cost.unwrap());
            }
        }
        assert!(checked > 10);
        assert!(
            distinct.len() > 5,
            "{}: costs do not tell objects apart",
            path.display()
        );
        // Without prices, no figure is made up.
        let c = cluster::cluster_row(&dump.clusters[0], &Default::default(), &NoPricing).unwrap();
        assert_eq!(c.cost, None);
    }
}

#[test]
fn heft_order_adds_the_warming_and_draining_resources_istioctl_leaves_out() {
    let dump = Dump::from_path(capture("sidecar", "config_dump.json")).unwrap();
    let rows: Vec<_> = dump
        .clusters
        .iter()
        .filter_map(|c| cluster::cluster_row(c, &Default::default(), &NoPricing))
        .collect();
    let istioctl = cluster::arrange(rows.clone(), Order::Istioctl);
    let heft = cluster::arrange(rows, Order::Heft);
    assert!(istioctl.iter().all(|r| r.state != State::Warming));
    let warming: Vec<_> = heft.iter().filter(|r| r.state == State::Warming).collect();
    assert!(
        !warming.is_empty(),
        "the sidecar capture has a warming cluster"
    );
    assert_eq!(heft.len(), istioctl.len() + warming.len());
    let listeners: Vec<_> = dump
        .listeners
        .iter()
        .filter_map(|l| listener::listener_row(l, &Default::default(), &NoPricing))
        .collect();
    let heft = listener::arrange(listeners, Order::Heft);
    assert_eq!(heft.last().map(|l| l.state), Some(State::Draining));
}
