"""Scenario `sidecar`: the sidecar of `productpage-v1` in namespace `default`, as istiod would configure it.

Twelve services in three namespaces (`default`, `istio-system`, `shop`), DestinationRule subsets, mesh
mTLS over SDS, Istio's catch-all clusters and listeners. Then three pushes:

1. `initial`: everything; one cluster (`legacy-billing`) asks for two file-mounted secrets that are never
   served, so they stay in `dynamic_warming_secrets` (their `initial_fetch_timeout` lets init finish).
2. CDS adds a STATIC cluster with a hostname endpoint: Envoy NACKs it. LDS changes `0.0.0.0_27017` at
   listener level, so the old one drains (`--drain-time-s` is long).
3. CDS drops the rejected cluster and adds `checkout`, whose endpoints never come: it stays in
   `dynamic_warming_clusters` (Envoy holds this CDS ACK while it warms). LDS adds a listener on
   virtualOutbound's address: Envoy NACKs it. The capture is taken after this push.
"""

import istio
from certs import CertificateAuthority, tls_certificate_secret, validation_context_secret
from scenario import Scenario, Step, dump_section
from xds_server import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

NAMESPACE = "default"
WORKLOAD = "productpage-v1"
REGION, ZONE_B, ZONE_C = "us-east1", "us-east1-b", "us-east1-c"
FAILOVER_REGION, FAILOVER_ZONE = "us-west1", "us-west1-a"

# name, namespace, service account, [(port, protocol)], {subset: version label} (DestinationRule)
SERVICES = [
    ("productpage", "default", "bookinfo-productpage", [(9080, "http")], {}),
    ("reviews", "default", "bookinfo-reviews", [(9080, "http")], {"v1": "v1", "v2": "v2", "v3": "v3"}),
    ("ratings", "default", "bookinfo-ratings", [(9080, "http")], {"v1": "v1", "v2": "v2"}),
    ("details", "default", "bookinfo-details", [(9080, "http")], {"v1": "v1"}),
    ("istiod", "istio-system", "istiod", [(15010, "h2"), (15012, "h2"), (443, "tcp")], {}),
    ("istio-ingressgateway", "istio-system", "istio-ingressgateway-service-account",
     [(80, "http"), (443, "tcp")], {}),
    ("prometheus", "istio-system", "prometheus", [(9090, "http")], {}),
    ("zipkin", "istio-system", "zipkin", [(9411, "http")], {}),
    ("frontend", "shop", "frontend", [(8080, "http")], {}),
    ("cart", "shop", "cart", [(7070, "h2")], {}),
    ("catalog", "shop", "catalog", [(8080, "client")], {}),
    ("mongodb", "shop", "mongodb", [(27017, "tcp")], {"primary": "primary", "replica": "replica"}),
]

# Endpoints per service: (last octet of 127.0.0.x, version label, health_status or None, weight or None,
# zone; a FAILOVER_ZONE endpoint sits in a priority-1 locality).
ENDPOINTS = {
    "productpage": [(11, "v1", "HEALTHY", None, ZONE_B)],
    "reviews": [(21, "v1", "HEALTHY", None, ZONE_B), (22, "v2", "HEALTHY", 3, ZONE_C),
                (23, "v3", "DRAINING", None, ZONE_C), (24, "v2", "HEALTHY", None, FAILOVER_ZONE)],
    "ratings": [(31, "v1", "HEALTHY", None, ZONE_B), (32, "v2", "UNHEALTHY", None, ZONE_B),
                (33, "v2", None, 2, ZONE_C)],
    "details": [(41, "v1", None, None, ZONE_B), (42, "v1", None, None, ZONE_C)],
    "istiod": [(51, "v1", "HEALTHY", None, ZONE_B)],
    "istio-ingressgateway": [(61, "v1", "HEALTHY", None, ZONE_B), (62, "v1", "HEALTHY", None, ZONE_C)],
    "prometheus": [(71, "v1", "HEALTHY", None, ZONE_B)],
    "zipkin": [(72, "v1", "HEALTHY", None, ZONE_C)],
    "frontend": [(81, "v1", "HEALTHY", None, ZONE_B), (82, "v1", "HEALTHY", None, ZONE_C),
                 (83, "v1", "DEGRADED", None, ZONE_C)],
    "cart": [(91, "v1", "HEALTHY", None, ZONE_B), (92, "v1", "HEALTHY", None, ZONE_B)],
    "catalog": [(101, "v1", "HEALTHY", 5, ZONE_B)],
    "mongodb": [(111, "primary", "HEALTHY", None, ZONE_B), (112, "replica", "HEALTHY", None, ZONE_C),
                (113, "replica", "TIMEOUT", None, ZONE_C)],
}
NO_SIDECAR = {"mongodb"}  # endpoints without tlsMode=istio: plain TCP via tlsMode-disabled

VERSION_1 = "2025-06-01T12:00:00Z/1"
VERSION_2 = "2025-06-01T12:05:00Z/2"
VERSION_3 = "2025-06-01T12:10:00Z/3"


def node():
    return {
        "id": f"sidecar~127.0.0.1~{WORKLOAD}-abc.{NAMESPACE}~{NAMESPACE}.svc.cluster.local",
        "cluster": f"productpage.{NAMESPACE}",
        "locality": {"region": REGION, "zone": ZONE_B},
        "metadata": {
            "ISTIO_VERSION": "1.24.2",
            "ISTIO_PROXY_SHA": "2e6dbc1e4b3fbe0c1b34b6f5e1c2fb4d4b1c7a0e",
            "NAMESPACE": NAMESPACE,
            "WORKLOAD_NAME": WORKLOAD,
            "NAME": f"{WORKLOAD}-abc",
            "LABELS": {"app": "productpage", "version": "v1",
                       "security.istio.io/tlsMode": "istio",
                       "service.istio.io/canonical-name": "productpage",
                       "service.istio.io/canonical-revision": "v1"},
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "SERVICE_ACCOUNT": "bookinfo-productpage",
            "INTERCEPTION_MODE": "REDIRECT",
            "INSTANCE_IPS": "127.0.0.1",
            "OWNER": f"kubernetes://apis/apps/v1/namespaces/{NAMESPACE}/deployments/{WORKLOAD}",
            "POD_PORTS": "[{\"name\":\"http\",\"containerPort\":9080,\"protocol\":\"TCP\"}]",
            "APP_CONTAINERS": "productpage",
            "PILOT_SAN": ["istiod.istio-system.svc"],
        },
    }


def _version_of(subset_label, endpoint_version):
    return subset_label is None or subset_label == endpoint_version


def _cluster_load_assignment(service, namespace, port, subset_label, cluster_name):
    localities = {}
    for octet, version, health, weight, zone in ENDPOINTS[service]:
        if not _version_of(subset_label, version):
            continue
        region = FAILOVER_REGION if zone == FAILOVER_ZONE else REGION
        key = (region, zone)
        workload = f"{service}-{version};{namespace};{service};{version};Kubernetes"
        localities.setdefault(key, []).append(istio.lb_endpoint(
            f"127.0.0.{octet}", port, health=health, weight=weight,
            tls=service not in NO_SIDECAR, workload=workload))
    return istio.load_assignment(cluster_name, [
        istio.locality(region, zone, eps, priority=1 if zone == FAILOVER_ZONE else 0)
        for (region, zone), eps in localities.items()])


def outbound_clusters_and_endpoints():
    clusters, assignments = [], []
    for service, namespace, account, ports, subsets in SERVICES:
        for port, protocol in ports:
            variants = [(None, None)] + [(s, label) for s, label in subsets.items()]
            for subset, label in variants:
                cluster = istio.eds_cluster(
                    service, namespace, port, account, protocol=protocol, subset=subset,
                    destination_rule=service if subsets else None,
                    max_connections=100 if subsets else istio.MAX_U32)
                clusters.append(cluster)
                assignments.append(_cluster_load_assignment(service, namespace, port, label, cluster["name"]))
    return clusters, assignments


def special_clusters():
    """Istio's catch-alls, the inbound cluster, DNS clusters from ServiceEntries, and the one mTLS
    cluster whose file-mounted certificates (DestinationRule `tls.mode: MUTUAL`) never arrive."""
    inbound = {
        "@type": istio.CLUSTER_T, "name": "inbound|9080||", "type": "STATIC", "connect_timeout": "10s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": "inbound|9080||", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": istio.socket_address("127.0.0.1", 9080)}}]}]},
        "circuit_breakers": istio.circuit_breakers(),
        "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}},
        "metadata": {"filter_metadata": {"istio": {"services": [{
            "host": istio.fqdn("productpage", NAMESPACE), "name": "productpage", "namespace": NAMESPACE}]}}},
    }
    strict_dns = {
        "@type": istio.CLUSTER_T, "name": "outbound|443||www.example.com", "type": "STRICT_DNS",
        "connect_timeout": "10s", "lb_policy": "LEAST_REQUEST", "dns_lookup_family": "V4_ONLY",
        "load_assignment": {"cluster_name": "outbound|443||www.example.com", "endpoints": [{
            "locality": {}, "lb_endpoints": [{"endpoint": {"address": istio.socket_address("localhost", 443)},
                                              "load_balancing_weight": 1}]}]},
        "circuit_breakers": istio.circuit_breakers(),
        "metadata": {"filter_metadata": {"istio": {"services": [
            {"host": "www.example.com", "name": "www.example.com", "namespace": "shop"}]}}},
    }
    logical_dns = {
        "@type": istio.CLUSTER_T, "name": "outbound|80||httpbin.org", "type": "LOGICAL_DNS",
        "connect_timeout": "10s", "lb_policy": "ROUND_ROBIN", "dns_lookup_family": "V4_ONLY",
        "load_assignment": {"cluster_name": "outbound|80||httpbin.org", "endpoints": [{
            "lb_endpoints": [{"endpoint": {"address": istio.socket_address("localhost", 80)}}]}]},
        "typed_extension_protocol_options": istio.http_protocol_options("http"),
        "metadata": {"filter_metadata": {"istio": {"services": [
            {"host": "httpbin.org", "name": "httpbin.org", "namespace": "shop"}]}}},
    }
    legacy = istio.eds_cluster("legacy-billing", "shop", 8443, "legacy-billing", protocol="http")
    del legacy["transport_socket_matches"]
    legacy["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": istio.upstream_mtls(
        "legacy-billing.shop.svc.cluster.local", [istio.spiffe("shop", "legacy-billing")],
        cert="file-cert:/etc/certs/cert-chain.pem~/etc/certs/key.pem",
        root="file-root:/etc/certs/root-cert.pem", alpn=["http/1.1"], initial_fetch_timeout="1s")}
    legacy_endpoints = istio.load_assignment(legacy["name"], [istio.locality(REGION, ZONE_B, [
        istio.lb_endpoint("127.0.0.121", 8443, health="HEALTHY", tls=False)])])
    clusters = [istio.blackhole_cluster(), istio.passthrough_cluster(), istio.inbound_passthrough_cluster(),
                inbound, strict_dns, logical_dns, legacy]
    return clusters, [legacy_endpoints]


def warming_cluster():
    """A new service whose endpoints istiod has not pushed yet: EDS waits for up to ten minutes."""
    return istio.eds_cluster("checkout", "shop", 8080, "checkout", eds_initial_fetch_timeout="600s")


def rejected_cluster():
    """A ServiceEntry with `resolution: STATIC` but a hostname endpoint: Envoy rejects the address."""
    return {
        "@type": istio.CLUSTER_T, "name": "outbound|6379||redis.shop.svc.cluster.local", "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {"cluster_name": "outbound|6379||redis.shop.svc.cluster.local", "endpoints": [{
            "lb_endpoints": [{"endpoint": {"address": istio.socket_address("redis.shop.svc.cluster.local", 6379)}}]}]},
    }


# --- listeners and routes -----------------------------------------------------------------------

INBOUND_ALPN = ["istio-peer-exchange", "istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"]


def inbound_route_config():
    return {"name": "inbound|9080||", "validate_clusters": False, "virtual_hosts": [{
        "name": "inbound|http|9080", "domains": ["*"], "routes": [{
            "name": "default", "match": {"prefix": "/"},
            "route": {"cluster": "inbound|9080||", "timeout": "0s",
                      "max_stream_duration": {"grpc_timeout_header_max": "0s"}},
            "decorator": {"operation": "productpage.default.svc.cluster.local:9080/*"}}]}]}


def virtual_inbound():
    inbound_hcm = istio.hcm("inbound_0.0.0.0_9080", route_config=inbound_route_config(), direction="inbound")
    chains = [
        {"name": "virtualInbound-blackhole", "filter_chain_match": {"destination_port": 15006},
         "filters": [istio.tcp_proxy("BlackHoleCluster", cluster="BlackHoleCluster")]},
        {"name": "0.0.0.0_9080", "filter_chain_match": {
            "destination_port": 9080, "transport_protocol": "tls", "application_protocols": INBOUND_ALPN},
         "transport_socket": istio.downstream_mtls(alpn=["h2", "http/1.1"]),
         "filters": [inbound_hcm]},
        {"name": "0.0.0.0_9080", "filter_chain_match": {"destination_port": 9080, "transport_protocol": "raw_buffer"},
         "filters": [inbound_hcm]},
        {"name": "127.0.0.0_27017", "filter_chain_match": {
            "destination_port": 27017, "source_prefix_ranges": [{"address_prefix": "127.0.0.0", "prefix_len": 8}],
            "transport_protocol": "raw_buffer"},
         "filters": [istio.tcp_proxy("inbound|27017||", cluster="InboundPassthroughCluster")]},
        {"name": "virtualInbound", "filter_chain_match": {
            "prefix_ranges": [{"address_prefix": "0.0.0.0", "prefix_len": 0}],
            "transport_protocol": "tls", "application_protocols": ["istio-peer-exchange", "istio"]},
         "transport_socket": istio.downstream_mtls(alpn=["istio-peer-exchange", "h2", "http/1.1"]),
         "filters": [istio.tcp_proxy("InboundPassthroughCluster", cluster="InboundPassthroughCluster")]},
        {"name": "virtualInbound", "filter_chain_match": {
            "prefix_ranges": [{"address_prefix": "0.0.0.0", "prefix_len": 0}], "transport_protocol": "raw_buffer"},
         "filters": [istio.tcp_proxy("InboundPassthroughCluster", cluster="InboundPassthroughCluster")]},
    ]
    return istio.listener("virtualInbound", "127.0.0.1", 15006, chains, direction="INBOUND",
                          listener_filters=("original_dst", "tls_inspector", "http_inspector"),
                          listener_filters_timeout="0s", continue_on_listener_filters_timeout=True,
                          use_original_dst=True)


def virtual_outbound(catch_all="PassthroughCluster"):
    """Istio's capture listener; `catch_all` takes what matches no service (BlackHoleCluster under
    REGISTRY_ONLY)."""
    return istio.listener(
        "virtualOutbound", "127.0.0.1", 15001,
        [{"name": "PassthroughFilterChain",
          "filters": [istio.tcp_proxy(catch_all, cluster=catch_all)]}],
        direction="OUTBOUND", listener_filters=("original_dst", "tls_inspector", "http_inspector"),
        use_original_dst=True, listener_filters_timeout="0s", continue_on_listener_filters_timeout=True)


def http_outbound(port):
    return istio.listener(f"0.0.0.0_{port}", "0.0.0.0", port,
                          [{"filters": [istio.hcm(f"outbound_0.0.0.0_{port}", rds_name=str(port))]}],
                          direction="OUTBOUND", bind_to_port=False)


def mongodb_outbound(weights, inspect_tls=False):
    host = istio.fqdn("mongodb", "shop")
    weighted = [(istio.outbound_name(27017, "primary", host), weights[0]),
                (istio.outbound_name(27017, "replica", host), weights[1])]
    return istio.listener("0.0.0.0_27017", "0.0.0.0", 27017,
                          [{"filters": [istio.tcp_proxy(f"outbound|27017||{host}", weighted=weighted)]}],
                          direction="OUTBOUND", bind_to_port=False,
                          listener_filters=("tls_inspector",) if inspect_tls else ())


def duplicate_listener():
    return istio.listener("127.0.0.1_15001", "127.0.0.1", 15001,
                          [{"filters": [istio.tcp_proxy("BlackHoleCluster", cluster="BlackHoleCluster")]}],
                          direction="OUTBOUND")


def route_9080():
    def host(service):
        return istio.fqdn(service, "default")

    def cluster(service, subset=None):
        return istio.outbound_name(9080, subset, host(service))

    vhosts = [
        {"name": "details.default.svc.cluster.local:9080", "domains": istio.service_domains("details", "default", 9080),
         "routes": [
             {"name": "details-legacy-path", "match": {"path": "/old-details"},
              "redirect": {"path_redirect": "/details", "response_code": "MOVED_PERMANENTLY"}},
             {"name": "details", "match": {"prefix": "/"},
              "route": istio.route_to(cluster("details", "v1"), timeout="3s"),
              "decorator": istio.decorator(host("details"), 9080)}]},
        {"name": "productpage.default.svc.cluster.local:9080",
         "domains": istio.service_domains("productpage", "default", 9080),
         "routes": [{"name": "default", "match": {"prefix": "/"}, "route": istio.route_to(cluster("productpage")),
                     "decorator": istio.decorator(host("productpage"), 9080)}]},
        {"name": "ratings.default.svc.cluster.local:9080", "domains": istio.service_domains("ratings", "default", 9080),
         "routes": [
             {"name": "ratings-health", "match": {"path": "/ratings/health"},
              "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}},
             {"name": "ratings-canary", "match": {
                 "prefix": "/", "query_parameters": [{"name": "canary", "string_match": {"exact": "true"}}]},
              "route": istio.route_to(cluster("ratings", "v2"))},
             {"name": "ratings-by-id", "match": {"safe_regex": {"regex": "^/ratings/[0-9]+$"}},
              "route": istio.route_to(cluster("ratings", "v1"), timeout="2s")},
             {"name": "default", "match": {"prefix": "/"}, "route": istio.route_to(cluster("ratings", "v1"))}]},
        {"name": "reviews.default.svc.cluster.local:9080", "domains": istio.service_domains("reviews", "default", 9080),
         "routes": [
             {"name": "jason", "match": {"prefix": "/", "headers": [
                 {"name": "end-user", "string_match": {"exact": "jason"}}]},
              "route": istio.route_to(cluster("reviews", "v2")),
              "decorator": istio.decorator(host("reviews"), 9080)},
             {"name": "canary", "match": {"prefix": "/"},
              "route": istio.weighted_route([(cluster("reviews", "v1"), 80), (cluster("reviews", "v2"), 20)]),
              "decorator": istio.decorator(host("reviews"), 9080)}]},
        istio.allow_any_vhost(),
    ]
    return istio.route_configuration("9080", vhosts)


def route_8080():
    def cluster(service, protocol_port=8080):
        return istio.outbound_name(protocol_port, None, istio.fqdn(service, "shop"))

    vhosts = [
        {"name": "catalog.shop.svc.cluster.local:8080", "domains": istio.service_domains("catalog", "shop", 8080),
         "routes": [
             {"name": "catalog-v2-api", "match": {"prefix": "/api/v2/", "headers": [
                 {"name": "x-api-version", "present_match": True}]},
              "route": {**istio.route_to(cluster("catalog"), timeout="15s"), "prefix_rewrite": "/api/"}},
             {"name": "default", "match": {"prefix": "/"}, "route": istio.route_to(cluster("catalog"))}]},
        {"name": "frontend.shop.svc.cluster.local:8080", "domains": istio.service_domains("frontend", "shop", 8080),
         "routes": [
             {"name": "frontend-static", "match": {"prefix": "/static/"},
              "route": istio.route_to(cluster("frontend"), timeout="5s", retries=False)},
             {"name": "default", "match": {"prefix": "/"}, "route": istio.route_to(cluster("frontend"))}]},
        istio.block_all_vhost(),
    ]
    return istio.route_configuration("8080", vhosts)


class Sidecar(Scenario):
    name = "sidecar"

    def __init__(self):
        ca = CertificateAuthority()
        chain, key = ca.issue(0x5EC0DE01, uris=[istio.spiffe(NAMESPACE, "productpage")])
        self.secrets = [tls_certificate_secret("default", chain, key), validation_context_secret("ROOTCA", ca.pem)]

    def node(self):
        return node()

    def bootstrap(self, admin_port, xds_port):
        listeners = [
            istio.admin_listener("0.0.0.0_15090", 15090, "/stats/prometheus", "prometheus_stats", "stats"),
            istio.admin_listener("0.0.0.0_15021", 15021, "/healthz/ready", "agent", "agent"),
        ]
        return istio.bootstrap(self.node(), admin_port, xds_port, listeners)

    def steps(self):
        outbound, assignments = outbound_clusters_and_endpoints()
        special, special_assignments = special_clusters()
        clusters_1 = outbound + special
        listeners_1 = [virtual_outbound(), virtual_inbound(), http_outbound(9080), http_outbound(8080),
                       mongodb_outbound((80, 20))]
        listeners_2 = listeners_1[:-1] + [mongodb_outbound((50, 50), inspect_tls=True)]
        return [
            Step("initial", VERSION_1, {
                CLUSTER: clusters_1, ENDPOINT: assignments + special_assignments,
                LISTENER: listeners_1, ROUTE: [route_9080(), route_8080()], SECRET: self.secrets,
            }),
            # CDS goes first with the rejected cluster: while a cluster warms Envoy holds its CDS
            # answers, so a NACK after the warming cluster would never be seen.
            Step("rejected-cluster, listener-update", VERSION_2,
                 {CLUSTER: clusters_1 + [rejected_cluster()], LISTENER: listeners_2},
                 expect={CLUSTER: "nack", LISTENER: "ack"}, visible=_listener_draining),
            Step("warming-cluster, rejected-listener", VERSION_3,
                 {CLUSTER: clusters_1 + [warming_cluster()], LISTENER: listeners_2 + [duplicate_listener()]},
                 expect={CLUSTER: "sent", LISTENER: "nack"}, visible=_cluster_warming),
        ]


def _listener_draining(dump):
    listeners = dump_section(dump, "ListenersConfigDump").get("dynamic_listeners", [])
    return any("draining_state" in entry for entry in listeners)


def _cluster_warming(dump):
    return bool(dump_section(dump, "ClustersConfigDump").get("dynamic_warming_clusters"))
