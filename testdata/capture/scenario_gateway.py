"""Scenario `gateway`: an Istio ingress gateway in `istio-system` serving two Gateways and a passthrough.

- `0.0.0.0_8443` (bound on 127.0.0.1:8443): tls_inspector, one filter chain per SNI: `bookinfo.example.com`
  and `*.shop.example.com` terminate TLS with certificates from SDS (`kubernetes://<credentialName>`)
  and route over RDS; `legacy.example.com` passes TLS through to an sni-dnat cluster.
- `0.0.0.0_8080` (bound on 127.0.0.1:8080): plain HTTP, RDS `http.8080`.
- EDS clusters with mesh mTLS socket matches; weighted routes across DestinationRule subsets.
- Istio's default stats inclusion list (a gateway's stats are mostly filtered out).
One push; Envoy ACKs everything.
"""

import istio
from certs import CertificateAuthority, tls_certificate_secret, validation_context_secret
from scenario import Scenario, Step, dump_section
from xds_server import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

NAMESPACE = "istio-system"
REGION, ZONE_B, ZONE_C = "us-east1", "us-east1-b", "us-east1-c"
VERSION = "2025-06-01T12:00:00Z/11"
BOOKINFO_ROUTE = "https.443.https.bookinfo-gateway.istio-system"
SHOP_ROUTE = "https.443.https.shop-gateway.istio-system"

# service, namespace, service account, port, protocol, subsets, [(127.0.0.x octet, version, health, zone)]
BACKENDS = [
    ("productpage", "default", "bookinfo-productpage", 9080, "http", [],
     [(11, "v1", "HEALTHY", ZONE_B), (12, "v1", "HEALTHY", ZONE_C)]),
    ("reviews", "default", "bookinfo-reviews", 9080, "http", ["v1", "v2"],
     [(21, "v1", "HEALTHY", ZONE_B), (22, "v2", "HEALTHY", ZONE_C), (23, "v2", "UNHEALTHY", ZONE_C)]),
    ("frontend", "shop", "frontend", 8080, "http", ["v1", "v2"],
     [(81, "v1", "HEALTHY", ZONE_B), (82, "v1", None, ZONE_C), (84, "v2", "HEALTHY", ZONE_B)]),
    ("cart", "shop", "cart", 7070, "h2", [],
     [(91, "v1", "HEALTHY", ZONE_B), (92, "v1", "DRAINING", ZONE_B)]),
]


def node():
    workload = "istio-ingressgateway"
    return {
        "id": f"router~127.0.0.1~{workload}-xyz.{NAMESPACE}~{NAMESPACE}.svc.cluster.local",
        "cluster": f"{workload}.{NAMESPACE}",
        "locality": {"region": REGION, "zone": ZONE_B},
        "metadata": {
            "ISTIO_VERSION": "1.24.2",
            "ISTIO_PROXY_SHA": "2e6dbc1e4b3fbe0c1b34b6f5e1c2fb4d4b1c7a0e",
            "NAMESPACE": NAMESPACE,
            "WORKLOAD_NAME": workload,
            "NAME": f"{workload}-xyz",
            "LABELS": {"app": "istio-ingressgateway", "istio": "ingressgateway",
                       "service.istio.io/canonical-name": "istio-ingressgateway"},
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "ROUTER_MODE": "sni-dnat",
            "SERVICE_ACCOUNT": "istio-ingressgateway-service-account",
            "OWNER": f"kubernetes://apis/apps/v1/namespaces/{NAMESPACE}/deployments/{workload}",
        },
    }


def clusters_and_endpoints():
    clusters, assignments = [istio.blackhole_cluster()], []
    for service, namespace, account, port, protocol, subsets, endpoints in BACKENDS:
        for subset in [None] + subsets:
            cluster = istio.eds_cluster(service, namespace, port, account, protocol=protocol, subset=subset,
                                        destination_rule=service if subsets else None)
            clusters.append(cluster)
            by_zone = {}
            for octet, version, health, zone in endpoints:
                if subset is None or subset == version:
                    by_zone.setdefault(zone, []).append(istio.lb_endpoint(
                        f"127.0.0.{octet}", port, health=health,
                        workload=f"{service}-{version};{namespace};{service};{version};Kubernetes"))
            assignments.append(istio.load_assignment(cluster["name"], [
                istio.locality(REGION, zone, eps) for zone, eps in by_zone.items()]))
    # sni-dnat: the gateway forwards the TLS stream untouched, so no transport socket.
    passthrough = istio.eds_cluster("legacy", "shop", 443, "legacy", protocol="tcp")
    passthrough["name"] = passthrough["eds_cluster_config"]["service_name"] = \
        "outbound_.443_._.legacy.shop.svc.cluster.local"
    del passthrough["transport_socket_matches"]
    clusters.append(passthrough)
    assignments.append(istio.load_assignment(passthrough["name"], [istio.locality(REGION, ZONE_B, [
        istio.lb_endpoint("127.0.0.131", 443, health="HEALTHY", tls=False),
        istio.lb_endpoint("127.0.0.132", 443, health="HEALTHY", tls=False, weight=2)])]))
    return clusters, assignments


def https_listener():
    chains = [
        {"filter_chain_match": {"server_names": ["bookinfo.example.com"]},
         "transport_socket": istio.downstream_mtls(cert="kubernetes://bookinfo-credential", root=None,
                                                   require_client=False),
         "filters": [istio.hcm("outbound_0.0.0.0_8443", rds_name=BOOKINFO_ROUTE, direction="gateway")]},
        {"filter_chain_match": {"server_names": ["*.shop.example.com"]},
         "transport_socket": istio.downstream_mtls(cert="kubernetes://shop-wildcard-credential", root=None,
                                                   require_client=False),
         "filters": [istio.hcm("outbound_0.0.0.0_8443", rds_name=SHOP_ROUTE, direction="gateway")]},
        {"filter_chain_match": {"server_names": ["legacy.example.com"]},
         "filters": [istio.tcp_proxy("outbound_.443_._.legacy.shop.svc.cluster.local",
                                     cluster="outbound_.443_._.legacy.shop.svc.cluster.local")]},
    ]
    return istio.listener("0.0.0.0_8443", "127.0.0.1", 8443, chains, direction="OUTBOUND",
                          listener_filters=("tls_inspector",), listener_filters_timeout="5s",
                          per_connection_buffer_limit_bytes=32768)


def http_listener():
    return istio.listener("0.0.0.0_8080", "127.0.0.1", 8080,
                          [{"filters": [istio.hcm("outbound_0.0.0.0_8080", rds_name="http.8080",
                                                  direction="gateway")]}],
                          direction="OUTBOUND", per_connection_buffer_limit_bytes=32768)


def cluster_name(service, namespace, port, subset=None):
    return istio.outbound_name(port, subset, istio.fqdn(service, namespace))


def bookinfo_routes():
    productpage = cluster_name("productpage", "default", 9080)
    return [
        {"name": "productpage-exact", "match": {"path": "/productpage"}, "route": istio.route_to(productpage)},
        {"name": "static", "match": {"prefix": "/static"}, "route": istio.route_to(productpage, timeout="10s")},
        {"name": "login", "match": {"safe_regex": {"regex": "^/(login|logout)$"}}, "route": istio.route_to(productpage)},
        {"name": "reviews-canary", "match": {"prefix": "/api/v1/reviews"},
         "route": istio.weighted_route([(cluster_name("reviews", "default", 9080, "v1"), 70),
                                        (cluster_name("reviews", "default", 9080, "v2"), 30)])},
        {"name": "products", "match": {"prefix": "/api/v1/products"}, "route": istio.route_to(productpage)},
    ]


def routes():
    frontend = [(cluster_name("frontend", "shop", 8080, "v1"), 90), (cluster_name("frontend", "shop", 8080, "v2"), 10)]
    cart = cluster_name("cart", "shop", 7070)
    bookinfo = istio.route_configuration(BOOKINFO_ROUTE, [
        {"name": "bookinfo.example.com:443", "domains": ["bookinfo.example.com", "bookinfo.example.com:*"],
         "routes": bookinfo_routes()}])
    shop = istio.route_configuration(SHOP_ROUTE, [
        {"name": "*.shop.example.com:443", "domains": ["*.shop.example.com", "*.shop.example.com:*"],
         "routes": [
             {"name": "cart-grpc", "match": {"prefix": "/shop.cart.v1.CartService/",
                                             "grpc": {}}, "route": istio.route_to(cart, timeout="5s")},
             {"name": "beta-users", "match": {"prefix": "/", "headers": [
                 {"name": "cookie", "string_match": {"contains": "beta=1"}}]},
              "route": istio.route_to(cluster_name("frontend", "shop", 8080, "v2"))},
             {"name": "frontend", "match": {"prefix": "/"}, "route": istio.weighted_route(frontend)}]}])
    plain = istio.route_configuration("http.8080", [
        {"name": "bookinfo.example.com:80", "domains": ["bookinfo.example.com", "bookinfo.example.com:*"],
         "routes": [{"name": "health", "match": {"path": "/healthz"},
                     "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}]
         + bookinfo_routes()},
        {"name": "*.shop.example.com:80", "domains": ["*.shop.example.com", "*.shop.example.com:*"],
         "routes": [{"name": "https-only", "match": {"prefix": "/"},
                     "redirect": {"https_redirect": True, "port_redirect": 443}}]},
    ])
    return [bookinfo, shop, plain]


class Gateway(Scenario):
    name = "gateway"

    def __init__(self):
        mesh_ca = CertificateAuthority()
        chain, key = mesh_ca.issue(0x6A7E0001, uris=[istio.spiffe(NAMESPACE, "istio-ingressgateway-service-account")])
        public_ca = CertificateAuthority(organization="Example Public CA", serial=0x0E1A3C)
        bookinfo_chain, bookinfo_key = public_ca.issue(0x0B00C1F0, dns_names=["bookinfo.example.com"],
                                                       common_name="bookinfo.example.com")
        shop_chain, shop_key = public_ca.issue(0x05A0B001, dns_names=["*.shop.example.com"],
                                               common_name="*.shop.example.com")
        self.secrets = [
            tls_certificate_secret("default", chain, key),
            validation_context_secret("ROOTCA", mesh_ca.pem),
            tls_certificate_secret("kubernetes://bookinfo-credential", bookinfo_chain, bookinfo_key),
            tls_certificate_secret("kubernetes://shop-wildcard-credential", shop_chain, shop_key),
        ]

    def node(self):
        return node()

    def bootstrap(self, admin_port, xds_port):
        listeners = [
            istio.admin_listener("0.0.0.0_15090", 15090, "/stats/prometheus", "prometheus_stats", "stats"),
            istio.admin_listener("0.0.0.0_15021", 15021, "/healthz/ready", "agent", "agent"),
        ]
        return istio.bootstrap(self.node(), admin_port, xds_port, listeners,
                               stats_matcher=istio.ISTIO_STATS_INCLUSIONS)

    def steps(self):
        clusters, assignments = clusters_and_endpoints()
        return [Step("initial", VERSION, {
            CLUSTER: clusters, ENDPOINT: assignments, LISTENER: [https_listener(), http_listener()],
            ROUTE: routes(), SECRET: self.secrets,
        }, visible=self._all_active)]

    def _all_active(self, dump):
        secrets = dump_section(dump, "SecretsConfigDump")
        listeners = dump_section(dump, "ListenersConfigDump").get("dynamic_listeners", [])
        return (len(secrets.get("dynamic_active_secrets", [])) == len(self.secrets)
                and not secrets.get("dynamic_warming_secrets")
                and sum(1 for entry in listeners if "active_state" in entry) == 2)
