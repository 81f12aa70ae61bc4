//! Cost attribution in the stream: prices each resource as the reader hands it over, so a dump
//! of any size is costed without holding its model.
//!
//! [`CostFold`] prices every object with the same feature tallies and the same per-addition
//! rounding as [`Estimate::of`](super::Estimate::of), so its totals are exactly the estimate's.
//! Two things need more than one resource, and are settled when the read ends:
//!
//! - a cluster's endpoints: an EDS cluster without inline endpoints is matched by name (its
//!   `eds_service_name`, or its own name) to the last endpoint configuration of that name; each
//!   batch keeps only the names asked for and the priced endpoint configurations by name, and
//!   endpoint configurations no cluster asks for are priced as objects of their own;
//! - the stats matcher, from the bootstrap (or [`Settings::stats`]): in a config dump the
//!   bootstrap comes first and the readers announce it before any later batch starts, so objects
//!   are priced at once. Objects read before any bootstrap (inputs without one, such as istioctl's
//!   resource lists) keep only their stats scope names until the end.
//!
//! ```
//! use heft::cost::{stream::CostFold, CostModel, Estimate, Settings};
//! let text = br#"[{"name": "outbound|80||a.ns.svc.cluster.local", "type": "EDS"},
//!   {"cluster_name": "outbound|80||a.ns.svc.cluster.local", "endpoints": [{"lb_endpoints": [
//!     {"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}}}}]}]}]"#;
//! let model = CostModel::envoy_1_40();
//! let fold = CostFold::new(&model, &Settings::default());
//! let (_, acc) = heft::stream::fold_slice(text, &Default::default(), &fold)?;
//! let totals = fold.finish(&acc);
//! let dump = heft::Dump::from_slice(text)?;
//! assert_eq!(totals.total(), Estimate::of(&dump, &model, &Settings::default()).total());
//! # Ok::<(), heft::Error>(())
//! ```

use super::features::{self, Context, Feature, Tally};
use super::{CostModel, Kind, Parts, Pricer, Settings, StatsSource};
use crate::model::{Discovery, NetworkFilter, StatsMatcher};
use crate::stream::{Fold, Resource};
use indexmap::IndexMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The fold that prices a dump as it is read. See the [module](self) documentation.
pub struct CostFold<'m> {
    model: &'m CostModel,
    settings: Settings,
    /// The stats matcher and the context built from it, once known.
    known: OnceLock<(StatsMatcher, StatsSource, Context)>,
    /// The context for objects priced before the stats matcher is known: every stat kept (the
    /// stats features themselves are priced later).
    provisional: Context,
}

/// Top-level object kinds, in [`Kind::ALL`] order.
const TOP: [Kind; 5] = [
    Kind::Cluster,
    Kind::Endpoints,
    Kind::Listener,
    Kind::RouteConfig,
    Kind::Secret,
];

fn top(kind: Kind) -> usize {
    TOP.iter().position(|k| *k == kind).unwrap_or(0)
}

/// A stats scope whose share of kept stats is priced once the matcher is known.
#[derive(Debug, Clone)]
enum Scope {
    Cluster(Box<str>),
    Listener(Box<str>),
    Http(Box<str>),
}

/// What [`CostFold`] has priced in part of a dump.
#[derive(Debug, Clone, Default)]
pub struct CostAcc {
    /// Bytes and object counts per top-level kind (endpoint configurations are settled at the
    /// end: see `offered`).
    kinds: [(Parts, usize); 5],
    /// EDS clusters without inline endpoints, by the endpoint configuration name they use.
    wanted: HashMap<Box<str>, u32>,
    /// Priced endpoint configurations by cluster name; a later one of the same name replaces an
    /// earlier one, which is then an object of its own.
    offered: IndexMap<Box<str>, Parts>,
    /// Endpoint configurations replaced by a later one of the same name.
    replaced: (Parts, usize),
    /// Stats scopes read before the matcher was known.
    deferred: Vec<Scope>,
    /// Whether this batch started before the matcher was known.
    provisional: bool,
}

impl CostAcc {
    fn offer(&mut self, name: Box<str>, parts: Parts) {
        if let Some(old) = self.offered.insert(name, parts) {
            self.replaced.0.add(&old);
            self.replaced.1 += 1;
        }
    }
}

/// Drops the features whose amount depends on the stats matcher: they are priced later.
struct WithoutStats<'a, 'm>(&'a mut Pricer<'m>);

impl Tally for WithoutStats<'_, '_> {
    fn add(&mut self, feature: Feature, amount: f64) {
        if !matches!(
            feature,
            Feature::ClusterStats
                | Feature::ClusterStatsRejected
                | Feature::ListenerStats
                | Feature::ListenerStatsRejected
                | Feature::HttpStats
        ) {
            self.0.add(feature, amount);
        }
    }
}

/// The predicted heap of a dump, by part and by kind of top-level object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostTotals {
    /// The Envoy version the model was calibrated on.
    pub envoy_version: String,
    /// Worker threads assumed.
    pub concurrency: u32,
    /// Where the stats matcher came from.
    pub stats_source: StatsSource,
    /// What a proxy costs with nothing configured.
    pub baseline: Parts,
    /// Every object's bytes by part, baseline excluded.
    pub parts: Parts,
    /// Bytes and object counts per top-level kind, in [`Kind::ALL`] order, kinds present only.
    pub by_kind: Vec<KindCost>,
}

/// One kind's share of [`CostTotals`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindCost {
    /// The kind.
    pub kind: Kind,
    /// Its objects' bytes.
    pub bytes: u64,
    /// How many objects.
    pub objects: usize,
}

impl CostTotals {
    /// The predicted heap (Envoy's `/memory` `allocated`), baseline included.
    pub fn total(&self) -> u64 {
        self.baseline.total() + self.parts.total()
    }
}

impl<'m> CostFold<'m> {
    /// A fold pricing with `model`, in the proxy `settings` describe.
    pub fn new(model: &'m CostModel, settings: &Settings) -> CostFold<'m> {
        let known = OnceLock::new();
        if let Some(m) = &settings.stats {
            let _ = known.set((m.clone(), StatsSource::Given, Context::new(m, settings)));
        }
        CostFold {
            model,
            settings: settings.clone(),
            known,
            provisional: Context::new(&StatsMatcher::All, settings),
        }
    }

    fn price(&self, acc: &mut CostAcc, resource: &Resource) {
        let cx = match (acc.provisional, self.known.get()) {
            (false, Some((_, _, cx))) => Some(cx),
            _ => None,
        };
        let mut p = Pricer::new(self.model);
        let kind = match resource {
            Resource::Cluster(c) => {
                match cx {
                    Some(cx) => features::cluster(&mut p, c, cx),
                    None => {
                        features::cluster(&mut WithoutStats(&mut p), c, &self.provisional);
                        let scope = features::cluster_scope(c);
                        acc.deferred.push(Scope::Cluster(scope.into()));
                    }
                }
                match (&c.load_assignment, c.discovery == Discovery::Eds) {
                    // Endpoints only depend on the concurrency, known from the start.
                    (Some(la), _) => features::endpoints(&mut p, la, &self.provisional),
                    (None, true) => {
                        let key = c.eds_service_name.as_deref().unwrap_or(&c.name);
                        *acc.wanted.entry(key.into()).or_default() += 1;
                    }
                    (None, false) => {}
                }
                Kind::Cluster
            }
            Resource::LoadAssignment(la) => {
                features::endpoints(&mut p, la, &self.provisional);
                acc.offer(la.cluster_name.clone(), p.parts);
                return;
            }
            Resource::Listener(l) => {
                match cx {
                    Some(cx) => features::listener(&mut p, l, cx),
                    None => {
                        features::listener(&mut WithoutStats(&mut p), l, &self.provisional);
                        acc.deferred
                            .push(Scope::Listener(features::listener_scope(l).into()));
                        for fc in l.all_filter_chains() {
                            for f in &fc.filters {
                                if let NetworkFilter::HttpConnectionManager { config, .. } = f {
                                    let scope = features::http_scope(config);
                                    acc.deferred.push(Scope::Http(scope.into()));
                                }
                            }
                        }
                    }
                }
                Kind::Listener
            }
            Resource::RouteConfig(rc) => {
                features::route_config(&mut p, rc);
                Kind::RouteConfig
            }
            Resource::Secret(s) => {
                features::secret(&mut p, s);
                Kind::Secret
            }
            _ => return,
        };
        let slot = &mut acc.kinds[top(kind)];
        slot.0.add(&p.parts);
        slot.1 += 1;
    }

    /// The totals of a finished read. (It borrows the accumulator: a program about to exit can
    /// skip freeing its names one by one.)
    pub fn finish(&self, acc: &CostAcc) -> CostTotals {
        let mut kinds = acc.kinds;
        let (_, stats_source, cx) = self.known.get_or_init(|| {
            let m = StatsMatcher::All;
            let cx = Context::new(&m, &self.settings);
            (m, StatsSource::Default, cx)
        });
        for scope in &acc.deferred {
            let mut p = Pricer::new(self.model);
            let kind = match scope {
                Scope::Cluster(s) => {
                    let (kept, rejected) = cx.stats.shares(s, features::CLUSTER_STATS);
                    p.add(Feature::ClusterStats, kept);
                    p.add(Feature::ClusterStatsRejected, rejected);
                    Kind::Cluster
                }
                Scope::Listener(s) => {
                    let (kept, rejected) = cx.stats.shares(s, features::LISTENER_STATS);
                    p.add(Feature::ListenerStats, kept);
                    p.add(Feature::ListenerStatsRejected, rejected);
                    Kind::Listener
                }
                Scope::Http(s) => {
                    let (kept, _) = cx.stats.shares(s, features::HTTP_STATS);
                    p.add(Feature::HttpStats, kept);
                    Kind::Listener
                }
            };
            kinds[top(kind)].0.add(&p.parts);
        }
        let mut used = vec![false; acc.offered.len()];
        for (key, clusters) in &acc.wanted {
            if let Some((i, _, parts)) = acc.offered.get_full(key) {
                used[i] = true;
                for _ in 0..*clusters {
                    kinds[top(Kind::Cluster)].0.add(parts);
                }
            }
        }
        let endpoints = &mut kinds[top(Kind::Endpoints)];
        endpoints.0.add(&acc.replaced.0);
        endpoints.1 += acc.replaced.1;
        for (parts, used) in acc.offered.values().zip(&used) {
            if !used {
                endpoints.0.add(parts);
                endpoints.1 += 1;
            }
        }
        let mut baseline = Pricer::new(self.model);
        features::baseline(&mut baseline, cx);
        let mut parts = Parts::default();
        for (p, _) in &kinds {
            parts.add(p);
        }
        CostTotals {
            envoy_version: self.model.envoy_version.clone(),
            concurrency: self.settings.concurrency,
            stats_source: *stats_source,
            baseline: baseline.parts,
            parts,
            by_kind: TOP
                .iter()
                .zip(&kinds)
                .filter(|(_, (_, n))| *n > 0)
                .map(|(kind, (parts, objects))| KindCost {
                    kind: *kind,
                    bytes: parts.total(),
                    objects: *objects,
                })
                .collect(),
        }
    }
}

impl Fold for CostFold<'_> {
    type Acc = CostAcc;

    fn start(&self) -> CostAcc {
        CostAcc {
            provisional: self.known.get().is_none(),
            ..CostAcc::default()
        }
    }

    fn add(&self, acc: &mut CostAcc, resource: &Resource, _raw: &[u8]) {
        self.price(acc, resource);
    }

    fn merge(&self, acc: &mut CostAcc, later: CostAcc) {
        for (i, (parts, n)) in later.kinds.iter().enumerate() {
            acc.kinds[i].0.add(parts);
            acc.kinds[i].1 += n;
        }
        for (key, n) in later.wanted {
            *acc.wanted.entry(key).or_default() += n;
        }
        for (name, parts) in later.offered {
            acc.offer(name, parts);
        }
        acc.replaced.0.add(&later.replaced.0);
        acc.replaced.1 += later.replaced.1;
        acc.deferred.extend(later.deferred);
    }

    fn bootstrap(&self, bootstrap: &crate::model::Bootstrap) {
        // The first bootstrap decides (a dump has one); a given matcher was set in `new`.
        let _ = self.known.get_or_init(|| {
            let m = bootstrap.stats.matcher.clone();
            let cx = Context::new(&m, &self.settings);
            (m, StatsSource::Bootstrap, cx)
        });
    }
}
