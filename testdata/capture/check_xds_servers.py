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
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from calibrate import MEMORY_STEADY_BYTES, _secrets, _uses_sds, _wait_settled  # noqa: E402
from capture import Deadline, Envoy, admin_get, free_port  # noqa: E402
from istio import ads  # noqa: E402
from mesh import Mesh, bootstrap, resources  # noqa: E402
from xds_server import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SHORT_NAMES, XdsServer  # noqa: E402
from xds_server_node import NodeXdsServer  # noqa: E402

TOLERANCE = 0.01
# Longer than Envoy's default stats_flush_interval (5 s), so the span holds a flush.
STEADY_SPAN_SECONDS = 7
# (id, mesh, whether SDS is asked for over ADS instead of the bootstrap's `sds-grpc` streams).
POINTS = [
    ("sidecar-200", Mesh(services=200), False),
    ("gateway-sni-50", Mesh(services=100, sni_hosts=50), False),
    ("http-tcp-300-endpoints-5", Mesh(services=300, ports=((8080, "http"), (9000, "tcp")), endpoints=5), False),
    # Over ADS, Envoy names its secrets incrementally (`default`, then `ROOTCA` and `default`) on one
    # stream: a server that answers a type only once leaves the clusters warming for ever.
    ("sidecar-200-sds-over-ads", Mesh(services=200), True),
]
SERVERS = [("python", XdsServer), ("node", NodeXdsServer)]


def log(message):
    print(f"check_xds_servers: {message}", file=sys.stderr, flush=True)


def _sds_over_ads(value):
    if isinstance(value, dict):
        return {k: (ads() if k == "sds_config" else _sds_over_ads(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_sds_over_ads(v) for v in value]
    return value


def typed_resources(mesh, sds_over_ads):
    """What calibrate serves for `mesh`, built once so both servers serve the very same bytes."""
    built = resources(mesh)
    if sds_over_ads:
        built = _sds_over_ads(built)
    typed = {
        CLUSTER: built["clusters"], ENDPOINT: built["endpoints"], LISTENER: built["listeners"],
        ROUTE: built["routes"], SECRET: _secrets(built["secret_names"]),
    }
    return typed, _uses_sds(built)


@contextlib.contextmanager
def serving(server_class, envoy_binary, mesh, typed, uses_sds, deadline, name):
    """calibrate.serving with the server class chosen: pushes every type, starts Envoy, waits for an
    ACK of each type Envoy asks for and for it to be live."""
    workdir = tempfile.mkdtemp(prefix=f"heft-{name}-")
    server = server_class(log=lambda _m: None, max_workers=64 + len(typed[SECRET]))
    envoy = None
    try:
        server.start()
        for type_url, items in typed.items():
            server.push(type_url, "v1", items)
        admin_port = free_port()
        path = os.path.join(workdir, "bootstrap.json")
        with open(path, "w") as f:
            json.dump(bootstrap(mesh, admin_port, server.port), f)
        envoy = Envoy(envoy_binary, path, workdir, admin_port, concurrency=mesh.concurrency)
        envoy.start(deadline, admin_timeout=120)
        for type_url, items in typed.items():
            if not items or (type_url == SECRET and not uses_sds):
                continue
            envoy.check_running()
            nacks = server.wait_settled(type_url, "ack", timeout=deadline.left(600))
            if nacks:
                raise RuntimeError(f"{SHORT_NAMES[type_url]} NACKed: {nacks[0]}")
        envoy.wait_live(deadline)
        yield envoy
    except BaseException:
        if envoy is not None:
            log(f"{name}: Envoy log tail:\n{envoy.log_tail()}")
        raise
    finally:
        if envoy is not None:
            envoy.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def dump_summary(dump):
    """Counts of what /config_dump holds, and the names of anything still warming."""
    counts = {}
    warming = []
    for config in dump["configs"]:
        kind = config["@type"].rsplit(".", 1)[-1]
        if kind == "ClustersConfigDump":
            counts["clusters"] = len(config.get("dynamic_active_clusters", []))
            warming += [f"cluster {c['cluster']['name']}" for c in config.get("dynamic_warming_clusters", [])]
        elif kind == "ListenersConfigDump":
            listeners = config.get("dynamic_listeners", [])
            counts["listeners"] = sum(1 for item in listeners if "active_state" in item)
            warming += [f"listener {item['name']}" for item in listeners if "warming_state" in item]
        elif kind == "SecretsConfigDump":
            counts["secrets"] = len(config.get("dynamic_active_secrets", []))
            warming += [f"secret {s['name']}" for s in config.get("dynamic_warming_secrets", [])]
        elif kind == "RoutesConfigDump":
            counts["routes"] = len(config.get("dynamic_route_configs", []))
        elif kind == "EndpointsConfigDump":
            counts["endpoints"] = len(config.get("dynamic_endpoint_configs", []))
    return counts, warming


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


def measure(server_class, envoy_binary, point_id, mesh, typed, uses_sds, server_name):
    deadline = Deadline(900)
    started = time.monotonic()
    with serving(server_class, envoy_binary, mesh, typed, uses_sds, deadline,
                 f"xdscheck-{point_id}-{server_name}") as envoy:
        calibrate_allocated = int(_wait_settled(envoy, deadline, time.monotonic())["allocated"])
        allocated = _wait_steady(envoy, deadline)
        status, body = admin_get(envoy.admin_port, "/config_dump?include_eds", timeout=120)
        if status != 200:
            raise RuntimeError(f"/config_dump answered {status}")
        counts, warming = dump_summary(json.loads(body))
    log(f"{point_id} [{server_name}]: allocated {calibrate_allocated} (calibrate's wait), {allocated} "
        f"(steady), {counts}, {len(warming)} warming, {time.monotonic() - started:.0f} s")
    return (calibrate_allocated, allocated), counts, warming


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
    for point_id, mesh, sds_over_ads in points:
        typed, uses_sds = typed_resources(mesh, sds_over_ads)
        results = {name: measure(cls, envoy_binary, point_id, mesh, typed, uses_sds, name)
                   for name, cls in SERVERS}
        (py_alloc, py_counts, py_warming), (node_alloc, node_counts, node_warming) = \
            results["python"], results["node"]
        rows.append((point_id, "calibrate", py_alloc[0], node_alloc[0]))
        rows.append((point_id, "steady", py_alloc[1], node_alloc[1]))
        difference = (node_alloc[1] - py_alloc[1]) / py_alloc[1]
        for name, (_, _, warming) in results.items():
            if warming:
                failures.append(f"{point_id} [{name}]: warming: {', '.join(warming[:5])}")
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
