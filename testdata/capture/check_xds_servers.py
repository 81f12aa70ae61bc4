"""Cross-checks the two xDS servers: serves the same configurations to fresh Envoys once through
`xds_server.XdsServer` (Python, grpcio) and once through `xds_server_node.NodeXdsServer` (Node,
grpc-js), waiting as calibration does, and compares what Envoy ends up holding and its `allocated`.

Usage (with the virtualenvs and node_modules made by scripts/setup.sh):

    .venv/oracle/bin/python testdata/capture/check_xds_servers.py [--envoy PATH] [--only ID,ID]

A harness quirk (a type answered once, a name never served, a resource left warming) shows up as a
warming resource, a different resource count, or a gap in `allocated`. Exits 1 if anything is warming,
the counts differ, or a pair's steady `allocated` differs by more than 1%.

Two readings of `allocated` are printed: calibrate's (`_wait_settled`: two reads a second apart within
64 KiB) and a steady one (no such change over a span longer than Envoy's 5 s stats flush interval).
They differ: `allocated` drops once, at the first stats flush after the config lands (the drop moves
with `stats_flush_interval`), by about 2 KB a cluster (0.4 MB at 200 services, 4 MB at 2,000), and
calibrate's wait, done within a few seconds of Envoy going live, often reads before it.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from calibrate import (MEMORY_STEADY_BYTES, _config_dump, _pki, _wait_settled, expected_warming,  # noqa: E402
                       serving, warming)
from capture import Deadline, admin_get  # noqa: E402
from mesh import Mesh, resources  # noqa: E402

TOLERANCE = 0.01
# Longer than Envoy's default stats_flush_interval (5 s), so the span holds a flush.
STEADY_SPAN_SECONDS = 7
POINTS = [
    ("sidecar-200", Mesh(services=200)),
    ("gateway-sni-50", Mesh(services=100, sni_hosts=50)),
    ("http-tcp-300-endpoints-5", Mesh(services=300, ports=((8080, "http"), (9000, "tcp")), endpoints=5)),
    # Over ADS, Envoy names its secrets incrementally (`default`, then `ROOTCA` and `default`) on one
    # stream: a server that answers a type only once leaves the clusters warming for ever.
    ("sidecar-200-sds-over-ads", Mesh(services=200, sds="ads")),
]
SERVERS = ["python", "node"]


def log(message):
    print(f"check_xds_servers: {message}", file=sys.stderr, flush=True)


def active_counts(dump):
    """Counts of what /config_dump holds active (warming is `calibrate.warming`'s)."""
    counts = {}
    for config in json.loads(dump)["configs"]:
        kind = config["@type"].rsplit(".", 1)[-1]
        if kind == "ClustersConfigDump":
            counts["clusters"] = len(config.get("dynamic_active_clusters", []))
        elif kind == "ListenersConfigDump":
            listeners = config.get("dynamic_listeners", [])
            counts["listeners"] = sum(1 for item in listeners if "active_state" in item)
        elif kind == "SecretsConfigDump":
            counts["secrets"] = len(config.get("dynamic_active_secrets", []))
        elif kind == "RoutesConfigDump":
            counts["routes"] = len(config.get("dynamic_route_configs", []))
        elif kind == "EndpointsConfigDump":
            counts["endpoints"] = len(config.get("dynamic_endpoint_configs", []))
    return counts


def _wait_steady(envoy, deadline):
    """Waits until /memory `allocated` stays within 64 KiB over STEADY_SPAN_SECONDS; returns it."""
    readings = []
    while True:
        envoy.check_running()
        _, body = admin_get(envoy.admin_port, "/memory", timeout=10)
        readings = readings[-STEADY_SPAN_SECONDS:] + [int(json.loads(body)["allocated"])]
        if len(readings) > STEADY_SPAN_SECONDS and max(readings) - min(readings) < MEMORY_STEADY_BYTES:
            return readings[-1]
        time.sleep(deadline.left(1.0))


def measure(server_name, envoy_binary, point_id, mesh, pki):
    """One server's reading of a point: (calibrate's and the steady `allocated`), the active
    counts, and what is warming beyond what the point intends (empty when all is built)."""
    deadline = Deadline(900)
    started = time.monotonic()
    with serving(envoy_binary, mesh, deadline, f"xdscheck-{point_id}-{server_name}", 120,
                 server=server_name, pki=pki) as envoy:
        calibrate_allocated = int(_wait_settled(envoy, deadline, time.monotonic())["allocated"])
        allocated = _wait_steady(envoy, deadline)
        dump = _config_dump(envoy)
        seen, want = warming(dump), expected_warming(mesh, envoy.built)
        unintended = [] if seen == want else [f"{seen}, expected {want}"]
        counts = active_counts(dump)
    log(f"{point_id} [{server_name}]: allocated {calibrate_allocated} (calibrate's wait), {allocated} "
        f"(steady), {counts}, warming {seen}, {time.monotonic() - started:.0f} s")
    return (calibrate_allocated, allocated), counts, unintended


def envoy_path():
    script = os.path.join(HERE, "..", "..", "scripts", "envoy-path")
    return subprocess.run([script], check=True, capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", help="path of the Envoy binary (default: scripts/envoy-path)")
    parser.add_argument("--only", help="comma-separated point ids (default: all)")
    args = parser.parse_args()
    envoy_binary = args.envoy or envoy_path()
    points = POINTS
    if args.only:
        wanted = set(args.only.split(","))
        points = [point for point in POINTS if point[0] in wanted]
        if len(points) != len(wanted):
            log(f"known points: {', '.join(point[0] for point in POINTS)}")
            return 2

    failures = []
    rows = []
    for point_id, mesh in points:
        # One set of certificates for both servers, so they serve the very same bytes.
        pki = _pki(mesh, resources(mesh)["secret_names"])
        results = {name: measure(name, envoy_binary, point_id, mesh, pki) for name in SERVERS}
        (py_alloc, py_counts, py_warming), (node_alloc, node_counts, node_warming) = \
            results["python"], results["node"]
        rows.append((point_id, "calibrate", py_alloc[0], node_alloc[0]))
        rows.append((point_id, "steady", py_alloc[1], node_alloc[1]))
        difference = (node_alloc[1] - py_alloc[1]) / py_alloc[1]
        for name, (_, _, warming) in results.items():
            if warming:
                failures.append(f"{point_id} [{name}]: warming: {warming[0]}")
        if py_counts != node_counts:
            failures.append(f"{point_id}: dumps hold different counts: python {py_counts}, node {node_counts}")
        if abs(difference) > TOLERANCE:
            failures.append(f"{point_id}: allocated differs by {difference:+.2%}")

    print(f"{'point':<28} {'reading':<10} {'python allocated':>17} {'node allocated':>15} {'difference':>11}")
    for point_id, reading, py_alloc, node_alloc in rows:
        print(f"{point_id:<28} {reading:<10} {py_alloc:>17,} {node_alloc:>15,} "
              f"{(node_alloc - py_alloc) / py_alloc:>+11.3%}")
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
