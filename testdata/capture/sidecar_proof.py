"""Measures what Istio Sidecar scopes really save, and what a workload's stats really show.

Usage (with the oracle virtualenv made by scripts/setup.sh):

    .venv/oracle/bin/python testdata/capture/sidecar_proof.py --envoy "$(scripts/envoy-path)" \
        --out target/sidecar-proof [--bootstrap envoy|istio-agent] [--no-usage] [--jobs 2]

Memory: a sidecar of namespace `ns-0` in a mesh of services over six namespaces is served to a real
Envoy in full, and once per scope in SCOPES as istiod would scope it (`mesh.in_scope`: Istio's
`namespace/dnsName` egress semantics, written here apart from Heft's own); each is measured like a
calibration point (`calibrate.measure`: `OUT/<id>/point.json` with `allocated`, `egress`, and
`config_dump.json.gz`). `--bootstrap istio-agent` serves them under istio-agent's bootstrap (Istio's
stats inclusion list, deferred stats, deferred cluster creation) instead of Envoy's defaults.

Usage: a smaller mesh whose outbound HTTP listener is bound on 127.0.0.1 and whose endpoints all
answer 200 is sent real requests for the services in CALLED; Envoy's own `/stats?format=json` and
`/stats/prometheus` are then saved beside its dump in `OUT/usage/` (`point.json` lists `called`).
"""

import argparse
import concurrent.futures
import gzip
import http.client
import json
import multiprocessing
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import istio  # noqa: E402
from calibrate import _wait_settled, measure, serving  # noqa: E402
from capture import Deadline, admin_get, free_port  # noqa: E402
from mesh import ISTIO_AGENT, Mesh  # noqa: E402

# Services i live in ns-(i % 6); the workload is in ns-0.
FULL = Mesh(services=900, namespaces=6, ports=((8080, "http"), (9000, "tcp")), subsets=1, endpoints=3,
            workload_namespace="ns-0")
SCOPES = {
    "own-and-ns-1": ("./*", "ns-1/*"),
    "two-hosts-and-a-wildcard": ("ns-2/svc-2.ns-2.svc.cluster.local", "*/svc-4.ns-4.svc.cluster.local",
                                 "*/*.ns-3.svc.cluster.local"),
    "nothing": ("~/*",),
}
# The usage phase: 30 services; the workload calls these (by index) through its outbound listener.
USAGE = Mesh(services=30, namespaces=6, ports=((8080, "http"),), endpoints=2, workload_namespace="ns-0",
             endpoint_metadata="workload")  # plaintext upstreams: no tlsMode, so no mTLS
CALLED = (1, 2, 9, 14)


def log(message):
    print(f"sidecar-proof: {message}", file=sys.stderr, flush=True)


def points(bootstrap):
    full = FULL.but(**ISTIO_AGENT) if bootstrap == "istio-agent" else FULL
    out = [("full", full)]
    out += [(name, full.but(egress=hosts)) for name, hosts in SCOPES.items()]
    return out


def usage_phase(envoy_binary, out_dir, deadline_seconds=300):
    """Serves USAGE with real upstreams, sends requests for CALLED, saves stats and dump."""
    deadline = Deadline(deadline_seconds)
    listen_port, upstream_port = free_port(), free_port()
    mesh = USAGE.but(bind_http_port=listen_port, upstream_port=upstream_port)
    with serving(envoy_binary, mesh, deadline, "sidecar-usage", 60) as envoy:
        called = []
        for index in CALLED:
            host = istio.fqdn(f"svc-{index}", f"ns-{index % mesh.namespaces}")
            for _ in range(3):
                status = _get(listen_port, host, deadline)
                if status != 200:
                    raise RuntimeError(f"GET via {host} answered {status}")
            called.append(host)
        _wait_settled(envoy, deadline, time.monotonic())
        target = os.path.join(out_dir, "usage")
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        for name, path_ in (("stats.json", "/stats?format=json"), ("stats.prom", "/stats/prometheus"),
                            ("config_dump.json", "/config_dump?include_eds")):
            status, body = admin_get(envoy.admin_port, path_, timeout=60)
            if status != 200:
                raise RuntimeError(f"GET {path_} answered {status}")
            with open(os.path.join(target, name + ".gz"), "wb") as f:
                f.write(gzip.compress(body, mtime=0))
        with open(os.path.join(target, "point.json"), "w") as f:
            json.dump({"id": "usage", "called": called, "workload_namespace": mesh.workload_namespace,
                       "mesh": mesh.describe()}, f, indent=1, sort_keys=True)
        log(f"usage: called {len(called)} services through Envoy, stats saved")


def _get(port, host, deadline):
    """One request to the outbound listener, with the service's Host header."""
    end = time.monotonic() + deadline.left(20)
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/", headers={"Host": f"{host}:8080"})
            status = connection.getresponse().status
            connection.close()
            return status
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _measure_job(args):
    envoy, pid, mesh, out = args
    point = measure(envoy, "sidecar-proof", pid, mesh, out, 600)
    with open(os.path.join(out, pid, "point.json")) as f:
        recorded = json.load(f)
    recorded["egress"] = list(mesh.egress) if mesh.egress is not None else None
    recorded["workload_namespace"] = mesh.workload_namespace
    with open(os.path.join(out, pid, "point.json"), "w") as f:
        json.dump(recorded, f, indent=1, sort_keys=True)
    return point


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--bootstrap", choices=("envoy", "istio-agent"), default="envoy",
                        help="Envoy's default bootstrap, or istio-agent's")
    parser.add_argument("--no-usage", action="store_true", help="skip the usage phase")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    failed = []
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        futures = {pool.submit(_measure_job, (args.envoy, pid, mesh, args.out)): pid
                   for pid, mesh in points(args.bootstrap)}
        if not args.no_usage:
            futures[pool.submit(usage_phase, args.envoy, args.out)] = "usage"
        for future in concurrent.futures.as_completed(futures):
            try:
                future.result()
            except Exception as error:
                failed.append(futures[future])
                log(f"{futures[future]}: FAILED: {type(error).__name__}: {error}")
    log(f"done in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
