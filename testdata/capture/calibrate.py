"""Measures a real Envoy's heap on designed configurations: the data Heft's cost model is fitted to.

Usage (with the oracle virtualenv made by scripts/setup.sh):

    .venv/oracle/bin/python testdata/capture/calibrate.py --envoy "$(scripts/envoy-path)" \
        --design fit --out testdata/calibration/fit [--jobs 2] [--only ID,ID] [--list]

For each point of the design it starts our xDS server (`xds_server.py`) and its own Envoy (the point's
`--concurrency`, its stats settings in the bootstrap), serves the point's `mesh.Mesh` over ADS and SDS,
waits until Envoy has acknowledged every type and `/memory` `allocated` has settled (under 64 KiB change
over a second), then writes `OUT/<id>/`:

    point.json          id, set, concurrency, allocated, heap_size, envoy_version, services, stats,
                        the mesh knobs, seconds taken
    config_dump.json.gz /config_dump?include_eds, as Envoy printed it (gzip, mtime 0)

Designs: `fit` varies one factor at a time around a base sidecar mesh, then in combination; `holdout`
holds configurations the fit never sees (other mixes, 500 to 10,000 services, concurrency 2 and 4,
sidecar- and gateway-shaped). `heft calibrate` runs the fit design and fits the model; the accuracy test
runs the holdout design. Every wait has a timeout; Envoy and the server are stopped on every path.
"""

import argparse
import concurrent.futures
import contextlib
import gzip
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from capture import Deadline, Envoy, admin_get, free_port  # noqa: E402
from certs import CertificateAuthority, tls_certificate_secret, validation_context_secret  # noqa: E402
from mesh import Mesh, bootstrap, resources  # noqa: E402
from xds_server import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SHORT_NAMES, XdsServer  # noqa: E402

MEMORY_STEADY_BYTES = 64 * 1024

# --- designs ------------------------------------------------------------------------------------

# The base of the fit design: a sidecar seeing 400 HTTP services with Istio's defaults.
BASE = Mesh(services=400, namespaces=8, ports=((8080, "http"),), endpoints=3)


def fit_design():
    """One factor at a time around BASE, a few at two sizes, then combinations."""
    b = BASE
    points = [
        ("empty", b.but(services=0)),
        ("base", b),
        ("base-200", b.but(services=200)),
        ("base-1600", b.but(services=1600)),
        # Discovery types, each at two sizes so the per-cluster cost is not confounded.
        ("static", b.but(cluster_type="STATIC")),
        ("static-200", b.but(cluster_type="STATIC", services=200)),
        ("strict-dns", b.but(cluster_type="STRICT_DNS", endpoints=1)),
        ("strict-dns-200", b.but(cluster_type="STRICT_DNS", endpoints=1, services=200)),
        ("original-dst", b.but(cluster_type="ORIGINAL_DST", listeners="none")),
        ("original-dst-200", b.but(cluster_type="ORIGINAL_DST", listeners="none", services=200)),
        # Cluster options.
        ("no-tls", b.but(tls="none")),
        ("single-tls", b.but(tls="tls")),
        ("no-http-options", b.but(http_options=False)),
        ("h2", b.but(ports=((8080, "h2"),))),
        ("no-circuit-breakers", b.but(circuit_breakers=False)),
        ("outlier", b.but(outlier_detection=True)),
        ("clusters-only", b.but(listeners="none")),
        ("clusters-only-no-tls", b.but(listeners="none", tls="none", http_options=False)),
        # Endpoints and localities; what an endpoint costs depends on its metadata (Envoy shares one
        # copy of each distinct metadata value), so each count is measured with each kind.
        ("no-endpoints", b.but(endpoints=0)),
        ("endpoints-10", b.but(endpoints=10)),
        ("endpoints-30", b.but(endpoints=30)),
        ("endpoints-10-localities-5", b.but(endpoints=10, localities=5)),
    ] + [
        (f"endpoints-{n}-{meta}-metadata", b.but(endpoints=n, endpoint_metadata=meta))
        for n in (1, 3, 10, 30) for meta in ("tls", "workload", "none")
    ] + [
        ("endpoints-1", b.but(endpoints=1)),
        # Subsets multiply clusters per service.
        ("subsets-2", b.but(subsets=2)),
        ("subsets-4", b.but(subsets=4, services=200)),
        # Listeners, routes and their shapes.
        ("tcp", b.but(ports=((9000, "tcp"),))),
        ("tcp-200", b.but(ports=((9000, "tcp"),), services=200)),
        ("ports-4", b.but(ports=((8080, "http"), (8081, "http"), (8082, "http"), (8083, "http")), services=200)),
        ("ports-http-tcp", b.but(ports=((8080, "http"), (9000, "tcp")))),
        ("domains-2", b.but(domains=2)),
        ("domains-20", b.but(domains=20)),
        ("routes-5", b.but(routes=5)),
        ("routes-20", b.but(routes=20, services=200)),
        ("routes-10-regex", b.but(routes=10, route_match="regex", services=200)),
        ("routes-10-header", b.but(routes=10, route_match="header", services=200)),
        ("routes-5-weighted", b.but(routes=5, route_match="weighted", subsets=2, services=200)),
        # Gateway shape: SNI filter chains, each with its secret.
        ("gateway-sni-100", b.but(services=100, sni_hosts=100)),
        ("gateway-sni-400", b.but(services=100, sni_hosts=400)),
        ("credentials-200", b.but(cluster_credentials=200)),
        ("credentials-200-shared", b.but(cluster_credentials=200, shared_credential=True)),
        # Stats settings and workers.
        ("stats-istio", b.but(stats="istio")),
        ("stats-istio-1600", b.but(stats="istio", services=1600)),
        ("stats-reject-all", b.but(stats="reject_all")),
        ("stats-reject-all-1600", b.but(stats="reject_all", services=1600)),
        ("concurrency-1", b.but(concurrency=1)),
        ("concurrency-4", b.but(concurrency=4)),
        ("concurrency-8", b.but(concurrency=8)),
        ("concurrency-8-endpoints-10", b.but(concurrency=8, endpoints=10)),
        ("empty-concurrency-8", b.but(services=0, concurrency=8)),
        ("base-1600-concurrency-1", b.but(services=1600, concurrency=1)),
        ("base-1600-concurrency-8", b.but(services=1600, concurrency=8)),
        # Combinations.
        ("knative", b.but(services=100, knative_revisions=1, ports=((80, "http"), (9090, "http")))),
        ("mix-a", b.but(services=800, subsets=1, endpoints=5, localities=3, outlier_detection=True,
                        ports=((8080, "http"), (9000, "tcp")), stats="istio", concurrency=4)),
        ("mix-b", b.but(services=600, ports=((80, "h2"), (443, "tcp")), routes=3, domains=4,
                        tls="tls", concurrency=1)),
    ]
    return [(pid, mesh.but(seed=i)) for i, (pid, mesh) in enumerate(points)]


def holdout_design():
    """Configurations the fit never sees: other mixes and sizes, 500 to 10,000 services."""
    sidecar = Mesh(namespaces=20, ports=((8080, "http"), (9090, "http")), endpoints=2, subsets=0)
    points = [
        ("sidecar-500-c2", sidecar.but(services=500)),
        ("sidecar-2000-c4-istio-stats", sidecar.but(services=2000, concurrency=4, stats="istio",
                                                    endpoints=4, localities=2)),
        ("sidecar-4000-c2", sidecar.but(services=4000, ports=((8080, "http"),), endpoints=3)),
        ("sidecar-10000-c2-istio-stats", sidecar.but(services=10000, ports=((8080, "http"),),
                                                     endpoints=1, stats="istio")),
        ("sidecar-1000-c4-subsets", sidecar.but(services=1000, subsets=3, concurrency=4,
                                                outlier_detection=True, routes=2)),
        ("sidecar-2000-c2-tcp-mix", sidecar.but(services=2000, ports=((8080, "http"), (5432, "tcp")),
                                                endpoints=6, localities=3)),
        ("knative-500-c2", sidecar.but(services=500, knative_revisions=1,
                                       ports=((80, "http"), (443, "tcp"), (9090, "http")), endpoints=1)),
        ("gateway-1000-c4", sidecar.but(services=1000, ports=((8080, "http"),), sni_hosts=250,
                                        concurrency=4, routes=3, route_match="header")),
    ]
    return [(pid, mesh.but(seed=100 + i)) for i, (pid, mesh) in enumerate(points)]


def explore_design():
    """The question behind a linear model, kept to ask again of a new Envoy: does the cost per
    service stay the same from 1,000 to 10,000 services? (Envoy 1.40: 69.8, 69.4, 69.4, 69.3 KB.)"""
    scale = BASE.but(endpoints=1, stats="istio", namespaces=20)
    points = [(f"scale-{n}", scale.but(services=n)) for n in (1000, 2500, 5000, 10000)]
    return [(pid, mesh.but(seed=200 + i)) for i, (pid, mesh) in enumerate(points)]


DESIGNS = {"fit": fit_design, "holdout": holdout_design, "explore": explore_design}

# --- measuring one point ------------------------------------------------------------------------


def log(message):
    print(f"calibrate: {message}", file=sys.stderr, flush=True)


def _secrets(names):
    ca = CertificateAuthority()
    chain, key = ca.issue(0xCA11B, uris=["spiffe://cluster.local/ns/default/sa/mesh"])
    out = [tls_certificate_secret("default", chain, key), validation_context_secret("ROOTCA", ca.pem)]
    for i, name in enumerate(names):
        chain, key = ca.issue(0x100000 + i, dns_names=[f"app-{i}.example.com"])
        out.append(tls_certificate_secret(name, chain, key))
    return out


def _uses_sds(built):
    text = json.dumps([built["clusters"], built["listeners"]])
    return '"sds_config"' in text


def _wait_settled(envoy, deadline):
    """Waits until /memory `allocated` moves by under 64 KiB over a second; returns /memory."""
    previous = None
    while True:
        envoy.check_running()
        _, body = admin_get(envoy.admin_port, "/memory", timeout=10)
        memory = json.loads(body)
        allocated = int(memory["allocated"])
        if previous is not None and abs(allocated - previous) < MEMORY_STEADY_BYTES:
            return memory
        previous = allocated
        time.sleep(deadline.left(1.0))


@contextlib.contextmanager
def serving(envoy_binary, mesh, deadline, name, admin_timeout, server_log=lambda _m: None):
    """Serves `mesh` over ADS to a fresh Envoy and yields it once every type it asks for is
    acknowledged (a NACK raises) and it is live; stops both and removes its files on exit."""
    built = resources(mesh)
    typed = {
        CLUSTER: built["clusters"], ENDPOINT: built["endpoints"], LISTENER: built["listeners"],
        ROUTE: built["routes"], SECRET: _secrets(built["secret_names"]),
    }
    workdir = tempfile.mkdtemp(prefix=f"heft-{name}-")
    # Every SDS secret may be its own stream, and each stream holds a server thread.
    server = XdsServer(log=server_log, max_workers=64 + len(typed[SECRET]))
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
        envoy.start(deadline, admin_timeout=admin_timeout)
        for type_url, items in typed.items():
            # Envoy asks only for what its config refers to (no TLS cluster: no SDS at all).
            if not items or (type_url == SECRET and not _uses_sds(built)):
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


def measure(envoy_binary, set_name, point_id, mesh, out_dir, deadline_seconds, verbose=False):
    """Serves `mesh` to a fresh Envoy, waits for ACKs and settled memory, writes OUT/<id>/."""
    started = time.monotonic()
    deadline = Deadline(deadline_seconds)
    server_log = (lambda m: log(f"{point_id}: {m}")) if verbose else (lambda _m: None)
    with serving(envoy_binary, mesh, deadline, f"calibrate-{point_id}", deadline_seconds,
                 server_log) as envoy:
        memory = _wait_settled(envoy, deadline)
        _, info = admin_get(envoy.admin_port, "/server_info", timeout=10)
        info = json.loads(info)
        status, dump = admin_get(envoy.admin_port, "/config_dump?include_eds", timeout=120)
        if status != 200:
            raise RuntimeError(f"/config_dump answered {status}")
        target = os.path.join(out_dir, point_id)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        with open(os.path.join(target, "config_dump.json.gz"), "wb") as f:
            f.write(gzip.compress(dump, compresslevel=9, mtime=0))
        point = {
            "id": point_id, "set": set_name,
            "concurrency": int(info["command_line_options"]["concurrency"]),
            "allocated": int(memory["allocated"]), "heap_size": int(memory["heap_size"]),
            "envoy_version": info["version"].split("/")[1] if "/" in info["version"] else info["version"],
            "services": mesh.services, "stats": mesh.stats, "mesh": mesh.describe(),
            "seconds": round(time.monotonic() - started, 1),
        }
        with open(os.path.join(target, "point.json"), "w") as f:
            json.dump(point, f, indent=1, sort_keys=True)
            f.write("\n")
        log(f"{point_id}: allocated {point['allocated'] / 1e6:.1f} MB, dump {len(dump) / 1e6:.1f} MB, "
            f"{point['seconds']} s")
        return point


def _measure_job(args):
    return measure(*args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", required=True, help="path of the Envoy binary")
    parser.add_argument("--design", required=True, choices=sorted(DESIGNS))
    parser.add_argument("--out", required=True, help="directory for the point directories")
    parser.add_argument("--only", help="comma-separated point ids to measure (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="points measured at once")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds one point may take")
    parser.add_argument("--list", action="store_true", help="print the design's points and stop")
    parser.add_argument("--verbose", action="store_true", help="log every xDS response")
    args = parser.parse_args()

    design = DESIGNS[args.design]()
    if args.list:
        for pid, mesh in design:
            print(pid, json.dumps(mesh.describe(), sort_keys=True))
        return 0
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {pid for pid, _ in design}
        if unknown:
            log(f"no such points in design {args.design}: {', '.join(sorted(unknown))}")
            return 2
        design = [(pid, m) for pid, m in design if pid in wanted]
    os.makedirs(args.out, exist_ok=True)
    jobs = [(args.envoy, args.design, pid, mesh, args.out, args.deadline, args.verbose) for pid, mesh in design]
    started = time.monotonic()
    failed = []
    # Biggest first, so the long points overlap the short ones.
    jobs.sort(key=lambda j: -(j[3].services * max(1, len(j[3].ports)) * (1 + j[3].subsets)))
    context = multiprocessing.get_context("spawn")  # gRPC does not survive fork
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        futures = {pool.submit(_measure_job, job): job[2] for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            try:
                future.result()
            except Exception as error:  # report every failure, then fail
                failed.append(futures[future])
                log(f"{futures[future]}: FAILED: {type(error).__name__}: {error}")
    log(f"{len(jobs) - len(failed)} of {len(jobs)} points measured in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
