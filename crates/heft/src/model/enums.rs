//! Envoy's enum value names by number. proto3 JSON may write an enum as its name or its number
//! and binary protobuf has only the number; both readers map numbers through these tables, so a
//! value reads the same whatever the encoding.

/// `envoy.config.cluster.v3.Cluster.LbPolicy`.
pub(crate) const LB_POLICY: [&str; 8] = [
    "ROUND_ROBIN",
    "LEAST_REQUEST",
    "RING_HASH",
    "RANDOM",
    "ORIGINAL_DST_LB",
    "MAGLEV",
    "CLUSTER_PROVIDED",
    "LOAD_BALANCING_POLICY_CONFIG",
];
/// `envoy.admin.v3.ClientResourceStatus`.
pub(crate) const CLIENT_STATUS: [&str; 7] = [
    "UNKNOWN",
    "REQUESTED",
    "DOES_NOT_EXIST",
    "ACKED",
    "NACKED",
    "RECEIVED_ERROR",
    "TIMEOUT",
];
/// `envoy.config.core.v3.RoutingPriority`.
pub(crate) const ROUTING_PRIORITY: [&str; 2] = ["DEFAULT", "HIGH"];
/// `envoy.config.core.v3.SocketAddress.Protocol`.
pub(crate) const SOCKET_PROTOCOL: [&str; 2] = ["TCP", "UDP"];
/// `envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher.SanType`.
pub(crate) const SAN_TYPE: [&str; 6] = [
    "SAN_TYPE_UNSPECIFIED",
    "EMAIL",
    "DNS",
    "URI",
    "IP_ADDRESS",
    "OTHER_NAME",
];
/// `envoy.config.core.v3.TrafficDirection`.
pub(crate) const TRAFFIC_DIRECTION: [&str; 3] = ["UNSPECIFIED", "INBOUND", "OUTBOUND"];
/// `envoy.config.listener.v3.FilterChainMatch.ConnectionSourceType`.
pub(crate) const SOURCE_TYPE: [&str; 3] = ["ANY", "SAME_IP_OR_LOOPBACK", "EXTERNAL"];
/// `envoy.config.route.v3.VirtualHost.TlsRequirementType`.
pub(crate) const REQUIRE_TLS: [&str; 3] = ["NONE", "EXTERNAL_ONLY", "ALL"];
/// `envoy.config.route.v3.RedirectAction.RedirectResponseCode`.
pub(crate) const REDIRECT_RESPONSE_CODE: [&str; 5] = [
    "MOVED_PERMANENTLY",
    "FOUND",
    "SEE_OTHER",
    "TEMPORARY_REDIRECT",
    "PERMANENT_REDIRECT",
];
/// `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.PathWithEscapedSlashesAction`.
pub(crate) const PATH_WITH_ESCAPED_SLASHES_ACTION: [&str; 5] = [
    "IMPLEMENTATION_SPECIFIC_DEFAULT",
    "KEEP_UNCHANGED",
    "REJECT_REQUEST",
    "UNESCAPE_AND_REDIRECT",
    "UNESCAPE_AND_FORWARD",
];
