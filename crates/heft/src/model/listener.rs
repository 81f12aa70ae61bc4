//! Listeners, their filter chains and the network filters Heft reads.

use super::{Address, Meta, Opaque, RouteConfig, TransportSocket};
use serde::Serialize;

/// An IP prefix (`prefix_ranges`, `source_prefix_ranges`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cidr {
    /// Address prefix.
    pub address: Box<str>,
    /// Prefix length.
    pub prefix_len: u32,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Which connections a filter chain takes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FilterChainMatch {
    /// Original destination port.
    pub destination_port: Option<u32>,
    /// Destination IP prefixes.
    pub prefix_ranges: Vec<Cidr>,
    /// Directly connected source IP prefixes.
    pub direct_source_prefix_ranges: Vec<Cidr>,
    /// `ANY`, `SAME_IP_OR_LOOPBACK` or `EXTERNAL`.
    pub source_type: Option<Box<str>>,
    /// Source IP prefixes.
    pub source_prefix_ranges: Vec<Cidr>,
    /// Source ports.
    pub source_ports: Vec<u32>,
    /// SNI server names.
    pub server_names: Vec<Box<str>>,
    /// `tls` or `raw_buffer`.
    pub transport_protocol: Option<Box<str>>,
    /// ALPN values (`istio-peer-exchange`, `h2c`, …).
    pub application_protocols: Vec<Box<str>>,
}

/// Where an HTTP connection manager gets its routes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSource {
    /// From RDS, by route configuration name.
    Rds {
        /// The route configuration's name.
        route_config_name: Box<str>,
    },
    /// Inline in the listener.
    Inline(Box<RouteConfig>),
    /// Scoped routes (kept opaque).
    Scoped,
    /// None given.
    None,
}

/// An HTTP connection manager.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpConnectionManager {
    /// Stats prefix.
    pub stat_prefix: Box<str>,
    /// Where its routes come from.
    pub routes: RouteSource,
    /// HTTP filter names in order (`istio.metadata_exchange`, `envoy.filters.http.router`, …).
    pub http_filters: Vec<Box<str>>,
    /// `normalize_path`: RFC 3986 path normalisation before routing (unset: Envoy's runtime
    /// default, off).
    pub normalize_path: Option<bool>,
    /// `merge_slashes`: runs of `/` in the path become one before routing.
    pub merge_slashes: bool,
    /// `path_with_escaped_slashes_action` (`KEEP_UNCHANGED`, `UNESCAPE_AND_FORWARD`, …), when set.
    pub path_with_escaped_slashes_action: Option<Box<str>>,
    /// `strip_matching_host_port`: the host's port is removed when it is the listener's port.
    pub strip_matching_host_port: bool,
    /// `strip_any_host_port`: the host's port is always removed.
    pub strip_any_host_port: bool,
    /// `strip_trailing_host_dot`: a trailing `.` of the host is removed.
    pub strip_trailing_host_dot: bool,
}

/// Where a TCP proxy sends connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpTarget {
    /// One cluster.
    Cluster(Box<str>),
    /// Weighted clusters: (name, weight).
    Weighted(Vec<(Box<str>, u32)>),
    /// None given.
    None,
}

impl TcpTarget {
    /// The clusters it sends connections to.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        let (one, weighted) = match self {
            TcpTarget::Cluster(c) => (Some(&**c), &[][..]),
            TcpTarget::Weighted(ws) => (None, &ws[..]),
            TcpTarget::None => (None, &[][..]),
        };
        one.into_iter().chain(weighted.iter().map(|(c, _)| &**c))
    }
}

/// A TCP proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpProxy {
    /// Stats prefix.
    pub stat_prefix: Box<str>,
    /// Where connections go.
    pub target: TcpTarget,
}

/// One network filter of a filter chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkFilter {
    /// `envoy.filters.network.http_connection_manager`.
    HttpConnectionManager {
        /// The filter's name.
        name: Box<str>,
        /// Its configuration.
        config: Box<HttpConnectionManager>,
    },
    /// `envoy.filters.network.tcp_proxy`.
    TcpProxy {
        /// The filter's name.
        name: Box<str>,
        /// Its configuration.
        config: TcpProxy,
    },
    /// Any other filter, kept as name and payload size.
    Other {
        /// The filter's name.
        name: Box<str>,
        /// Its payload, when it has one.
        config: Option<Opaque>,
    },
}

impl NetworkFilter {
    /// The filter's name.
    pub fn name(&self) -> &str {
        match self {
            NetworkFilter::HttpConnectionManager { name, .. }
            | NetworkFilter::TcpProxy { name, .. }
            | NetworkFilter::Other { name, .. } => name,
        }
    }
}

/// A filter chain: a match and the filters that handle matching connections.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterChain {
    /// Its name (Istio names some chains, such as `virtualInbound-blackhole`).
    pub name: Option<Box<str>>,
    /// What it matches.
    pub filter_chain_match: FilterChainMatch,
    /// Its network filters, in order.
    pub filters: Vec<NetworkFilter>,
    /// Its transport socket (TLS termination).
    pub transport_socket: Option<TransportSocket>,
}

/// A listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    /// State, version and input span.
    pub meta: Meta,
    /// Its name.
    pub name: Box<str>,
    /// The address it listens on.
    pub address: Option<Address>,
    /// More addresses it listens on.
    pub additional_addresses: Vec<Address>,
    /// `INBOUND` or `OUTBOUND`, when set.
    pub traffic_direction: Option<Box<str>>,
    /// Whether it binds its port (`false` for Istio's per-port outbound listeners).
    pub bind_to_port: Option<bool>,
    /// Whether it hands connections to the listener of their original destination.
    pub use_original_dst: bool,
    /// Listener filter names (`envoy.filters.listener.tls_inspector`, …).
    pub listener_filters: Vec<Box<str>>,
    /// Filter chains.
    pub filter_chains: Vec<FilterChain>,
    /// The chain for connections no other chain matches.
    pub default_filter_chain: Option<FilterChain>,
    /// `filter_chain_matcher` (the unified matcher), kept opaque; when set, Envoy chooses chains
    /// with it instead of `filter_chain_match`.
    pub filter_chain_matcher: Option<Opaque>,
    /// Extension configs Heft keeps opaque (listener filter configs, access logs, …).
    pub extensions: Vec<Opaque>,
}

impl Listener {
    /// Every filter chain, the default one last.
    pub fn all_filter_chains(&self) -> impl Iterator<Item = &FilterChain> {
        self.filter_chains
            .iter()
            .chain(self.default_filter_chain.iter())
    }

    /// Every SDS secret its filter chains' TLS contexts wait for.
    pub fn sds_secrets(&self) -> impl Iterator<Item = &str> {
        self.all_filter_chains()
            .filter_map(|fc| fc.transport_socket.as_ref()?.tls.as_ref())
            .flat_map(super::TlsContext::sds_secrets)
    }
}
