#!/usr/bin/env python3
"""Independent per-object reading of an Envoy config dump, standard library only.

Usage: objects.py INPUT   (a /config_dump, plain or gzip)

Prints, as JSON, one record per resource with the fields Heft's typed model must agree on; the
projection is documented by the code below (crates/heft/tests/objects.rs builds the same records
from Heft's model). It shares no code with Heft on purpose. Accepts both proto JSON namings.
"""

import gzip
import json
import re
import sys

TLS = {
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
}
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


def snake(obj):
    """Converts lowerCamelCase keys of messages to snake_case (map keys with '.', '-' or capitals kept)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if "." in k or "-" in k or k.startswith("@") or k.isupper() or k[:1].isupper():
                out[k] = snake(v)
            else:
                out[re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k)] = snake(v)
        return out
    if isinstance(obj, list):
        return [snake(x) for x in obj]
    return obj


def duration_ms(text):
    if text is None:
        return None
    return round(float(text.rstrip("s")) * 1000)


def address(a):
    if not a:
        return None
    sa = a.get("socket_address")
    if sa:
        return f"{sa.get('address', '')}:{sa.get('port_value', 0)}"
    return None


def tls_of(socket):
    if not socket:
        return None
    tc = socket.get("typed_config") or {}
    if tc.get("@type") not in TLS:
        return None
    common = tc.get("common_tls_context", {})
    sds = [s.get("name", "") for s in common.get("tls_certificate_sds_secret_configs", [])]
    val = common.get("validation_context_sds_secret_config") or \
        common.get("combined_validation_context", {}).get("validation_context_sds_secret_config")
    if val:
        sds.append(val.get("name", ""))
    return {"sni": tc.get("sni"), "sds": sds, "alpn": common.get("alpn_protocols", [])}


def cluster(c, state):
    matches = []
    for m in c.get("transport_socket_matches", []):
        matches.append({"name": m.get("name", ""), "tls": tls_of(m.get("transport_socket"))})
    ctype = c.get("type", "STATIC") if "cluster_type" not in c else c["cluster_type"].get("name", "")
    return {
        "name": c.get("name", ""),
        "state": state,
        "type": ctype,
        "eds_service_name": c.get("eds_cluster_config", {}).get("service_name"),
        "lb_policy": c.get("lb_policy", "ROUND_ROBIN"),
        "connect_timeout_ms": duration_ms(c.get("connect_timeout")),
        "tls": tls_of(c.get("transport_socket")),
        "socket_matches": matches,
        "circuit_breakers": len(c.get("circuit_breakers", {}).get("thresholds", [])),
        "outlier_detection": "outlier_detection" in c,
    }


def chain(fc):
    m = fc.get("filter_chain_match", {})
    filters, rds, tcp = [], [], []
    for f in fc.get("filters", []):
        filters.append(f.get("name", ""))
        tc = f.get("typed_config", {})
        if tc.get("@type") == HCM and "rds" in tc:
            rds.append(tc["rds"].get("route_config_name", ""))
        if tc.get("@type") == TCP:
            if "cluster" in tc:
                tcp.append(tc["cluster"])
            for w in tc.get("weighted_clusters", {}).get("clusters", []):
                tcp.append(f"{w.get('name', '')}={w.get('weight', 0)}")
    return {
        "destination_port": m.get("destination_port"),
        "server_names": m.get("server_names", []),
        "transport_protocol": m.get("transport_protocol"),
        "application_protocols": m.get("application_protocols", []),
        "filters": filters,
        "rds": rds,
        "tcp": tcp,
        "tls": tls_of(fc.get("transport_socket")),
    }


def listener(l, state):
    chains = [chain(fc) for fc in l.get("filter_chains", [])]
    if "default_filter_chain" in l:
        chains.append(chain(l["default_filter_chain"]))
    return {
        "name": l.get("name", ""),
        "state": state,
        "address": address(l.get("address")),
        "listener_filters": [f.get("name", "") for f in l.get("listener_filters", [])],
        "chains": chains,
    }


def route_match(m):
    for k in ("prefix", "path", "path_separated_prefix"):
        if k in m:
            return f"{k}:{m[k]}"
    if "safe_regex" in m:
        return f"safe_regex:{m['safe_regex'].get('regex', '')}"
    return "any"


def route_target(r):
    if "route" in r:
        a = r["route"]
        if "cluster" in a:
            return f"cluster:{a['cluster']}"
        if "weighted_clusters" in a:
            return "weighted:" + ",".join(f"{w.get('name', '')}={w.get('weight', 0)}"
                                          for w in a["weighted_clusters"].get("clusters", []))
        if "cluster_header" in a:
            return f"cluster_header:{a['cluster_header']}"
        return "none"
    if "redirect" in r:
        return "redirect"
    if "direct_response" in r:
        return f"direct:{r['direct_response'].get('status', 0)}"
    return "other"


def route_config(rc, state):
    return {
        "name": rc.get("name", ""),
        "state": state,
        "ignore_port_in_host_matching": rc.get("ignore_port_in_host_matching", False),
        "virtual_hosts": [{
            "name": v.get("name", ""),
            "domains": v.get("domains", []),
            "routes": [{
                "match": route_match(r.get("match", {})),
                "headers": len(r.get("match", {}).get("headers", [])),
                "header_rules": [
                    f"{h.get('name', '')} invert={h.get('invert_match', False)} "
                    f"missing_as_empty={h.get('treat_missing_header_as_empty', False)} "
                    f"ignore_case={h.get('string_match', {}).get('ignore_case', False)}"
                    for h in r.get("match", {}).get("headers", [])],
                "target": route_target(r),
                "timeout_ms": duration_ms(r.get("route", {}).get("timeout")),
            } for r in v.get("routes", [])],
        } for v in rc.get("virtual_hosts", [])],
    }


def endpoint_config(la):
    eps = []
    for loc in la.get("endpoints", []):
        for e in loc.get("lb_endpoints", []):
            eps.append(f"{address(e.get('endpoint', {}).get('address'))} {e.get('health_status', 'UNKNOWN')} "
                       f"p{loc.get('priority', 0)} w{e.get('load_balancing_weight')}")
    return {"cluster_name": la.get("cluster_name", ""), "endpoints": eps}


def secret(s, state, name):
    body = s or {}
    kind = "unknown"
    for k, v in (("tls_certificate", "certificate"), ("validation_context", "validation_context"),
                 ("session_ticket_keys", "session_ticket_keys"), ("generic_secret", "generic")):
        if k in body:
            kind = v
    return {"name": name or body.get("name", ""), "state": state, "kind": kind}


def main():
    raw = open(sys.argv[1], "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dump = snake(json.loads(raw))
    out = {"clusters": [], "listeners": [], "route_configs": [], "endpoint_configs": [], "secrets": []}
    for c in dump.get("configs", []):
        for e in c.get("static_clusters", []):
            out["clusters"].append(cluster(e.get("cluster", {}), "static"))
        for key, state in (("dynamic_active_clusters", "active"), ("dynamic_warming_clusters", "warming")):
            for e in c.get(key, []):
                if "cluster" in e:
                    out["clusters"].append(cluster(e["cluster"], state))
        for e in c.get("static_listeners", []):
            out["listeners"].append(listener(e.get("listener", {}), "static"))
        for e in c.get("dynamic_listeners", []):
            for key, state in (("active_state", "active"), ("warming_state", "warming"), ("draining_state", "draining")):
                if key in e and "listener" in e[key]:
                    out["listeners"].append(listener(e[key]["listener"], state))
        for key, state in (("static_route_configs", "static"), ("dynamic_route_configs", "active")):
            for e in c.get(key, []):
                out["route_configs"].append(route_config(e.get("route_config", {}), state))
        for key in ("static_endpoint_configs", "dynamic_endpoint_configs"):
            for e in c.get(key, []):
                out["endpoint_configs"].append(endpoint_config(e.get("endpoint_config", {})))
        for key, state in (("static_secrets", "static"), ("dynamic_active_secrets", "active"),
                           ("dynamic_warming_secrets", "warming")):
            for e in c.get(key, []):
                out["secrets"].append(secret(e.get("secret"), state, e.get("name")))
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
