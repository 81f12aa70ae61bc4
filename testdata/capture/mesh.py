"""Istio-shaped proxy configurations of any size, with one knob per factor that costs Envoy memory.

`Mesh` describes what istiod would push to one proxy: `services` services spread over `namespaces`
namespaces, each with `ports`; DestinationRule `subsets`; `endpoints` per service in `localities`
localities; clusters of one discovery type with or without Istio's mTLS transport socket matches,
HTTP protocol options, circuit breakers and outlier detection; an outbound HTTP listener and RDS route
configuration per HTTP port with a virtual host per service; a TCP proxy listener per TCP service port
(as Istio makes them); optionally a gateway listener with SNI filter chains terminating TLS with their
own SDS secrets. `resources()` gives the xDS resources (proto3-JSON dicts) and `bootstrap()` an Istio
bootstrap with the chosen stats settings and deferrals. The calibration (`calibrate.py`) and the
Sidecar what-if proof vary these knobs; nothing here talks to Envoy. Every knob's default is the
configuration the first calibration measured, so points measured before a knob existed keep meaning
the same.

Every address Envoy binds is 127.0.0.1; endpoint addresses are never dialled, except the 127.0.0.1
ones of traffic tests (`traffic_services`, `upstream_port`).
"""

from dataclasses import asdict, dataclass, field, replace

import istio

# Protocols a service port can have: istio.http_protocol_options() kinds, or "tcp".
HTTP_PROTOCOLS = ("http", "h2", "client")


@dataclass(frozen=True)
class Mesh:
    services: int = 100
    namespaces: int = 10
    # (port, protocol) of every service; protocol "http", "h2", "client" or "tcp".
    ports: tuple = ((8080, "http"),)
    subsets: int = 0
    endpoints: int = 3
    localities: int = 1
    # EDS, STATIC, STRICT_DNS, LOGICAL_DNS or ORIGINAL_DST.
    cluster_type: str = "EDS"
    # "istio": tlsMode-istio/tlsMode-disabled socket matches; "tls": one upstream TLS socket; "none".
    tls: str = "istio"
    http_options: bool = True
    circuit_breakers: bool = True
    outlier_detection: bool = False
    # Endpoint metadata: "full" (tlsMode + istio workload, as istiod sends), "tls", "workload", "none".
    endpoint_metadata: str = "full"
    # Virtual hosts: domains ("istio" = istiod's set for the port, or a number) and routes each.
    domains: object = "istio"
    routes: int = 1
    # Route match of the extra routes: "prefix", "regex", "header" or "weighted".
    route_match: str = "prefix"
    # HTTP ports get listeners and routes; "none" leaves listeners out (clusters only).
    listeners: str = "istio"
    # Gateway: SNI filter chains on one TLS listener, each with its own certificate secret.
    sni_hosts: int = 0
    # Clusters (the first ones) whose upstream TLS presents its own client certificate, as a
    # DestinationRule with `credentialName` makes them: one SDS secret each.
    cluster_credentials: int = 0
    # Whether those clusters share one credential (one secret) instead of one each.
    shared_credential: bool = False
    # Knative-style fan-out: each service also gets a `-private` twin and this many revisions.
    knative_revisions: int = 0
    stats: str = "default"  # "default", "istio" or "reject_all"
    # Bootstrap deferrals istio-agent turns on (tools/packaging/common/envoy_bootstrap.json):
    # `deferred_stat_options: {enable_deferred_creation_stats: true}` (always) and
    # `cluster_manager: {enable_deferred_cluster_creation: true}` (only when the agent writes a
    # cluster_manager block: an outlier log path, LRS or self-discovery). ISTIO_AGENT sets all three.
    deferred_stats: bool = False
    deferred_clusters: bool = False
    concurrency: int = 2
    # The mesh root (SDS secret ROOTCA): "served", or "warming" (never served: it stays in
    # dynamic_warming_secrets; the clusters that validate with it wait ROOT_WARMING_FETCH_TIMEOUT
    # for it, then go active without an upstream TLS context).
    root_secret: str = "served"
    # Certificate material of the workload certificate `default` and its CAs (certs.KEY_TYPES);
    # cert_chain 2 issues it through an intermediate CA; trust_bundle is how many roots ROOTCA holds.
    cert_key: str = "ec-p256"
    cert_chain: int = 1
    trust_bundle: int = 1
    # How many distinct istio workload strings endpoint metadata carries: "per_service" (istiod's:
    # svc-<i>-v<e mod 3>, so up to 3 per service), "per_endpoint" (one per endpoint) or "shared" (one).
    metadata_values: str = "per_service"
    # Options istiod always sets: circuit breaker `track_remaining` on clusters; `retry_policy`,
    # `decorator` and `max_stream_duration` on routes.
    track_remaining: bool = True
    retry_policy: bool = True
    decorator: bool = True
    max_stream_duration: bool = True
    # Where secrets come from: "cluster" (Istio's: the bootstrap's sds-grpc cluster, one gRPC stream
    # per secret) or "ads" (over the ADS stream).
    sds: str = "cluster"
    # Traffic: after the config settles, calibrate sends real requests through Envoy to the first
    # this-many services (their endpoints then answer on 127.0.0.1; see `_localities`).
    traffic_services: int = 0
    # The workload's namespace (what a Sidecar's `.` means).
    workload_namespace: str = "default"
    # Sidecar egress hosts istiod applies (None: no Sidecar). See `in_scope`.
    egress: tuple = None
    # Traffic tests: the first HTTP port's listener binds 127.0.0.1 on this port, and every
    # endpoint is 127.0.0.1:`upstream_port`, where the bootstrap answers any request with 200.
    # With `traffic_services`, only the endpoints of those services are local instead, endpoint e
    # at 127.0.0.1:`upstream_port + e` (served outside Envoy, by calibrate's upstream), and the
    # bootstrap gets no upstream listener.
    bind_http_port: int = 0
    upstream_port: int = 0
    # Key for spreading endpoint addresses so points do not collide (any integer).
    seed: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def describe(self):
        return {k: v for k, v in asdict(self).items() if k != "extra"}

    def but(self, **changes):
        return replace(self, **changes)


# What istio-agent's bootstrap sets (with a cluster_manager block): the knobs to `but()` a Mesh with.
ISTIO_AGENT = {"stats": "istio", "deferred_stats": True, "deferred_clusters": True}


def _service_names(mesh):
    """(service, namespace) pairs, Knative twins and revisions included."""
    out = []
    for i in range(mesh.services):
        namespace = f"ns-{i % mesh.namespaces}"
        name = f"svc-{i}"
        out.append((name, namespace))
        if mesh.knative_revisions:
            out.append((f"{name}-private", namespace))
            for r in range(mesh.knative_revisions):
                out.append((f"{name}-{r + 1:05d}", namespace))
                out.append((f"{name}-{r + 1:05d}-private", namespace))
    return out


def in_scope(mesh, service, namespace):
    """Istio's Sidecar egress semantics, as istiod applies them: `namespace/dnsName`, where the
    namespace is a name, `*`, `.` (the workload's) or `~` (none), and the name is a host, `*`, or
    `*.suffix` (hosts ending in `.suffix`)."""
    if mesh.egress is None:
        return True
    host = istio.fqdn(service, namespace)
    for entry in mesh.egress:
        ns, name = entry.split("/", 1)
        ns_ok = {"*": True, ".": namespace == mesh.workload_namespace, "~": False}.get(ns, ns == namespace)
        name_ok = name == "*" or (name.startswith("*.") and host.endswith(name[1:])) or name == host
        if ns_ok and name_ok:
            return True
    return False


def _ip(mesh, index, endpoint):
    """A distinct 10.x.y.z per (service index, endpoint)."""
    n = (mesh.seed * 7919 + index * 64 + endpoint) % (1 << 24)
    return f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


def _service_ip(index):
    return f"172.{16 + (index >> 16) % 16}.{(index >> 8) & 255}.{index & 255}"


def _cluster(mesh, service, namespace, port, protocol, subset, credential=None):
    host = istio.fqdn(service, namespace)
    kind = mesh.cluster_type
    cluster = istio.eds_cluster(service, namespace, port, service, protocol=protocol, subset=subset,
                                destination_rule=service if mesh.subsets else None)
    if kind != "EDS":
        del cluster["eds_cluster_config"]
        cluster["type"] = kind
        if kind == "ORIGINAL_DST":
            cluster["lb_policy"] = "CLUSTER_PROVIDED"
        if kind in ("STRICT_DNS", "LOGICAL_DNS"):
            cluster["dns_lookup_family"] = "V4_ONLY"
    if credential:
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": istio.upstream_mtls(
            host, [istio.spiffe(namespace, service)], cert=credential, root="ROOTCA", alpn=["h2", "http/1.1"])}
        del cluster["transport_socket_matches"]
    elif mesh.tls == "tls":
        match = cluster["transport_socket_matches"][0]["transport_socket"]
        cluster["transport_socket"] = match
        del cluster["transport_socket_matches"]
    elif mesh.tls == "none":
        del cluster["transport_socket_matches"]
    if not mesh.http_options:
        cluster.pop("typed_extension_protocol_options", None)
    if not mesh.circuit_breakers:
        del cluster["circuit_breakers"]
    if mesh.outlier_detection:
        cluster["outlier_detection"] = istio.outlier_detection()
    else:
        cluster.pop("outlier_detection", None)
    cluster["metadata"] = istio.istio_metadata(host, service, namespace, port, subset,
                                               service if mesh.subsets else None)
    return cluster


def _localities(mesh, index, port, subset):
    """The endpoints of one cluster, spread over localities."""
    groups = [[] for _ in range(max(1, mesh.localities))]
    for e in range(mesh.endpoints):
        if mesh.traffic_services:
            if index < mesh.traffic_services and mesh.upstream_port:
                address, port = "127.0.0.1", mesh.upstream_port + e
            else:
                address = _ip(mesh, index, e)
        elif mesh.upstream_port:
            address, port = "127.0.0.1", mesh.upstream_port
        elif mesh.cluster_type in ("STRICT_DNS", "LOGICAL_DNS"):
            address = "localhost"
        else:
            address = _ip(mesh, index, e)
        workload = None
        if mesh.endpoint_metadata in ("full", "workload"):
            workload = {
                "per_service": f"svc-{index}-v{e % 3};ns;svc-{index};v{e % 3};Kubernetes",
                "per_endpoint": f"svc-{index}-v{e % 3}-{e};ns;svc-{index};v{e % 3};Kubernetes",
                "shared": "workload;ns;app;v1;Kubernetes",
            }[mesh.metadata_values]
        tls = mesh.endpoint_metadata in ("full", "tls") and mesh.tls == "istio"
        groups[e % len(groups)].append(istio.lb_endpoint(address, port, health="HEALTHY", tls=tls,
                                                         workload=workload))
    return [istio.locality("region-1", f"zone-{z}", eps) for z, eps in enumerate(groups) if eps]


def _domains(mesh, service, namespace, port):
    if mesh.domains == "istio":
        return istio.service_domains(service, namespace, port)
    host = istio.fqdn(service, namespace)
    return [host] + [f"alias-{d}.{host}" for d in range(int(mesh.domains) - 1)]


def _routes(mesh, cluster, host, port, subset_clusters):
    routes = []
    for r in range(mesh.routes - 1):
        name = f"r{r}"
        if mesh.route_match == "regex":
            match = {"safe_regex": {"regex": f"^/api/v{r}/[a-z0-9]+$"}}
        elif mesh.route_match == "header":
            match = {"prefix": "/", "headers": [{"name": "x-route", "string_match": {"exact": name}}]}
        else:
            match = {"prefix": f"/api/v{r}/"}
        if mesh.route_match == "weighted" and len(subset_clusters) >= 2:
            action = {"route": istio.weighted_route([(subset_clusters[0], 50), (subset_clusters[1], 50)])}
        else:
            action = {"route": istio.route_to(cluster)}
        routes.append({"name": name, "match": match, **action, "decorator": istio.decorator(host, port)})
    routes.append({"name": "default", "match": {"prefix": "/"}, "route": istio.route_to(cluster),
                   "decorator": istio.decorator(host, port)})
    return routes


def resources(mesh):
    """{type URL: [resource]} for the whole mesh, as the xDS server serves them."""
    clusters = [istio.blackhole_cluster(), istio.passthrough_cluster(), istio.inbound_passthrough_cluster()]
    assignments = []
    vhosts_by_port = {}
    tcp_listeners = []
    credentials = []
    given = 0
    for index, (service, namespace) in enumerate(_service_names(mesh)):
        if not in_scope(mesh, service, namespace):
            continue
        host = istio.fqdn(service, namespace)
        for port, protocol in mesh.ports:
            subset_names = [f"v{s + 1}" for s in range(mesh.subsets)]
            names = []
            for subset in [None] + subset_names:
                credential = None
                if given < mesh.cluster_credentials:
                    credential = f"kubernetes://client-cred-{0 if mesh.shared_credential else given}"
                    given += 1
                    if credential not in credentials:
                        credentials.append(credential)
                cluster = _cluster(mesh, service, namespace, port, protocol, subset, credential)
                names.append(cluster["name"])
                localities = []
                if mesh.cluster_type != "ORIGINAL_DST":
                    localities = _localities(mesh, index, port, subset)
                if mesh.cluster_type == "EDS":
                    assignments.append(istio.load_assignment(cluster["name"], localities))
                elif localities:
                    cluster["load_assignment"] = {"cluster_name": cluster["name"], "endpoints": localities}
                clusters.append(cluster)
            if mesh.listeners == "none":
                continue
            if protocol in HTTP_PROTOCOLS:
                vhosts_by_port.setdefault(port, []).append({
                    "name": f"{host}:{port}", "domains": _domains(mesh, service, namespace, port),
                    "routes": _routes(mesh, names[0], host, port, names[1:]),
                    "include_request_attempt_count": True})
            else:
                ip = _service_ip(index)
                tcp_listeners.append(istio.listener(
                    f"{ip}_{port}", ip, port,
                    [{"filters": [istio.tcp_proxy(names[0], cluster=names[0])]}],
                    direction="OUTBOUND", bind_to_port=False))
    listeners, routes = [], []
    if mesh.listeners != "none":
        listeners.append(_virtual_outbound())
        for port, vhosts in sorted(vhosts_by_port.items()):
            bind = mesh.bind_http_port and port == mesh.ports[0][0]
            listeners.append(istio.listener(
                f"0.0.0.0_{port}", "127.0.0.1" if bind else "0.0.0.0",
                mesh.bind_http_port if bind else port,
                [{"filters": [istio.hcm(f"outbound_0.0.0.0_{port}", rds_name=str(port))]}],
                direction="OUTBOUND", bind_to_port=bool(bind)))
            routes.append(istio.route_configuration(str(port), vhosts + [istio.allow_any_vhost()]))
        listeners.extend(tcp_listeners)
    secret_names = list(credentials)
    if mesh.sni_hosts:
        listener, gateway_routes, names = _gateway(mesh)
        listeners.append(listener)
        routes.extend(gateway_routes)
        secret_names.extend(names)
    _apply_toggles(mesh, clusters, routes)
    built = {"clusters": clusters, "endpoints": assignments, "listeners": listeners, "routes": routes,
             "secret_names": secret_names}
    if mesh.root_secret == "warming":
        _walk(built, _root_fetch_timeout)
    if mesh.sds == "ads":
        _walk(built, _sds_over_ads)
    elif mesh.sds != "cluster":
        raise ValueError(f"sds must be 'cluster' or 'ads', not {mesh.sds!r}")
    return built


def _apply_toggles(mesh, clusters, routes):
    """Takes out the options istiod always sets whose knobs are off."""
    if not mesh.track_remaining:
        for cluster in clusters:
            for threshold in cluster.get("circuit_breakers", {}).get("thresholds", []):
                threshold.pop("track_remaining", None)
    dropped = [key for key, on in (("retry_policy", mesh.retry_policy),
                                   ("max_stream_duration", mesh.max_stream_duration)) if not on]
    for config in routes:
        for vhost in config["virtual_hosts"]:
            for route in vhost["routes"]:
                if not mesh.decorator:
                    route.pop("decorator", None)
                for key in dropped:
                    route.get("route", {}).pop(key, None)


def _walk(value, visit):
    """Calls visit(dict) on every dict inside `value`, depth first."""
    if isinstance(value, dict):
        visit(value)
        for child in value.values():
            _walk(child, visit)
    elif isinstance(value, list):
        for child in value:
            _walk(child, visit)


# How long references to a never-served ROOTCA wait for it. Istio's `0s` (wait forever) would hold
# every mTLS cluster warming, and with them Envoy's initialization (no listener would come up);
# Envoy's default of 15 s lets the clusters go active without it, ROOTCA staying warming.
ROOT_WARMING_FETCH_TIMEOUT = "15s"


def _root_fetch_timeout(node):
    if node.get("name") == "ROOTCA" and isinstance(node.get("sds_config"), dict):
        node["sds_config"]["initial_fetch_timeout"] = ROOT_WARMING_FETCH_TIMEOUT


def _sds_over_ads(node):
    """An SdsSecretConfig's source, moved from the sds-grpc cluster to the ADS stream."""
    source = node.get("sds_config")
    if isinstance(source, dict) and "api_config_source" in source:
        node["sds_config"] = istio.ads(source.get("initial_fetch_timeout", "0s"))


def _virtual_outbound():
    return istio.listener(
        "virtualOutbound", "0.0.0.0", 15001,
        [{"name": "PassthroughFilterChain",
          "filters": [istio.tcp_proxy("PassthroughCluster", cluster="PassthroughCluster")]}],
        direction="OUTBOUND", bind_to_port=False,
        listener_filters=("original_dst", "tls_inspector", "http_inspector"),
        use_original_dst=True, listener_filters_timeout="0s", continue_on_listener_filters_timeout=True)


def _gateway(mesh):
    """An ingress gateway's TLS listener: one SNI filter chain per host, each with its certificate."""
    names = _service_names(mesh)
    chains, routes, secrets = [], [], []
    for h in range(mesh.sni_hosts):
        service, namespace = names[h % len(names)]
        sni = f"app-{h}.example.com"
        credential = f"kubernetes://cred-{h}"
        secrets.append(credential)
        route_name = f"https.443.app-{h}.gw-{h}.istio-system"
        cluster = istio.outbound_name(mesh.ports[0][0], None, istio.fqdn(service, namespace))
        routes.append(istio.route_configuration(route_name, [{
            "name": f"{sni}:443", "domains": [sni, f"{sni}:443"],
            "routes": [{"name": "default", "match": {"prefix": "/"}, "route": istio.route_to(cluster)}]}]))
        chains.append({
            "filter_chain_match": {"server_names": [sni]},
            "transport_socket": istio.downstream_mtls(cert=credential, root=None, require_client=False),
            "filters": [istio.hcm(f"outbound_0.0.0.0_8443", rds_name=route_name, direction="gateway")],
        })
    listener = istio.listener("0.0.0.0_8443", "0.0.0.0", 8443, chains, bind_to_port=False,
                              listener_filters=("tls_inspector",))
    return listener, routes, secrets


def stats_matcher(mesh):
    return {"default": None, "istio": istio.ISTIO_STATS_INCLUSIONS,
            "reject_all": {"reject_all": True}}[mesh.stats]


def node(name="mesh", namespace="default"):
    return {
        "id": f"sidecar~127.0.0.1~{name}-abc.{namespace}~{namespace}.svc.cluster.local",
        "cluster": f"{name}.{namespace}",
        "locality": {"region": "region-1", "zone": "zone-0"},
        "metadata": {"ISTIO_VERSION": "1.24.2", "NAMESPACE": namespace, "WORKLOAD_NAME": name,
                     "LABELS": {"app": name, "version": "v1"},
                     "CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local"},
    }


def bootstrap(mesh, admin_port, xds_port, name="mesh"):
    listeners = [
        istio.admin_listener("0.0.0.0_15090", 0, "/stats/prometheus", "prometheus_stats", "stats"),
        istio.admin_listener("0.0.0.0_15021", 0, "/healthz/ready", "agent", "agent"),
    ]
    if mesh.upstream_port and not mesh.traffic_services:
        listeners.append(_upstream_listener(mesh.upstream_port))
    return istio.bootstrap(node(name, mesh.workload_namespace), admin_port, xds_port, listeners,
                           stats_matcher=stats_matcher(mesh), deferred_stats=mesh.deferred_stats,
                           deferred_clusters=mesh.deferred_clusters)


def _upstream_listener(port):
    """What every endpoint is in traffic tests: 127.0.0.1:`port`, answering 200 to anything."""
    return {
        "name": "upstream", "address": istio.socket_address("127.0.0.1", port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": istio.HCM_T, "stat_prefix": "upstream",
                "route_config": {"virtual_hosts": [{"name": "upstream", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": istio.TYPE + "envoy.extensions.filters.http.router.v3.Router"}}],
            }}]}],
    }
