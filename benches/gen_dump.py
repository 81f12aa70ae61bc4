#!/usr/bin/env python3
"""Writes an Istio-shaped /config_dump of any size, grown from a real Envoy capture.

Usage: gen_dump.py --services N [--ports 2] [--subsets 2] [--endpoints 3] --out FILE
       gen_dump.py --target-mb 256 --out FILE      (picks N for about that size)

The real capture (testdata/real/sidecar/config_dump.json.gz, made by Envoy 1.40) supplies the
templates: one EDS cluster entry with Istio's mTLS transport socket matches, one subset cluster, one
endpoint config, one virtual host. Each synthetic service gets, per port, a cluster, a cluster per
subset, an endpoint config with N endpoints, and a virtual host in that port's route config; the
capture's own resources are kept. Output is written as Envoy prints it (1-space indentation), entry
by entry, so memory stays small whatever the size. Standard library only.
"""

import argparse
import gzip
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TEMPLATE = os.path.join(ROOT, "testdata/real/sidecar/config_dump.json.gz")
TEMPLATE_HOST = "reviews.default.svc.cluster.local"
TEMPLATE_PORT = "9080"


def dumps(value, depth):
    """JSON text as Envoy prints it, for a value nested `depth` levels deep."""
    text = json.dumps(value, indent=1, ensure_ascii=False)
    return text.replace("\n", "\n" + " " * depth)


def find_template(entries, key, pred):
    for e in entries:
        if pred(e[key]):
            return e
    raise SystemExit(f"gen_dump: no template for {key} in {TEMPLATE}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int)
    ap.add_argument("--target-mb", type=float)
    ap.add_argument("--ports", type=int, default=2)
    ap.add_argument("--subsets", type=int, default=2)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    with gzip.open(TEMPLATE, "rt", encoding="utf-8") as f:
        dump = json.load(f)
    sections = {c["@type"].rsplit(".", 1)[-1]: c for c in dump["configs"]}
    clusters = sections["ClustersConfigDump"]["dynamic_active_clusters"]
    eds = find_template(clusters, "cluster", lambda c: c["name"] == f"outbound|{TEMPLATE_PORT}||{TEMPLATE_HOST}")
    subset = find_template(clusters, "cluster", lambda c: c["name"].startswith(f"outbound|{TEMPLATE_PORT}|v1|"))
    eps = sections["EndpointsConfigDump"]["dynamic_endpoint_configs"]
    ep = find_template(eps, "endpoint_config", lambda c: c["cluster_name"] == f"outbound|{TEMPLATE_PORT}||{TEMPLATE_HOST}")
    routes = sections["RoutesConfigDump"]["dynamic_route_configs"]
    rc = find_template(routes, "route_config", lambda r: r["name"] == TEMPLATE_PORT)
    vhost = next(v for v in rc["route_config"]["virtual_hosts"] if TEMPLATE_HOST in v["domains"])
    lb_template = ep["endpoint_config"]["endpoints"][0]["lb_endpoints"][0]

    eds_text = json.dumps(eds, indent=1)
    subset_text = json.dumps(subset, indent=1)
    vhost_text = json.dumps(vhost, indent=1)
    ports = [str(9080 + 100 * i) for i in range(args.ports)]

    def service(i):
        ns = f"ns-{i % 40}"
        name = f"svc-{i}"
        return name, ns, f"{name}.{ns}.svc.cluster.local"

    def retarget(text, host, port):
        # The template's host and port, and its service/namespace in metadata and SANs.
        name, ns = host.split(".")[:2]
        return (text.replace(TEMPLATE_HOST, host).replace(f"|{TEMPLATE_PORT}|", f"|{port}|")
                .replace(f"_.{TEMPLATE_PORT}_.", f"_.{port}_.").replace('"reviews"', json.dumps(name))
                .replace("/ns/default/", f"/ns/{ns}/").replace('"namespace": "default"', f'"namespace": "{ns}"'))

    per_service = None
    n = args.services
    if n is None:
        if not args.target_mb:
            raise SystemExit("gen_dump: give --services or --target-mb")
        probe = 0
        for port in ports:
            probe += len(retarget(eds_text, "x.y.svc.cluster.local", port)) + 2
            probe += args.subsets * (len(retarget(subset_text, "x.y.svc.cluster.local", port)) + 2)
            probe += len(retarget(vhost_text, "x.y.svc.cluster.local", port))
            probe += 600 + args.endpoints * len(json.dumps(lb_template, indent=1)) * 1.3
        per_service = probe * 1.25  # indentation inside the document
        n = max(1, int(args.target_mb * 1e6 / per_service))

    def cluster_entries():
        yield from clusters
        for i in range(n):
            _, _, host = service(i)
            for port in ports:
                yield json.loads(retarget(eds_text, host, port))
                for s in range(args.subsets):
                    text = retarget(subset_text, host, port).replace("|v1|", f"|v{s + 1}|")
                    yield json.loads(text)

    def endpoint_entries():
        yield from eps
        for i in range(n):
            _, _, host = service(i)
            for port in ports:
                lbs = []
                for e in range(args.endpoints):
                    lb = json.loads(json.dumps(lb_template))
                    sa = lb["endpoint"]["address"]["socket_address"]
                    sa["address"] = f"10.{(i >> 8) & 255}.{i & 255}.{e + 1}"
                    sa["port_value"] = int(port)
                    lbs.append(lb)
                entry = json.loads(json.dumps(ep))
                entry["endpoint_config"]["cluster_name"] = f"outbound|{port}||{host}"
                entry["endpoint_config"]["endpoints"] = [{**ep["endpoint_config"]["endpoints"][0], "lb_endpoints": lbs}]
                yield entry

    def route_entries():
        for r in routes:
            if r["route_config"]["name"] in ports or r is rc:
                continue
            yield r
        for port in ports:
            entry = json.loads(json.dumps(rc))
            entry["route_config"]["name"] = port
            entry["route_config"]["virtual_hosts"] = [
                json.loads(retarget(vhost_text, service(i)[2], port).replace(f":{TEMPLATE_PORT}", f":{port}"))
                for i in range(n)
            ]
            yield entry

    growing = {
        ("ClustersConfigDump", "dynamic_active_clusters"): cluster_entries,
        ("EndpointsConfigDump", "dynamic_endpoint_configs"): endpoint_entries,
        ("RoutesConfigDump", "dynamic_route_configs"): route_entries,
    }
    with open(args.out, "w", encoding="utf-8") as out:
        out.write('{\n "configs": [\n')
        for ci, config in enumerate(dump["configs"]):
            kind = config["@type"].rsplit(".", 1)[-1]
            out.write("  {\n")
            keys = list(config)
            for ki, key in enumerate(keys):
                out.write(f"   {json.dumps(key)}: ")
                gen = growing.get((kind, key))
                if gen is None:
                    out.write(dumps(config[key], 3))
                else:
                    out.write("[\n")
                    first = True
                    for entry in gen():
                        if not first:
                            out.write(",\n")
                        out.write("    " + dumps(entry, 4))
                        first = False
                    out.write("\n   ]")
                out.write(",\n" if ki + 1 < len(keys) else "\n")
            out.write("  }" + (",\n" if ci + 1 < len(dump["configs"]) else "\n"))
        out.write(" ]\n}\n")
    size = os.path.getsize(args.out)
    print(f"gen_dump: {n} services x {len(ports)} ports x {args.subsets} subsets, "
          f"{args.endpoints} endpoints each: {size / 1e6:.1f} MB -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
