//! `bootstrap`: who the proxy is and how it was started, and the version lines `istioctl`'s
//! version summary prints.

use crate::model::{Bootstrap, Node, StatsMatcher};
use serde::Serialize;

/// Istio and Envoy versions as `istioctl`'s bootstrap summary shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VersionSummary {
    /// `ISTIO_VERSION` of the node metadata.
    pub istio_version: Option<String>,
    /// The build after the `:` of `ISTIO_PROXY_SHA` (`istio-proxy:436f…` gives `436f…`).
    pub istio_proxy_version: Option<String>,
    /// `major.minor.patch`, then `-label`, `/status`, `/type`, `/ssl` from the build metadata
    /// where present (`1.18.3/Clean/RELEASE/BoringSSL`).
    pub envoy_version: Option<String>,
}

impl VersionSummary {
    /// The versions a node reports.
    ///
    /// ```
    /// let dump = heft::Dump::from_slice(br#"{"bootstrap": {"node": {
    ///     "metadata": {"ISTIO_VERSION": "1.24.2", "ISTIO_PROXY_SHA": "istio-proxy:abc"},
    ///     "user_agent_build_version": {"version": {"major_number": 1, "minor_number": 40},
    ///         "metadata": {"revision.status": "Clean", "build.type": "RELEASE"}}}}}"#)?;
    /// let v = heft::views::bootstrap::VersionSummary::of(&dump.bootstrap.unwrap().node);
    /// assert_eq!(v.istio_proxy_version.as_deref(), Some("abc"));
    /// assert_eq!(v.envoy_version.as_deref(), Some("1.40.0/Clean/RELEASE"));
    /// assert_eq!(v.lines(), [("Istio Version", "1.24.2"), ("Istio Proxy Version", "abc"),
    ///     ("Envoy Version", "1.40.0/Clean/RELEASE")]);
    /// # Ok::<(), heft::Error>(())
    /// ```
    pub fn of(node: &Node) -> VersionSummary {
        let istio_proxy_version = node.istio_proxy_sha().map(|sha| {
            let mut parts = sha.split(':');
            match (parts.next(), parts.next()) {
                (_, Some(second)) => second.to_string(),
                _ => sha.to_string(),
            }
        });
        let envoy_version = node.build_version.as_ref().map(|b| {
            let meta = |key: &str| {
                b.metadata
                    .iter()
                    .find(|(k, _)| &**k == key)
                    .map(|(_, v)| &**v)
            };
            let mut out = b.version.to_string();
            if let Some(label) = meta("build.label") {
                out.push('-');
                out.push_str(label);
            }
            for key in ["revision.status", "build.type", "ssl.version"] {
                if let Some(v) = meta(key) {
                    out.push('/');
                    out.push_str(v);
                }
            }
            out
        });
        VersionSummary {
            istio_version: node.istio_version().map(str::to_string),
            istio_proxy_version,
            envoy_version,
        }
    }

    /// The lines `istioctl` prints, label and value, leaving out empty ones as it does.
    pub fn lines(&self) -> Vec<(&'static str, &str)> {
        [
            ("Istio Version", &self.istio_version),
            ("Istio Proxy Version", &self.istio_proxy_version),
            ("Envoy Version", &self.envoy_version),
        ]
        .into_iter()
        .filter_map(|(label, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (label, v)))
        .collect()
    }
}

/// The bootstrap, as one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootstrapRow {
    /// Node id.
    pub node_id: String,
    /// Node cluster.
    pub cluster: String,
    /// The workload's namespace (`NAMESPACE`).
    pub namespace: Option<String>,
    /// The workload (`WORKLOAD_NAME`).
    pub workload: Option<String>,
    /// Istio and Envoy versions.
    #[serde(flatten)]
    pub versions: VersionSummary,
    /// Admin listener address.
    pub admin_address: Option<String>,
    /// Which stats Envoy creates: `all`, `none`, `inclusion list of N`, `exclusion list of N`.
    pub stats: String,
    /// Whether xDS comes over ADS.
    pub ads: bool,
    /// Static clusters in the bootstrap.
    pub static_clusters: usize,
    /// Static listeners in the bootstrap.
    pub static_listeners: usize,
    /// Static secrets in the bootstrap.
    pub static_secrets: usize,
    /// Whether a cluster's traffic stats wait for its first traffic.
    pub deferred_stats: bool,
    /// Whether workers build a cluster only when they first need it.
    pub deferred_cluster_creation: bool,
    /// When the bootstrap was loaded.
    pub last_updated: Option<String>,
}

/// The bootstrap's row.
pub fn bootstrap_row(b: &Bootstrap) -> BootstrapRow {
    let n = &b.node;
    BootstrapRow {
        node_id: n.id.to_string(),
        cluster: n.cluster.to_string(),
        namespace: n.namespace().map(str::to_string),
        workload: n.workload_name().map(str::to_string),
        versions: VersionSummary::of(n),
        admin_address: b.admin_address.as_ref().map(ToString::to_string),
        stats: match &b.stats.matcher {
            StatsMatcher::All => "all".into(),
            StatsMatcher::RejectAll => "none".into(),
            StatsMatcher::Inclusion(r) => format!("inclusion list of {}", r.len()),
            StatsMatcher::Exclusion(r) => format!("exclusion list of {}", r.len()),
        },
        ads: b.ads,
        static_clusters: b.static_clusters,
        static_listeners: b.static_listeners,
        static_secrets: b.static_secrets,
        deferred_stats: b.deferred_stats,
        deferred_cluster_creation: b.deferred_cluster_creation,
        last_updated: b.meta.last_updated.as_deref().map(str::to_string),
    }
}
