//! `why`: what bloats a proxy, in a report a person reads in a minute.
//!
//! [`Why::of`] prices the dump and says where the predicted heap goes (by kind, by destination
//! namespace, the heaviest services), how much of it serves services the workload never called
//! (given its stats) or that sit outside its own namespace, the multipliers at work (clusters per
//! service from ports and subsets, Knative revisions and `-private` twins, endpoints per cluster,
//! stats per cluster, worker threads), dead weight (clusters nothing routes to, secrets and route
//! configurations nothing uses), and the next step: a Sidecar scope with its expected saving.
//!
//! ```
//! use heft::cost::{CostModel, Settings};
//! let dump = heft::Dump::from_path(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/../../testdata/real/sidecar/config_dump.json.gz"))?;
//! let why = heft::why::Why::of(&dump, &CostModel::envoy_1_40(), &Settings::default(), None);
//! assert_eq!(why.workload.namespace.as_deref(), Some("default"));
//! assert!(why.next_step.saving_bytes > 0);
//! # Ok::<(), heft::Error>(())
//! ```

use crate::cost::{istio_stats_matcher, CostModel, Estimate, Object, RollupBy, Settings};
use crate::model::istio::IstioName;
use crate::model::{Dump, NetworkFilter, RouteSource, RouteTarget, StatsMatcher, TcpTarget};
use crate::scope::{service_of, Scope};
use crate::sidecar::{narrowest_egress, used_services, WhatIf, Workload};
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
    /// The Sidecar scope to apply, and what it saves.
    pub next_step: WhatIf,
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
            let idle: Vec<_> = service_rows().filter(|r| !used.contains(&r.key)).collect();
            Share {
                bytes: idle.iter().map(|r| r.bytes).sum(),
                count: idle.len(),
            }
        });

        let multipliers = multipliers(dump, &estimate, model, settings);
        let dead_weight = dead_weight(dump, &estimate);

        let egress = match usage {
            Some(u) => narrowest_egress(dump, u),
            None => vec!["./*".to_string(), "istio-system/*".to_string()],
        };
        let hosts: Vec<&str> = egress.iter().map(String::as_str).collect();
        let scope = Scope::parse(&hosts, &own).expect("derived egress hosts are valid");
        let next_step = WhatIf::of(dump, &scope, model, settings, usage);

        Why {
            workload,
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
            called: used.map(|u| u.into_iter().collect()),
            multipliers,
            dead_weight,
            next_step,
        }
    }
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

fn dead_weight(dump: &Dump, e: &Estimate<'_>) -> DeadWeight {
    // Every cluster a route, a weighted split or a TCP proxy names, and every RDS name in use.
    let mut referenced: HashSet<&str> = HashSet::new();
    let mut rds: HashSet<&str> = HashSet::new();
    let mut cluster_header_routes = false;
    let inline = dump
        .listeners
        .iter()
        .flat_map(|l| l.all_filter_chains())
        .flat_map(|fc| &fc.filters);
    let mut route_configs: Vec<&crate::model::RouteConfig> = dump.route_configs.iter().collect();
    for f in inline {
        match f {
            NetworkFilter::HttpConnectionManager { config, .. } => match &config.routes {
                RouteSource::Rds { route_config_name } => {
                    rds.insert(route_config_name);
                }
                RouteSource::Inline(rc) => route_configs.push(rc),
                _ => {}
            },
            NetworkFilter::TcpProxy { config, .. } => match &config.target {
                TcpTarget::Cluster(c) => {
                    referenced.insert(c);
                }
                TcpTarget::Weighted(ws) => referenced.extend(ws.iter().map(|(c, _)| &**c)),
                TcpTarget::None => {}
            },
            NetworkFilter::Other { .. } => {}
        }
    }
    for rc in route_configs {
        for r in rc.virtual_hosts.iter().flat_map(|v| &v.routes) {
            if let crate::model::Action::Route(a) = &r.action {
                match &a.target {
                    RouteTarget::Cluster(c) => {
                        referenced.insert(c);
                    }
                    RouteTarget::Weighted(ws) => referenced.extend(ws.iter().map(|w| &*w.name)),
                    RouteTarget::ClusterHeader(_) | RouteTarget::Plugin(_) => {
                        cluster_header_routes = true
                    }
                    RouteTarget::None => {}
                }
            }
        }
    }
    let mut d = DeadWeight {
        cluster_header_routes,
        ..DeadWeight::default()
    };
    let secrets_used: HashSet<&str> = dump
        .clusters
        .iter()
        .flat_map(|c| c.sds_secrets())
        .chain(dump.listeners.iter().flat_map(|l| {
            l.all_filter_chains()
                .filter_map(|fc| fc.transport_socket.as_ref()?.tls.as_ref())
                .flat_map(|t| t.certificate_sds.iter().chain(t.validation_sds.iter()))
                .map(|s| &**s)
        }))
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
