//! Clusters: upstream service definitions and the TLS they speak.

use super::istio::IstioName;
use super::{LoadAssignment, Meta, Metadata, Opaque};
use serde::Serialize;
use std::time::Duration;

/// How a cluster finds its endpoints (`type`, or `cluster_type` for extensions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Discovery {
    /// Endpoints listed in the cluster.
    Static,
    /// DNS names resolved to every address.
    StrictDns,
    /// A DNS name resolved to one address at a time.
    LogicalDns,
    /// Endpoints from EDS.
    Eds,
    /// The connection's original destination.
    OriginalDst,
    /// A custom cluster type, by extension name (`envoy.clusters.aggregate`).
    Custom(Box<str>),
}

impl Discovery {
    /// Names of the `DiscoveryType` enum, by number.
    pub(crate) const NAMES: [&'static str; 5] =
        ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"];

    pub(crate) fn from_name(name: &str) -> Discovery {
        match name {
            "STATIC" => Discovery::Static,
            "STRICT_DNS" => Discovery::StrictDns,
            "LOGICAL_DNS" => Discovery::LogicalDns,
            "EDS" => Discovery::Eds,
            "ORIGINAL_DST" => Discovery::OriginalDst,
            other => Discovery::Custom(other.into()),
        }
    }

    /// By `DiscoveryType` number, as protobuf holds it; an unknown number keeps its digits,
    /// as [`from_name`](Self::from_name) keeps an unknown name.
    pub(crate) fn from_number(n: i32) -> Discovery {
        match n {
            0 => Discovery::Static,
            1 => Discovery::StrictDns,
            2 => Discovery::LogicalDns,
            3 => Discovery::Eds,
            4 => Discovery::OriginalDst,
            n => Discovery::Custom(n.to_string().into()),
        }
    }

    /// The name reports use: the enum name, or the extension name for custom types.
    pub fn name(&self) -> &str {
        match self {
            Discovery::Static => "STATIC",
            Discovery::StrictDns => "STRICT_DNS",
            Discovery::LogicalDns => "LOGICAL_DNS",
            Discovery::Eds => "EDS",
            Discovery::OriginalDst => "ORIGINAL_DST",
            Discovery::Custom(name) => name,
        }
    }
}

/// The HTTP protocol a cluster speaks upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpProtocol {
    /// HTTP/1.1 set explicitly.
    Http1,
    /// HTTP/2 (`explicit_http_config.http2_protocol_options`, or the deprecated cluster field).
    Http2,
    /// HTTP/3.
    Http3,
    /// Whatever the downstream used (`use_downstream_protocol_config`).
    Downstream,
    /// ALPN-negotiated (`auto_config`).
    Auto,
}

/// One circuit-breaker threshold set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CircuitBreaker {
    /// `DEFAULT` or `HIGH`.
    pub priority: Box<str>,
    /// Limits, absent where Envoy's default applies.
    pub max_connections: Option<u32>,
    /// Pending request limit.
    pub max_pending_requests: Option<u32>,
    /// Request limit.
    pub max_requests: Option<u32>,
    /// Retry limit.
    pub max_retries: Option<u32>,
    /// Whether remaining-capacity gauges are tracked (they add stats).
    pub track_remaining: bool,
}

/// Outlier detection settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OutlierDetection {
    /// Consecutive 5xx before ejection.
    pub consecutive_5xx: Option<u32>,
    /// Analysis interval.
    pub interval: Option<Duration>,
    /// Base ejection time.
    pub base_ejection_time: Option<Duration>,
    /// Max ejected percentage.
    pub max_ejection_percent: Option<u32>,
}

/// Which side of a connection a TLS context serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsSide {
    /// Envoy is the client (`UpstreamTlsContext`).
    Upstream,
    /// Envoy is the server (`DownstreamTlsContext`).
    Downstream,
}

/// A subject-alt-name rule a peer certificate must meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SanMatcher {
    /// `URI`, `DNS`, … (`san_type`); empty for the older untyped matchers.
    pub san_type: Box<str>,
    /// The matcher kind (`exact`, `prefix`, …) and its value.
    pub matcher: super::StringMatch,
}

/// A TLS transport socket's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsContext {
    /// Upstream or downstream.
    pub side: TlsSide,
    /// SNI sent upstream.
    pub sni: Option<Box<str>>,
    /// ALPN protocols offered.
    pub alpn: Vec<Box<str>>,
    /// SDS secrets holding this context's certificates.
    pub certificate_sds: Vec<Box<str>>,
    /// SDS secret holding the validation context (trusted CA).
    pub validation_sds: Option<Box<str>>,
    /// Certificates given inline (their count; Heft keeps no key material).
    pub inline_certificates: usize,
    /// Peer SAN rules.
    pub san_matchers: Vec<SanMatcher>,
    /// Downstream: whether clients must present a certificate.
    pub require_client_certificate: bool,
}

impl TlsContext {
    /// The SDS secrets it waits for: its certificates', then its validation context's.
    pub fn sds_secrets(&self) -> impl Iterator<Item = &str> {
        self.certificate_sds
            .iter()
            .chain(&self.validation_sds)
            .map(|s| &**s)
    }

    /// A context of this side with nothing set (what a read with
    /// [`Detail::Shape`](crate::stream::Detail::Shape) keeps of every context).
    pub fn empty(side: TlsSide) -> TlsContext {
        TlsContext {
            side,
            sni: None,
            alpn: Vec::new(),
            certificate_sds: Vec::new(),
            validation_sds: None,
            inline_certificates: 0,
            san_matchers: Vec::new(),
            require_client_certificate: false,
        }
    }
}

/// A transport socket: TLS, plain, or an extension Heft keeps opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportSocket {
    /// Its name (`envoy.transport_sockets.tls`, `envoy.transport_sockets.raw_buffer`).
    pub name: Box<str>,
    /// The TLS settings when it is TLS.
    pub tls: Option<TlsContext>,
    /// The payload's type and size when it is not TLS.
    pub other: Option<Opaque>,
}

/// One of a cluster's `transport_socket_matches` (Istio's `tlsMode-istio` / `tlsMode-disabled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransportSocketMatch {
    /// Its name.
    pub name: Box<str>,
    /// The endpoint-metadata criteria, as `key=value` pairs of string values.
    pub criteria: Vec<(Box<str>, Box<str>)>,
    /// The socket used for matching endpoints.
    pub socket: Option<TransportSocket>,
}

/// An upstream cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// State, version and input span.
    pub meta: Meta,
    /// Its name.
    pub name: Box<str>,
    /// `alt_stat_name`, which names its stats when set.
    pub alt_stat_name: Option<Box<str>>,
    /// How it discovers endpoints.
    pub discovery: Discovery,
    /// EDS service name, when it differs from the cluster name.
    pub eds_service_name: Option<Box<str>>,
    /// Load-balancing policy (`ROUND_ROBIN`, `LEAST_REQUEST`, …).
    pub lb_policy: Box<str>,
    /// Connection timeout.
    pub connect_timeout: Option<Duration>,
    /// Circuit-breaker thresholds.
    pub circuit_breakers: Vec<CircuitBreaker>,
    /// Outlier detection, when enabled.
    pub outlier_detection: Option<OutlierDetection>,
    /// The default transport socket (boxed: Istio's EDS clusters use socket matches instead).
    pub transport_socket: Option<Box<TransportSocket>>,
    /// Endpoint-metadata-selected transport sockets.
    pub transport_socket_matches: Vec<TransportSocketMatch>,
    /// Upstream HTTP protocol, when configured.
    pub http_protocol: Option<HttpProtocol>,
    /// Istio metadata.
    pub metadata: Metadata,
    /// Inline endpoints (STATIC and DNS clusters; boxed: EDS clusters have none).
    pub load_assignment: Option<Box<LoadAssignment>>,
    /// Istio's reading of the name, when it is an Istio cluster name.
    pub istio: Option<IstioName>,
    /// Extension configs Heft does not model (protocol options, filters, cluster types).
    pub extensions: Vec<Opaque>,
}

impl Cluster {
    /// A cluster with only a name and discovery type set.
    pub fn new(name: &str, discovery: Discovery, meta: Meta) -> Cluster {
        Cluster {
            meta,
            istio: IstioName::parse(name),
            name: name.into(),
            alt_stat_name: None,
            discovery,
            eds_service_name: None,
            lb_policy: "ROUND_ROBIN".into(),
            connect_timeout: None,
            circuit_breakers: Vec::new(),
            outlier_detection: None,
            transport_socket: None,
            transport_socket_matches: Vec::new(),
            http_protocol: None,
            metadata: Metadata::default(),
            load_assignment: None,
            extensions: Vec::new(),
        }
    }

    /// Every SDS secret name this cluster's transport sockets refer to.
    pub fn sds_secrets(&self) -> impl Iterator<Item = &str> {
        self.transport_socket
            .as_deref()
            .into_iter()
            .chain(
                self.transport_socket_matches
                    .iter()
                    .filter_map(|m| m.socket.as_ref()),
            )
            .filter_map(|s| s.tls.as_ref())
            .flat_map(TlsContext::sds_secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_numbers_and_names_agree() {
        for (n, name) in Discovery::NAMES.iter().enumerate() {
            let by_number = Discovery::from_number(n as i32);
            assert_eq!(by_number, Discovery::from_name(name));
            assert_eq!(by_number.name(), *name);
        }
        // Unknown ones keep their digits, as the JSON reader keeps an unknown name.
        assert_eq!(Discovery::from_number(9), Discovery::from_name("9"));
    }
}
