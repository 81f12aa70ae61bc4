//! What an Istio `Sidecar` resource would save: the predicted heap before and after a scope.
//!
//! [`Workload::of`] says whose proxy a dump is (name, namespace, labels, from the bootstrap's node);
//! [`WhatIf::of`] applies a [`Scope`] and prices both configurations with the same cost model;
//! [`narrowest_egress`] derives the smallest egress list that keeps every service the stats show
//! in use.
//!
//! ```
//! use heft::cost::{CostModel, Settings};
//! use heft::sidecar::WhatIf;
//! let dump = heft::Dump::from_slice(br#"{"configs": [{
//!   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
//!   "dynamic_active_clusters": [
//!     {"cluster": {"name": "outbound|9080||reviews.default.svc.cluster.local", "type": "EDS"}},
//!     {"cluster": {"name": "outbound|80||billing.shop.svc.cluster.local", "type": "EDS"}}]}]}"#)?;
//! let scope = heft::scope::Scope::parse(&["./*"], "default").unwrap();
//! let w = WhatIf::of(&dump, &scope, &CostModel::envoy_1_40(), &Settings::default(), None);
//! assert!(w.after_bytes < w.before_bytes);
//! assert_eq!(w.removed.clusters, 1);
//! # Ok::<(), heft::Error>(())
//! ```

use crate::cost::{CostModel, Estimate, Settings};
use crate::model::Dump;
use crate::scope::{service_of, Removed, Scope};
use crate::usage::Usage;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Whose proxy a dump is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Workload name (`WORKLOAD_NAME`, else the pod name from the node id).
    pub name: Option<String>,
    /// Namespace (`NAMESPACE`, else from the node id).
    pub namespace: Option<String>,
    /// Pod labels (`LABELS`), for a Sidecar's `workloadSelector`.
    pub labels: BTreeMap<String, String>,
    /// `sidecar`, `router` (a gateway) or what the node id says.
    pub proxy_type: Option<String>,
}

impl Workload {
    /// Reads the bootstrap's node: Istio's metadata first, the node id
    /// (`sidecar~10.0.0.1~pod.namespace~namespace.svc.cluster.local`) as a fallback.
    pub fn of(dump: &Dump) -> Workload {
        let node = dump.bootstrap.as_ref().map(|b| &b.node);
        let id_parts: Vec<&str> = node.map_or(Vec::new(), |n| n.id.split('~').collect());
        let pod_ns = id_parts.get(2).and_then(|p| p.split_once('.'));
        let labels = node
            .and_then(|n| n.metadata.get("LABELS"))
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Workload {
            name: node
                .and_then(|n| n.workload_name().map(str::to_string))
                .or_else(|| pod_ns.map(|(pod, _)| pod.to_string())),
            namespace: node
                .and_then(|n| n.namespace().map(str::to_string))
                .or_else(|| pod_ns.map(|(_, ns)| ns.to_string())),
            labels,
            proxy_type: id_parts
                .first()
                .filter(|t| !t.is_empty() && id_parts.len() == 4)
                .map(|t| t.to_string()),
        }
    }

    /// Whether the proxy is a gateway (Sidecar resources do not apply to gateways).
    pub fn is_gateway(&self) -> bool {
        self.proxy_type.as_deref() == Some("router")
    }
}

/// A scope's effect on the predicted heap.
#[derive(Debug, Clone, Serialize)]
pub struct WhatIf {
    /// The egress hosts applied.
    pub egress: Vec<String>,
    /// The workload namespace `.` stood for.
    pub namespace: String,
    /// Predicted heap with today's configuration.
    pub before_bytes: u64,
    /// Predicted heap under the scope.
    pub after_bytes: u64,
    /// `before_bytes − after_bytes`.
    pub saving_bytes: u64,
    /// What the scope removes.
    pub removed: Removed,
    /// Services the scope keeps.
    pub kept_services: usize,
    /// Services the scope removes.
    pub removed_services: usize,
    /// Outbound clusters whose namespace is unknown (kept).
    pub undecided: Vec<String>,
    /// Services the stats show in use that the scope would cut: calls to them would fail.
    pub used_but_removed: Vec<String>,
}

impl WhatIf {
    /// Prices `dump` before and after `scope`.
    pub fn of(
        dump: &Dump,
        scope: &Scope,
        model: &CostModel,
        settings: &Settings,
        usage: Option<&Usage>,
    ) -> WhatIf {
        let scoped = scope.apply(dump);
        let before = Estimate::of(dump, model, settings).total();
        let after = Estimate::of(&scoped.dump, model, settings).total();
        let used_but_removed = match usage {
            Some(u) => used_services(dump, u)
                .into_iter()
                .filter(|host| scoped.removed_services.contains_key(host))
                .collect(),
            None => Vec::new(),
        };
        WhatIf {
            egress: scope
                .hosts()
                .iter()
                .map(|h| h.as_str().to_string())
                .collect(),
            namespace: scope.own_namespace().to_string(),
            before_bytes: before,
            after_bytes: after,
            saving_bytes: before.saturating_sub(after),
            removed: scoped.removed,
            kept_services: scoped.kept_services.len(),
            removed_services: scoped.removed_services.len(),
            undecided: scoped.undecided,
            used_but_removed,
        }
    }
}

/// Every service host the stats show used: hosts of used clusters, and Istio's
/// `destination_service`s.
pub fn used_services(dump: &Dump, usage: &Usage) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = usage.services.clone();
    for c in &dump.clusters {
        if let Some((host, _)) = service_of(c) {
            if usage.cluster_used(&c.name) {
                out.insert(host.to_string());
            }
        }
    }
    out
}

/// The narrowest egress list that keeps every used service: `namespace/host` for each (`*/host`
/// where the dump does not say its namespace), or `~/*` when nothing was used.
pub fn narrowest_egress(dump: &Dump, usage: &Usage) -> Vec<String> {
    let mut namespace_of: BTreeMap<&str, &str> = BTreeMap::new();
    for c in &dump.clusters {
        if let Some((host, Some(ns))) = service_of(c) {
            namespace_of.entry(host).or_insert(ns);
        }
    }
    let hosts: Vec<String> = used_services(dump, usage)
        .into_iter()
        .map(|host| match namespace_of.get(host.as_str()) {
            Some(ns) => format!("{ns}/{host}"),
            None => format!("*/{host}"),
        })
        .collect();
    if hosts.is_empty() {
        vec!["~/*".to_string()]
    } else {
        hosts
    }
}
