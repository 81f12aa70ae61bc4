#!/usr/bin/env python3
"""Converts Envoy JSON config dumps to binary protobuf, with Google's protobuf library and the
official Envoy protos (xds-protos), for Heft's JSON-versus-binary equivalence test.

Usage: to_binary.py OUTDIR INPUT [INPUT ...]      (run with .venv/oracle/bin/python)

For the i-th INPUT (plain or gzip, recognised by its magic bytes), writes into OUTDIR/<i>/:
- config_dump.pb   the whole dump as a binary envoy.admin.v3.ConfigDump
- <kind>.pb        one envoy.service.discovery.v3.DiscoveryResponse per resource type
                   (clusters, listeners, routes, endpoints, secrets) holding the dump's resources
                   of that type in dump order (a dynamic listener entry gives its active, warming
                   and draining listeners in that order; a secret entry without a body gives a
                   Secret with only its name)
- stream.pb        those responses as a stream, each prefixed by its length as a varint; in the
                   stream the endpoint resources are wrapped in envoy.service.discovery.v3.Resource
Prints one JSON line per input: {"input", "dir"} on success, {"input", "error"} otherwise (a
document that is not a ConfigDump, or one the protos cannot parse). Parsing uses
ignore_unknown_fields=False, so a field of the dump missing from xds-protos is reported as an error.
"""

import json
import os
import sys

from protos import import_all_protos, load


TYPE = "type.googleapis.com/"
KINDS = [
    ("clusters", "envoy.config.cluster.v3.Cluster"),
    ("listeners", "envoy.config.listener.v3.Listener"),
    ("routes", "envoy.config.route.v3.RouteConfiguration"),
    ("endpoints", "envoy.config.endpoint.v3.ClusterLoadAssignment"),
    ("secrets", "envoy.extensions.transport_sockets.tls.v3.Secret"),
]


def resources_of(dump):
    """The dump's resources by kind, as JSON objects with their @type, in dump order."""
    out = {kind: [] for kind, _ in KINDS}
    for section in dump.get("configs", []):
        for key, entries in section.items():
            if not isinstance(entries, list):
                continue
            for e in entries:
                if "cluster" in e:
                    out["clusters"].append(e["cluster"])
                elif key == "static_listeners" and "listener" in e:
                    out["listeners"].append(e["listener"])
                elif key == "dynamic_listeners":
                    for state in e:
                        if state in ("active_state", "warming_state", "draining_state"):
                            if "listener" in e[state]:
                                out["listeners"].append(e[state]["listener"])
                elif "route_config" in e:
                    out["routes"].append(e["route_config"])
                elif "endpoint_config" in e:
                    out["endpoints"].append(e["endpoint_config"])
                elif key.endswith("_secrets"):
                    secret = dict(e.get("secret") or {"@type": TYPE + KINDS[4][1]})
                    if e.get("name"):
                        secret["name"] = e["name"]
                    out["secrets"].append(secret)
    return out


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def convert(path, outdir):
    from google.protobuf import any_pb2, json_format
    from envoy.admin.v3 import config_dump_pb2
    from envoy.service.discovery.v3 import discovery_pb2

    dump = load(path)
    if not isinstance(dump, dict) or "configs" not in dump:
        raise ValueError("not a ConfigDump (no configs)")
    msg = json_format.ParseDict(dump, config_dump_pb2.ConfigDump(), ignore_unknown_fields=False)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "config_dump.pb"), "wb") as f:
        f.write(msg.SerializeToString())
    stream = bytearray()
    for kind, type_name in KINDS:
        resp = discovery_pb2.DiscoveryResponse(
            version_info="heft-equivalence", type_url=TYPE + type_name, nonce="1"
        )
        wrapped = discovery_pb2.DiscoveryResponse()
        wrapped.CopyFrom(resp)
        for r in resources_of(dump)[kind]:
            any_msg = json_format.ParseDict(r, any_pb2.Any(), ignore_unknown_fields=False)
            resp.resources.append(any_msg)
            holder = discovery_pb2.Resource(name=r.get("name", r.get("cluster_name", "")))
            holder.resource.CopyFrom(any_msg)
            outer = wrapped.resources.add()
            outer.Pack(holder)
        data = resp.SerializeToString()
        with open(os.path.join(outdir, kind + ".pb"), "wb") as f:
            f.write(data)
        framed = wrapped.SerializeToString() if kind == "endpoints" else data
        stream += varint(len(framed)) + framed
    with open(os.path.join(outdir, "stream.pb"), "wb") as f:
        f.write(bytes(stream))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    import_all_protos()
    outdir = sys.argv[1]
    for i, path in enumerate(sys.argv[2:]):
        target = os.path.join(outdir, str(i))
        try:
            convert(path, target)
            print(json.dumps({"input": path, "dir": target}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported per input, the test decides
            print(json.dumps({"input": path, "error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
