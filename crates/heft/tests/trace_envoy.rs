//! `heft::trace` against a real Envoy: the pinned Envoy 1.40 is served a routing configuration
//! over ADS and sent real HTTP requests, TCP connections and TLS ClientHellos on loopback
//! (`testdata/capture/routing.py`); every upstream answers with its cluster's name. For each case,
//! the trace of Envoy's own `/config_dump?include_eds` must predict what Envoy did: the cluster
//! that answered, or the status Envoy answered with itself.
//!
//! Also: traces on the committed captures (`testdata/real/`, or `$HEFT_CAPTURE_DIR`) reach what
//! their scenarios (`testdata/capture/scenario_*.py`) were built to do.

mod common;

use common::*;
use heft::trace::{trace, HttpRequest, OutcomeKind, Query, Trace};
use heft::Dump;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// Runs the routing driver once; returns its output directory, or `None` (said) when the
/// virtualenvs are missing.
fn route_through_real_envoy() -> Option<PathBuf> {
    let repo = repo();
    let test = "trace_predicts_where_real_envoy_sends";
    let python = oracle_python_of(test)?;
    let envoy = pinned_envoy_of(test)?;
    let out = std::env::temp_dir().join(format!("heft-routing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(python)
        .arg(repo.join("testdata/capture/routing.py"))
        .args(["--envoy", &envoy, "--out"])
        .arg(&out)
        .output()
        .expect("the routing driver runs");
    assert!(
        run.status.success(),
        "routing.py failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    Some(out)
}

fn query(case: &Value) -> Query {
    let s = |k: &str| case[k].as_str().unwrap_or_default().to_string();
    let mut q = Query {
        port: case["port"].as_u64().unwrap() as u32,
        address: Some(s("address").parse().unwrap()),
        source: Some("127.0.0.1".parse().unwrap()),
        ..Query::default()
    };
    match case["kind"].as_str().unwrap() {
        "http" => {
            q.http = Some(HttpRequest {
                host: Some(s("host")),
                path: s("path"),
                method: s("method"),
                headers: case["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap().to_string(),
                            h[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect(),
            })
        }
        "tls" => {
            q.tls = true;
            q.sni = case["sni"].as_str().map(str::to_string);
            q.alpn = case["alpn"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
        }
        _ => {}
    }
    q
}

/// Where Envoy sent the case: `Ok(cluster)` when an upstream answered, `Err(status)` when
/// Envoy answered itself (HTTP) or no upstream answered (`Err(0)`, TCP).
fn observed(case: &Value) -> Result<String, u64> {
    let o = &case["observed"];
    match o["status"].as_u64() {
        Some(200) | None => {
            let name = o["cluster"]
                .as_str()
                .filter(|c| !c.is_empty())
                .or(o["body"].as_str())
                .unwrap_or_default();
            if name.is_empty() {
                Err(o["status"].as_u64().unwrap_or(0))
            } else {
                Ok(name.to_string())
            }
        }
        Some(status) => Err(status),
    }
}

/// Why the trace disagrees with what Envoy did, if it does.
fn disagreement(case: &Value, t: &Trace) -> Option<String> {
    let o = &t.outcome;
    if !o.certain {
        return Some(format!("the trace is not certain: {}", o.summary));
    }
    match observed(case) {
        Ok(cluster) => {
            let forwarded = matches!(o.kind, OutcomeKind::Cluster | OutcomeKind::WeightedClusters);
            let fits = if case["random"].as_bool() == Some(true) {
                o.clusters.len() > 1 && o.clusters.contains(&cluster)
            } else {
                o.clusters == [cluster.clone()]
            };
            (!forwarded || !fits).then(|| {
                format!(
                    "Envoy sent it to {cluster}; heft predicts {:?} {:?}",
                    o.kind, o.clusters
                )
            })
        }
        Err(0) => (!matches!(
            o.kind,
            OutcomeKind::NoFilterChain | OutcomeKind::ClusterNotFound | OutcomeKind::NoListener
        ))
        .then(|| format!("Envoy answered nothing; heft predicts {:?}", o.kind)),
        Err(status) => {
            if o.status != Some(status as u32) {
                return Some(format!(
                    "Envoy answered {status}; heft predicts {:?} status {:?}",
                    o.kind, o.status
                ));
            }
            let location = case["observed"]["location"].as_str();
            let predicted = t.http.as_ref().and_then(|h| match &h.action {
                Some(heft::trace::ActionSeen::Redirect { location, .. }) => Some(location.as_str()),
                _ => None,
            });
            match (location, predicted) {
                (Some(l), Some(p)) if l != p => {
                    Some(format!("Envoy redirected to {l}; heft predicts {p}"))
                }
                _ => None,
            }
        }
    }
}

#[test]
fn trace_predicts_where_real_envoy_sends_each_request_and_connection() {
    let Some(dir) = route_through_real_envoy() else {
        return;
    };
    let dump = Dump::from_path(dir.join("config_dump.json")).unwrap();
    let cases: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut clusters = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    for case in cases {
        match observed(case) {
            Ok(c) => clusters.insert(c),
            Err(s) => statuses.insert(s),
        };
        let t = trace(&dump, &query(case));
        if let Some(why) = disagreement(case, &t) {
            failures.push(format!("{}: {why}", case["id"].as_str().unwrap()));
        }
    }
    check_agrees_with_envoy(&dump, cases);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with the real Envoy:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // The cases must exercise many distinct decisions, not land in one place.
    assert!(cases.len() >= 70, "only {} cases", cases.len());
    assert!(
        clusters.len() >= 40,
        "only {} distinct clusters answered",
        clusters.len()
    );
    for status in [301, 302, 404, 418, 503] {
        assert!(
            statuses.contains(&status),
            "no case made Envoy answer {status}"
        );
    }
}

/// What `heft check` predicts of the routing configuration, against what Envoy did with the
/// cases built for it: the shadowed route's request reaches the route before it, the route to a
/// missing cluster answers 503, the all-unhealthy cluster still takes traffic.
fn check_agrees_with_envoy(dump: &Dump, cases: &[Value]) {
    let findings = heft::check::check(dump, &heft::check::Options::default());
    let named = |code: &str| -> Vec<(String, String)> {
        findings
            .iter()
            .filter(|f| f.code == code)
            .map(|f| (f.name.clone(), f.message.clone()))
            .collect()
    };
    let seen = |id: &str| {
        let case = cases.iter().find(|c| c["id"] == id).expect(id);
        observed(case)
    };
    let shadowed = named("shadowed-route");
    assert_eq!(shadowed.len(), 1, "{shadowed:?}");
    assert_eq!(shadowed[0].0, "routes-a/exact/shadowed");
    assert!(shadowed[0].1.contains("routes-a/exact/shadow-first"));
    assert_eq!(
        seen("shadowed-route-goes-to-the-earlier"),
        Ok("c-shadow-first".to_string())
    );
    let missing = named("missing-cluster");
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].1.contains("c-ghost") && missing[0].1.contains("NC"));
    assert_eq!(seen("route-to-missing-cluster"), Err(503));
    let unhealthy = named("all-unhealthy");
    assert_eq!(unhealthy.len(), 1, "{unhealthy:?}");
    assert_eq!(unhealthy[0].0, "c-unhealthy");
    assert_eq!(
        seen("all-unhealthy-still-takes-traffic"),
        Ok("c-unhealthy".to_string())
    );
    let unreachable = named("unreachable-filter-chain");
    assert_eq!(unreachable.len(), 1, "{unreachable:?}");
    assert_eq!(unreachable[0].0, "dport/never");
    for code in [
        "rejected",
        "warming",
        "no-endpoints",
        "duplicate-domain",
        "missing-secret",
    ] {
        assert!(named(code).is_empty(), "{code}: {:?}", named(code));
    }
    // routes-b with a domain twice was NACKed (routing.py waits for it): Envoy kept version 1,
    // which claims each domain once, and its dump says nothing of the rejection.
    let b = dump
        .route_configs
        .iter()
        .find(|rc| &*rc.name == "routes-b")
        .unwrap();
    assert_eq!(b.meta.version_info.as_deref(), Some("1"));
    assert!(b.meta.error.is_none());
    assert_eq!(b.virtual_hosts.len(), 2);
}

fn tls_query(port: u32, sni: &str) -> Query {
    Query {
        port,
        address: Some("127.0.0.1".parse().unwrap()),
        tls: true,
        sni: Some(sni.into()),
        ..Query::default()
    }
}

#[test]
fn the_gateway_capture_routes_each_server_name_to_its_chain() {
    // scenario_gateway.py: 0.0.0.0_8443 (bound on 127.0.0.1:8443) has one chain per SNI.
    let dump = Dump::from_path(capture("gateway", "config_dump.json")).unwrap();
    let legacy = trace(&dump, &tls_query(8443, "legacy.example.com"));
    assert_eq!(legacy.listener.selected.as_deref(), Some("0.0.0.0_8443"));
    assert_eq!(
        legacy.outcome.clusters,
        ["outbound_.443_._.legacy.shop.svc.cluster.local"]
    );
    assert!(legacy.tcp_proxy.is_some());
    let shop = trace(&dump, &tls_query(8443, "cart.shop.example.com"));
    let http = shop.http.as_ref().expect("the shop chain is HTTP");
    assert_eq!(
        http.route_config.name.as_deref(),
        Some("https.443.https.shop-gateway.istio-system")
    );
    assert!(http.route_config.found);
    assert_eq!(http.request.scheme, "https");
    let bookinfo = trace(&dump, &tls_query(8443, "bookinfo.example.com"));
    assert_eq!(
        bookinfo.http.as_ref().unwrap().route_config.name.as_deref(),
        Some("https.443.https.bookinfo-gateway.istio-system")
    );
    let none = trace(&dump, &tls_query(8443, "unknown.example.org"));
    assert_eq!(none.outcome.kind, OutcomeKind::NoFilterChain);
}

#[test]
fn the_sidecar_capture_follows_istio_capture_and_routes() {
    // scenario_sidecar.py: outbound traffic is captured by virtualOutbound and handed to the
    // per-port listeners; reviews splits 80/20 over v1/v2 unless end-user is jason.
    let dump = Dump::from_path(capture("sidecar", "config_dump.json")).unwrap();
    let reviews = |headers: Vec<(String, String)>| {
        trace(
            &dump,
            &Query {
                port: 9080,
                address: Some("10.96.0.10".parse().unwrap()),
                http: Some(HttpRequest {
                    host: Some("reviews:9080".into()),
                    headers,
                    ..HttpRequest::default()
                }),
                ..Query::default()
            },
        )
    };
    let t = reviews(Vec::new());
    assert_eq!(t.listener.accepted_by.as_deref(), Some("virtualOutbound"));
    assert_eq!(t.listener.selected.as_deref(), Some("0.0.0.0_9080"));
    assert_eq!(
        t.outcome.clusters,
        [
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            "outbound|9080|v2|reviews.default.svc.cluster.local"
        ]
    );
    assert!(t.upstreams.iter().all(|u| !u.endpoints.is_empty()));
    let jason = reviews(vec![("end-user".into(), "jason".into())]);
    assert_eq!(
        jason.outcome.clusters,
        ["outbound|9080|v2|reviews.default.svc.cluster.local"]
    );
    // A port no listener serves stays on virtualOutbound's passthrough chain.
    let other = trace(
        &dump,
        &Query {
            port: 5432,
            address: Some("10.96.0.11".parse().unwrap()),
            ..Query::default()
        },
    );
    assert_eq!(other.outcome.clusters, ["PassthroughCluster"]);
    // mongodb's TCP proxy splits over its subsets (the active listener, not the draining one).
    let mongo = trace(
        &dump,
        &Query {
            port: 27017,
            address: Some("10.96.0.12".parse().unwrap()),
            ..Query::default()
        },
    );
    assert_eq!(mongo.listener.selected.as_deref(), Some("0.0.0.0_27017"));
    assert_eq!(mongo.outcome.kind, OutcomeKind::WeightedClusters);
    assert_eq!(mongo.outcome.clusters.len(), 2);
    // Inbound through virtualInbound, to a port no listener is on: its catch-all chains.
    let inbound = |port: u32, tls: bool| {
        trace(
            &dump,
            &Query {
                port,
                address: Some("10.0.0.20".parse().unwrap()),
                via: Some("virtualInbound".into()),
                tls,
                alpn: if tls {
                    vec!["istio-peer-exchange".into(), "istio".into()]
                } else {
                    Vec::new()
                },
                http: Some(HttpRequest::default()),
                ..Query::default()
            },
        )
    };
    let plain = inbound(8000, false);
    assert!(!plain.listener.handed_off);
    assert_eq!(
        plain
            .filter_chain
            .as_ref()
            .unwrap()
            .selected_name
            .as_deref(),
        Some("virtualInbound")
    );
    assert_eq!(plain.outcome.clusters, ["InboundPassthroughCluster"]);
    let mtls = inbound(8000, true);
    assert!(mtls.network.as_ref().unwrap().terminates_tls);
    assert_eq!(mtls.outcome.clusters, ["InboundPassthroughCluster"]);
    // This capture's virtualInbound has use_original_dst (istiod leaves it unset), so Envoy
    // hands an inbound connection to 9080 to the outbound listener of that port.
    let handed = inbound(9080, false);
    assert!(handed.listener.handed_off);
    assert_eq!(handed.listener.selected.as_deref(), Some("0.0.0.0_9080"));
}
