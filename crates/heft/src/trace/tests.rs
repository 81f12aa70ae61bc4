//! Whole traces on small hand-written dumps: the listener, filter chain and HTTP rules that the
//! real-Envoy test (`tests/trace_envoy.rs`) cannot reach over loopback, such as iptables capture
//! and hand-off, destination IPs and source addresses.

use super::*;
use crate::Dump;
use serde_json::{json, Value};

const LISTENER_T: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const HCM_T: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const TCP_T: &str = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
const CLUSTER_T: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const CLA_T: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

fn dump(listeners: Vec<Value>, clusters: Vec<Value>, endpoints: Vec<Value>) -> Dump {
    let doc = json!({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "dynamic_active_clusters": clusters.into_iter()
            .map(|c| json!({"version_info": "1", "cluster": c})).collect::<Vec<_>>()},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": listeners.into_iter().map(|l| json!({
            "name": l["name"], "active_state": {"version_info": "1", "listener": l}}))
            .collect::<Vec<_>>()},
        {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
         "dynamic_endpoint_configs": endpoints.into_iter()
            .map(|e| json!({"endpoint_config": e})).collect::<Vec<_>>()},
    ]});
    Dump::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

fn listener(name: &str, address: &str, port: u32, chains: Vec<Value>) -> Value {
    json!({"@type": LISTENER_T, "name": name,
           "address": {"socket_address": {"address": address, "port_value": port}},
           "filter_chains": chains})
}

fn tcp(cluster: &str) -> Value {
    json!({"name": "envoy.filters.network.tcp_proxy",
           "typed_config": {"@type": TCP_T, "stat_prefix": cluster, "cluster": cluster}})
}

fn chain(m: Value, cluster: &str) -> Value {
    json!({"filter_chain_match": m, "filters": [tcp(cluster)]})
}

fn hcm(route_config: Value) -> Value {
    json!({"name": "envoy.filters.network.http_connection_manager",
           "typed_config": {"@type": HCM_T, "stat_prefix": "http", "route_config": route_config}})
}

fn static_cluster(name: &str) -> Value {
    json!({"@type": CLUSTER_T, "name": name, "type": "STATIC",
           "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
               {"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}}}}]}]}})
}

fn tcp_query(port: u32, address: &str) -> Query {
    Query {
        port,
        address: Some(address.parse().unwrap()),
        ..Query::default()
    }
}

fn http_query(port: u32, host: &str, path: &str) -> Query {
    Query {
        port,
        address: Some("10.0.0.9".parse().unwrap()),
        http: Some(HttpRequest {
            host: Some(host.into()),
            path: path.into(),
            ..HttpRequest::default()
        }),
        ..Query::default()
    }
}

fn clusters_of(t: &Trace) -> Vec<&str> {
    t.outcome.clusters.iter().map(String::as_str).collect()
}

/// An Istio-shaped sidecar: virtualOutbound captures, per-port listeners take the hand-off.
fn sidecar() -> Dump {
    let mut outbound = listener(
        "virtualOutbound",
        "0.0.0.0",
        15001,
        vec![chain(json!({}), "PassthroughCluster")],
    );
    outbound["use_original_dst"] = json!(true);
    outbound["traffic_direction"] = json!("OUTBOUND");
    outbound["listener_filters"] = json!([{"name": "envoy.filters.listener.original_dst"},
                                          {"name": "envoy.filters.listener.http_inspector"}]);
    let mut wildcard = listener(
        "0.0.0.0_9080",
        "0.0.0.0",
        9080,
        vec![chain(json!({}), "c-wildcard")],
    );
    wildcard["bind_to_port"] = json!(false);
    let mut exact = listener(
        "10.0.0.5_9080",
        "10.0.0.5",
        9080,
        vec![chain(json!({}), "c-exact")],
    );
    exact["bind_to_port"] = json!(false);
    dump(
        vec![outbound, wildcard, exact],
        ["PassthroughCluster", "c-wildcard", "c-exact"]
            .into_iter()
            .map(static_cluster)
            .collect(),
        Vec::new(),
    )
}

#[test]
fn use_original_dst_hands_off_to_the_exact_address_listener_first() {
    let d = sidecar();
    let t = trace(&d, &tcp_query(9080, "10.0.0.5"));
    assert_eq!(t.listener.accepted_by.as_deref(), Some("virtualOutbound"));
    assert_eq!(t.listener.selected.as_deref(), Some("10.0.0.5_9080"));
    assert!(t.listener.handed_off);
    assert_eq!(clusters_of(&t), ["c-exact"]);
}

#[test]
fn use_original_dst_falls_back_to_the_wildcard_listener_of_the_port() {
    let t = trace(&sidecar(), &tcp_query(9080, "10.0.0.6"));
    assert_eq!(t.listener.selected.as_deref(), Some("0.0.0.0_9080"));
    assert_eq!(clusters_of(&t), ["c-wildcard"]);
}

#[test]
fn use_original_dst_keeps_a_connection_no_listener_is_on() {
    let t = trace(&sidecar(), &tcp_query(3306, "10.0.0.6"));
    assert_eq!(t.listener.selected.as_deref(), Some("virtualOutbound"));
    assert!(!t.listener.handed_off);
    assert_eq!(clusters_of(&t), ["PassthroughCluster"]);
}

#[test]
fn bind_to_port_false_listeners_get_no_direct_connections() {
    let mut wildcard = listener("0.0.0.0_9080", "0.0.0.0", 9080, vec![chain(json!({}), "c")]);
    wildcard["bind_to_port"] = json!(false);
    let d = dump(vec![wildcard], vec![static_cluster("c")], Vec::new());
    let t = trace(&d, &tcp_query(9080, "10.0.0.6"));
    assert_eq!(t.outcome.kind, OutcomeKind::NoListener);
    assert!(t.listener.candidates[0].reasons[0].contains("bind_to_port"));
}

#[test]
fn a_listener_on_the_exact_ip_beats_the_wildcard_one() {
    let d = dump(
        vec![
            listener("any", "0.0.0.0", 80, vec![chain(json!({}), "c-any")]),
            listener("one", "10.0.0.9", 80, vec![chain(json!({}), "c-one")]),
        ],
        vec![static_cluster("c-any"), static_cluster("c-one")],
        Vec::new(),
    );
    assert_eq!(
        clusters_of(&trace(&d, &tcp_query(80, "10.0.0.9"))),
        ["c-one"]
    );
    assert_eq!(
        clusters_of(&trace(&d, &tcp_query(80, "10.0.0.8"))),
        ["c-any"]
    );
}

fn chains_dump(chains: Vec<Value>, default: Option<&str>) -> Dump {
    let mut l = listener("l", "0.0.0.0", 443, chains);
    if let Some(d) = default {
        l["default_filter_chain"] = json!({"filters": [tcp(d)]});
    }
    l["listener_filters"] = json!([{"name": "envoy.filters.listener.tls_inspector"}]);
    let names = ["a", "b", "c", "d", "e", "dflt"];
    dump(
        vec![l],
        names.into_iter().map(static_cluster).collect(),
        Vec::new(),
    )
}

#[test]
fn a_chain_naming_the_port_wins_and_nothing_falls_back_to_portless_chains() {
    let d = chains_dump(
        vec![
            chain(
                json!({"destination_port": 443, "server_names": ["x.test"]}),
                "a",
            ),
            chain(json!({}), "b"),
        ],
        Some("dflt"),
    );
    let mut q = tcp_query(443, "10.0.0.1");
    q.sni = Some("x.test".into());
    assert_eq!(clusters_of(&trace(&d, &q)), ["a"]);
    // Another name: the port-443 subtree has no match, so Envoy takes the default chain, not
    // the catch-all chain without a port.
    q.sni = Some("y.test".into());
    let t = trace(&d, &q);
    assert_eq!(clusters_of(&t), ["dflt"]);
    assert!(t.filter_chain.unwrap().is_default);
}

#[test]
fn the_longest_destination_prefix_wins() {
    let d = chains_dump(
        vec![
            chain(
                json!({"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}),
                "a",
            ),
            chain(
                json!({"prefix_ranges": [{"address_prefix": "10.1.0.0", "prefix_len": 16}]}),
                "b",
            ),
            chain(json!({}), "c"),
        ],
        None,
    );
    assert_eq!(clusters_of(&trace(&d, &tcp_query(443, "10.1.2.3"))), ["b"]);
    assert_eq!(clusters_of(&trace(&d, &tcp_query(443, "10.2.2.3"))), ["a"]);
    assert_eq!(
        clusters_of(&trace(&d, &tcp_query(443, "192.168.0.1"))),
        ["c"]
    );
    // Unknown destination: the catch-all chain is all Heft can vouch for.
    let t = trace(
        &d,
        &Query {
            port: 443,
            ..Query::default()
        },
    );
    assert!(!t.outcome.certain);
}

#[test]
fn server_names_match_exactly_then_by_the_longest_wildcard() {
    let d = chains_dump(
        vec![
            chain(json!({"server_names": ["a.example.com"]}), "a"),
            chain(json!({"server_names": ["*.example.com"]}), "b"),
            chain(json!({"server_names": ["*.deep.example.com"]}), "c"),
            chain(json!({}), "d"),
        ],
        None,
    );
    let sni = |name: &str| {
        let mut q = tcp_query(443, "10.0.0.1");
        q.sni = Some(name.into());
        trace(&d, &q)
    };
    assert_eq!(clusters_of(&sni("a.example.com")), ["a"]);
    assert_eq!(clusters_of(&sni("A.Example.COM")), ["a"]);
    assert_eq!(clusters_of(&sni("z.example.com")), ["b"]);
    assert_eq!(clusters_of(&sni("z.deep.example.com")), ["c"]);
    assert_eq!(clusters_of(&sni("example.com")), ["d"]);
    assert_eq!(clusters_of(&sni("other.org")), ["d"]);
}

#[test]
fn application_protocols_are_tried_in_the_clients_order() {
    let d = chains_dump(
        vec![
            chain(
                json!({"transport_protocol": "tls", "application_protocols": ["http/1.1"]}),
                "a",
            ),
            chain(
                json!({"transport_protocol": "tls", "application_protocols": ["h2"]}),
                "b",
            ),
            chain(json!({"transport_protocol": "tls"}), "c"),
            chain(json!({"transport_protocol": "raw_buffer"}), "d"),
        ],
        None,
    );
    let mut q = tcp_query(443, "10.0.0.1");
    q.tls = true;
    q.alpn = vec!["h2".into(), "http/1.1".into()];
    assert_eq!(clusters_of(&trace(&d, &q)), ["b"]);
    q.alpn = vec!["http/1.1".into(), "h2".into()];
    assert_eq!(clusters_of(&trace(&d, &q)), ["a"]);
    q.alpn = vec!["spdy".into()];
    assert_eq!(clusters_of(&trace(&d, &q)), ["c"]);
    q.tls = false;
    q.alpn.clear();
    assert_eq!(clusters_of(&trace(&d, &q)), ["d"]);
}

#[test]
fn source_type_and_source_ranges_need_a_source() {
    let d = chains_dump(
        vec![
            chain(json!({"source_type": "SAME_IP_OR_LOOPBACK"}), "a"),
            chain(
                json!({"source_prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}),
                "b",
            ),
            chain(json!({"source_ports": [5000]}), "c"),
            chain(json!({}), "d"),
        ],
        None,
    );
    let from = |ip: &str, port: Option<u32>| {
        let mut q = tcp_query(443, "10.9.9.9");
        q.source = Some(ip.parse().unwrap());
        q.source_port = port;
        trace(&d, &q)
    };
    assert_eq!(clusters_of(&from("127.0.0.1", Some(1))), ["a"]);
    assert_eq!(clusters_of(&from("10.0.0.1", Some(1))), ["b"]);
    assert_eq!(clusters_of(&from("192.168.0.1", Some(5000))), ["c"]);
    assert_eq!(clusters_of(&from("192.168.0.1", Some(5001))), ["d"]);
    let unknown = trace(&d, &tcp_query(443, "10.9.9.9"));
    assert!(!unknown.outcome.certain);
}

#[test]
fn no_matching_chain_and_no_default_closes_the_connection() {
    let d = chains_dump(vec![chain(json!({"destination_port": 8443}), "a")], None);
    let t = trace(&d, &tcp_query(443, "10.0.0.1"));
    assert_eq!(t.outcome.kind, OutcomeKind::NoFilterChain);
    assert!(t.outcome.certain);
}

#[test]
fn a_filter_chain_matcher_is_reported_as_not_evaluable() {
    let mut l = listener("l", "0.0.0.0", 443, vec![chain(json!({}), "a")]);
    l["filter_chain_matcher"] = json!({"on_no_match": {"action": {"name": "x"}}});
    let d = dump(vec![l], vec![static_cluster("a")], Vec::new());
    let t = trace(&d, &tcp_query(443, "10.0.0.1"));
    assert_eq!(t.outcome.kind, OutcomeKind::Undetermined);
    assert!(!t.outcome.certain);
    assert_eq!(
        t.filter_chain.unwrap().candidates[0].verdict,
        Verdict::Undetermined
    );
}

fn web(vhosts: Value, ignore_port: bool) -> Dump {
    let l = listener(
        "web",
        "0.0.0.0",
        8080,
        vec![
            json!({"filters": [hcm(json!({"name": "r", "virtual_hosts": vhosts,
            "ignore_port_in_host_matching": ignore_port}))]}),
        ],
    );
    let names = [
        "exact", "suffix", "longer", "prefix", "default", "first", "second", "w1", "w2",
    ];
    dump(
        vec![l],
        names.into_iter().map(static_cluster).collect(),
        Vec::new(),
    )
}

fn vhost(name: &str, domains: Value) -> Value {
    json!({"name": name, "domains": domains,
           "routes": [{"match": {"prefix": "/"}, "route": {"cluster": name}}]})
}

#[test]
fn virtual_hosts_go_exact_then_suffix_then_prefix_then_default() {
    let d = web(
        json!([
            vhost("exact", json!(["a.example.com"])),
            vhost("suffix", json!(["*.example.com"])),
            vhost("longer", json!(["*-x.example.com"])),
            vhost("prefix", json!(["a.*"])),
            vhost("default", json!(["*"])),
        ]),
        false,
    );
    let to = |host: &str| clusters_of(&trace(&d, &http_query(8080, host, "/"))).join(",");
    assert_eq!(to("a.example.com"), "exact");
    assert_eq!(to("b.example.com"), "suffix");
    assert_eq!(to("b-x.example.com"), "longer");
    assert_eq!(to("a.example.org"), "prefix");
    assert_eq!(to("z.org"), "default");
    // The port is part of the host unless ignore_port_in_host_matching.
    assert_eq!(to("b.example.com:8080"), "default");
}

#[test]
fn ignore_port_in_host_matching_drops_the_port() {
    let d = web(
        json!([
            vhost("suffix", json!(["*.example.com"])),
            vhost("default", json!(["*"]))
        ]),
        true,
    );
    let t = trace(&d, &http_query(8080, "b.example.com:8080", "/"));
    assert_eq!(clusters_of(&t), ["suffix"]);
    assert_eq!(t.http.unwrap().virtual_host.unwrap().host, "b.example.com");
}

#[test]
fn a_runtime_fraction_route_makes_the_outcome_uncertain() {
    let d = web(
        json!([{"name": "v", "domains": ["*"], "routes": [
            {"match": {"prefix": "/", "runtime_fraction": {"default_value": {"numerator": 50}}},
             "route": {"cluster": "first"}},
            {"match": {"prefix": "/"}, "route": {"cluster": "second"}}]}]),
        false,
    );
    let t = trace(&d, &http_query(8080, "x", "/"));
    assert_eq!(clusters_of(&t), ["second"]);
    assert!(!t.outcome.certain);
    let route = t.http.unwrap().route.unwrap();
    assert_eq!(route.candidates[0].verdict, Verdict::Undetermined);
    assert_eq!(route.selected_index, Some(1));
}

#[test]
fn every_earlier_route_says_why_it_did_not_match() {
    let d = web(
        json!([{"name": "v", "domains": ["*"], "routes": [
            {"match": {"path": "/a"}, "route": {"cluster": "first"}},
            {"match": {"prefix": "/", "headers": [{"name": "x-env", "string_match": {"exact": "canary"}}]},
             "route": {"cluster": "first"}},
            {"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": [
                {"name": "w1", "weight": 3}, {"name": "w2", "weight": 1}]}}}]}]),
        false,
    );
    let t = trace(&d, &http_query(8080, "x", "/b"));
    let http = t.http.as_ref().unwrap();
    let route = http.route.as_ref().unwrap();
    assert!(route.candidates[0].reasons[0].contains("/b"));
    assert!(route.candidates[1].reasons[0].contains("x-env"));
    assert_eq!(clusters_of(&t), ["w1", "w2"]);
    assert_eq!(t.upstreams[0].percent, 75.0);
    assert_eq!(t.outcome.kind, OutcomeKind::WeightedClusters);
}

#[test]
fn a_warming_cluster_gets_a_503() {
    let l = listener(
        "web",
        "0.0.0.0",
        8080,
        vec![json!({"filters": [hcm(json!({"virtual_hosts": [vhost("late", json!(["*"]))]}))]})],
    );
    let doc = json!({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "dynamic_warming_clusters": [{"cluster": {"@type": CLUSTER_T, "name": "late", "type": "EDS"}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": [{"name": "web", "active_state": {"listener": l}}]}]});
    let d = Dump::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let t = trace(&d, &http_query(8080, "x", "/"));
    assert_eq!(t.outcome.kind, OutcomeKind::ClusterNotFound);
    assert_eq!(t.outcome.status, Some(503));
    assert_eq!(t.upstreams[0].state.as_deref(), Some("warming"));
}

#[test]
fn eds_endpoints_come_with_health_priority_and_load() {
    let l = listener("tcp", "0.0.0.0", 5432, vec![chain(json!({}), "db")]);
    let cluster = json!({"@type": CLUSTER_T, "name": "db", "type": "EDS",
                         "eds_cluster_config": {"service_name": "db-eds"}});
    let ep = |ip: &str, health: &str| {
        json!({"endpoint": {"address": {"socket_address": {
        "address": ip, "port_value": 5432}}}, "health_status": health})
    };
    let cla = json!({"@type": CLA_T, "cluster_name": "db-eds", "endpoints": [
        {"locality": {"region": "r", "zone": "z1"}, "lb_endpoints": [ep("10.0.0.1", "HEALTHY"), ep("10.0.0.2", "UNHEALTHY")]},
        {"locality": {"region": "r", "zone": "z2"}, "priority": 1, "lb_endpoints": [ep("10.0.0.3", "HEALTHY")]}]});
    let d = dump(vec![l], vec![cluster], vec![cla]);
    let t = trace(&d, &tcp_query(5432, "10.9.9.9"));
    let up = &t.upstreams[0];
    assert_eq!(up.endpoint_source, "endpoint_config");
    assert_eq!(up.endpoints.len(), 3);
    assert_eq!(up.endpoints[2].locality, "r/z2");
    // Half of P0 is healthy: health 70%, so P1 takes the remaining 30%.
    assert_eq!(up.priorities[0].load_percent, 70.0);
    assert_eq!(up.priorities[1].load_percent, 30.0);
}

#[test]
fn the_trace_serialises_with_its_documented_top_level_fields() {
    let t = trace(&sidecar(), &tcp_query(9080, "10.0.0.5"));
    let v = serde_json::to_value(&t).unwrap();
    for key in [
        "connection",
        "listener",
        "filter_chain",
        "network",
        "http",
        "tcp_proxy",
        "upstreams",
        "outcome",
        "notes",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["outcome"]["kind"], "cluster");
    assert_eq!(v["tcp_proxy"]["action"]["kind"], "cluster");
}
