//! What an Istio `Sidecar` resource would save: the predicted heap before and after a scope.
//!
//! [`Workload::of`] says whose proxy a dump is (name, namespace, labels, from the bootstrap's node);
//! [`WhatIf::of`] applies a [`Scope`] and prices both configurations with the same cost model;
//! [`narrowest_egress`] derives the smallest egress list that keeps every service the stats show
//! in use, and refuses when the stats show no call at all (an idle or freshly started proxy, or
//! Istio's stats inclusion list, which drops the cluster counters): a scope derived from no
//! evidence would cut every service. [`OutboundPolicy::of`] reads what happens to traffic a scope
//! leaves out.
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
use crate::model::{Action, NetworkFilter, RouteTarget, State, TcpTarget};
use crate::scope::{service_of, Removed, Scope};
use crate::usage::{Counter, Usage};
use serde::Serialize;
use std::collections::BTreeMap;

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

    /// The labels a Sidecar's `workloadSelector` should match: `app` and `version` where the pod
    /// has them (the labels Istio documents as a workload's identity), or `None` when it has
    /// neither: then only a namespace-wide Sidecar can be written.
    pub fn selector(&self) -> Option<BTreeMap<String, String>> {
        let picked: BTreeMap<String, String> = ["app", "version"]
            .iter()
            .filter_map(|k| Some((k.to_string(), self.labels.get(*k)?.clone())))
            .collect();
        (!picked.is_empty()).then_some(picked)
    }
}

/// What Istio does with outbound traffic to a host no service in the configuration matches
/// (MeshConfig `outboundTrafficPolicy.mode`), as the proxy's configuration shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    /// Passed through to the original destination (`PassthroughCluster`): plain TCP, no mTLS,
    /// no routing rules, no retries.
    AllowAny,
    /// Refused (`BlackHoleCluster`, or HTTP 502 from the `block_all` virtual host).
    RegistryOnly,
    /// The configuration does not say (not an Istio sidecar, or no outbound listeners).
    Unknown,
}

/// The outbound traffic policy and what in the dump shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboundPolicy {
    /// The mode.
    pub mode: OutboundMode,
    /// The resource that shows it, in words.
    pub evidence: Option<String>,
}

impl OutboundPolicy {
    /// Reads the policy as istiod writes it: the `virtualOutbound` listener's catch-all TCP proxy
    /// goes to `PassthroughCluster` (`ALLOW_ANY`) or `BlackHoleCluster` (`REGISTRY_ONLY`); without
    /// that listener, the outbound route configurations' catch-all virtual host, `allow_any`
    /// (to `PassthroughCluster`) or `block_all` (a 502).
    pub fn of(dump: &Dump) -> OutboundPolicy {
        let found = |mode, evidence: String| OutboundPolicy {
            mode,
            evidence: Some(evidence),
        };
        for l in dump
            .listeners
            .iter()
            .filter(|l| &*l.name == "virtualOutbound" && l.meta.state != State::Draining)
        {
            for fc in l.all_filter_chains() {
                for f in &fc.filters {
                    if let NetworkFilter::TcpProxy { config, .. } = f {
                        if let TcpTarget::Cluster(c) = &config.target {
                            let says =
                                format!("listener virtualOutbound sends other traffic to {c}");
                            match &**c {
                                "PassthroughCluster" => return found(OutboundMode::AllowAny, says),
                                "BlackHoleCluster" => {
                                    return found(OutboundMode::RegistryOnly, says)
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        let mut block_all = None;
        for rc in &dump.route_configs {
            for vh in &rc.virtual_hosts {
                match &*vh.name {
                    "allow_any" if passes_through(vh) => {
                        return found(
                            OutboundMode::AllowAny,
                            format!("route configuration {} has virtual host allow_any", rc.name),
                        )
                    }
                    "block_all" if block_all.is_none() => block_all = Some(&rc.name),
                    _ => {}
                }
            }
        }
        match block_all {
            Some(rc) => found(
                OutboundMode::RegistryOnly,
                format!("route configuration {rc} has virtual host block_all"),
            ),
            None => OutboundPolicy {
                mode: OutboundMode::Unknown,
                evidence: None,
            },
        }
    }
}

fn passes_through(vh: &crate::model::VirtualHost) -> bool {
    vh.routes.iter().any(|r| match &r.action {
        Action::Route(a) => {
            matches!(&a.target, RouteTarget::Cluster(c) if &**c == "PassthroughCluster")
        }
        _ => false,
    })
}

/// A service the stats show called, and the counter that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Called {
    /// The service host.
    pub service: String,
    /// The counter, as the stats name it, and its value.
    pub counter: Counter,
}

/// What a scope derived from the stats rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The window the counters cover (the server's uptime), when the stats say.
    pub window_seconds: Option<u64>,
    /// `json` or `prometheus`.
    pub stats_format: &'static str,
    /// Counters read that could show a call to a service (outbound clusters' and Istio's
    /// request metrics), whatever their value.
    pub counters_seen: usize,
    /// The services the stats show called, each with its counter.
    pub called: Vec<Called>,
}

impl Evidence {
    /// The evidence `usage` gives about the services of `dump`.
    pub fn of(dump: &Dump, usage: &Usage) -> Evidence {
        Evidence {
            window_seconds: usage.uptime_seconds,
            stats_format: usage.format,
            counters_seen: usage.service_counters_seen,
            called: used_services(dump, usage)
                .into_iter()
                .map(|(service, counter)| Called { service, counter })
                .collect(),
        }
    }
}

/// Why no scope can be derived from the stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoEvidence {
    /// What the stats held.
    pub evidence: Evidence,
}

impl std::fmt::Display for NoEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.evidence;
        let window = match e.window_seconds {
            Some(s) => format!(" over {}", duration(s)),
            None => String::new(),
        };
        write!(
            f,
            "the stats show no call to any service of the dump{window}"
        )?;
        if e.counters_seen == 0 {
            write!(
                f,
                ": they hold no outbound cluster counter and no istio_requests_total, as under Istio's stats inclusion list without its stats filter"
            )?;
        } else {
            write!(
                f,
                " ({} service counters read, none above 0)",
                e.counters_seen
            )?;
        }
        write!(
            f,
            "; a scope derived from them would cut every service. Capture /stats after the workload has served real traffic, or give --egress"
        )
    }
}

/// `90 s`, `12 min`, `3.5 h`, `2.0 days`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} days", s as f64 / 86400.0),
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
    /// Services the stats show called that the scope would cut, with the counter that shows
    /// each: under `REGISTRY_ONLY` calls to them fail, under `ALLOW_ANY` they leave the mesh.
    pub used_but_removed: Vec<Called>,
    /// What the stats show, when they were given.
    pub evidence: Option<Evidence>,
    /// What happens to traffic outside the scope.
    pub outbound_policy: OutboundPolicy,
    /// Egress hosts that select no service of the dump (a typo, or a namespace the proxy does
    /// not know): they keep nothing.
    pub unmatched_hosts: Vec<String>,
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
        let evidence = usage.map(|u| Evidence::of(dump, u));
        let used_but_removed = evidence.as_ref().map_or_else(Vec::new, |e| {
            e.called
                .iter()
                .filter(|c| scoped.removed_services.contains_key(&c.service))
                .cloned()
                .collect()
        });
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
            evidence,
            outbound_policy: OutboundPolicy::of(dump),
            unmatched_hosts: scope.unmatched(dump),
        }
    }
}

/// Every service host the stats show used, with the counter that shows it (the largest): hosts
/// of used clusters, and Istio's `destination_service`s.
pub fn used_services(dump: &Dump, usage: &Usage) -> BTreeMap<String, Counter> {
    let mut out: BTreeMap<String, Counter> = usage.services.clone();
    for c in &dump.clusters {
        if let Some((host, _)) = service_of(c) {
            if let Some(counter) = usage.cluster_counter(&c.name) {
                crate::usage::keep(&mut out, host, &*counter.name, counter.value);
            }
        }
    }
    out
}

/// The narrowest egress list that keeps every used service: `namespace/host` for each (`*/host`
/// where the dump does not say its namespace). Refused when the stats show no call to any
/// service: nothing would be kept.
pub fn narrowest_egress(dump: &Dump, usage: &Usage) -> Result<Vec<String>, NoEvidence> {
    let mut namespace_of: BTreeMap<&str, &str> = BTreeMap::new();
    for c in &dump.clusters {
        if let Some((host, Some(ns))) = service_of(c) {
            namespace_of.entry(host).or_insert(ns);
        }
    }
    let hosts: Vec<String> = used_services(dump, usage)
        .into_keys()
        .map(|host| match namespace_of.get(host.as_str()) {
            Some(ns) => format!("{ns}/{host}"),
            None => format!("*/{host}"),
        })
        .collect();
    if hosts.is_empty() {
        Err(NoEvidence {
            evidence: Evidence::of(dump, usage),
        })
    } else {
        Ok(hosts)
    }
}
