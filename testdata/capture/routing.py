"""Routes real requests and connections through a real Envoy and records where each one went.

Usage (with the oracle virtualenv made by scripts/setup.sh):

    .venv/oracle/bin/python testdata/capture/routing.py --envoy "$(scripts/envoy-path)" --out DIR

It serves Envoy, over ADS from our xDS server (`xds_server.py`), a routing configuration built to
exercise Envoy's matching: listeners (HTTP over RDS, TCP proxies, chains chosen by destination port
and by TLS server name and ALPN), virtual hosts (exact, suffix and prefix wildcards, default, ports,
require_tls), routes (path, prefix, case-insensitive, regex, path_separated_prefix, headers with
inversion, presence, ranges and ignore_case, query parameters, gRPC, methods, weighted clusters,
cluster_header, redirect, direct response) and EDS and static clusters. Every cluster's only
endpoint is a listener of the same Envoy (from the bootstrap) that answers with the cluster's name:
an HTTP direct response for HTTP clusters, bytes written on connect for TCP clusters.

Then it sends each case (an HTTP request, a TCP connection, or a TLS ClientHello with a server
name) on 127.0.0.1 and records what came back, pushes `routes-b` again with a domain claimed by two
virtual hosts (which Envoy must NACK: the run fails otherwise; Envoy 1.40's dump then shows the
version before, with no `error_state`), and saves Envoy's `/config_dump?include_eds`:

    DIR/config_dump.json   what Envoy printed
    DIR/cases.json         {"cases": [{id, kind, port, address, request..., intent, observed}]}

`intent` is what the case was designed to reach, for people reading it; the test compares Heft
with `observed`, what Envoy did.

`crates/heft/tests/trace_envoy.rs` runs `heft::trace` on that dump for each case and checks it
predicts what Envoy did. Envoy and the xDS server are stopped on every path; every wait has a
timeout; each run has a deadline (--deadline, default 45 s), and a failed run is tried once more
(a port chosen free may be taken by another process before Envoy binds it).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import istio  # noqa: E402
from capture import Deadline, Envoy, admin_get, log, push_step, wait_step, watchdog  # noqa: E402
from scenario import Step  # noqa: E402
from xds_server import CLUSTER, ENDPOINT, LISTENER, ROUTE, XdsServer  # noqa: E402

HOST = "127.0.0.1"
DIRECT_RESPONSE_T = istio.TYPE + "envoy.extensions.filters.network.direct_response.v3.Config"

# Clusters whose endpoint answers HTTP, and those whose endpoint writes its name on connect.
HTTP_CLUSTERS = [
    "c-path", "c-prefix-ci", "c-regex", "c-sep", "c-hdr", "c-hdr-inv", "c-h-default", "c-q2",
    "c-qflag", "c-qabsent", "c-q-default", "c-post", "c-m-default", "c-w1", "c-w2", "c-range",
    "c-present", "c-absent", "c-hdr-ci", "c-multi", "c-rep-one", "c-rep-two", "c-rep-inv-one",
    "c-rep-inv-three", "c-rep-range", "c-rep-regex", "c-grpc", "c-tmh", "c-catchall", "c-wild",
    "c-wild-deep", "c-prefix-host", "c-default", "c-wild-b", "c-default-b", "c-shadow-first",
    "c-shadow-never", "c-unhealthy",
]
TCP_CLUSTERS = [
    "c-tcp", "c-d1", "c-d2", "c-sni-a", "c-sni-wild", "c-sni-deep", "c-sni-h2", "c-sni-tls",
    "c-sni-plain", "c-only", "c-sni-default",
]
# These get their endpoints inline (STATIC); the rest over EDS.
STATIC_CLUSTERS = {"c-catchall", "c-tcp"}
# Its only endpoint is reported UNHEALTHY: Envoy runs it in panic mode and still sends to it.
UNHEALTHY_CLUSTERS = {"c-unhealthy"}


def http_upstream(name, port):
    """A bootstrap listener answering every HTTP request with 200 and the cluster's name."""
    return {
        "name": f"upstream-{name}",
        "address": istio.socket_address(HOST, port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": istio.HCM_T, "stat_prefix": f"upstream_{name}",
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"},
                     "direct_response": {"status": 200, "body": {"inline_string": name}},
                     # The body is lost when Envoy turns a local reply to a gRPC request into
                     # gRPC trailers; the header survives.
                     "response_headers_to_add": [{"header": {"key": "x-upstream-cluster",
                                                             "value": name}}]}]}]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": istio.TYPE + "envoy.extensions.filters.http.router.v3.Router"}}],
            }}]}],
    }


def tcp_upstream(name, port):
    """A bootstrap listener writing the cluster's name as soon as a connection opens."""
    return {
        "name": f"upstream-{name}",
        "address": istio.socket_address(HOST, port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.direct_response",
            "typed_config": {"@type": DIRECT_RESPONSE_T, "response": {"inline_string": name}},
        }]}],
    }


def header(name, **rule):
    return {"name": name, **rule}


def route(prefix=None, cluster=None, name=None, **match):
    """A route on `prefix` (or a `path`/`safe_regex`/… given in match) to `cluster`."""
    m = dict(match)
    if prefix is not None:
        m["prefix"] = prefix
    r = {"match": m, "route": {"cluster": cluster, "timeout": "5s"}}
    if name:
        r["name"] = name
    return r


def weighted(prefix, clusters):
    return {"match": {"prefix": prefix},
            "route": {"weighted_clusters": {"clusters": [{"name": n, "weight": w} for n, w in clusters]},
                      "timeout": "5s"}}


def routes_a(port):
    """The main route configuration: one virtual host per domain rule, many routes in `exact`."""
    exact_routes = [
        route(cluster="c-path", name="exact-path", path="/exact"),
        route("/pfx", "c-prefix-ci", case_sensitive=False),
        route(cluster="c-regex", safe_regex={"regex": "/re/[0-9]+"}),
        route(cluster="c-sep", path_separated_prefix="/sep"),
        route("/h", "c-hdr", headers=[header("x-env", string_match={"exact": "canary"})]),
        route("/h", "c-hdr-inv", headers=[header("x-env", string_match={"exact": "canary"},
                                                 invert_match=True)]),
        route("/h", "c-h-default"),
        route("/qabsent", "c-qabsent", query_parameters=[{"name": "debug", "present_match": False}]),
        route("/q", "c-q2", query_parameters=[{"name": "v", "string_match": {"exact": "2"}}]),
        route("/q", "c-qflag", query_parameters=[{"name": "flag", "present_match": True}]),
        route("/q", "c-q-default"),
        route("/m", "c-post", headers=[header(":method", string_match={"exact": "POST"})]),
        route("/m", "c-m-default"),
        {"match": {"prefix": "/direct"}, "direct_response": {"status": 418}},
        {"match": {"prefix": "/redirect"},
         "redirect": {"host_redirect": "example.com", "response_code": "FOUND"}},
        weighted("/w100", [("c-w1", 100), ("c-w2", 0)]),
        weighted("/w50", [("c-w1", 50), ("c-w2", 50)]),
        route("/range", "c-range", headers=[header("x-n", range_match={"start": "10", "end": "20"})]),
        route("/present-not", "c-absent", headers=[header("x-p", present_match=True, invert_match=True)]),
        route("/present", "c-present", headers=[header("x-p", present_match=True)]),
        route("/ci-hdr", "c-hdr-ci", headers=[header("x-c", string_match={"exact": "Canary",
                                                                          "ignore_case": True})]),
        route("/joined", "c-multi", headers=[header("x-a", string_match={"exact": "1,2"})]),
        route("/rep-one", "c-rep-one", headers=[header("x-a", string_match={"exact": "1"})]),
        route("/rep-two", "c-rep-two", headers=[header("x-a", string_match={"exact": "2"})]),
        route("/rep-inv-one", "c-rep-inv-one",
              headers=[header("x-a", string_match={"exact": "1"}, invert_match=True)]),
        route("/rep-inv-three", "c-rep-inv-three",
              headers=[header("x-a", string_match={"exact": "3"}, invert_match=True)]),
        route("/rep-range", "c-rep-range", headers=[header("x-a", range_match={"start": "2", "end": "3"})]),
        route("/rep-regex", "c-rep-regex", headers=[header("x-a", safe_regex_match={"regex": "1.*2"})]),
        {"match": {"prefix": "/ch"}, "route": {"cluster_header": "x-cluster", "timeout": "5s"}},
        route("/grpc", "c-grpc", grpc={}),
        route("/tmh", "c-tmh", headers=[header("x-m", string_match={"prefix": "a"}, invert_match=True,
                                               treat_missing_header_as_empty=True)]),
        route("/ghost", "c-ghost"),
        route("/shadow", "c-shadow-first", name="shadow-first"),
        route("/shadow/deep", "c-shadow-never", name="shadowed"),
        route("/unhealthy", "c-unhealthy"),
        route("/", "c-catchall", name="catchall"),
    ]
    config = istio.route_configuration("routes-a", [
        {"name": "exact", "domains": ["exact.test", f"exact.test:{port}"], "routes": exact_routes},
        {"name": "secure", "domains": ["secure.test"], "require_tls": "ALL",
         "routes": [route("/", "c-default")]},
        {"name": "suffix-long", "domains": ["*.deep.wild.test"], "routes": [route("/", "c-wild-deep")]},
        {"name": "suffix", "domains": ["*.wild.test"], "routes": [route("/", "c-wild")]},
        {"name": "prefix-wildcard", "domains": ["pre.*"], "routes": [route("/p", "c-prefix-host")]},
        {"name": "default", "domains": ["*"], "routes": [route("/", "c-default")]},
    ])
    config["ignore_port_in_host_matching"] = False
    return config


def routes_b():
    """The same wildcard, with ignore_port_in_host_matching."""
    return istio.route_configuration("routes-b", [
        {"name": "suffix", "domains": ["*.wild.test"], "routes": [route("/", "c-wild-b")]},
        {"name": "default", "domains": ["*"], "routes": [route("/", "c-default-b")]},
    ])


def routes_b_duplicate_domain():
    """routes-b with a domain claimed twice: Envoy rejects it and keeps the version before."""
    config = routes_b()
    config["virtual_hosts"].insert(1, {"name": "suffix-again", "domains": ["*.wild.test"],
                                       "routes": [route("/", "c-default-b")]})
    return config


def http_listener(name, port, rds, **manager_options):
    manager = istio.hcm(name, rds_name=rds)
    manager["typed_config"]["merge_slashes"] = True
    manager["typed_config"].update(manager_options)
    return istio.listener(name, HOST, port, [{"filters": [manager]}])


def sni_chain(cluster, server_names=None, transport=None, alpn=None, name=None):
    match = {}
    if server_names:
        match["server_names"] = server_names
    if transport:
        match["transport_protocol"] = transport
    if alpn:
        match["application_protocols"] = alpn
    chain = {"filter_chain_match": match, "filters": [istio.tcp_proxy(cluster, cluster=cluster)]}
    if name:
        chain["name"] = name
    return chain


def free_ports(count):
    """`count` distinct free loopback ports: every socket stays bound until all are chosen."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Routing:
    def __init__(self):
        names = ["http", "http-b", "http-strip", "tcp", "dport-1", "dport-2", "sni", "sni-strict",
                 "sni-default"]
        upstreams = HTTP_CLUSTERS + TCP_CLUSTERS
        ports = free_ports(1 + len(names) + len(upstreams))
        self.admin = ports[0]
        self.ports = dict(zip(names, ports[1:]))
        self.upstreams = dict(zip(upstreams, ports[1 + len(names):]))

    def bootstrap(self, xds_port):
        listeners = [http_upstream(n, self.upstreams[n]) for n in HTTP_CLUSTERS]
        listeners += [tcp_upstream(n, self.upstreams[n]) for n in TCP_CLUSTERS]
        node = {"id": "router~127.0.0.1~routing-check~default.svc.cluster.local", "cluster": "routing"}
        return istio.bootstrap(node, self.admin, xds_port, listeners)

    def resources(self):
        p = self.ports
        clusters, assignments = [], []
        for name in HTTP_CLUSTERS + TCP_CLUSTERS:
            health = "UNHEALTHY" if name in UNHEALTHY_CLUSTERS else "HEALTHY"
            endpoints = [istio.locality("local", "zone-a", [
                istio.lb_endpoint(HOST, self.upstreams[name], health=health, tls=False)])]
            if name in STATIC_CLUSTERS:
                clusters.append({"@type": istio.CLUSTER_T, "name": name, "type": "STATIC",
                                 "connect_timeout": "1s",
                                 "load_assignment": {"cluster_name": name, "endpoints": endpoints}})
            else:
                clusters.append({"@type": istio.CLUSTER_T, "name": name, "type": "EDS",
                                 "connect_timeout": "1s",
                                 "eds_cluster_config": {"eds_config": istio.ads(), "service_name": name}})
                assignments.append(istio.load_assignment(name, endpoints))
        dport = istio.listener("dport", HOST, p["dport-1"], [
            {"filter_chain_match": {"destination_port": p["dport-1"]},
             "filters": [istio.tcp_proxy("d1", cluster="c-d1")]},
            {"filter_chain_match": {"destination_port": p["dport-2"]},
             "filters": [istio.tcp_proxy("d2", weighted=[("c-d2", 7)])]},
            # A port the listener does not listen on, without original destination: unreachable.
            {"name": "never", "filter_chain_match": {"destination_port": p["tcp"]},
             "filters": [istio.tcp_proxy("never", cluster="c-d1")]},
        ], additional_addresses=[{"address": istio.socket_address(HOST, p["dport-2"])}])
        sni = istio.listener("sni", HOST, p["sni"], [
            sni_chain("c-sni-a", server_names=["a.sni.test"], name="exact"),
            sni_chain("c-sni-wild", server_names=["*.sni.test"], name="wildcard"),
            sni_chain("c-sni-deep", server_names=["*.deep.sni.test"], name="deeper-wildcard"),
            sni_chain("c-sni-h2", transport="tls", alpn=["h2"], name="tls-h2"),
            sni_chain("c-sni-tls", transport="tls", name="tls"),
            sni_chain("c-sni-plain", transport="raw_buffer", name="plain"),
        ], listener_filters=("tls_inspector",))
        strict = istio.listener("sni-strict", HOST, p["sni-strict"], [
            sni_chain("c-only", server_names=["only.test"])], listener_filters=("tls_inspector",))
        with_default = istio.listener("sni-default", HOST, p["sni-default"], [
            sni_chain("c-only", server_names=["only.test"])], listener_filters=("tls_inspector",),
            default_filter_chain={"filters": [istio.tcp_proxy("default", cluster="c-sni-default")]})
        listeners = [
            http_listener("http", p["http"], "routes-a"),
            http_listener("http-b", p["http-b"], "routes-b"),
            http_listener("http-strip", p["http-strip"], "routes-a", strip_any_host_port=True,
                          path_with_escaped_slashes_action="UNESCAPE_AND_FORWARD"),
            strict,
            with_default,
            istio.listener("tcp", HOST, p["tcp"], [{"filters": [istio.tcp_proxy("tcp", cluster="c-tcp")]}]),
            dport,
            sni,
        ]
        routes = [routes_a(p["http"]), routes_b()]
        return {CLUSTER: clusters, ENDPOINT: assignments, LISTENER: listeners, ROUTE: routes}

    def cases(self):
        """Every case: what to send, and the cluster (or status) the design meant it to reach."""
        p = self.ports
        out = []

        def http(case_id, intent, host="exact.test", path="/", method="GET", headers=(), port=None,
                 random=False):
            out.append({"id": case_id, "kind": "http", "port": port or p["http"], "address": HOST,
                        "host": host, "path": path, "method": method,
                        "headers": [list(h) for h in headers], "intent": intent, "random": random})

        http("path-exact", "c-path", path="/exact")
        http("path-exact-with-query", "c-path", path="/exact?x=1")
        http("path-exact-is-case-sensitive", "c-catchall", path="/Exact")
        http("path-normalized", "c-path", path="/a/../exact")
        http("path-merged-slashes", "c-path", path="//exact")
        http("prefix-case-insensitive", "c-prefix-ci", path="/PfX/1")
        http("regex-full-match", "c-regex", path="/re/123")
        http("regex-partial-is-no-match", "c-catchall", path="/re/12a")
        http("separated-prefix-alone", "c-sep", path="/sep")
        http("separated-prefix-segment", "c-sep", path="/sep/x")
        http("separated-prefix-not-a-segment", "c-catchall", path="/separate")
        http("header-exact", "c-hdr", path="/h", headers=[("x-env", "canary")])
        http("header-name-any-case", "c-hdr", path="/h", headers=[("X-Env", "canary")])
        http("header-inverted", "c-hdr-inv", path="/h", headers=[("x-env", "stable")])
        http("header-inverted-but-absent", "c-h-default", path="/h")
        http("query-exact", "c-q2", path="/q?v=2")
        http("query-other-value", "c-q-default", path="/q?v=3")
        http("query-present", "c-qflag", path="/q?v=3&flag=1")
        http("query-present-no-value", "c-qflag", path="/q?flag")
        http("query-absent-wanted", "c-qabsent", path="/qabsent")
        http("query-absent-but-present", "c-q-default", path="/qabsent?debug=1")
        http("method-post", "c-post", path="/m", method="POST")
        http("method-get", "c-m-default", path="/m")
        http("direct-response", 418, path="/direct")
        http("redirect", 302, path="/redirect/x")
        http("weighted-100-0", "c-w1", path="/w100")
        http("weighted-50-50", "c-w1|c-w2", path="/w50", random=True)
        http("header-range-in", "c-range", path="/range", headers=[("x-n", "15")])
        http("header-range-out", "c-catchall", path="/range", headers=[("x-n", "20")])
        http("header-absent-inverted-presence", "c-absent", path="/present-not")
        http("header-present-fails-inverted-presence", "c-present", path="/present-not-x",
             headers=[("x-p", "1")])
        http("header-present", "c-present", path="/present", headers=[("x-p", "")])
        http("header-ignore-case", "c-hdr-ci", path="/ci-hdr", headers=[("x-c", "CANARY")])
        twice = [("x-a", "1"), ("x-a", "2")]
        http("repeated-header-values-are-not-joined", "c-catchall", path="/joined", headers=twice)
        http("one-header-with-a-comma", "c-multi", path="/joined", headers=[("x-a", "1,2")])
        http("repeated-header-first-value", "c-rep-one", path="/rep-one", headers=twice)
        http("repeated-header-second-value", "c-rep-two", path="/rep-two", headers=twice)
        http("comma-value-is-not-split", "c-catchall", path="/rep-one", headers=[("x-a", "1,2")])
        http("repeated-header-inverted-one-matches", "c-catchall", path="/rep-inv-one", headers=twice)
        http("repeated-header-inverted-none-match", "c-rep-inv-three", path="/rep-inv-three",
             headers=twice)
        http("repeated-header-range", "c-rep-range", path="/rep-range", headers=twice)
        http("repeated-header-regex-sees-one-value", "c-catchall", path="/rep-regex", headers=twice)
        http("cluster-header", "c-w2", path="/ch", headers=[("x-cluster", "c-w2")])
        http("cluster-header-unknown", 503, path="/ch", headers=[("x-cluster", "nope")])
        http("cluster-header-absent", 503, path="/ch")
        http("grpc", "c-grpc", path="/grpc", method="POST", headers=[("content-type", "application/grpc")])
        http("grpc-web-is-not-grpc", "c-catchall", path="/grpc", method="POST",
             headers=[("content-type", "application/grpc-web")])
        http("missing-header-as-empty", "c-tmh", path="/tmh")
        http("missing-header-as-empty-present", "c-catchall", path="/tmh", headers=[("x-m", "abc")])
        http("route-to-missing-cluster", 503, path="/ghost")
        http("shadowed-route-goes-to-the-earlier", "c-shadow-first", path="/shadow/deep")
        http("all-unhealthy-still-takes-traffic", "c-unhealthy", path="/unhealthy")
        http("catch-all", "c-catchall", path="/anything")
        http("host-upper-case", "c-path", host="EXACT.test", path="/exact")
        http("host-with-listed-port", "c-path", host=f"exact.test:{p['http']}", path="/exact")
        http("host-suffix-wildcard", "c-wild", host="a.wild.test")
        http("host-longer-suffix-wins", "c-wild-deep", host="x.deep.wild.test")
        http("host-wildcard-needs-a-character", "c-default", host=".wild.test")
        http("host-prefix-wildcard", "c-prefix-host", host="pre.example", path="/p")
        http("host-prefix-wildcard-no-route", 404, host="pre.example", path="/zzz")
        http("host-default", "c-default", host="other.test")
        http("host-port-kept", "c-default", host=f"a.wild.test:{p['http']}")
        http("host-port-ignored", "c-wild-b", host=f"a.wild.test:{p['http-b']}", port=p["http-b"])
        http("host-default-b", "c-default-b", host="exact.test", port=p["http-b"])
        http("require-tls", 301, host="secure.test")
        http("host-port-stripped-by-the-manager", "c-wild", host=f"a.wild.test:{p['http-strip']}",
             port=p["http-strip"])
        http("escaped-slash-unescaped", "c-sep", path="/sep%2Fx", port=p["http-strip"])
        http("escaped-slash-kept", "c-catchall", path="/sep%2Fx")

        def tcp(case_id, intent, port, send=b"", sni=None, alpn=None, tls=False):
            out.append({"id": case_id, "kind": "tls" if (tls or sni) else "tcp", "port": port,
                        "address": HOST, "send": send.decode(), "sni": sni, "alpn": alpn or [],
                        "intent": intent, "random": False})

        tcp("tcp-proxy", "c-tcp", p["tcp"])
        tcp("destination-port-1", "c-d1", p["dport-1"])
        tcp("destination-port-2-weighted-single", "c-d2", p["dport-2"])
        tcp("sni-exact", "c-sni-a", p["sni"], sni="a.sni.test")
        tcp("sni-exact-beats-alpn", "c-sni-a", p["sni"], sni="a.sni.test", alpn=["h2"])
        tcp("sni-wildcard", "c-sni-wild", p["sni"], sni="b.sni.test")
        tcp("sni-longer-wildcard-wins", "c-sni-deep", p["sni"], sni="x.deep.sni.test")
        tcp("sni-upper-case", "c-sni-a", p["sni"], sni="A.SNI.TEST")
        tcp("sni-unknown-with-alpn", "c-sni-h2", p["sni"], sni="other.test", alpn=["h2", "http/1.1"])
        tcp("sni-unknown-alpn-order", "c-sni-h2", p["sni"], sni="other.test", alpn=["http/1.1", "h2"])
        tcp("sni-unknown", "c-sni-tls", p["sni"], sni="other.test")
        tcp("tls-without-sni", "c-sni-tls", p["sni"], tls=True)
        tcp("plaintext-on-sni-listener", "c-sni-plain", p["sni"], send=b"hello\r\n")
        tcp("sni-only-chain", "c-only", p["sni-strict"], sni="only.test")
        tcp("no-chain-closes", "", p["sni-strict"], sni="other.test")
        tcp("default-chain", "c-sni-default", p["sni-default"], sni="other.test")
        return out


def send_http(case, timeout=5.0):
    connection = http.client.HTTPConnection(case["address"], case["port"], timeout=timeout)
    try:
        connection.putrequest(case["method"], case["path"], skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", case["host"])
        for name, value in case["headers"]:
            connection.putheader(name, value)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        return {"status": response.status, "body": body, "location": response.getheader("location"),
                "cluster": response.getheader("x-upstream-cluster")}
    finally:
        connection.close()


def client_hello(sni, alpn):
    """The bytes of a TLS ClientHello with this server name and ALPN (no server needed)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def send_tcp(case, timeout=5.0):
    """Opens a connection, sends the case's bytes (or a ClientHello), reads what comes back."""
    data = b""
    with socket.create_connection((case["address"], case["port"]), timeout=timeout) as s:
        if case["kind"] == "tls":
            s.sendall(client_hello(case["sni"], case["alpn"]))
        elif case["send"]:
            s.sendall(case["send"].encode())
        end = time.monotonic() + timeout
        s.settimeout(0.5)
        while time.monotonic() < end:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                if data:
                    break
                continue
            if not chunk:
                break
            data += chunk
    return {"status": None, "body": data.decode(errors="replace"), "location": None}


def wait_ready(routing, deadline):
    """Until the first HTTP listener routes a request to its upstream."""
    end = time.monotonic() + deadline.left(20)
    probe = {"address": HOST, "port": routing.ports["http"], "host": "exact.test", "path": "/exact",
             "method": "GET", "headers": []}
    last = None
    while time.monotonic() < end:
        try:
            result = send_http(probe, timeout=2)
            if result["body"] == "c-path":
                return
            last = result
        except OSError as error:
            last = error
        time.sleep(0.2)
    raise TimeoutError(f"the routing listeners never answered as configured (last: {last})")


def run(args):
    deadline = Deadline(args.deadline)
    routing = Routing()
    workdir = tempfile.mkdtemp(prefix="heft-routing-")
    server = XdsServer(log=lambda _message: None)
    envoy = None
    ok = False
    try:
        server.start()
        step = Step(label="routing", version="1", resources=routing.resources())
        push_step(server, step)
        bootstrap_path = os.path.join(workdir, "bootstrap.json")
        with open(bootstrap_path, "w") as f:
            json.dump(routing.bootstrap(server.port), f, indent=2)
        envoy = Envoy(args.envoy, bootstrap_path, workdir, routing.admin)
        envoy.start(deadline)
        wait_step(server, envoy, step, deadline)
        envoy.wait_live(deadline)
        wait_ready(routing, deadline)
        cases = routing.cases()
        for case in cases:
            deadline.left(1)
            envoy.check_running()
            try:
                case["observed"] = send_http(case) if case["kind"] == "http" else send_tcp(case)
            except OSError as error:
                case["observed"] = {"status": None, "body": "", "location": None, "error": str(error)}
        # After the cases, which need routes-b as first accepted: a push Envoy must reject.
        rejected = Step(label="duplicate-domain", version="2", resources={
            ROUTE: [routes_a(routing.ports["http"]), routes_b_duplicate_domain()]},
            expect={ROUTE: "nack"})
        push_step(server, rejected)
        wait_step(server, envoy, rejected, deadline)
        status, body = admin_get(envoy.admin_port, "/config_dump?include_eds", timeout=20)
        if status != 200:
            raise RuntimeError(f"/config_dump answered {status}")
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "config_dump.json"), "wb") as f:
            f.write(body)
        with open(os.path.join(args.out, "cases.json"), "w") as f:
            json.dump({"cases": cases}, f, indent=1)
        log(f"routing: {len(cases)} cases sent; wrote {args.out}")
        ok = True
    finally:
        if envoy is not None:
            if not ok:
                log(f"Envoy log tail:\n{envoy.log_tail()}")
            envoy.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", required=True, help="path of the Envoy binary")
    parser.add_argument("--out", required=True, help="directory for config_dump.json and cases.json")
    parser.add_argument("--deadline", type=float, default=45.0, help="seconds the whole run may take")
    args = parser.parse_args()

    watchdog("routing", 2 * int(args.deadline) + 20)  # two attempts
    started = time.monotonic()
    try:
        for attempt in (1, 2):
            try:
                run(args)
                break
            except (OSError, RuntimeError, TimeoutError) as error:
                # Ports are chosen free but bound later: another process may take one meanwhile.
                # A second run chooses new ones; a real failure fails twice.
                if attempt == 2:
                    raise
                log(f"attempt {attempt} failed ({type(error).__name__}: {error}); trying again")
    except (Exception, KeyboardInterrupt) as error:
        log(f"FAILED: {type(error).__name__}: {error}")
        return 1
    finally:
        signal.alarm(0)
    log(f"routing: done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
