//! `why`: what bloats a proxy, in a report a person reads in a minute.
//!
//! [`Why::of`] prices the dump and says where the predicted heap goes (by kind, by destination
//! namespace, the heaviest services), how much of it serves services the workload never called
//! (given its stats) or that sit outside its own namespace, the multipliers at work (clusters per
//! service from ports and subsets, Knative revisions and `-private` twins, endpoints per cluster,
//! stats per cluster, worker threads), dead weight (clusters nothing routes to, secrets and route
//! configurations nothing uses), and the next steps: a Sidecar scope derived from what the stats
//! show called (never from no evidence), Istio's stats inclusion list when every stat is kept,
//! hiding namespaces the workload never calls (`exportTo`, `discoverySelectors`), gateway cluster
//! filtering on gateways, each priced, and their combined saving.
//!
//! ```
//! use heft::cost::{CostModel, Settings};
//! let dump = heft::Dump::from_path(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/../../testdata/real/sidecar/config_dump.json.gz"))?;
//! let why = heft::why::Why::of(&dump, &CostModel::envoy_1_40(), &Settings::default(), None);
//! assert_eq!(why.workload.namespace.as_deref(), Some("default"));
//! // No stats: the Sidecar scope is only an example, and says so.
//! assert!(matches!(why.next_step.sidecar, heft::why::SidecarAdvice::Example(_)));
//! # Ok::<(), heft::Error>(())
//! ```

use crate::cost::{istio_stats_matcher, CostModel, Estimate, Object, RollupBy, Settings};
use crate::model::istio::IstioName;
use crate::model::{Dump, NetworkFilter, RouteSource, RouteTarget, StatsMatcher};
use crate::scope::{service_of, Scope};
use crate::sidecar::{narrowest_egress, used_services, NoEvidence, WhatIf, Workload};
use crate::usage::Usage;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A share of the predicted heap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Share {
    /// Bytes.
    pub bytes: u64,
    /// How many things (services, clusters, …) hold them.
    pub count: usize,
}

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// What it is (a kind, a namespace, a service host, `(baseline)`, `(shared)`).
    pub key: String,
    /// Its bytes.
    pub bytes: u64,
}

/// Multipliers: the reasons one service costs many objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Multipliers {
    /// Outbound services (hosts) with clusters.
    pub services: usize,
    /// Their outbound clusters.
    pub service_clusters: usize,
    /// Distinct ports per service, on average.
    pub ports_per_service: f64,
    /// Clusters per service port (1 + DestinationRule subsets), on average.
    pub clusters_per_port: f64,
    /// Subset clusters and what they cost.
    pub subset_clusters: Share,
    /// Knative services (revision `-00001` and `-private` twins) and what they cost.
    pub knative_services: Share,
    /// Endpoints over all clusters, and what they cost.
    pub endpoints: Share,
    /// Endpoints per cluster with any, on average, and the most.
    pub endpoints_per_cluster: f64,
    /// The most endpoints one cluster has.
    pub max_endpoints: usize,
    /// Stats, and what they cost.
    pub stats_bytes: u64,
    /// What Istio's default stats inclusion list would save (0 when already as narrow).
    pub stats_saving_with_istio_list: u64,
    /// Worker threads.
    pub concurrency: u32,
    /// What the workers' copies cost.
    pub per_worker_bytes: u64,
}

/// What costs memory and serves nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeadWeight {
    /// Clusters no route, listener or TCP proxy refers to.
    pub unreferenced_clusters: Share,
    /// The heaviest of them.
    pub examples: Vec<Row>,
    /// A route picks its cluster from a request header: any cluster may be used that way, so
    /// the unreferenced ones may not be dead.
    pub cluster_header_routes: bool,
    /// Secrets no cluster or listener refers to.
    pub unused_secrets: Share,
    /// Route configurations no listener uses.
    pub unused_route_configs: Share,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Why {
    /// Whose proxy.
    pub workload: Workload,
    /// What the input cannot show (see [`crate::Summary::warnings`]).
    pub warnings: Vec<crate::summary_types::Warning>,
    /// Updates Envoy rejected (see [`crate::Summary::rejected`]).
    pub rejected: Vec<crate::summary_types::RejectedUpdate>,
    /// Resources waiting for what they need (see [`crate::Summary::warming`]).
    pub warming: Vec<crate::summary_types::Waiting>,
    /// Predicted heap, baseline included.
    pub total_bytes: u64,
    /// What a proxy with nothing configured costs.
    pub baseline_bytes: u64,
    /// Concurrency and stats assumed.
    pub concurrency: u32,
    /// Where the concurrency came from.
    pub concurrency_source: crate::cost::ConcurrencySource,
    /// The model used and how it matches the proxy.
    pub model: crate::cost::ModelUsed,
    /// The bootstrap settings priced under.
    pub proxy: crate::cost::Proxy,
    /// By object kind, heaviest first.
    pub by_kind: Vec<Row>,
    /// By destination namespace, heaviest first.
    pub by_namespace: Vec<Row>,
    /// The heaviest services.
    pub top_services: Vec<Row>,
    /// Services outside the workload's namespace (and `istio-system`).
    pub outside_namespace: Share,
    /// Services the stats show never called (when stats were given).
    pub never_called: Option<Share>,
    /// Services the stats show called (when stats were given).
    pub called: Option<Vec<String>>,
    /// Why there is so much.
    pub multipliers: Multipliers,
    /// What serves nothing.
    pub dead_weight: DeadWeight,
    /// What to change, and what each change saves.
    pub next_step: NextStep,
}

/// What to change, and what it saves.
#[derive(Debug, Clone, Serialize)]
pub struct NextStep {
    /// The Sidecar scope.
    pub sidecar: SidecarAdvice,
    /// The other levers that fit this proxy, heaviest saving first.
    pub levers: Vec<Lever>,
    /// The predicted heap with the derived Sidecar scope (when there is one) and every lever
    /// applied together (not the sum: they overlap).
    pub combined_after_bytes: u64,
    /// `total_bytes − combined_after_bytes`.
    pub combined_saving_bytes: u64,
}

/// The Sidecar scope `why` can stand behind.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SidecarAdvice {
    /// Derived from the stats: the narrowest scope that keeps every service they show called.
    Derived(WhatIf),
    /// No stats were given: what keeping only the workload's namespace and `istio-system` would
    /// save. An illustration, not advice: nothing shows which services the workload calls.
    Example(WhatIf),
    /// The stats show no call to any service: nothing can be derived.
    NoEvidence(NoEvidence),
    /// The proxy is a gateway: Sidecar resources do not apply to it.
    Gateway,
}

/// A change other than a Sidecar scope.
#[derive(Debug, Clone, Serialize)]
pub struct Lever {
    /// `stats_inclusion_list`, `hide_namespaces` or `gateway_cluster_filter`.
    pub kind: &'static str,
    /// What to set, exactly.
    pub setting: String,
    /// What the dump (and the stats) show that makes it fit.
    pub evidence: String,
    /// What it costs the mesh or could break.
    pub caution: String,
    /// Predicted heap with it applied alone.
    pub after_bytes: u64,
    /// What it saves alone.
    pub saving_bytes: u64,
    /// For `hide_namespaces`: the namespaces to hide.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

const BASELINE: &str = "(baseline)";
const SHARED: &str = "(shared)";

fn rows(rollup: Vec<crate::cost::Rollup>) -> Vec<Row> {
    rollup
        .into_iter()
        .map(|r| Row {
            key: r.key,
            bytes: r.bytes,
        })
        .collect()
}

fn is_knative(service: &str) -> bool {
    let base = service.strip_suffix("-private").unwrap_or(service);
    base.len() != service.len()
        || base
            .rsplit_once('-')
            .is_some_and(|(_, rev)| rev.len() == 5 && rev.bytes().all(|b| b.is_ascii_digit()))
}

impl Why {
    /// The report for `dump`, with `usage` from the proxy's stats when known.
    pub fn of(dump: &Dump, model: &CostModel, settings: &Settings, usage: Option<&Usage>) -> Why {
        let workload = Workload::of(dump);
        let own = workload
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let estimate = Estimate::of(dump, model, settings);
        let total = estimate.total();
        let by_service = estimate.rollup(RollupBy::Service);
        let by_namespace = estimate.rollup(RollupBy::Namespace);

        let service_rows = || {
            by_service
                .iter()
                .filter(|r| r.key != BASELINE && r.key != SHARED)
        };
        let mut namespace_of: BTreeMap<&str, &str> = BTreeMap::new();
        for c in &dump.clusters {
            if let Some((host, Some(ns))) = service_of(c) {
                namespace_of.entry(host).or_insert(ns);
            }
        }
        let outside: Vec<_> = service_rows()
            .filter(|r| {
                namespace_of
                    .get(r.key.as_str())
                    .is_some_and(|ns| *ns != own && *ns != "istio-system")
            })
            .collect();
        let outside_namespace = Share {
            bytes: outside.iter().map(|r| r.bytes).sum(),
            count: outside.len(),
        };
        let used = usage.map(|u| used_services(dump, u));
        let never_called = used.as_ref().map(|used| {
            let idle: Vec<_> = service_rows()
                .filter(|r| !used.contains_key(&r.key))
                .collect();
            Share {
                bytes: idle.iter().map(|r| r.bytes).sum(),
                count: idle.len(),
            }
        });

        let multipliers = multipliers(dump, &estimate, model, settings);
        let dead_weight = dead_weight(dump, &estimate);

        let next_step = next_step(
            dump,
            &estimate,
            &workload,
            &own,
            model,
            settings,
            usage,
            used.as_ref(),
            &namespace_of,
            &dead_weight,
            &multipliers,
        );

        let summary = crate::Summary::of(dump);
        Why {
            workload,
            warnings: summary.warnings,
            rejected: summary.rejected,
            warming: summary.warming,
            total_bytes: total,
            baseline_bytes: estimate.baseline.total(),
            concurrency: settings.concurrency,
            concurrency_source: settings.concurrency_source,
            model: estimate.model_used.clone(),
            proxy: estimate.proxy.clone(),
            by_kind: rows(estimate.rollup(RollupBy::Kind)),
            by_namespace: rows(by_namespace),
            top_services: rows(service_rows().take(10).cloned().collect()),
            outside_namespace,
            never_called,
            called: used.map(|u| u.into_keys().collect()),
            multipliers,
            dead_weight,
            next_step,
        }
    }
}

/// The Sidecar advice and the other levers, each priced alone and all together.
#[allow(clippy::too_many_arguments)]
fn next_step(
    dump: &Dump,
    estimate: &Estimate<'_>,
    workload: &Workload,
    own: &str,
    model: &CostModel,
    settings: &Settings,
    usage: Option<&Usage>,
    used: Option<&BTreeMap<String, crate::usage::Counter>>,
    namespace_of: &BTreeMap<&str, &str>,
    dead: &DeadWeight,
    m: &Multipliers,
) -> NextStep {
    let total = estimate.total();
    let scoped = |hosts: &[String], d: &Dump| {
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        Scope::parse(&hosts, own)
            .expect("derived egress hosts are valid")
            .apply(d)
            .dump
    };
    let sidecar = if workload.is_gateway() {
        SidecarAdvice::Gateway
    } else {
        match usage.map(|u| narrowest_egress(dump, u)) {
            Some(Ok(hosts)) => {
                SidecarAdvice::Derived(what_if(dump, &hosts, own, model, settings, usage))
            }
            Some(Err(none)) => SidecarAdvice::NoEvidence(none),
            None => SidecarAdvice::Example(what_if(
                dump,
                &["./*".to_string(), "istio-system/*".to_string()],
                own,
                model,
                settings,
                None,
            )),
        }
    };
    // What every lever is applied to together: the derived scope's configuration, if any.
    let mut combined = match &sidecar {
        SidecarAdvice::Derived(w) => scoped(&w.egress, dump),
        _ => dump.clone(),
    };
    let mut combined_settings = settings.clone();
    let mut levers = Vec::new();

    if m.stats_saving_with_istio_list > 0 {
        levers.push(Lever {
            kind: "stats_inclusion_list",
            setting: "keep Istio's default stats inclusion list: remove the proxyStatsMatcher (meshConfig.defaultConfig, or the pod annotation proxy.istio.io/config) or sidecar.istio.io/statsInclusion* annotations that keep every stat".to_string(),
            evidence: format!(
                "the bootstrap keeps {}; Istio's list keeps only its own metrics and the proxy's server, listener and cluster manager stats",
                if matches!(estimate.stats, StatsMatcher::All) {
                    "every stat"
                } else {
                    "every stat but an exclusion list"
                }
            ),
            caution: "dashboards or alerts that read per-cluster Envoy stats (envoy_cluster_*) lose them; Istio's standard metrics stay".to_string(),
            after_bytes: total - m.stats_saving_with_istio_list,
            saving_bytes: m.stats_saving_with_istio_list,
            namespaces: Vec::new(),
        });
        combined_settings.stats = Some(istio_stats_matcher());
    }

    if let Some((lever, keep)) =
        hide_namespaces(dump, own, model, settings, used, namespace_of, total)
    {
        combined = scoped(&keep, &combined);
        levers.push(lever);
    }

    if workload.is_gateway() && dead.unreferenced_clusters.count > 0 {
        let filtered = without_unreferenced(dump);
        let after = Estimate::of(&filtered, model, settings).total();
        levers.push(Lever {
            kind: "gateway_cluster_filter",
            setting: "set PILOT_FILTER_GATEWAY_CLUSTER_CONFIG=true on istiod: gateways then get only the clusters their routes use".to_string(),
            evidence: format!(
                "{} service clusters no route or TCP proxy of this gateway uses",
                dead.unreferenced_clusters.count
            ),
            caution: if dead.cluster_header_routes {
                "a route here picks its cluster from a request header: clusters it may pick would be dropped too".to_string()
            } else {
                "applies to every gateway of the mesh; istiod computes more per push".to_string()
            },
            after_bytes: after,
            saving_bytes: total.saturating_sub(after),
            namespaces: Vec::new(),
        });
        combined = without_unreferenced(&combined);
    }

    levers.sort_by_key(|l| std::cmp::Reverse(l.saving_bytes));
    let combined_after = if levers.is_empty() && !matches!(sidecar, SidecarAdvice::Derived(_)) {
        total
    } else {
        Estimate::of(&combined, model, &combined_settings).total()
    };
    NextStep {
        sidecar,
        levers,
        combined_after_bytes: combined_after,
        combined_saving_bytes: total.saturating_sub(combined_after),
    }
}

fn what_if(
    dump: &Dump,
    hosts: &[String],
    own: &str,
    model: &CostModel,
    settings: &Settings,
    usage: Option<&Usage>,
) -> WhatIf {
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let scope = Scope::parse(&hosts, own).expect("derived egress hosts are valid");
    WhatIf::of(dump, &scope, model, settings, usage)
}

/// Namespaces (besides its own and `istio-system`) whose services this proxy holds but the stats
/// show it never calls: hidden from it by `exportTo` on their services or
/// by leaving them out of `discoverySelectors`. The one lever that also serves gateways and
/// Knative activators, which cannot take a narrow Sidecar (istio#47061).
fn hide_namespaces(
    dump: &Dump,
    own: &str,
    model: &CostModel,
    settings: &Settings,
    used: Option<&BTreeMap<String, crate::usage::Counter>>,
    namespace_of: &BTreeMap<&str, &str>,
    total: u64,
) -> Option<(Lever, Vec<String>)> {
    // Hiding namespaces cuts them for every proxy of the mesh: only stats that show calls can
    // say which namespaces this workload does without.
    let used = used?;
    if used.is_empty() {
        return None;
    }
    let called: BTreeSet<&str> = used
        .keys()
        .filter_map(|h| namespace_of.get(h.as_str()).copied())
        .collect();
    let hidden: Vec<String> = namespace_of
        .values()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|ns| *ns != own && *ns != "istio-system" && !called.contains(ns))
        .map(str::to_string)
        .collect();
    if hidden.is_empty() {
        return None;
    }
    let keep: Vec<String> = namespace_of
        .values()
        .filter(|ns| !hidden.iter().any(|h| h == *ns))
        .map(|ns| format!("{ns}/*"))
        .chain(std::iter::once("istio-system/*".to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let refs: Vec<&str> = keep.iter().map(String::as_str).collect();
    let scoped = Scope::parse(&refs, own)
        .expect("namespace hosts are valid")
        .apply(dump);
    let after = Estimate::of(&scoped.dump, model, settings).total();
    let evidence = format!(
        "the stats show no call into {} namespace(s) whose {} services this proxy holds",
        hidden.len(),
        scoped.removed_services.len()
    );
    let lever = Lever {
        kind: "hide_namespaces",
        setting: "export those namespaces' services only where they are called (exportTo on their Services, networking.istio.io/exportTo, or the mesh's defaultServiceExportTo), or leave namespaces no workload needs out of meshConfig.discoverySelectors".to_string(),
        evidence,
        caution: "exportTo and discoverySelectors apply to every proxy of the mesh: a workload that does call those services loses them".to_string(),
        after_bytes: after,
        saving_bytes: total.saturating_sub(after),
        namespaces: hidden,
    };
    Some((lever, keep))
}

/// `dump` without the service clusters nothing routes to (and their endpoints), as istiod's
/// gateway cluster filtering leaves a gateway.
fn without_unreferenced(dump: &Dump) -> Dump {
    let referenced = referenced_clusters(dump);
    let mut out = dump.clone();
    let dropped: HashSet<String> = out
        .clusters
        .iter()
        .filter(|c| service_of(c).is_some() && !referenced.contains(&*c.name))
        .map(|c| c.name.to_string())
        .collect();
    out.clusters.retain(|c| !dropped.contains(&*c.name));
    out.endpoint_configs
        .retain(|la| !dropped.contains(&*la.cluster_name));
    out
}

fn multipliers(
    dump: &Dump,
    e: &Estimate<'_>,
    model: &CostModel,
    settings: &Settings,
) -> Multipliers {
    let mut m = Multipliers {
        concurrency: settings.concurrency,
        ..Multipliers::default()
    };
    let mut ports: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    let mut with_endpoints = 0usize;
    for o in &e.objects {
        if let Object::Cluster(c, la) = o.object {
            let hosts = la.map_or(0, |la| la.endpoints().count());
            m.endpoints.count += hosts;
            m.endpoints.bytes += o.parts.endpoints;
            m.max_endpoints = m.max_endpoints.max(hosts);
            with_endpoints += usize::from(hosts > 0);
            if let Some(IstioName::Service {
                port,
                subset,
                host,
                service,
                ..
            }) = &c.istio
            {
                if service_of(c).is_none() {
                    continue;
                }
                m.service_clusters += 1;
                ports.entry(host).or_default().insert(*port);
                if !subset.is_empty() {
                    m.subset_clusters.count += 1;
                    m.subset_clusters.bytes += o.bytes();
                }
                if service.as_deref().is_some_and(is_knative) {
                    m.knative_services.bytes += o.bytes();
                }
            }
        }
    }
    m.knative_services.count = ports
        .keys()
        .filter(|h| h.split('.').next().is_some_and(is_knative))
        .count();
    m.services = ports.len();
    let port_count: usize = ports.values().map(BTreeSet::len).sum();
    if m.services > 0 {
        m.ports_per_service = port_count as f64 / m.services as f64;
        m.clusters_per_port = m.service_clusters as f64 / port_count as f64;
    }
    if with_endpoints > 0 {
        m.endpoints_per_cluster = m.endpoints.count as f64 / with_endpoints as f64;
    }
    let parts = e.parts();
    m.stats_bytes = parts.stats + e.baseline.stats;
    m.per_worker_bytes = parts.per_worker + e.baseline.per_worker;
    if matches!(e.stats, StatsMatcher::All | StatsMatcher::Exclusion(_)) {
        let narrow = Settings {
            stats: Some(istio_stats_matcher()),
            ..settings.clone()
        };
        m.stats_saving_with_istio_list = e
            .total()
            .saturating_sub(Estimate::of(dump, model, &narrow).total());
    }
    m
}

/// What the listeners and routes of a dump refer to.
pub(crate) struct References<'a> {
    /// Every cluster a route, a weighted split or a TCP proxy names.
    pub(crate) clusters: HashSet<&'a str>,
    /// Every RDS name a listener uses.
    pub(crate) rds: HashSet<&'a str>,
    /// Whether a route picks its cluster from a request header (or a plugin).
    pub(crate) cluster_header_routes: bool,
}

fn referenced_clusters(dump: &Dump) -> HashSet<&str> {
    references(dump).clusters
}

pub(crate) fn references(dump: &Dump) -> References<'_> {
    let mut referenced: HashSet<&str> = HashSet::new();
    let mut rds: HashSet<&str> = HashSet::new();
    let mut cluster_header_routes = false;
    for f in dump
        .listeners
        .iter()
        .flat_map(|l| l.all_filter_chains())
        .flat_map(|fc| &fc.filters)
    {
        match f {
            NetworkFilter::HttpConnectionManager { config, .. } => {
                if let RouteSource::Rds { route_config_name } = &config.routes {
                    rds.insert(route_config_name);
                }
            }
            NetworkFilter::TcpProxy { config, .. } => referenced.extend(config.target.clusters()),
            NetworkFilter::Other { .. } => {}
        }
    }
    for rc in dump.route_configs_in_use() {
        for r in rc.virtual_hosts.iter().flat_map(|v| &v.routes) {
            if let crate::model::Action::Route(a) = &r.action {
                referenced.extend(a.target.clusters());
                cluster_header_routes |= matches!(
                    a.target,
                    RouteTarget::ClusterHeader(_) | RouteTarget::Plugin(_)
                );
            }
        }
    }
    References {
        clusters: referenced,
        rds,
        cluster_header_routes,
    }
}

fn dead_weight(dump: &Dump, e: &Estimate<'_>) -> DeadWeight {
    let References {
        clusters: referenced,
        rds,
        cluster_header_routes,
    } = references(dump);
    let mut d = DeadWeight {
        cluster_header_routes,
        ..DeadWeight::default()
    };
    let secrets_used: HashSet<&str> = dump
        .clusters
        .iter()
        .flat_map(|c| c.sds_secrets())
        .chain(dump.listeners.iter().flat_map(|l| l.sds_secrets()))
        .collect();
    let mut dead: Vec<Row> = Vec::new();
    for o in &e.objects {
        match o.object {
            // Only service clusters are candidates: the bootstrap's and Istio's catch-alls are
            // used by other means (config sources, original destination).
            Object::Cluster(c, _) if service_of(c).is_some() && !referenced.contains(&*c.name) => {
                dead.push(Row {
                    key: c.name.to_string(),
                    bytes: o.bytes(),
                });
            }
            Object::Secret(s)
                if s.meta.state != crate::model::State::Static
                    && !secrets_used.contains(&*s.name) =>
            {
                d.unused_secrets.count += 1;
                d.unused_secrets.bytes += o.bytes();
            }
            Object::RouteConfig(rc)
                if rc.meta.state != crate::model::State::Static && !rds.contains(&*rc.name) =>
            {
                d.unused_route_configs.count += 1;
                d.unused_route_configs.bytes += o.bytes();
            }
            _ => {}
        }
    }
    dead.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key.cmp(&b.key)));
    d.unreferenced_clusters = Share {
        bytes: dead.iter().map(|r| r.bytes).sum(),
        count: dead.len(),
    };
    dead.truncate(5);
    d.examples = dead;
    d
}
