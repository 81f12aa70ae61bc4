"""Builders for Istio-shaped Envoy resources, as proto3-JSON dicts (original proto field names).

Shapes follow what istiod sends a sidecar or gateway (cluster and listener names, transport socket
matches, metadata, HCM filters), limited to extensions the upstream Envoy binary has. Scenarios
(`scenario_*.py`) decide what exists; this module only knows how each kind of resource looks.
Every address here is a string in a config; anything Envoy binds is on 127.0.0.1.
"""

TYPE = "type.googleapis.com/"
CLUSTER_T = TYPE + "envoy.config.cluster.v3.Cluster"
CLA_T = TYPE + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER_T = TYPE + "envoy.config.listener.v3.Listener"
ROUTE_T = TYPE + "envoy.config.route.v3.RouteConfiguration"
HCM_T = TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY_T = TYPE + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
UPSTREAM_TLS_T = TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS_T = TYPE + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
RAW_BUFFER_T = TYPE + "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
HTTP_OPTIONS_T = TYPE + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

ISTIO_ALPN = ["istio-peer-exchange", "istio"]
MAX_U32 = 4294967295


def ads(initial_fetch_timeout="0s"):
    return {"ads": {}, "initial_fetch_timeout": initial_fetch_timeout, "resource_api_version": "V3"}


def sds(initial_fetch_timeout="0s"):
    """Istio's SDS source: the node agent, reached through the bootstrap's `sds-grpc` cluster."""
    return {
        "api_config_source": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "set_node_on_first_message_only": True,
            "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}],
        },
        "initial_fetch_timeout": initial_fetch_timeout,
        "resource_api_version": "V3",
    }


def sds_secret(name, initial_fetch_timeout="0s"):
    return {"name": name, "sds_config": sds(initial_fetch_timeout)}


def fqdn(service, namespace):
    return f"{service}.{namespace}.svc.cluster.local"


def spiffe(namespace, service_account):
    return f"spiffe://cluster.local/ns/{namespace}/sa/{service_account}"


def socket_address(address, port):
    return {"socket_address": {"address": address, "port_value": port}}


# --- clusters ---------------------------------------------------------------------------------

def upstream_mtls(sni, sans, cert="default", root="ROOTCA", alpn=ISTIO_ALPN, initial_fetch_timeout="0s"):
    """The UpstreamTlsContext Istio uses for mesh mTLS (ISTIO_MUTUAL), certificates over SDS."""
    return {
        "@type": UPSTREAM_TLS_T,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
            "alpn_protocols": list(alpn),
            "tls_certificate_sds_secret_configs": [sds_secret(cert, initial_fetch_timeout)],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_typed_subject_alt_names": [
                        {"san_type": "URI", "matcher": {"exact": san}} for san in sans
                    ],
                },
                "validation_context_sds_secret_config": sds_secret(root, initial_fetch_timeout),
            },
        },
        "sni": sni,
    }


def istio_socket_matches(sni, sans):
    return [
        {
            "name": "tlsMode-istio",
            "match": {"tlsMode": "istio"},
            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": upstream_mtls(sni, sans)},
        },
        {
            "name": "tlsMode-disabled",
            "match": {},
            "transport_socket": {"name": "envoy.transport_sockets.raw_buffer",
                                 "typed_config": {"@type": RAW_BUFFER_T}},
        },
    ]


def http_protocol_options(protocol):
    """typed_extension_protocol_options for an HTTP port: "h2" (gRPC/HTTP2), "http" or "client"."""
    if protocol == "h2":
        upstream = {"explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 1073741824}}}
    elif protocol == "client":
        upstream = {"use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}
    else:
        upstream = {"explicit_http_config": {"http_protocol_options": {}}}
    return {HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_T,
                               "common_http_protocol_options": {"idle_timeout": "3600s"}, **upstream}}


def circuit_breakers(max_connections=MAX_U32, max_pending=MAX_U32, max_requests=MAX_U32, max_retries=MAX_U32):
    return {"thresholds": [{
        "max_connections": max_connections, "max_pending_requests": max_pending,
        "max_requests": max_requests, "max_retries": max_retries, "track_remaining": True,
    }]}


def outlier_detection(consecutive_5xx=5, interval="10s", base_ejection_time="30s", max_ejection_percent=50):
    return {"consecutive_5xx": consecutive_5xx, "interval": interval,
            "base_ejection_time": base_ejection_time, "max_ejection_percent": max_ejection_percent,
            "enforcing_consecutive_5xx": 100, "enforcing_success_rate": 0}


def istio_metadata(host, service, namespace, port, subset=None, destination_rule=None):
    istio = {"services": [{"host": host, "name": service, "namespace": namespace}],
             "default_original_port": port}
    if subset:
        istio["subset"] = subset
    if destination_rule:
        istio["config"] = f"/apis/networking.istio.io/v1/namespaces/{namespace}/destination-rule/{destination_rule}"
    return {"filter_metadata": {"istio": istio}}


def outbound_name(port, subset, host):
    return f"outbound|{port}|{subset or ''}|{host}"


def eds_cluster(service, namespace, port, service_account, protocol="http", subset=None,
                destination_rule=None, eds_initial_fetch_timeout="0s", max_connections=MAX_U32):
    """An Istio outbound EDS cluster, optionally a DestinationRule subset of it."""
    host = fqdn(service, namespace)
    name = outbound_name(port, subset, host)
    cluster = {
        "@type": CLUSTER_T,
        "name": name,
        "type": "EDS",
        "eds_cluster_config": {"eds_config": ads(eds_initial_fetch_timeout), "service_name": name},
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": circuit_breakers(max_connections=max_connections),
        "common_lb_config": {"locality_weighted_lb_config": {}},
        "metadata": istio_metadata(host, service, namespace, port, subset, destination_rule),
        "transport_socket_matches": istio_socket_matches(
            f"outbound_.{port}_.{subset or ''}_.{host}", [spiffe(namespace, service_account)]),
        "filters": [],
    }
    if protocol in ("http", "h2", "client"):
        cluster["typed_extension_protocol_options"] = http_protocol_options(protocol)
    if destination_rule:
        cluster["outlier_detection"] = outlier_detection()
    if not cluster["filters"]:
        del cluster["filters"]
    return cluster


def blackhole_cluster():
    return {"@type": CLUSTER_T, "name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"}


def passthrough_cluster():
    return {
        "@type": CLUSTER_T, "name": "PassthroughCluster", "type": "ORIGINAL_DST",
        "connect_timeout": "10s", "lb_policy": "CLUSTER_PROVIDED",
        "circuit_breakers": circuit_breakers(max_connections=MAX_U32),
        "typed_extension_protocol_options": http_protocol_options("client"),
    }


def inbound_passthrough_cluster():
    return {
        "@type": CLUSTER_T, "name": "InboundPassthroughCluster", "type": "ORIGINAL_DST",
        "connect_timeout": "10s", "lb_policy": "CLUSTER_PROVIDED",
        "circuit_breakers": circuit_breakers(),
        "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}},
        "typed_extension_protocol_options": http_protocol_options("client"),
    }


def load_assignment(cluster_name, localities):
    return {"@type": CLA_T, "cluster_name": cluster_name, "endpoints": localities}


def locality(region, zone, endpoints, priority=0, sub_zone=None):
    loc = {"region": region, "zone": zone}
    if sub_zone:
        loc["sub_zone"] = sub_zone
    entry = {"locality": loc, "lb_endpoints": endpoints, "load_balancing_weight": max(1, len(endpoints))}
    if priority:
        entry["priority"] = priority
    return entry


def lb_endpoint(address, port, health=None, weight=None, tls=True, workload=None):
    """One endpoint; health None leaves health_status unset (Envoy then treats it as UNKNOWN)."""
    endpoint = {"endpoint": {"address": socket_address(address, port)}}
    if health:
        endpoint["health_status"] = health
    if weight:
        endpoint["load_balancing_weight"] = weight
    metadata = {}
    if tls:
        metadata["envoy.transport_socket_match"] = {"tlsMode": "istio"}
    if workload:
        metadata["istio"] = {"workload": workload}
    if metadata:
        endpoint["metadata"] = {"filter_metadata": metadata}
    return endpoint


# --- listeners --------------------------------------------------------------------------------

def http_filters():
    return [
        {"name": "envoy.filters.http.grpc_stats",
         "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
                          "emit_filter_state": True, "stats_for_all_methods": False}},
        {"name": "envoy.filters.http.fault",
         "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.fault.v3.HTTPFault"}},
        {"name": "envoy.filters.http.cors",
         "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.cors.v3.Cors"}},
        {"name": "envoy.filters.http.router",
         "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.router.v3.Router"}},
    ]


def access_log():
    return [{"name": "envoy.access_loggers.file",
             "typed_config": {"@type": TYPE + "envoy.extensions.access_loggers.file.v3.FileAccessLog",
                              "path": "/dev/stdout",
                              "log_format": {"text_format_source": {"inline_string":
                                  "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% "
                                  "%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER%\n"}}}}]


def hcm(stat_prefix, rds_name=None, route_config=None, direction="outbound", xff_num_trusted_hops=0):
    config = {
        "@type": HCM_T,
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        "http_filters": http_filters(),
        "access_log": access_log(),
        "use_remote_address": direction == "gateway",
        "server_name": "istio-envoy",
        "stream_idle_timeout": "0s",
        "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "request_id_extension": {"typed_config": {
            "@type": TYPE + "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            "use_request_id_for_trace_sampling": True}},
    }
    if xff_num_trusted_hops:
        config["xff_num_trusted_hops"] = xff_num_trusted_hops
    if rds_name is not None:
        config["rds"] = {"config_source": ads(), "route_config_name": rds_name}
    else:
        config["route_config"] = route_config
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}


def tcp_proxy(stat_prefix, cluster=None, weighted=None):
    config = {"@type": TCP_PROXY_T, "stat_prefix": stat_prefix, "access_log": access_log()}
    if weighted:
        config["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted]}
    else:
        config["cluster"] = cluster
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def listener_filter(kind):
    types = {
        "original_dst": "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
        "tls_inspector": "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        "http_inspector": "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
    }
    return {"name": f"envoy.filters.listener.{kind}", "typed_config": {"@type": TYPE + types[kind]}}


def downstream_mtls(cert="default", root="ROOTCA", alpn=("h2", "http/1.1"), require_client=True):
    context = {
        "@type": DOWNSTREAM_TLS_T,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
            "alpn_protocols": list(alpn),
            "tls_certificate_sds_secret_configs": [sds_secret(cert)],
        },
        "require_client_certificate": require_client,
    }
    if root:
        context["common_tls_context"]["combined_validation_context"] = {
            "default_validation_context": {
                "match_typed_subject_alt_names": [{"san_type": "URI",
                                                    "matcher": {"prefix": "spiffe://cluster.local/"}}]},
            "validation_context_sds_secret_config": sds_secret(root),
        }
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def listener(name, address, port, filter_chains, direction=None, bind_to_port=True, listener_filters=(),
             **extra):
    result = {"@type": LISTENER_T, "name": name, "address": socket_address(address, port),
              "filter_chains": filter_chains}
    if direction:
        result["traffic_direction"] = direction
    if not bind_to_port:
        result["bind_to_port"] = False
    if listener_filters:
        result["listener_filters"] = [listener_filter(k) for k in listener_filters]
    result.update(extra)
    return result


# --- routes -----------------------------------------------------------------------------------

def service_domains(service, namespace, port):
    """The domains istiod puts on an outbound virtual host for a service port."""
    host = fqdn(service, namespace)
    short = [host, f"{service}.{namespace}.svc", f"{service}.{namespace}"]
    if namespace == "default":
        short.append(service)
    return [d for h in short for d in (h, f"{h}:{port}")]


def route_to(cluster, timeout="0s", retries=True):
    action = {"cluster": cluster, "timeout": timeout, "max_stream_duration": {"grpc_timeout_header_max": "0s"}}
    if retries:
        action["retry_policy"] = default_retry_policy()
    return action


def default_retry_policy():
    return {
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                                  "typed_config": {"@type": TYPE + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": "5",
        "retriable_status_codes": [503],
    }


def weighted_route(clusters, timeout="0s"):
    return {"weighted_clusters": {"clusters": [{"name": n, "weight": w} for n, w in clusters]},
            "timeout": timeout, "retry_policy": default_retry_policy(),
            "max_stream_duration": {"grpc_timeout_header_max": "0s"}}


def decorator(host, port):
    return {"operation": f"{host}:{port}/*"}


def allow_any_vhost():
    return {"name": "allow_any", "domains": ["*"],
            "routes": [{"name": "allow_any", "match": {"prefix": "/"},
                        "route": {"cluster": "PassthroughCluster", "timeout": "0s",
                                  "max_stream_duration": {"grpc_timeout_header_max": "0s"}}}],
            "include_request_attempt_count": True}


def block_all_vhost():
    return {"name": "block_all", "domains": ["*"],
            "routes": [{"name": "block_all", "match": {"prefix": "/"}, "direct_response": {"status": 502}}],
            "include_request_attempt_count": True}


def route_configuration(name, virtual_hosts, validate_clusters=False):
    return {"@type": ROUTE_T, "name": name, "virtual_hosts": virtual_hosts,
            "validate_clusters": validate_clusters, "max_direct_response_body_size_bytes": 1048576,
            "ignore_port_in_host_matching": True}


# --- bootstrap --------------------------------------------------------------------------------

# Istio's bootstrap stats tags (a subset), which replace Envoy's defaults.
ISTIO_STATS_TAGS = [
    {"tag_name": "cluster_name", "regex": "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)"},
    {"tag_name": "tcp_prefix", "regex": "^tcp\\.((.*?)\\.)\\w+?$"},
    {"tag_name": "response_code", "regex": "(response_code=\\.=(.+?);\\.;)|_rq(_(\\.d{3}))$"},
    {"tag_name": "response_code_class", "regex": "_rq(_(\\dxx))$"},
    {"tag_name": "http_conn_manager_listener_prefix",
     "regex": "^listener(?=\\.).*?\\.http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)"},
    {"tag_name": "http_conn_manager_prefix",
     "regex": "^http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)"},
    {"tag_name": "listener_address",
     "regex": "^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)"},
    {"tag_name": "mongo_prefix", "regex": "^mongo\\.(.+?)\\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"},
    {"tag_name": "reporter", "regex": "(reporter=\\.=(.*?);\\.;)"},
    {"tag_name": "source_namespace", "regex": "(source_namespace=\\.=(.*?);\\.;)"},
    {"tag_name": "destination_service", "regex": "(destination_service=\\.=(.*?);\\.;)"},
]

# The inclusion list istio-agent uses when no extra stats are asked for (proxyStatsMatcher unset).
ISTIO_STATS_INCLUSIONS = {"inclusion_list": {"patterns": [
    {"prefix": "reporter="}, {"prefix": "cluster_manager"}, {"prefix": "listener_manager"},
    {"prefix": "server"}, {"prefix": "cluster.xds-grpc"}, {"prefix": "wasm"},
    {"suffix": "rbac.allowed"}, {"suffix": "rbac.denied"}, {"suffix": "shadow_allowed"},
    {"suffix": "shadow_denied"}, {"safe_regex": {"regex": "vhost\\..*\\.route\\..*"}},
    {"prefix": "component"}, {"prefix": "istio"},
]}}


def static_cluster(name, address, port, h2=False, connect_timeout="1s", max_requests_per_connection=None,
                   **extra):
    cluster = {
        "name": name, "type": "STATIC", "connect_timeout": connect_timeout,
        "load_assignment": {"cluster_name": name, "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": socket_address(address, port)}}]}]},
    }
    if h2:
        cluster["typed_extension_protocol_options"] = {HTTP_OPTIONS_KEY: {
            "@type": HTTP_OPTIONS_T,
            "explicit_http_config": {"http2_protocol_options": {}}}}
        if max_requests_per_connection:
            cluster["typed_extension_protocol_options"][HTTP_OPTIONS_KEY]["common_http_protocol_options"] = {
                "max_requests_per_connection": max_requests_per_connection}
    cluster.update(extra)
    return cluster


def admin_listener(name, port, prefix, cluster, stat_prefix):
    """A bootstrap listener like Istio's 15090 (Prometheus) and 15021 (health) ones, on 127.0.0.1."""
    return {
        "name": name,
        "address": socket_address("127.0.0.1", port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": HCM_T, "codec_type": "AUTO", "stat_prefix": stat_prefix,
                "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [
                    {"match": {"prefix": prefix}, "route": {"cluster": cluster}}]}]},
                "http_filters": [{"name": "envoy.filters.http.router",
                                  "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.router.v3.Router"}}],
            }}]}],
    }


def bootstrap(node, admin_port, xds_port, listeners, stats_matcher=None, deferred_stats=False,
              deferred_clusters=False):
    """An Istio-like bootstrap: ADS over `xds-grpc`, SDS over `sds-grpc`, both our server on 127.0.0.1.
    `deferred_stats` and `deferred_clusters` add what istio-agent's envoy_bootstrap.json writes:
    `deferred_stat_options` and `cluster_manager.enable_deferred_cluster_creation`."""
    xds_common = dict(
        circuit_breakers={"thresholds": [{"priority": "DEFAULT", "max_connections": 100000,
                                          "max_pending_requests": 100000, "max_requests": 100000},
                                         {"priority": "HIGH", "max_connections": 100000,
                                          "max_pending_requests": 100000, "max_requests": 100000}]},
        upstream_connection_options={"tcp_keepalive": {"keepalive_time": 300}},
    )
    stats_config = {"use_all_default_tags": False, "stats_tags": ISTIO_STATS_TAGS}
    if stats_matcher:
        stats_config["stats_matcher"] = stats_matcher
    config = {
        "node": node,
        "admin": {"address": socket_address("127.0.0.1", admin_port), "profile_path": "/dev/null"},
        "layered_runtime": {"layers": [
            {"name": "global config", "static_layer": {
                "re2.max_program_size.error_level": 32768,
            }},
            {"name": "admin", "admin_layer": {}},
        ]},
        "stats_config": stats_config,
        "dynamic_resources": {
            "lds_config": ads(), "cds_config": ads(),
            "ads_config": {"api_type": "GRPC", "set_node_on_first_message_only": True,
                           "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
        },
        "static_resources": {
            "clusters": [
                static_cluster("prometheus_stats", "127.0.0.1", admin_port, connect_timeout="0.250s"),
                static_cluster("agent", "127.0.0.1", 15020, connect_timeout="0.250s"),
                static_cluster("sds-grpc", "127.0.0.1", xds_port, h2=True),
                static_cluster("xds-grpc", "127.0.0.1", xds_port, h2=True, max_requests_per_connection=1,
                               **xds_common),
            ],
            "listeners": listeners,
        },
        # No DNS query may leave the machine: resolve from /etc/hosts, else ask 127.0.0.1 (nothing
        # answers there) with a short timeout.
        "typed_dns_resolver_config": {
            "name": "envoy.network.dns_resolver.cares",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
                "resolvers": [socket_address("127.0.0.1", 53)],
                "use_resolvers_as_fallback": False,
                "dns_resolver_options": {"no_default_search_domain": True},
                "query_timeout_seconds": 1, "query_tries": 1,
            },
        },
    }
    if deferred_clusters:
        config["cluster_manager"] = {"enable_deferred_cluster_creation": True}
    if deferred_stats:
        config["deferred_stat_options"] = {"enable_deferred_creation_stats": True}
    return config
