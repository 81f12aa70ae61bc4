//! Every resource Heft decodes agrees, field by field, with an independent reading of the same
//! real dumps (`tests/oracle/objects.py`, Python's `json` module).

mod common;

use common::*;
use heft::model::{
    Action, Address, Cluster, FilterChain, Listener, LoadAssignment, NetworkFilter, PathMatch,
    RouteConfig, RouteTarget, Secret, SecretKind, TcpTarget, TransportSocket,
};
use heft::Dump;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!((d.as_secs_f64() * 1000.0).round() as i64)
    })
}

fn addr(a: &Option<Address>) -> Value {
    match a {
        Some(Address::Socket { address, port, .. }) => json!(format!("{address}:{port}")),
        _ => Value::Null,
    }
}

fn tls(s: Option<&TransportSocket>) -> Value {
    let Some(t) = s.and_then(|s| s.tls.as_ref()) else {
        return Value::Null;
    };
    let mut sds: Vec<&str> = t.certificate_sds.iter().map(|s| &**s).collect();
    sds.extend(t.validation_sds.as_deref());
    json!({"sni": t.sni, "sds": sds, "alpn": t.alpn})
}

fn cluster(c: &Cluster) -> Value {
    json!({
        "name": c.name,
        "state": c.meta.state.name(),
        "type": c.discovery.name(),
        "eds_service_name": c.eds_service_name,
        "lb_policy": c.lb_policy,
        "connect_timeout_ms": ms(c.connect_timeout),
        "tls": tls(c.transport_socket.as_deref()),
        "socket_matches": c.transport_socket_matches.iter()
            .map(|m| json!({"name": m.name, "tls": tls(m.socket.as_ref())}))
            .collect::<Vec<_>>(),
        "circuit_breakers": c.circuit_breakers.len(),
        "outlier_detection": c.outlier_detection.is_some(),
    })
}

fn chain(fc: &FilterChain) -> Value {
    let m = &fc.filter_chain_match;
    let mut rds = Vec::new();
    let mut tcp = Vec::new();
    for f in &fc.filters {
        match f {
            NetworkFilter::HttpConnectionManager { config, .. } => {
                if let heft::model::RouteSource::Rds { route_config_name } = &config.routes {
                    rds.push(route_config_name.to_string());
                }
            }
            NetworkFilter::TcpProxy { config, .. } => match &config.target {
                TcpTarget::Cluster(c) => tcp.push(c.to_string()),
                TcpTarget::Weighted(ws) => tcp.extend(ws.iter().map(|(n, w)| format!("{n}={w}"))),
                TcpTarget::None => {}
            },
            NetworkFilter::Other { .. } => {}
        }
    }
    json!({
        "destination_port": m.destination_port,
        "server_names": m.server_names,
        "transport_protocol": m.transport_protocol,
        "application_protocols": m.application_protocols,
        "filters": fc.filters.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "rds": rds,
        "tcp": tcp,
        "tls": tls(fc.transport_socket.as_ref()),
    })
}

fn listener(l: &Listener) -> Value {
    json!({
        "name": l.name,
        "state": l.meta.state.name(),
        "address": addr(&l.address),
        "listener_filters": l.listener_filters,
        "chains": l.all_filter_chains().map(chain).collect::<Vec<_>>(),
    })
}

/// Python's spelling of a boolean, as the oracle formats it.
fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn route_config(rc: &RouteConfig) -> Value {
    let vhosts: Vec<Value> = rc
        .virtual_hosts
        .iter()
        .map(|v| {
            let routes: Vec<Value> = v
                .routes
                .iter()
                .map(|r| {
                    let matcher = match &r.route_match.path {
                        PathMatch::Prefix(p) => format!("prefix:{p}"),
                        PathMatch::Path(p) => format!("path:{p}"),
                        PathMatch::PathSeparatedPrefix(p) => format!("path_separated_prefix:{p}"),
                        PathMatch::SafeRegex(p) => format!("safe_regex:{p}"),
                        _ => "any".into(),
                    };
                    let (target, timeout) = match &r.action {
                        Action::Route(a) => (
                            match &a.target {
                                RouteTarget::Cluster(c) => format!("cluster:{c}"),
                                RouteTarget::Weighted(ws) => format!(
                                    "weighted:{}",
                                    ws.iter()
                                        .map(|w| format!("{}={}", w.name, w.weight))
                                        .collect::<Vec<_>>()
                                        .join(",")
                                ),
                                RouteTarget::ClusterHeader(h) => format!("cluster_header:{h}"),
                                _ => "none".into(),
                            },
                            ms(a.timeout),
                        ),
                        Action::Redirect { .. } => ("redirect".into(), Value::Null),
                        Action::DirectResponse { status, .. } => {
                            (format!("direct:{status}"), Value::Null)
                        }
                        Action::Other => ("other".into(), Value::Null),
                    };
                    let header_rules: Vec<String> = r
                        .route_match
                        .headers
                        .iter()
                        .map(|h| {
                            format!(
                                "{} invert={} missing_as_empty={} ignore_case={}",
                                h.name,
                                py_bool(h.invert),
                                py_bool(h.treat_missing_header_as_empty),
                                py_bool(h.ignore_case)
                            )
                        })
                        .collect();
                    json!({"match": matcher, "headers": r.route_match.headers.len(),
                           "header_rules": header_rules,
                           "target": target, "timeout_ms": timeout})
                })
                .collect();
            json!({"name": v.name, "domains": v.domains, "routes": routes})
        })
        .collect();
    json!({"name": rc.name, "state": rc.meta.state.name(),
           "ignore_port_in_host_matching": rc.ignore_port_in_host_matching,
           "virtual_hosts": vhosts})
}

fn endpoint_config(la: &LoadAssignment) -> Value {
    let eps: Vec<String> = la
        .localities
        .iter()
        .flat_map(|l| {
            l.endpoints.iter().map(move |e| {
                let a = match &e.address {
                    Some(Address::Socket { address, port, .. }) => format!("{address}:{port}"),
                    _ => "None".into(),
                };
                let w = e.weight.map_or("None".to_string(), |w| w.to_string());
                format!("{a} {} p{} w{w}", e.health.name(), l.priority)
            })
        })
        .collect();
    json!({"cluster_name": la.cluster_name, "endpoints": eps})
}

fn secret(s: &Secret) -> Value {
    let kind = match s.kind {
        SecretKind::Certificate => "certificate",
        SecretKind::ValidationContext => "validation_context",
        SecretKind::SessionTicketKeys => "session_ticket_keys",
        SecretKind::Generic => "generic",
        SecretKind::Unknown => "unknown",
    };
    json!({"name": s.name, "state": s.meta.state.name(), "kind": kind})
}

fn project(d: &Dump) -> Value {
    json!({
        "clusters": d.clusters.iter().map(cluster).collect::<Vec<_>>(),
        "listeners": d.listeners.iter().map(listener).collect::<Vec<_>>(),
        "route_configs": d.route_configs.iter().map(route_config).collect::<Vec<_>>(),
        "endpoint_configs": d.endpoint_configs.iter().map(endpoint_config).collect::<Vec<_>>(),
        "secrets": d.secrets.iter().map(secret).collect::<Vec<_>>(),
    })
}

/// The first difference between two JSON values, as a path.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (u, v) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if let Some(d) = first_difference(u, v, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(u, v, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: {} vs {} items", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: heft {a} vs oracle {b}")),
    }
}

#[test]
fn every_resource_agrees_with_an_independent_reading() {
    let mut files = captures(&["config_dump.json"]);
    let fx = fixtures();
    for f in [
        "routes/istio-gateway-http-route-prefix/configdump.json",
        "routes/k8s-gateway-http-route-path-prefix/configdump.json",
        "endpoint/configdump.json",
        "secret/istio/config_dump.json",
    ] {
        files.push(fx.join(f));
    }
    for path in files {
        let out = Command::new("python3")
            .arg(repo().join("tests/oracle/objects.py"))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours = project(&Dump::from_path(&path).unwrap());
        let total: usize = theirs
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_array().unwrap().len())
            .sum();
        assert!(total > 0, "{}: the oracle found nothing", path.display());
        if let Some(d) = first_difference(&ours, &theirs, "") {
            panic!("{}: {d}", path.display());
        }
    }
}
