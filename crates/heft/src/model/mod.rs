//! The typed model of a proxy's configuration: the one representation every input becomes.
//!
//! Readers (JSON, and later protobuf) build a [`Dump`]; analyses (`summary`, costs, views) read
//! only the model and never the input format. The model keeps what Heft explains and drops the
//! rest: extension configs it does not understand are kept as [`Opaque`] (type URL and size), and
//! private keys are never stored at all.

mod bootstrap;
mod cluster;
mod endpoint;
pub(crate) mod enums;
pub mod istio;
mod listener;
mod route;
mod secret;

pub use bootstrap::{Bootstrap, BuildVersion, Node, StatsConfig, StatsMatcher};
pub use cluster::{
    CircuitBreaker, Cluster, Discovery, HttpProtocol, OutlierDetection, SanMatcher, TlsContext,
    TlsSide, TransportSocket, TransportSocketMatch,
};
pub use endpoint::{
    ClusterStatus, Endpoint, HealthStatus, HostStatus, LoadAssignment, Locality, LocalityEndpoints,
};
pub use listener::{
    Cidr, FilterChain, FilterChainMatch, HttpConnectionManager, Listener, NetworkFilter,
    RouteSource, TcpProxy, TcpTarget,
};
pub use route::{
    Action, HeaderMatch, PathMatch, QueryParameterMatch, RetryPolicy, Route, RouteAction,
    RouteConfig, RouteMatch, RouteTarget, StringMatch, VirtualHost, WeightedCluster,
};
pub use secret::{Certificate, Secret, SecretKind};

use serde::Serialize;

/// Where a resource stood in the proxy when the dump was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// From the bootstrap (`static_*` sections).
    Static,
    /// Received over xDS and in use (`dynamic_active_*`, `dynamic_*`).
    Active,
    /// Received, waiting for its dependencies (`dynamic_warming_*`).
    Warming,
    /// Replaced and draining its connections (listeners' `draining_state`).
    Draining,
}

impl State {
    /// Every state, in the order reports list them.
    pub const ALL: [State; 4] = [
        State::Static,
        State::Active,
        State::Warming,
        State::Draining,
    ];

    /// The lower-case name used in reports (`static`, `active`, `warming`, `draining`).
    pub fn name(self) -> &'static str {
        match self {
            State::Static => "static",
            State::Active => "active",
            State::Warming => "warming",
            State::Draining => "draining",
        }
    }
}

/// Where a value sat in the input: a byte offset and length in the decompressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A rejected update Envoy reported for a resource (`error_state`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UpdateFailure {
    /// Envoy's reason for rejecting it.
    pub details: Box<str>,
    /// The version that was rejected.
    pub version_info: Option<Box<str>>,
    /// When Envoy last tried to apply it.
    pub last_update_attempt: Option<Box<str>>,
    /// The rejected configuration, kept as type and size.
    pub failed_configuration: Option<Opaque>,
}

/// What every resource carries besides its own configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// Static, active, warming or draining.
    pub state: State,
    /// The xDS version that delivered it.
    pub version_info: Option<Box<str>>,
    /// When Envoy last accepted it (RFC 3339).
    pub last_updated: Option<Box<str>>,
    /// The last rejected update of this resource, if any (boxed: rare, and every resource has a
    /// `Meta`).
    pub error: Option<Box<UpdateFailure>>,
    /// The client status (`ACKED`, `NACKED`, …) where the dump has one.
    pub client_status: Option<Box<str>>,
    /// Where the dump entry holding it sat in the input (`None` for YAML input, which is read
    /// through a translation whose offsets would mislead).
    pub span: Option<Span>,
}

impl Meta {
    /// Metadata for a resource in `state` with nothing else known.
    pub fn new(state: State) -> Meta {
        Meta {
            state,
            version_info: None,
            last_updated: None,
            error: None,
            client_status: None,
            span: None,
        }
    }
}

/// A payload Heft does not model: its type URL and encoded size.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Opaque {
    /// The `@type` (JSON) or `type_url` (protobuf).
    pub type_url: Box<str>,
    /// Size in the input, in bytes.
    pub bytes: u64,
}

/// A whole resource or section Heft does not model (ECDS filters, scoped routes, unknown types).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpaqueResource {
    /// State and version, as for modelled resources.
    pub meta: Meta,
    /// Its name where the dump gives one.
    pub name: Option<Box<str>>,
    /// The payload's type and size.
    pub payload: Opaque,
    /// For an extension config (ECDS `TypedExtensionConfig`), the type of the configuration it
    /// carries (its `typed_config`'s `@type`), when it has one.
    pub config_type_url: Option<Box<str>>,
}

/// A network address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    /// An IP (or hostname) and port.
    Socket {
        /// IP address or hostname.
        address: Box<str>,
        /// Port (0 where it is a named port or absent).
        port: u32,
        /// `TCP` or `UDP`.
        protocol: Box<str>,
    },
    /// A Unix domain socket.
    Pipe {
        /// Its path.
        path: Box<str>,
    },
    /// An Envoy internal listener address.
    Internal {
        /// The internal listener's name.
        server_listener_name: Box<str>,
        /// Which endpoint of that listener (`endpoint_id`; Istio writes the target `ip:port`).
        endpoint_id: Box<str>,
    },
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Socket { address, port, .. } if address.contains(':') => {
                write!(f, "[{address}]:{port}")
            }
            Address::Socket { address, port, .. } => write!(f, "{address}:{port}"),
            Address::Pipe { path } => write!(f, "unix://{path}"),
            Address::Internal {
                server_listener_name,
                endpoint_id,
            } if endpoint_id.is_empty() => write!(f, "envoy://{server_listener_name}"),
            Address::Internal {
                server_listener_name,
                endpoint_id,
            } => write!(f, "envoy://{server_listener_name}/{endpoint_id}"),
        }
    }
}

/// The Istio-relevant parts of a resource's `metadata`, plus its size.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Metadata {
    /// `filter_metadata.istio.config`: the Istio config that produced it (a DestinationRule path).
    pub istio_config: Option<Box<str>>,
    /// `filter_metadata.istio.services`: the services a cluster serves.
    pub istio_services: Vec<IstioServiceRef>,
    /// `filter_metadata.istio.workload`: `name;namespace;app;version;cluster` of an endpoint.
    pub istio_workload: Option<Box<str>>,
    /// `filter_metadata["envoy.transport_socket_match"].tlsMode` (`istio` or `disabled`).
    pub tls_mode: Option<Box<str>>,
    /// The filter namespaces present (`istio`, `envoy.lb`, …).
    pub namespaces: Vec<Box<str>>,
    /// Size of the metadata in the input, in bytes.
    pub bytes: u64,
}

/// One entry of `filter_metadata.istio.services`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IstioServiceRef {
    /// The service FQDN.
    pub host: Box<str>,
    /// The service name.
    pub name: Box<str>,
    /// The service namespace.
    pub namespace: Box<str>,
}

/// A rejected update that left no resource behind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// `cluster`, `listener`, `route_config` or `endpoint_config`.
    pub kind: &'static str,
    /// The resource's name, where the entry gives one.
    pub name: Box<str>,
    /// Its metadata, with the failure in `error`.
    pub meta: Meta,
}

/// A resource Heft skipped under `--keep-going`, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// JSON path of the skipped value.
    pub path: String,
    /// Byte offset of the failure (JSON and protobuf input).
    pub offset: Option<u64>,
    /// Line of the failure (YAML input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Column of the failure, in characters (YAML input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// The error that made Heft skip it.
    pub reason: String,
}

impl Skipped {
    /// What a byte reader skipped because of `e`: its path and offset, and `reason`.
    pub(crate) fn at(e: &crate::Error, reason: String) -> Skipped {
        Skipped {
            path: e.path_string(),
            offset: e.offset(),
            line: None,
            column: None,
            reason,
        }
    }
}

/// What kind of document the input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// A full `/config_dump` (`{"configs": [...]}`).
    ConfigDump,
    /// One section of a dump (`{"dynamic_active_clusters": [...]}`, `{"bootstrap": {...}}`).
    Section,
    /// An array of resources (`istioctl proxy-config cluster -o json`).
    ResourceList,
    /// Envoy's `/clusters?format=json`.
    ClusterStatuses,
}

/// How the input was encoded and compressed, and how big it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The kind of document.
    pub format: DocumentKind,
    /// `json`, `yaml` or `protobuf`.
    pub encoding: &'static str,
    /// `none`, `gzip` or `zstd`.
    pub compression: &'static str,
    /// Decompressed size in bytes.
    pub bytes: u64,
}

/// One element of the dump's `configs` array (or the whole document when it is one section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Its `@type` (or the type Heft inferred for a section-only document).
    pub type_url: Box<str>,
    /// Where it sat in the input.
    pub span: Span,
}

/// Everything read from one input: the proxy's resources in input order.
///
/// ```
/// let dump = heft::Dump::from_slice(br#"{"configs": [{
///     "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
///     "dynamic_active_clusters": [{"version_info": "1", "cluster": {
///         "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
///         "name": "outbound|9080||reviews.default.svc.cluster.local", "type": "EDS"}}]}]}"#).unwrap();
/// let c = &dump.clusters[0];
/// assert_eq!(c.discovery, heft::model::Discovery::Eds);
/// assert_eq!(c.meta.state, heft::model::State::Active);
/// assert_eq!(c.istio.as_ref().unwrap().namespace(), Some("default"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dump {
    /// What the input was.
    pub source: Source,
    /// The bootstrap, when the dump has one.
    pub bootstrap: Option<Bootstrap>,
    /// Clusters in every state.
    pub clusters: Vec<Cluster>,
    /// Listeners in every state (a listener that is both active and draining appears twice).
    pub listeners: Vec<Listener>,
    /// Route configurations.
    pub route_configs: Vec<RouteConfig>,
    /// Endpoint configurations (`ClusterLoadAssignment`s).
    pub endpoint_configs: Vec<LoadAssignment>,
    /// Secrets in every state.
    pub secrets: Vec<Secret>,
    /// Live cluster and host status, from `/clusters?format=json`.
    pub cluster_statuses: Vec<ClusterStatus>,
    /// Updates Envoy rejected that left no resource behind (the entry has only `error_state`).
    pub rejected: Vec<Rejected>,
    /// Resources and sections Heft keeps only as type and size.
    pub opaque: Vec<OpaqueResource>,
    /// The dump's sections in input order.
    pub sections: Vec<Section>,
    /// What `--keep-going` skipped.
    pub skipped: Vec<Skipped>,
}

impl Dump {
    /// Every route configuration Envoy routes with: those over RDS and those inline in a
    /// listener's HTTP connection managers.
    pub fn route_configs_in_use(&self) -> Vec<&RouteConfig> {
        let mut all: Vec<&RouteConfig> = self.route_configs.iter().collect();
        for f in self
            .listeners
            .iter()
            .flat_map(|l| l.all_filter_chains())
            .flat_map(|fc| &fc.filters)
        {
            if let NetworkFilter::HttpConnectionManager { config, .. } = f {
                if let RouteSource::Inline(rc) = &config.routes {
                    all.push(rc);
                }
            }
        }
        all
    }

    pub(crate) fn empty(source: Source) -> Dump {
        Dump {
            source,
            bootstrap: None,
            clusters: Vec::new(),
            listeners: Vec::new(),
            route_configs: Vec::new(),
            endpoint_configs: Vec::new(),
            secrets: Vec::new(),
            cluster_statuses: Vec::new(),
            rejected: Vec::new(),
            opaque: Vec::new(),
            sections: Vec::new(),
            skipped: Vec::new(),
        }
    }
}
