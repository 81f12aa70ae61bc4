#!/usr/bin/env python3
"""What istioctl proxy-config VIEW -o json prints for a config dump, made with Google's protobuf
library and the official Envoy protos (run with .venv/oracle/bin/python).

Usage: istioctl_json.py INPUT VIEW [VIEW ...]

Prints one JSON object, {VIEW: output}. VIEW is clusters, listeners, routes or endpoints (a list of the resources istioctl lists:
dynamic then static, active listeners only, no warming clusters, in dump order) or secrets or
bootstrap (the whole SecretsConfigDump or BootstrapConfigDump section). Each resource is parsed
into its protobuf message and printed back with proto3 JSON names (json_format.MessageToDict),
the way istioctl's Go protobuf JSON printer names fields: message fields lowerCamelCase, map keys
and Struct contents as they are.
"""

import json
import sys

from google.protobuf import json_format, symbol_database

from protos import import_all_protos, load


def message_class(full_name):
    return symbol_database.Default().GetSymbol(full_name)


def as_istioctl(resource, full_name):
    msg = message_class(full_name)()
    body = {k: v for k, v in resource.items() if k != "@type"}
    json_format.ParseDict(body, msg)
    return json_format.MessageToDict(msg, preserving_proto_field_name=False)


def main():
    import_all_protos()
    configs = load(sys.argv[1])["configs"]
    json.dump({view: render(configs, view) for view in sys.argv[2:]}, sys.stdout)


def render(configs, view):
    def section(suffix):
        for c in configs:
            if c["@type"].endswith("." + suffix):
                return c
        return {}

    def entries(sec, *keys):
        for k in keys:
            yield from section(sec).get(k, [])

    out = []
    if view == "clusters":
        for e in entries("ClustersConfigDump", "dynamic_active_clusters", "static_clusters"):
            out.append(as_istioctl(e["cluster"], "envoy.config.cluster.v3.Cluster"))
    elif view == "listeners":
        for e in section("ListenersConfigDump").get("dynamic_listeners", []):
            if "listener" in e.get("active_state", {}):
                out.append(as_istioctl(e["active_state"]["listener"], "envoy.config.listener.v3.Listener"))
        for e in section("ListenersConfigDump").get("static_listeners", []):
            out.append(as_istioctl(e["listener"], "envoy.config.listener.v3.Listener"))
    elif view == "routes":
        for e in entries("RoutesConfigDump", "dynamic_route_configs", "static_route_configs"):
            out.append(as_istioctl(e["route_config"], "envoy.config.route.v3.RouteConfiguration"))
    elif view == "endpoints":
        for e in entries("EndpointsConfigDump", "dynamic_endpoint_configs", "static_endpoint_configs"):
            cla = e["endpoint_config"]
            if any(loc.get("lb_endpoints") for loc in cla.get("endpoints", [])):
                out.append(as_istioctl(cla, "envoy.config.endpoint.v3.ClusterLoadAssignment"))
    elif view == "secrets":
        out = as_istioctl(section("SecretsConfigDump"), "envoy.admin.v3.SecretsConfigDump")
    elif view == "bootstrap":
        out = as_istioctl(section("BootstrapConfigDump"), "envoy.admin.v3.BootstrapConfigDump")
    else:
        raise SystemExit(f"unknown view {view}")
    return out


if __name__ == "__main__":
    main()
