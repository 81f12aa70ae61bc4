"""Checks that a scenario's captures still show every feature the scenario is there to exercise.

Usage: python3 testdata/capture/check.py --scenario sidecar DIR   (standard library only)

Prints one line per feature and exits 1 if any is missing. `scripts/capture-all.sh` runs it after each
capture, so a regenerated capture that lost a feature (an Envoy upgrade, a scenario edit) is noticed.
"""

import argparse
import gzip
import json
import os
import sys


def load(directory, name):
    path = os.path.join(directory, name)
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            return f.read().decode()
    with open(path, encoding="utf-8") as f:
        return f.read()


def section(dump, kind):
    return next((s for s in dump["configs"] if s["@type"].endswith("." + kind)), {})


def walk(value):
    """Every dict inside `value`, depth first."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from walk(child)


def any_dict(value, predicate):
    return any(predicate(d) for d in walk(value))


def dynamic_clusters(dump):
    s = section(dump, "ClustersConfigDump")
    return {e["cluster"]["name"]: e["cluster"]
            for e in s.get("dynamic_active_clusters", []) + s.get("dynamic_warming_clusters", [])}


def active_listeners(dump):
    entries = section(dump, "ListenersConfigDump").get("dynamic_listeners", [])
    return {e["name"]: e["active_state"]["listener"] for e in entries if "active_state" in e}


def route_configs(dump):
    return {e["route_config"]["name"]: e["route_config"]
            for e in section(dump, "RoutesConfigDump").get("dynamic_route_configs", [])}


def health_statuses(clusters_doc):
    return {h.get("health_status", {}).get("eds_health_status", "UNKNOWN")
            for c in clusters_doc["cluster_statuses"] for h in c.get("host_statuses", [])}


def common_checks(dump, text):
    bootstrap = section(dump, "BootstrapConfigDump")["bootstrap"]
    metadata = bootstrap["node"]["metadata"]
    static = {e["cluster"]["name"] for e in section(dump, "ClustersConfigDump").get("static_clusters", [])}
    return [
        ("node metadata has Istio keys", all(k in metadata for k in (
            "ISTIO_VERSION", "ISTIO_PROXY_SHA", "NAMESPACE", "WORKLOAD_NAME", "CLUSTER_ID", "MESH_ID"))),
        ("static clusters prometheus_stats, agent, xds-grpc, sds-grpc",
         static >= {"prometheus_stats", "agent", "xds-grpc", "sds-grpc"}),
        ("two static listeners", len(section(dump, "ListenersConfigDump").get("static_listeners", [])) == 2),
        ("stats_config with Istio stats_tags", len(bootstrap.get("stats_config", {}).get("stats_tags", [])) >= 5),
        ("tlsMode-istio socket match with SDS default/ROOTCA",
         '"tlsMode-istio"' in text and '"name": "default"' in text and '"name": "ROOTCA"' in text),
        ("ALPN istio-peer-exchange", '"istio-peer-exchange"' in text),
        ("SPIFFE SAN matcher", '"spiffe://cluster.local/ns/' in text),
        ("HTTP/2 upstream protocol options", '"http2_protocol_options"' in text),
        ("Istio services metadata", '"services": [' in text),
        ("private key redacted (inline_bytes of base64 '[redacted]')", '"W3JlZGFjdGVkXQ=="' in text),
        ("weighted clusters", '"weighted_clusters"' in text),
        ("traffic_direction", '"traffic_direction"' in text),
    ]


def sidecar_checks(dump, text, clusters_doc):
    labels = section(dump, "BootstrapConfigDump")["bootstrap"]["node"]["metadata"].get("LABELS", {})
    clusters = dynamic_clusters(dump)
    listeners = active_listeners(dump)
    routes = route_configs(dump)
    inbound = listeners.get("virtualInbound", {})
    chain_matches = [c.get("filter_chain_match", {}) for c in inbound.get("filter_chains", [])]
    secrets = section(dump, "SecretsConfigDump")
    entries = section(dump, "ListenersConfigDump").get("dynamic_listeners", [])
    endpoints = section(dump, "EndpointsConfigDump")
    reviews = "reviews.default.svc.cluster.local"
    types = {c.get("type", "STATIC") for c in clusters.values()}
    return [
        ("node LABELS with app and version", {"app", "version"} <= set(labels)),
        ("reviews cluster and v1/v2/v3 subsets",
         all(f"outbound|9080|{s}|{reviews}" in clusters for s in ("", "v1", "v2", "v3"))),
        ("inbound|9080||, BlackHoleCluster, PassthroughCluster, InboundPassthroughCluster",
         {"inbound|9080||", "BlackHoleCluster", "PassthroughCluster", "InboundPassthroughCluster"} <= set(clusters)),
        ("cluster types EDS, STATIC, STRICT_DNS, LOGICAL_DNS, ORIGINAL_DST",
         types >= {"EDS", "STATIC", "STRICT_DNS", "LOGICAL_DNS", "ORIGINAL_DST"}),
        ("three namespaces", all(any(f".{ns}.svc.cluster.local" in n for n in clusters)
                                 for ns in ("default", "istio-system", "shop"))),
        ("circuit breakers and outlier detection",
         any("outlier_detection" in c for c in clusters.values())
         and all("circuit_breakers" in c for n, c in clusters.items() if n.startswith("outbound|9080"))),
        ("SNI outbound_.9080_._.reviews", f'"outbound_.9080_._.{reviews}"' in text),
        ("endpoint health sent: HEALTHY, UNHEALTHY, DRAINING, DEGRADED (per /clusters)",
         health_statuses(clusters_doc) >= {"HEALTHY", "UNHEALTHY", "DRAINING", "DEGRADED"}),
        ("priority-1 locality", any_dict(endpoints, lambda d: d.get("priority") == 1 and "lb_endpoints" in d)),
        ("endpoint weights", any_dict(endpoints, lambda d: d.get("load_balancing_weight", 1) > 1 and "endpoint" in d)),
        ("virtualOutbound: 3 listener filters, use_original_dst",
         len(listeners.get("virtualOutbound", {}).get("listener_filters", [])) == 3
         and listeners["virtualOutbound"].get("use_original_dst") is True),
        ("virtualInbound chains: destination_port, tls/raw_buffer, ALPN, prefix and source ranges",
         any("destination_port" in m for m in chain_matches)
         and {m.get("transport_protocol") for m in chain_matches} >= {"tls", "raw_buffer"}
         and any("application_protocols" in m for m in chain_matches)
         and any("prefix_ranges" in m for m in chain_matches)
         and any("source_prefix_ranges" in m for m in chain_matches)),
        ("0.0.0.0_9080: bind_to_port false, RDS 9080",
         listeners.get("0.0.0.0_9080", {}).get("bind_to_port") is False and '"route_config_name": "9080"' in text),
        ("RDS 9080: weighted, regex, headers, query, redirect, direct_response, retries, allow_any",
         all(k in json.dumps(routes.get("9080", {})) for k in (
             '"weighted_clusters"', '"safe_regex"', '"headers"', '"query_parameters"', '"redirect"',
             '"direct_response"', '"retry_policy"', '"allow_any"'))),
        ("RDS 8080 has block_all", '"block_all"' in json.dumps(routes.get("8080", {}))),
        ("active secrets default and ROOTCA",
         {s["name"] for s in secrets.get("dynamic_active_secrets", [])} == {"default", "ROOTCA"}),
        ("warming secrets", len(secrets.get("dynamic_warming_secrets", [])) >= 1),
        ("warming cluster", len(section(dump, "ClustersConfigDump").get("dynamic_warming_clusters", [])) == 1),
        ("draining listener", any("draining_state" in e for e in entries)),
        ("listener error_state after the LDS NACK", any("error_state" in e for e in entries)),
    ]


def gateway_checks(dump, text, clusters_doc):
    listeners = active_listeners(dump)
    https = listeners.get("0.0.0.0_8443", {})
    names = [n for c in https.get("filter_chains", []) for n in c.get("filter_chain_match", {}).get("server_names", [])]
    secrets = {s["name"] for s in section(dump, "SecretsConfigDump").get("dynamic_active_secrets", [])}
    return [
        ("router node id", section(dump, "BootstrapConfigDump")["bootstrap"]["node"]["id"].startswith("router~")),
        ("8443: tls_inspector and SNI chains",
         {"bookinfo.example.com", "*.shop.example.com", "legacy.example.com"} <= set(names)
         and len(https.get("listener_filters", [])) == 1),
        ("DownstreamTlsContext with kubernetes:// SDS certificates",
         '"kubernetes://bookinfo-credential"' in text and "DownstreamTlsContext" in text),
        ("RDS https.443.https.bookinfo-gateway.istio-system and http.8080",
         set(route_configs(dump)) >= {"https.443.https.bookinfo-gateway.istio-system", "http.8080"}),
        ("passthrough cluster outbound_.443_._.legacy", '"outbound_.443_._.legacy.shop.svc.cluster.local"' in text),
        ("four active secrets", len(secrets) == 4),
        ("stats inclusion list", '"inclusion_list"' in text),
    ]


def registry_only_checks(dump, text, clusters_doc):
    listeners = active_listeners(dump)
    outbound = listeners.get("virtualOutbound", {})
    node = section(dump, "BootstrapConfigDump")["bootstrap"]["node"]
    vhosts = {vh["name"] for rc in route_configs(dump).values() for vh in rc.get("virtual_hosts", [])}
    return [
        ("node without LABELS", "LABELS" not in node.get("metadata", {})),
        ("virtualOutbound sends other traffic to BlackHoleCluster",
         '"BlackHoleCluster"' in json.dumps(outbound.get("filter_chains", []))),
        ("block_all and no allow_any", "block_all" in vhosts and "allow_any" not in vhosts),
        ("EDS clusters with endpoint configs", bool(section(dump, "EndpointsConfigDump"))),
    ]


def registry_only_no_eds_checks(directory):
    dump = json.loads(load(directory, "config_dump_no_eds.json"))
    eds = [c for c in dynamic_clusters(dump).values() if c.get("type") == "EDS"]
    return [
        ("without include_eds: EDS clusters and no EndpointsConfigDump",
         bool(eds) and not section(dump, "EndpointsConfigDump")),
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", required=True, choices=("sidecar", "gateway", "registry-only"))
    parser.add_argument("directory")
    args = parser.parse_args()
    text = load(args.directory, "config_dump.json")
    dump = json.loads(text)
    clusters_doc = json.loads(load(args.directory, "clusters.json"))
    scenario_checks = {"sidecar": sidecar_checks, "gateway": gateway_checks,
                       "registry-only": registry_only_checks}[args.scenario]
    results = common_checks(dump, text) + scenario_checks(dump, text, clusters_doc)
    if args.scenario == "registry-only":
        results += registry_only_no_eds_checks(args.directory)
    for name, ok in results:
        print(f"{'ok  ' if ok else 'MISSING'} {name}")
    missing = sum(1 for _, ok in results if not ok)
    print(f"check {args.scenario}: {len(results) - missing} passed, {missing} failed")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
