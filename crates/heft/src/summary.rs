//! `summary`: who the proxy is and how much of everything it holds.
//!
//! The value serialises to the stable JSON documented in `docs/summary-json.md`; fields are only
//! ever added. Rendering it as text is the CLI's job.

use crate::model::{Dump, Section, Source, State};
use indexmap::IndexMap;
use serde::Serialize;

/// Counts by state; always has the four keys `static`, `active`, `warming`, `draining`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByState {
    /// From the bootstrap.
    #[serde(rename = "static")]
    pub static_: u64,
    /// Active.
    pub active: u64,
    /// Warming.
    pub warming: u64,
    /// Draining.
    pub draining: u64,
}

impl ByState {
    fn count<'a>(states: impl Iterator<Item = &'a State>) -> ByState {
        let mut b = ByState {
            static_: 0,
            active: 0,
            warming: 0,
            draining: 0,
        };
        for s in states {
            match s {
                State::Static => b.static_ += 1,
                State::Active => b.active += 1,
                State::Warming => b.warming += 1,
                State::Draining => b.draining += 1,
            }
        }
        b
    }

    /// The sum over states.
    pub fn total(&self) -> u64 {
        self.static_ + self.active + self.warming + self.draining
    }
}

/// A count with its breakdown by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counted {
    /// Every state.
    pub total: u64,
    /// By state.
    pub by_state: ByState,
}

impl Counted {
    fn of<'a>(states: impl Iterator<Item = &'a State>) -> Counted {
        let by_state = ByState::count(states);
        Counted {
            total: by_state.total(),
            by_state,
        }
    }
}

/// Clusters: by state and by discovery type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clusters {
    /// Every state.
    pub total: u64,
    /// By state.
    pub by_state: ByState,
    /// By discovery type (`EDS`, `STATIC`, …, or the custom type's name), types seen only.
    pub by_type: IndexMap<String, u64>,
}

/// Endpoints: by reported health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoints {
    /// All endpoints.
    pub total: u64,
    /// By health status name, statuses seen only.
    pub by_health: IndexMap<String, u64>,
}

/// Who the proxy is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NodeSummary {
    /// Node id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Node cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Envoy version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_version: Option<String>,
    /// Istio version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_version: Option<String>,
    /// Istio proxy SHA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_proxy_sha: Option<String>,
    /// Workload namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Workload name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_name: Option<String>,
}

/// Resources Heft keeps opaque.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpaqueSummary {
    /// How many.
    pub total: u64,
    /// Their bytes in the input.
    pub bytes: u64,
}

/// One section's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionSize {
    /// The section's `@type`.
    #[serde(rename = "type")]
    pub type_url: String,
    /// Its bytes in the input.
    pub bytes: u64,
}

/// The summary of a dump.
///
/// ```
/// let dump = heft::Dump::from_slice(br#"[{"name": "a", "type": "EDS"}, {"name": "b", "connect_timeout": "1s"}]"#).unwrap();
/// let s = heft::Summary::of(&dump);
/// assert_eq!(s.clusters.total, 2);
/// assert_eq!(s.clusters.by_type["EDS"], 1);
/// assert_eq!(s.clusters.by_type["STATIC"], 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The input.
    pub input: Source,
    /// The proxy's identity.
    pub node: NodeSummary,
    /// Clusters.
    pub clusters: Clusters,
    /// Listeners.
    pub listeners: Counted,
    /// Route configurations.
    pub route_configs: Counted,
    /// Virtual hosts over all route configurations.
    pub virtual_hosts: u64,
    /// Routes over all virtual hosts.
    pub routes: u64,
    /// Endpoint configurations.
    pub endpoint_configs: u64,
    /// Endpoints.
    pub endpoints: Endpoints,
    /// Secrets.
    pub secrets: Counted,
    /// Opaque resources and sections.
    pub opaque: OpaqueSummary,
    /// Section sizes, in input order.
    pub sections: Vec<SectionSize>,
    /// What `--keep-going` skipped.
    pub skipped: Vec<crate::model::Skipped>,
}

impl Summary {
    /// Summarises a dump.
    pub fn of(dump: &Dump) -> Summary {
        let mut by_type: IndexMap<String, u64> = IndexMap::new();
        for c in &dump.clusters {
            *by_type.entry(c.discovery.name().to_string()).or_default() += 1;
        }
        let mut by_health: IndexMap<String, u64> = IndexMap::new();
        let mut endpoints = 0;
        for e in dump.endpoint_configs.iter().flat_map(|la| la.endpoints()) {
            endpoints += 1;
            *by_health.entry(e.health.name().to_string()).or_default() += 1;
        }
        for h in dump.cluster_statuses.iter().flat_map(|c| &c.hosts) {
            endpoints += 1;
            *by_health.entry(h.health.name().to_string()).or_default() += 1;
        }
        // `/clusters` output names clusters without their config: count them too.
        let clusters = Counted::of(
            dump.clusters
                .iter()
                .map(|c| &c.meta.state)
                .chain(dump.cluster_statuses.iter().map(|c| &c.meta.state)),
        );
        let node = dump
            .bootstrap
            .as_ref()
            .map(|b| {
                let n = &b.node;
                let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
                NodeSummary {
                    id: s(&n.id),
                    cluster: s(&n.cluster),
                    envoy_version: n.envoy_version().map(Into::into),
                    istio_version: n.istio_version().map(Into::into),
                    istio_proxy_sha: n.istio_proxy_sha().map(Into::into),
                    namespace: n.namespace().map(Into::into),
                    workload_name: n.workload_name().map(Into::into),
                }
            })
            .unwrap_or_default();
        Summary {
            input: dump.source.clone(),
            node,
            clusters: Clusters {
                total: clusters.total,
                by_state: clusters.by_state,
                by_type,
            },
            listeners: Counted::of(dump.listeners.iter().map(|l| &l.meta.state)),
            route_configs: Counted::of(dump.route_configs.iter().map(|r| &r.meta.state)),
            virtual_hosts: dump
                .route_configs
                .iter()
                .map(|r| r.virtual_hosts.len() as u64)
                .sum(),
            routes: dump
                .route_configs
                .iter()
                .map(|r| r.route_count() as u64)
                .sum(),
            endpoint_configs: dump.endpoint_configs.len() as u64,
            endpoints: Endpoints {
                total: endpoints,
                by_health,
            },
            secrets: Counted::of(dump.secrets.iter().map(|s| &s.meta.state)),
            opaque: OpaqueSummary {
                total: dump.opaque.len() as u64,
                bytes: dump.opaque.iter().map(|o| o.payload.bytes).sum(),
            },
            sections: dump
                .sections
                .iter()
                .map(|Section { type_url, span }| SectionSize {
                    type_url: type_url.to_string(),
                    bytes: span.len,
                })
                .collect(),
            skipped: dump.skipped.clone(),
        }
    }
}
