"""Measures a real Envoy's heap on designed configurations: the data Heft's cost model is fitted to.

Usage (with the virtualenvs made by scripts/setup.sh):

    .venv/oracle/bin/python testdata/capture/calibrate.py --envoy 1.40.0 \
        --design fit --out testdata/calibration/envoy-1.40.0/fit [--jobs 2] [--only ID,ID] [--list] \
        [--server python|node]

`--envoy` is a binary's path or a version `scripts/envoy-path` knows. For each point of the design it
starts an xDS server (`--server`: `xds_server.XdsServer`, or the independent Node.js one,
`xds_server_node.NodeXdsServer`) and its own Envoy (the point's `--concurrency`, its stats settings and
deferrals in the bootstrap), serves the point's `mesh.Mesh` over ADS and SDS, waits until Envoy has
acknowledged every type, until nothing is warming that the point does not intend (only a point with
`root_secret="warming"` leaves ROOTCA warming) and until `/memory` `allocated` has settled (a stats
flush after the last change, then under 64 KiB change over a second). A traffic point (`traffic_services`) then sends real requests through Envoy to
that many services, whose endpoints answer on 127.0.0.1 (over mTLS when Envoy's clusters use it), and
waits for memory to settle again. It writes `OUT/<id>/`:

    point.json          id, set, concurrency, allocated (final), allocated_idle (before traffic),
                        heap_size, total_physical_bytes, envoy_version, server, warming (counts of
                        warming clusters, listeners and secrets in the dump, and the secrets' names),
                        requests sent, traffic_hosts (the called services), services, stats,
                        the mesh knobs, seconds taken
    config_dump.json.gz /config_dump?include_eds, as Envoy printed it (gzip, mtime 0)
    stats.json.gz       /stats?format=json, at the same moment

Designs: `fit` varies one factor at a time around a base sidecar mesh, then in combination; `holdout`
holds configurations the fit never sees (other mixes, 500 to 10,000 services, concurrency 2 and 4,
sidecar- and gateway-shaped); `holdout-istio` holds istio-agent sidecars the fit never sees (Envoy
defaults against istio-agent's bootstrap, idle and after traffic, a warming root); `ci` is four holdout
points small enough to measure on every Envoy version in CI. `heft calibrate` runs the fit design and
fits the model; the accuracy test runs the holdout designs. Every wait has a timeout; Envoy, the
upstreams and the server are stopped on every path.
"""

import argparse
import concurrent.futures
import contextlib
import gzip
import http.client
import http.server
import json
import multiprocessing
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from capture import Deadline, Envoy, admin_get, free_port  # noqa: E402
from certs import CertificateAuthority, tls_certificate_secret, validation_context_secret  # noqa: E402
import istio  # noqa: E402
from mesh import HTTP_PROTOCOLS, ISTIO_AGENT, Mesh, _service_names, bootstrap, resources  # noqa: E402
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
    ] + istio_fit_points(b)
    return [(pid, mesh.but(seed=i)) for i, (pid, mesh) in enumerate(points)]


def istio_fit_points(b):
    """What Istio's sidecars really run (issue #22), one factor at a time around BASE, appended
    after the original points so those keep their ids and seeds: istio-agent's bootstrap
    deferrals, a root secret left warming, certificate material, endpoint metadata cardinality,
    options istiod always sets, secrets over ADS, and traffic."""
    agent = b.but(**ISTIO_AGENT)
    return [
        # Deferred stats, with every stat and with Istio's inclusion list.
        ("deferred-stats-200", b.but(services=200, deferred_stats=True)),
        ("deferred-stats", b.but(deferred_stats=True)),
        ("deferred-stats-1600", b.but(services=1600, deferred_stats=True)),
        ("stats-istio-deferred", b.but(stats="istio", deferred_stats=True)),
        ("stats-istio-deferred-1600", b.but(stats="istio", deferred_stats=True, services=1600)),
        ("stats-istio-deferred-c4", b.but(stats="istio", deferred_stats=True, concurrency=4)),
        # Deferred cluster creation: what workers skip, so at several worker counts.
        ("deferred-clusters-200", b.but(services=200, deferred_clusters=True)),
        ("deferred-clusters", b.but(deferred_clusters=True)),
        ("deferred-clusters-c4", b.but(deferred_clusters=True, concurrency=4)),
        ("deferred-clusters-1600", b.but(services=1600, deferred_clusters=True)),
        ("deferred-clusters-c8", b.but(deferred_clusters=True, concurrency=8)),
        # The whole istio-agent bootstrap (inclusion list + both deferrals).
        ("istio-agent-200", agent.but(services=200)),
        ("istio-agent", agent),
        ("istio-agent-1600", agent.but(services=1600)),
        ("istio-agent-c4", agent.but(concurrency=4)),
        ("istio-agent-1600-c4", agent.but(services=1600, concurrency=4)),
        ("istio-agent-empty", agent.but(services=0)),
        # ROOTCA never served: it stays warming and the clusters build no upstream TLS context.
        ("root-warming-200", b.but(services=200, root_secret="warming")),
        ("root-warming", b.but(root_secret="warming")),
        # Certificate material (the workload certificate, its CA, the trust bundle).
        ("rsa-2048", b.but(cert_key="rsa-2048")),
        ("rsa-2048-200", b.but(cert_key="rsa-2048", services=200)),
        ("rsa-4096", b.but(cert_key="rsa-4096")),
        ("chain-2", b.but(cert_chain=2)),
        ("chain-2-200", b.but(cert_chain=2, services=200)),
        ("trust-bundle-3", b.but(trust_bundle=3)),
        ("trust-bundle-3-200", b.but(trust_bundle=3, services=200)),
        # How many distinct workload metadata values the endpoints carry.
        ("metadata-shared", b.but(metadata_values="shared")),
        ("metadata-shared-endpoints-10", b.but(metadata_values="shared", endpoints=10)),
        ("metadata-per-endpoint-endpoints-10", b.but(metadata_values="per_endpoint", endpoints=10)),
        ("metadata-per-endpoint-endpoints-30", b.but(metadata_values="per_endpoint", endpoints=30)),
        ("metadata-shared-endpoints-30", b.but(metadata_values="shared", endpoints=30)),
        # Options istiod always sets, each off alone.
        ("no-track-remaining", b.but(track_remaining=False)),
        ("no-retry-policy", b.but(retry_policy=False)),
        ("no-decorator", b.but(decorator=False)),
        ("no-max-stream-duration", b.but(max_stream_duration=False)),
        # Secrets over the ADS stream instead of the sds-grpc cluster (Istio's).
        ("sds-ads", b.but(sds="ads")),
        ("sds-ads-200", b.but(sds="ads", services=200)),
        # Traffic: 3 requests to each of 100 of the 400 services, then settled again.
        ("traffic-100", b.but(traffic_services=100)),
        ("traffic-100-deferred-stats", b.but(traffic_services=100, deferred_stats=True)),
        ("traffic-100-istio-agent", agent.but(traffic_services=100)),
        ("traffic-100-istio-agent-c4", agent.but(traffic_services=100, concurrency=4)),
        ("traffic-200-istio-agent", agent.but(traffic_services=200)),
        # What a TLS context costs apart from its stats: with Istio's list its stats are names
        # rejected, so the context costs less than with every stat kept.
        ("root-warming-istio-agent", agent.but(root_secret="warming")),
        ("no-tls-istio-agent", agent.but(tls="none")),
        ("no-tls-stats-istio", b.but(tls="none", stats="istio")),
        # Outlier detection's stats are made with the detector (never deferred) and Istio's list
        # rejects them, so what the detector costs differs between the two stats settings.
        ("outlier-stats-istio", b.but(outlier_detection=True, stats="istio")),
        ("outlier-istio-agent", agent.but(outlier_detection=True)),
        # TCP proxy listeners (one per service) under Istio's list, which rejects their stats.
        ("tcp-stats-istio", b.but(ports=((9000, "tcp"),), stats="istio")),
        ("tcp-istio-agent", agent.but(ports=((9000, "tcp"),))),
        ("tcp-istio-agent-c4", agent.but(ports=((9000, "tcp"),), concurrency=4)),
        # Several clusters per service (a subset, a second port) and one metadata value for every
        # endpoint, under istio-agent's bootstrap: what the endpoints of a service's second
        # cluster cost when workers build no copy of it.
        ("subsets-istio-agent", agent.but(subsets=1)),
        ("ports-http-tcp-istio-agent", agent.but(ports=((8080, "http"), (9000, "tcp")))),
        ("metadata-shared-istio-agent", agent.but(metadata_values="shared")),
        ("metadata-shared-subsets-istio-agent", agent.but(metadata_values="shared", subsets=1)),
    ]


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


def holdout_istio_design():
    """Istio-agent sidecars the fit never sees, built apart from its grid: other sizes (500 to
    3,000 services) and mixes, a Knative mesh and a gateway, each with Envoy's defaults and with
    istio-agent's bootstrap (inclusion list + deferred stats, with and without deferred clusters),
    at concurrency 2 and 4, idle and after traffic to a fraction of the services, and with the root
    secret left warming."""
    agent = dict(stats="istio", deferred_stats=True)  # istio-agent without a cluster_manager block
    agent_dc = dict(ISTIO_AGENT)
    sidecar = Mesh(namespaces=12, ports=((8080, "http"), (9080, "http")), endpoints=2, localities=2)
    mixed = Mesh(namespaces=30, ports=((8080, "http"), (5432, "tcp")), endpoints=4, subsets=1,
                 outlier_detection=True)
    knative = Mesh(namespaces=6, ports=((80, "http"), (9090, "http")), knative_revisions=2, endpoints=1)
    gateway = Mesh(namespaces=10, ports=((8080, "http"),), endpoints=3, sni_hosts=120, routes=2)
    points = [
        ("istio-sidecar-700-defaults-c2", sidecar.but(services=700)),
        ("istio-sidecar-700-agent-c2", sidecar.but(services=700, **agent)),
        ("istio-sidecar-700-agent-dc-c2", sidecar.but(services=700, **agent_dc)),
        ("istio-sidecar-2500-defaults-c4", sidecar.but(services=2500, ports=((8080, "http"),), concurrency=4)),
        ("istio-sidecar-2500-agent-c4", sidecar.but(services=2500, ports=((8080, "http"),), concurrency=4,
                                                    **agent)),
        ("istio-sidecar-2500-agent-dc-c4", sidecar.but(services=2500, ports=((8080, "http"),), concurrency=4,
                                                       **agent_dc)),
        ("istio-mixed-900-agent-c4", mixed.but(services=900, concurrency=4, **agent)),
        ("istio-mixed-900-agent-dc-c2", mixed.but(services=900, **agent_dc, metadata_values="shared")),
        ("istio-knative-150-defaults-c2", knative.but(services=150)),
        ("istio-knative-150-agent-dc-c4", knative.but(services=150, concurrency=4, **agent_dc)),
        ("istio-gateway-600-defaults-c4", gateway.but(services=600, concurrency=4)),
        ("istio-gateway-600-agent-c2", gateway.but(services=600, cert_key="rsa-2048", **agent)),
        ("istio-traffic-1200-defaults-c2", sidecar.but(services=1200, traffic_services=150)),
        ("istio-traffic-1200-agent-c2", sidecar.but(services=1200, traffic_services=300, **agent)),
        ("istio-traffic-1200-agent-dc-c4", sidecar.but(services=1200, traffic_services=200, concurrency=4,
                                                       **agent_dc)),
        ("istio-root-warming-1000-agent-c2", sidecar.but(services=1000, root_secret="warming", **agent)),
    ]
    return [(pid, mesh.but(seed=300 + i)) for i, (pid, mesh) in enumerate(points)]


# The holdout points CI measures on every Envoy version (about a minute each with --jobs 2).
CI_POINTS = ("sidecar-500-c2", "istio-sidecar-700-agent-c2", "istio-knative-150-agent-dc-c4",
             "istio-traffic-1200-agent-dc-c4")


def ci_design():
    """A few holdout and holdout-istio points, small enough for CI on every Envoy version."""
    every = dict(holdout_design() + holdout_istio_design())
    return [(pid, every[pid]) for pid in CI_POINTS]


def explore_design():
    """The question behind a linear model, kept to ask again of a new Envoy: does the cost per
    service stay the same from 1,000 to 10,000 services? (Envoy 1.40: 69.8, 69.4, 69.4, 69.3 KB.)"""
    scale = BASE.but(endpoints=1, stats="istio", namespaces=20)
    points = [(f"scale-{n}", scale.but(services=n)) for n in (1000, 2500, 5000, 10000)]
    return [(pid, mesh.but(seed=200 + i)) for i, (pid, mesh) in enumerate(points)]


DESIGNS = {"fit": fit_design, "holdout": holdout_design, "holdout-istio": holdout_istio_design,
           "ci": ci_design, "explore": explore_design}

# --- measuring one point ------------------------------------------------------------------------


def log(message):
    print(f"calibrate: {message}", file=sys.stderr, flush=True)


def _pki(mesh, names=()):
    """The point's certificates: (the CA that issues leaves, [SDS Secret]). `default` is the
    workload certificate (mesh.cert_key, via an intermediate when mesh.cert_chain is 2), ROOTCA the
    trust bundle (mesh.trust_bundle roots; left out when mesh.root_secret is "warming"), then one
    certificate per name (gateway and DestinationRule credentials)."""
    key = mesh.cert_key if mesh else "ec-p256"
    chain = mesh.cert_chain if mesh else 1
    bundle = mesh.trust_bundle if mesh else 1
    if chain not in (1, 2) or bundle < 1:
        raise ValueError(f"cert_chain must be 1 or 2 and trust_bundle at least 1 ({chain}, {bundle})")
    root = CertificateAuthority(key_type=key)
    issuer = root if chain == 1 else CertificateAuthority(
        organization="intermediate.cluster.local", serial=0x1A57C0DF, key_type=key, parent=root)
    roots = root.pem + "".join(
        CertificateAuthority(organization=f"other-{n}.cluster.local", serial=0x1A57C100 + n, key_type=key).pem
        for n in range(1, bundle))
    leaf, leaf_key = issuer.issue(0xCA11B, uris=["spiffe://cluster.local/ns/default/sa/mesh"])
    out = [tls_certificate_secret("default", leaf, leaf_key)]
    if not mesh or mesh.root_secret == "served":
        out.append(validation_context_secret("ROOTCA", roots))
    elif mesh.root_secret != "warming":
        raise ValueError(f"root_secret must be 'served' or 'warming', not {mesh.root_secret!r}")
    for i, name in enumerate(names):
        cert, cert_key = issuer.issue(0x100000 + i, dns_names=[f"app-{i}.example.com"])
        out.append(tls_certificate_secret(name, cert, cert_key))
    return issuer, out


def _secrets(names, mesh=None):
    """The SDS secrets served for `mesh` (today's defaults without one); see `_pki`."""
    return _pki(mesh, names)[1]


def _uses_sds(built):
    text = json.dumps([built["clusters"], built["listeners"]])
    return '"sds_config"' in text


# Envoy's default stats_flush_interval. The first flush after a configuration arrives frees about
# 2 KB per cluster, so `allocated` is read only once a flush has passed since the last change.
STATS_FLUSH_SECONDS = 5.0


def _wait_settled(envoy, deadline, changed_at):
    """Waits until a stats flush has passed since `changed_at` (time.monotonic()) and /memory
    `allocated` then moves by under 64 KiB over a second; returns /memory."""
    time.sleep(max(0.0, min(deadline.left(60), changed_at + STATS_FLUSH_SECONDS + 0.5 - time.monotonic())))
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


SERVERS = ("python", "node")


def server_class(kind):
    """The xDS server implementation: "python" (xds_server.XdsServer) or "node"
    (xds_server_node.NodeXdsServer, the independent Node.js one), imported only when asked for."""
    if kind == "python":
        return XdsServer
    if kind == "node":
        try:
            from xds_server_node import NodeXdsServer
        except ImportError as error:
            raise RuntimeError(f"--server node: testdata/capture/xds_server_node.py is missing or broken "
                               f"({error})") from error
        return NodeXdsServer
    raise ValueError(f"unknown xDS server {kind!r} (one of {', '.join(SERVERS)})")


def _config_dump(envoy, query="include_eds"):
    status, dump = admin_get(envoy.admin_port, f"/config_dump?{query}", timeout=120)
    if status != 200:
        raise RuntimeError(f"/config_dump?{query} answered {status}")
    return dump


def warming(dump):
    """{clusters, listeners, secrets: count} of what a /config_dump shows warming, and the names of
    the warming secrets."""
    counts = {"clusters": 0, "listeners": 0, "secrets": 0}
    secrets = []
    for config in json.loads(dump).get("configs", []):
        kind = config.get("@type", "").rsplit(".", 1)[-1]
        if kind == "ClustersConfigDump":
            counts["clusters"] += len(config.get("dynamic_warming_clusters", []))
        elif kind == "ListenersConfigDump":
            counts["listeners"] += sum(1 for listener in config.get("dynamic_listeners", [])
                                       if "warming_state" in listener)
        elif kind == "SecretsConfigDump":
            found = config.get("dynamic_warming_secrets", [])
            counts["secrets"] += len(found)
            secrets += [s.get("name") for s in found]
    return counts, sorted(secrets)


def expected_warming(mesh, built):
    """What a point means to leave warming: ROOTCA with a warming root secret, when anything
    refers to it; nothing else."""
    refers = '"ROOTCA"' in json.dumps([built["clusters"], built["listeners"]])
    warming_secrets = ["ROOTCA"] if mesh.root_secret == "warming" and refers else []
    return {"clusters": 0, "listeners": 0, "secrets": len(warming_secrets)}, warming_secrets


def _wait_not_warming(envoy, mesh, built, deadline):
    """Waits until the dump shows exactly the warming the point intends (clusters waiting for a
    never-served secret go active after their initial_fetch_timeout); returns the last dump."""
    want = expected_warming(mesh, built)
    while True:
        envoy.check_running()
        dump = _config_dump(envoy)
        seen = warming(dump)
        if seen == want:
            return dump
        if deadline.end - time.monotonic() < 2:
            raise RuntimeError(f"warming: {seen}, expected {want}")
        time.sleep(deadline.left(1.0))


@contextlib.contextmanager
def serving(envoy_binary, mesh, deadline, name, admin_timeout, server_log=lambda _m: None, server="python",
            pki=None):
    """Serves `mesh` over ADS to a fresh Envoy and yields it once every type it asks for is
    acknowledged (a NACK raises) and it is live; stops both and removes its files on exit.
    `pki` is `_pki(mesh, ...)` when the caller needs the issuing CA too."""
    built = resources(mesh)
    issuer, secrets = pki if pki is not None else _pki(mesh, built["secret_names"])
    typed = {
        CLUSTER: built["clusters"], ENDPOINT: built["endpoints"], LISTENER: built["listeners"],
        ROUTE: built["routes"], SECRET: secrets,
    }
    workdir = tempfile.mkdtemp(prefix=f"heft-{name}-")
    # Every SDS secret may be its own stream, and each stream holds a server thread.
    xds = server_class(server)(log=server_log, max_workers=64 + len(typed[SECRET]))
    envoy = None
    try:
        xds.start()
        for type_url, items in typed.items():
            xds.push(type_url, "v1", items)
        admin_port = free_port()
        path = os.path.join(workdir, "bootstrap.json")
        with open(path, "w") as f:
            json.dump(bootstrap(mesh, admin_port, xds.port), f)
        envoy = Envoy(envoy_binary, path, workdir, admin_port, concurrency=mesh.concurrency)
        envoy.start(deadline, admin_timeout=admin_timeout)
        for type_url, items in typed.items():
            # Envoy asks only for what its config refers to (no TLS cluster: no SDS at all).
            if not items or (type_url == SECRET and not _uses_sds(built)):
                continue
            envoy.check_running()
            nacks = xds.wait_settled(type_url, "ack", timeout=deadline.left(600))
            if nacks:
                raise RuntimeError(f"{SHORT_NAMES[type_url]} NACKed: {nacks[0]}")
        envoy.wait_live(deadline)
        envoy.built = built
        envoy.workdir = workdir
        yield envoy
    except BaseException:
        if envoy is not None:
            log(f"{name}: Envoy log tail:\n{envoy.log_tail()}")
        raise
    finally:
        if envoy is not None:
            envoy.stop()
        xds.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# --- traffic ------------------------------------------------------------------------------------

TRAFFIC_REQUESTS = 3  # per called service
UPSTREAM_BODY = b"heft upstream ok\n"


def called_services(mesh):
    """The (service, namespace) pairs a traffic point sends requests to: the first
    `traffic_services` of the mesh, in its order (Knative twins included)."""
    return _service_names(mesh)[:mesh.traffic_services]


def _upstream_tls(mesh):
    """Whether Envoy reaches the called endpoints over TLS (their metadata selects tlsMode-istio,
    or the cluster has one TLS socket)."""
    return mesh.tls == "tls" or (mesh.tls == "istio" and mesh.endpoint_metadata in ("full", "tls"))


class _UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real upstream: Envoy keeps its pools
    timeout = 900

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(UPSTREAM_BODY)))
        self.send_header("x-heft-upstream", str(self.server.server_address[1]))
        self.end_headers()
        self.wfile.write(UPSTREAM_BODY)

    def log_message(self, *_args):
        pass


class Upstreams:
    """The called services' endpoints: one HTTP server per endpoint index e on 127.0.0.1:base+e,
    outside Envoy (so its memory is the sidecar's alone); over TLS with a certificate the mesh CA
    issued for every called service's SPIFFE identity when Envoy's clusters use mTLS."""

    def __init__(self, count):
        self.count = max(1, count)
        self.servers = []
        self.serving = False
        for _attempt in range(50):
            base = free_port()
            try:
                for e in range(self.count):
                    self.servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", base + e), _UpstreamHandler))
            except OSError:
                self.close()
                continue
            self.port = base
            return
        raise RuntimeError(f"no {self.count} consecutive free ports on 127.0.0.1")

    def serve(self, issuer=None, services=(), workdir=None):
        if issuer is not None:
            # One certificate per called service, picked by the SNI Envoy sends (`outbound_.<port>_.
            # <subset>_.<fqdn>`), each naming only that service's identity, as a real Istio upstream
            # presents: Envoy keeps the peer certificate of every pooled connection, so one shared
            # certificate naming every called service made each connection cost more the more
            # services were called.
            contexts = {}
            for i, (svc, ns) in enumerate(services):
                chain, key = issuer.issue(0x5E7E + i, uris=[istio.spiffe(ns, svc)], common_name="upstream")
                cert_path = os.path.join(workdir, f"upstream-{i}.pem")
                key_path = os.path.join(workdir, f"upstream-{i}.key")
                with open(cert_path, "w") as f:
                    f.write(chain)
                with open(key_path, "w") as f:
                    f.write(key)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(cert_path, key_path)
                contexts[istio.fqdn(svc, ns)] = context

            def pick(connection, server_name, _context):
                chosen = contexts.get((server_name or "").rpartition("_.")[2])
                if chosen is None:
                    return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
                connection.context = chosen
                return None

            front = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            front.load_cert_chain(cert_path, key_path)
            front.sni_callback = pick
            for server in self.servers:
                server.socket = front.wrap_socket(server.socket, server_side=True)
        for server in self.servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name=f"upstream-{server.server_address[1]}",
                             daemon=True).start()
        self.serving = True

    def close(self):
        for server in self.servers:
            if self.serving:
                server.shutdown()
            server.server_close()
        self.servers = []
        self.serving = False


def _request(port, host, deadline):
    """One GET through Envoy's outbound listener with the service's Host; (status, headers, body)."""
    end = time.monotonic() + deadline.left(30)
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            connection.request("GET", "/", headers={"Host": host})
            response = connection.getresponse()
            result = response.status, dict(response.getheaders()), response.read()
            connection.close()
            return result
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def send_traffic(mesh, listen_port, deadline):
    """TRAFFIC_REQUESTS GETs to each called service through Envoy; every one must be answered 200
    by an upstream (not by Envoy). Returns how many were sent."""
    http_port = next(port for port, protocol in mesh.ports if protocol in HTTP_PROTOCOLS)
    sent = 0
    for service, namespace in called_services(mesh):
        host = f"{istio.fqdn(service, namespace)}:{http_port}"
        for _ in range(TRAFFIC_REQUESTS):
            status, headers, body = _request(listen_port, host, deadline)
            upstream = {k.lower(): v for k, v in headers.items()}.get("x-heft-upstream")
            if status != 200 or body != UPSTREAM_BODY or not upstream:
                raise RuntimeError(f"GET via {host} answered {status} (upstream {upstream}): {body[:200]!r}")
            sent += 1
    return sent


# --- measuring one point ------------------------------------------------------------------------


def measure(envoy_binary, set_name, point_id, mesh, out_dir, deadline_seconds, verbose=False, server="python"):
    """Serves `mesh` to a fresh Envoy, waits for ACKs, for nothing to be warming that the point does
    not intend and for settled memory, sends its traffic (if any) and waits again, then writes
    OUT/<id>/ (point.json, config_dump.json.gz, stats.json.gz)."""
    started = time.monotonic()
    deadline = Deadline(deadline_seconds)
    server_log = (lambda m: log(f"{point_id}: {m}")) if verbose else (lambda _m: None)
    served = mesh
    upstreams = None
    try:
        if mesh.traffic_services:
            if mesh.root_secret != "served":
                raise ValueError("traffic needs the root secret served (no TLS context otherwise)")
            upstreams = Upstreams(mesh.endpoints)
            served = mesh.but(bind_http_port=free_port(), upstream_port=upstreams.port)
        pki = _pki(served, resources(served)["secret_names"])
        with serving(envoy_binary, served, deadline, f"calibrate-{point_id}", deadline_seconds,
                     server_log, server=server, pki=pki) as envoy:
            _wait_not_warming(envoy, served, envoy.built, deadline)
            memory = idle = _wait_settled(envoy, deadline, time.monotonic())
            requests = 0
            if upstreams is not None:
                upstreams.serve(pki[0] if _upstream_tls(mesh) else None, called_services(mesh), envoy.workdir)
                requests = send_traffic(served, served.bind_http_port, deadline)
                memory = _wait_settled(envoy, deadline, time.monotonic())
            _, info = admin_get(envoy.admin_port, "/server_info", timeout=10)
            info = json.loads(info)
            dump = _config_dump(envoy)
            status, stats = admin_get(envoy.admin_port, "/stats?format=json", timeout=120)
            if status != 200:
                raise RuntimeError(f"/stats answered {status}")
            seen, warming_secrets = warming(dump)
            want = expected_warming(served, envoy.built)
            if (seen, warming_secrets) != want:
                raise RuntimeError(f"warming at the end: {seen} {warming_secrets}, expected {want}")
    finally:
        if upstreams is not None:
            upstreams.close()
    target = os.path.join(out_dir, point_id)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    for filename, body in (("config_dump.json.gz", dump), ("stats.json.gz", stats)):
        with open(os.path.join(target, filename), "wb") as f:
            f.write(gzip.compress(body, compresslevel=9, mtime=0))
    point = {
        "id": point_id, "set": set_name,
        "concurrency": int(info["command_line_options"]["concurrency"]),
        "allocated": int(memory["allocated"]), "heap_size": int(memory["heap_size"]),
        "allocated_idle": int(idle["allocated"]),
        "total_physical_bytes": int(memory["total_physical_bytes"]),
        "envoy_version": info["version"].split("/")[1] if "/" in info["version"] else info["version"],
        "server": server,
        "warming": dict(seen, secret_names=warming_secrets),
        "requests": requests,
        # What Istio's request metrics (destination_service) would show called: upstream Envoy
        # has no Istio stats filter, and under Istio's inclusion list no cluster stat says it.
        "traffic_hosts": [istio.fqdn(svc, ns) for svc, ns in called_services(mesh)],
        "services": mesh.services, "stats": mesh.stats, "mesh": mesh.describe(),
        "seconds": round(time.monotonic() - started, 1),
    }
    with open(os.path.join(target, "point.json"), "w") as f:
        json.dump(point, f, indent=1, sort_keys=True)
        f.write("\n")
    extra = f", idle {point['allocated_idle'] / 1e6:.1f} MB, {requests} requests" if requests else ""
    log(f"{point_id}: allocated {point['allocated'] / 1e6:.1f} MB{extra}, dump {len(dump) / 1e6:.1f} MB, "
        f"{point['seconds']} s")
    return point


def _measure_job(args):
    return measure(*args)


def _envoy_binary(value):
    """--envoy: a path, or a version number resolved by scripts/envoy-path."""
    if os.sep in value or not value[:1].isdigit():
        return value
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "envoy-path")
    found = subprocess.run([script, value], capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"calibrate: {found.stderr.strip()}")
    return found.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", required=True,
                        help="path of the Envoy binary, or a version scripts/setup.sh installed (1.40.0)")
    parser.add_argument("--design", required=True, choices=sorted(DESIGNS))
    parser.add_argument("--server", default="python", choices=SERVERS,
                        help="xDS server: python (xds_server.py) or node (xds-node/, via xds_server_node.py)")
    parser.add_argument("--out", help="directory for the point directories (required unless --list)")
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
    if not args.out:
        parser.error("--out is required")
    envoy = _envoy_binary(args.envoy)
    server_class(args.server)  # fail now, not once per point
    os.makedirs(args.out, exist_ok=True)
    jobs = [(envoy, args.design, pid, mesh, args.out, args.deadline, args.verbose, args.server)
            for pid, mesh in design]
    started = time.monotonic()
    failed = []
    # Biggest first, so the long points overlap the short ones.
    jobs.sort(key=lambda j: -(j[3].services * max(1, len(j[3].ports)) * (1 + j[3].subsets)
                              * (1 + 2 * j[3].knative_revisions + (j[3].knative_revisions > 0))))
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
