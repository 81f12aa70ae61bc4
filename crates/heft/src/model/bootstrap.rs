//! The bootstrap: who the proxy is and how it is set up.

use super::{Address, Meta};
use serde::Serialize;

/// Envoy's build version as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BuildVersion {
    /// `major.minor.patch`.
    pub version: Box<str>,
    /// Build metadata (`revision.sha`, `build.type`, `ssl.version`, …) as string pairs.
    pub metadata: Vec<(Box<str>, Box<str>)>,
}

/// The node: the proxy's identity.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Node {
    /// Node id (Istio: `sidecar~10.0.0.1~pod.namespace~namespace.svc.cluster.local`).
    pub id: Box<str>,
    /// Node cluster (Istio: `app.namespace`).
    pub cluster: Box<str>,
    /// Node metadata (Istio puts its version, namespace, workload, labels here).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `user_agent_name` (`envoy`).
    pub user_agent_name: Option<Box<str>>,
    /// Envoy build version.
    pub build_version: Option<BuildVersion>,
}

impl Node {
    fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|v| v.as_str())
    }

    /// Istio version (`ISTIO_VERSION`).
    pub fn istio_version(&self) -> Option<&str> {
        self.meta_str("ISTIO_VERSION")
    }

    /// Istio proxy build (`ISTIO_PROXY_SHA`).
    pub fn istio_proxy_sha(&self) -> Option<&str> {
        self.meta_str("ISTIO_PROXY_SHA")
    }

    /// The workload's namespace (`NAMESPACE`).
    pub fn namespace(&self) -> Option<&str> {
        self.meta_str("NAMESPACE")
    }

    /// The workload's name (`WORKLOAD_NAME`).
    pub fn workload_name(&self) -> Option<&str> {
        self.meta_str("WORKLOAD_NAME")
    }

    /// Envoy version (`major.minor.patch`).
    pub fn envoy_version(&self) -> Option<&str> {
        self.build_version.as_ref().map(|b| &*b.version)
    }
}

/// Which stats Envoy creates (`stats_config.stats_matcher`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsMatcher {
    /// All stats (no matcher).
    All,
    /// No stats at all (`reject_all: true`).
    RejectAll,
    /// Only names matching these rules (Istio's `proxyStatsMatcher` inclusions), as `kind:value`.
    Inclusion(Vec<Box<str>>),
    /// All names but these.
    Exclusion(Vec<Box<str>>),
}

/// Stats settings, which drive a large share of Envoy's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsConfig {
    /// Which stats exist.
    pub matcher: StatsMatcher,
    /// Number of tag extraction rules.
    pub stats_tags: usize,
    /// Whether Envoy's default tag rules apply.
    pub use_all_default_tags: Option<bool>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            matcher: StatsMatcher::All,
            stats_tags: 0,
            use_all_default_tags: None,
        }
    }
}

/// The bootstrap configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Input span and update time.
    pub meta: Meta,
    /// The node.
    pub node: Node,
    /// Admin listener address.
    pub admin_address: Option<Address>,
    /// Stats settings.
    pub stats: StatsConfig,
    /// Whether xDS comes over ADS.
    pub ads: bool,
    /// Static clusters in the bootstrap (they also appear in the clusters section).
    pub static_clusters: usize,
    /// Static listeners in the bootstrap.
    pub static_listeners: usize,
    /// Static secrets in the bootstrap.
    pub static_secrets: usize,
    /// `deferred_stat_options.enable_deferred_creation_stats`: a cluster's traffic stats are
    /// created when it first sees traffic (istio-agent always sets it).
    pub deferred_stats: bool,
    /// `cluster_manager.enable_deferred_cluster_creation`: a worker builds its copy of a cluster
    /// when it first needs it.
    pub deferred_cluster_creation: bool,
}
