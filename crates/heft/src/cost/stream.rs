//! Cost attribution in the stream: prices each resource as the reader hands it over, so a dump
//! of any size is costed without holding its model.
//!
//! [`CostFold`] prices every object with the same feature tallies and the same per-addition
//! rounding as [`Estimate::of`](super::Estimate::of), so its totals are exactly the estimate's.
//! Some things need more than one resource, and are settled as batches merge or when the read
//! ends:
//!
//! - a cluster's endpoints: a cluster is matched by name (an EDS cluster's `eds_service_name`,
//!   else its own name) to the first endpoint configuration of that name, which only the first
//!   cluster asking for it gets; a cluster without one keeps its inline `load_assignment`. Each
//!   batch keeps the names asked for with the inline endpoints' prices, and the priced endpoint
//!   configurations by name; merging gives each configuration to its cluster as soon as both
//!   are known (in a dump, when the configuration's batch merges), so the end of the read only
//!   prices the inline endpoints of clusters that got none, and the configurations no cluster
//!   got, as objects of their own;
//! - endpoint metadata: Envoy keeps one copy of each distinct value, paid by the first endpoint
//!   carrying it (clusters' endpoints come first). Each priced endpoint set keeps its distinct
//!   metadata keys, counted once over the whole dump at the end;
//! - inline route configurations: Envoy lists a listener's inline route configurations again
//!   under `static_route_configs`; those copies are not priced twice, so static route
//!   configurations wait for the end to be matched against the listeners' inline ones;
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
use super::{CostModel, Kind, Parts, Pricer, Proxy, Settings, StatsSource};
use crate::model::{Discovery, LoadAssignment, NetworkFilter, RouteConfig, RouteSource, State};
use crate::stream::{Fold, Resource};
use foldhash::HashMap;
use serde::Serialize;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

/// The fold that prices a dump as it is read. See the [module](self) documentation.
pub struct CostFold<'m> {
    /// The model given, if any: else the shipped one of the proxy's version, chosen when the
    /// bootstrap is read.
    fixed: Option<&'m CostModel>,
    chosen: OnceLock<&'m CostModel>,
    /// The proxy's Envoy version, once known.
    version: OnceLock<Option<String>>,
    settings: Settings,
    /// The bootstrap settings and the context built from them, once known.
    known: OnceLock<(Proxy, Context)>,
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
    /// A cluster's outlier detector's stats (in the cluster's scope).
    Outlier(Box<str>),
    Listener(Box<str>),
    Http(Box<str>),
}

/// A priced set of endpoints: its parts (without what depends on other configurations' metadata),
/// and each distinct metadata key of an endpoint configuration with how many of its endpoints
/// carry it (a merged set lists each configuration's keys in turn). (Kept per endpoint
/// configuration until the end: a dump of 1 GB has about 127,000, so it is kept small.)
#[derive(Debug, Clone, Default)]
struct Priced {
    parts: Parts,
    keys: Box<[(u64, u32)]>,
}

impl Priced {
    fn of(la: &LoadAssignment, model: &CostModel, cx: &Context) -> Priced {
        let mut p = Pricer::new(model);
        // The stream's contexts do not know which values other configurations carry: that is
        // settled at the end, from these keys.
        features::endpoints(&mut p, la, cx);
        let mut keys: Vec<u64> = la
            .endpoints()
            .filter_map(|e| features::metadata_key(&e.metadata))
            .collect();
        keys.sort_unstable();
        let counted = keys
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], run.len() as u32));
        Priced {
            parts: p.parts,
            keys: counted.collect(),
        }
    }

    fn add(&mut self, other: &Priced) {
        self.parts.add(&other.parts);
        if !other.keys.is_empty() {
            let mut keys = std::mem::take(&mut self.keys).into_vec();
            keys.extend_from_slice(&other.keys);
            self.keys = keys.into_boxed_slice();
        }
    }
}

/// The clusters asking for one endpoint configuration name, in input order: one per cluster of
/// the dump, so mostly two empty pointers and a flag.
#[derive(Debug, Clone, Default)]
struct Wanted {
    /// The first cluster's inline endpoints, priced only if no configuration has the name.
    first: Option<Box<Priced>>,
    /// The later clusters' inline endpoints (they never get the configuration).
    rest: Option<Box<Priced>>,
    /// Whether the configuration of the name is known, and given to the first cluster: its
    /// price is then among the clusters' already (see [`CostAcc::bind`]).
    bound: bool,
}

impl Wanted {
    fn add_rest(&mut self, priced: &Priced) {
        self.rest.get_or_insert_with(Default::default).add(priced);
    }
}

/// An endpoint configuration's name as the join of clusters to their endpoints sees it: a
/// 128-bit hash, taken on the thread that decoded the resource, so that merging and matching
/// copy, hash and compare no strings. Two names of one dump hash alike with odds of about
/// 10^-27 even for a million names (a collision would price one endpoint set with the wrong
/// cluster, nothing worse).
type NameKey = u128;

fn name_key(name: &str) -> NameKey {
    use foldhash::quality::FixedState;
    const LOW: FixedState = FixedState::with_seed(0x243f_6a88_85a3_08d3);
    const HIGH: FixedState = FixedState::with_seed(0x1319_8a2e_0370_7344);
    (u128::from(HIGH.hash_one(name)) << 64) | u128::from(LOW.hash_one(name))
}

/// The SDS secrets one TLS context waits for.
type SecretNames = Box<[Box<str>]>;

/// What [`CostFold`] has priced in part of a dump.
#[derive(Debug, Clone, Default)]
pub struct CostAcc {
    /// Bytes and object counts per top-level kind (clusters' endpoints, endpoint configurations,
    /// metadata and static route configurations are settled at the end).
    kinds: [(Parts, usize); 5],
    /// Clusters by the endpoint configuration name they ask for.
    wanted: HashMap<NameKey, Wanted>,
    /// Priced endpoint configurations by cluster name, the first of each name, while no cluster
    /// has asked for it (a batch's own clusters and configurations are joined when merged).
    offered: HashMap<NameKey, Priced>,
    /// The metadata keys of the endpoint configurations given to clusters (with how many
    /// endpoints carry each, one entry per configuration).
    bound: Vec<(u64, u32)>,
    /// Endpoint configurations after the first of their name: objects of their own.
    replaced: (Priced, usize),
    /// Static route configurations, priced, with their fingerprints.
    statics: Vec<(u64, Parts)>,
    /// Fingerprints of listeners' inline route configurations, with how many.
    inline: HashMap<u64, usize>,
    /// Stats scopes read before the matcher was known.
    deferred: Vec<Scope>,
    /// Clusters' TLS contexts priced as built, counted by the set of SDS secrets they wait for
    /// (a hash of the names; a dump has few distinct sets), with the names: those whose secrets
    /// turn out warming or missing are taken back at the end.
    tls: HashMap<u64, (SecretNames, u64)>,
    /// The secrets read, each with whether it is ready and its keys.
    secrets: HashMap<Box<str>, features::SecretInfo>,
    /// Whether this batch started before the matcher was known.
    provisional: bool,
}

impl CostAcc {
    /// Takes an endpoint configuration read in one batch (the first of its name there).
    fn offer(&mut self, name: NameKey, priced: Priced) {
        match self.offered.entry(name) {
            Entry::Occupied(_) => self.replace(priced),
            Entry::Vacant(v) => {
                v.insert(priced);
            }
        }
    }

    fn replace(&mut self, priced: Priced) {
        self.replaced.0.add(&priced);
        self.replaced.1 += 1;
    }

    /// Gives an endpoint configuration to the first cluster asking for its name: the cluster
    /// pays for it, and its own inline endpoints go unpriced. Merging binds each pair as soon as
    /// both are known, so that the end of the read has none left to join.
    fn bind(
        kinds: &mut [(Parts, usize); 5],
        bound: &mut Vec<(u64, u32)>,
        w: &mut Wanted,
        p: &Priced,
    ) {
        kinds[top(Kind::Cluster)].0.add(&p.parts);
        bound.extend(&p.keys);
        w.first = None;
        w.bound = true;
    }

    fn want(&mut self, name: NameKey, inline: Option<Priced>) {
        match self.wanted.get_mut(&name) {
            Some(w) => {
                if let Some(p) = &inline {
                    w.add_rest(p);
                }
            }
            None => {
                let first = inline.map(Box::new);
                self.wanted.insert(
                    name,
                    Wanted {
                        first,
                        ..Wanted::default()
                    },
                );
            }
        }
    }
}

/// What tells a static copy of an inline route configuration from another: its name and
/// virtual hosts (the same equality [`objects`](super::objects) applies), hashed.
fn fingerprint(rc: &RouteConfig) -> u64 {
    /// Feeds formatted text to a hasher without building the string.
    struct Feed<H>(H);
    impl<H: Hasher> std::fmt::Write for Feed<H> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut feed = Feed(foldhash::fast::FixedState::default().build_hasher());
    rc.name.hash(&mut feed.0);
    let _ = std::fmt::write(&mut feed, format_args!("{:?}", rc.virtual_hosts));
    feed.0.finish()
}

/// Drops the features whose amount depends on the stats matcher: they are priced later.
struct WithoutStats<'a, 'm>(&'a mut Pricer<'m>);

impl Tally for WithoutStats<'_, '_> {
    fn add(&mut self, feature: Feature, amount: f64) {
        if !matches!(
            feature,
            Feature::ClusterStats
                | Feature::ClusterStatsRejected
                | Feature::ClusterStatsDeferred
                | Feature::ClusterStatsDeferredRejected
                | Feature::ClusterOutlierDetectionStats
                | Feature::ListenerStats
                | Feature::ListenerStatsRejected
                | Feature::HttpStats
        ) {
            self.0.add(feature, amount);
        }
    }
}

/// The predicted heap of a dump, by part and by kind of top-level object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostTotals {
    /// The Envoy version the model was calibrated on.
    pub envoy_version: String,
    /// The model used and how it matches the proxy.
    pub model_used: super::ModelUsed,
    /// Worker threads assumed.
    pub concurrency: u32,
    /// Where the concurrency came from.
    pub concurrency_source: super::ConcurrencySource,
    /// The bootstrap settings priced under.
    pub proxy: Proxy,
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
        CostFold::with(Some(model), settings)
    }

    /// A fold pricing with the shipped model of the proxy's Envoy version: its bootstrap's,
    /// else [`Settings::envoy_version`] (see [`models::for_version`](super::models::for_version)).
    pub fn by_version(settings: &Settings) -> CostFold<'m> {
        CostFold::with(None, settings)
    }

    /// The model pricing now.
    fn model(&self) -> &'m CostModel {
        match (self.fixed, self.chosen.get().copied()) {
            (Some(m), _) | (None, Some(m)) => m,
            (None, None) => super::models::for_version(self.settings.envoy_version.as_deref()).0,
        }
    }

    fn with(fixed: Option<&'m CostModel>, settings: &Settings) -> CostFold<'m> {
        let known = OnceLock::new();
        // Given settings decide at once only when they leave nothing to the bootstrap.
        if settings.stats.is_some()
            && settings.deferred_stats.is_some()
            && settings.deferred_clusters.is_some()
        {
            let proxy = Proxy::resolve(None, settings);
            let cx = proxy.context(settings);
            let _ = known.set((proxy, cx));
        }
        let provisional = Proxy {
            stats: crate::model::StatsMatcher::All,
            ..Proxy::resolve(None, settings)
        };
        CostFold {
            fixed,
            chosen: OnceLock::new(),
            version: OnceLock::new(),
            settings: settings.clone(),
            provisional: provisional.context(settings),
            known,
        }
    }

    fn price(&self, acc: &mut CostAcc, resource: &Resource) {
        let cx = match (acc.provisional, self.known.get()) {
            (false, Some((_, cx))) => Some(cx),
            _ => None,
        };
        let mut p = Pricer::new(self.model());
        let kind = match resource {
            Resource::Cluster(c) => {
                match cx {
                    Some(cx) => features::cluster(&mut p, c, cx),
                    None => {
                        features::cluster(&mut WithoutStats(&mut p), c, &self.provisional);
                        let scope: Box<str> = features::cluster_scope(c).into();
                        if c.outlier_detection.is_some() {
                            acc.deferred.push(Scope::Outlier(scope.clone()));
                        }
                        acc.deferred.push(Scope::Cluster(scope));
                    }
                }
                for tls in features::cluster_tls(c) {
                    let names = || tls.certificate_sds.iter().chain(&tls.validation_sds);
                    if names().next().is_none() {
                        continue;
                    }
                    let mut h = foldhash::fast::FixedState::default().build_hasher();
                    for n in names() {
                        n.hash(&mut h);
                    }
                    let entry = acc
                        .tls
                        .entry(h.finish())
                        .or_insert_with(|| (names().cloned().collect(), 0));
                    entry.1 += 1;
                }
                let ecx = cx.unwrap_or(&self.provisional);
                let inline = c
                    .load_assignment
                    .as_deref()
                    .map(|la| Priced::of(la, self.model(), ecx));
                let key = match c.discovery {
                    Discovery::Eds => c.eds_service_name.as_deref().unwrap_or(&c.name),
                    _ => &c.name,
                };
                acc.want(name_key(key), inline);
                Kind::Cluster
            }
            Resource::LoadAssignment(la) => {
                let priced = Priced::of(la, self.model(), cx.unwrap_or(&self.provisional));
                acc.offer(name_key(&la.cluster_name), priced);
                return;
            }
            Resource::Listener(l) => {
                for fc in l.all_filter_chains() {
                    for f in &fc.filters {
                        if let NetworkFilter::HttpConnectionManager { config, .. } = f {
                            if let RouteSource::Inline(rc) = &config.routes {
                                *acc.inline.entry(fingerprint(rc)).or_default() += 1;
                            }
                        }
                    }
                }
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
                if rc.meta.state == State::Static {
                    acc.statics.push((fingerprint(rc), p.parts));
                    return;
                }
                Kind::RouteConfig
            }
            Resource::Secret(s) => {
                features::secret(&mut p, s);
                acc.secrets
                    .entry(s.name.clone())
                    .or_default()
                    .merge(features::SecretInfo::of(s));
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
        let (proxy, cx) = self.known.get_or_init(|| {
            let proxy = Proxy::resolve(None, &self.settings);
            let cx = proxy.context(&self.settings);
            (proxy, cx)
        });
        // The clusters' TLS contexts, settled with the secrets they name: not built while one
        // is warming, or missing from a dump that lists secrets (the fold priced each as built,
        // one addition apiece); else loading the secrets' RSA keys.
        if !acc.secrets.is_empty() {
            let each = Pricer::unit(self.model(), Feature::ClusterTlsContext).config;
            let each_waiting = Pricer::unit(self.model(), Feature::ClusterTlsWaiting).config;
            for (names, n) in acc.tls.values() {
                let built = features::SecretInfo::context(names.iter(), |name| {
                    acc.secrets.get(name).copied()
                });
                let cluster = &mut kinds[top(Kind::Cluster)].0;
                match built {
                    None => {
                        cluster.config =
                            (cluster.config + each_waiting * n).saturating_sub(each * n)
                    }
                    Some(loaded) => {
                        let mut p = Pricer::new(self.model());
                        loaded.tally(&mut p);
                        cluster.config += p.parts.config * n;
                    }
                }
            }
        }
        for scope in &acc.deferred {
            let mut p = Pricer::new(self.model());
            let kind = match scope {
                Scope::Cluster(s) => {
                    let (kept, rejected) = cx.stats.shares(s, features::CLUSTER_STATS);
                    let name = s.strip_prefix("cluster.").unwrap_or(s);
                    if cx.deferred_stats && !cx.used(name) {
                        p.add(Feature::ClusterStatsDeferred, kept);
                        p.add(Feature::ClusterStatsDeferredRejected, rejected);
                    } else {
                        p.add(Feature::ClusterStats, kept);
                        p.add(Feature::ClusterStatsRejected, rejected);
                    }
                    Kind::Cluster
                }
                Scope::Outlier(s) => {
                    let (kept, _) = cx.stats.shares(s, features::OUTLIER_STATS);
                    p.add(Feature::ClusterOutlierDetectionStats, kept);
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
        // The inline endpoints of clusters, and of the first cluster of each name whose
        // endpoint configuration never came; the configurations left are objects of their own.
        let mut clusters_keys = acc.bound.clone();
        for w in acc.wanted.values() {
            let first = w.first.as_deref().filter(|_| !w.bound);
            for priced in first.into_iter().chain(w.rest.as_deref()) {
                kinds[top(Kind::Cluster)].0.add(&priced.parts);
                clusters_keys.extend_from_slice(&priced.keys);
            }
        }
        let mut alone_keys = Vec::new();
        let endpoints = &mut kinds[top(Kind::Endpoints)];
        for priced in acc.offered.values().chain([&acc.replaced.0]) {
            endpoints.0.add(&priced.parts);
            alone_keys.extend_from_slice(&priced.keys);
        }
        endpoints.1 += acc.offered.len() + acc.replaced.1;
        // The endpoints whose metadata value no other endpoint configuration carries.
        let mut configurations: HashMap<u64, u32> = HashMap::default();
        for (k, _) in clusters_keys.iter().chain(&alone_keys) {
            *configurations.entry(*k).or_default() += 1;
        }
        let unshared = Pricer::unit(self.model(), Feature::EndpointMetadataUnshared).endpoints;
        for (kind, keys) in [
            (Kind::Cluster, &clusters_keys),
            (Kind::Endpoints, &alone_keys),
        ] {
            let n: u64 = keys
                .iter()
                .filter(|(k, _)| configurations[k] == 1)
                .map(|(_, n)| u64::from(*n))
                .sum();
            let part = &mut kinds[top(kind)].0;
            part.endpoints += unshared * n;
        }
        // Static route configurations, but for the copies of listeners' inline ones.
        let mut inline = acc.inline.clone();
        for (fp, parts) in &acc.statics {
            match inline.get_mut(fp) {
                Some(n) if *n > 0 => *n -= 1,
                _ => {
                    kinds[top(Kind::RouteConfig)].0.add(parts);
                    kinds[top(Kind::RouteConfig)].1 += 1;
                }
            }
        }
        let mut baseline = Pricer::new(self.model());
        features::baseline(&mut baseline, cx);
        let mut parts = Parts::default();
        for (p, _) in &kinds {
            parts.add(p);
        }
        let version = self
            .version
            .get()
            .cloned()
            .unwrap_or_else(|| self.settings.envoy_version.clone());
        CostTotals {
            envoy_version: self.model().envoy_version.clone(),
            model_used: super::models::compare(self.model(), version.as_deref()),
            concurrency: self.settings.concurrency,
            concurrency_source: self.settings.concurrency_source,
            proxy: proxy.clone(),
            stats_source: proxy.stats_source,
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
        for (key, mut w) in later.wanted {
            match acc.wanted.entry(key) {
                Entry::Occupied(mut earlier) => {
                    for p in w.first.iter().chain(&w.rest) {
                        earlier.get_mut().add_rest(p);
                    }
                }
                Entry::Vacant(v) => {
                    if let Some(p) = acc.offered.remove(&key) {
                        CostAcc::bind(&mut acc.kinds, &mut acc.bound, &mut w, &p);
                    }
                    v.insert(w);
                }
            }
        }
        for (name, priced) in later.offered {
            match acc.wanted.get_mut(&name) {
                // Its name was given to a cluster already: a later configuration.
                Some(w) if w.bound => acc.replace(priced),
                Some(w) => CostAcc::bind(&mut acc.kinds, &mut acc.bound, w, &priced),
                None => acc.offer(name, priced),
            }
        }
        acc.replaced.0.add(&later.replaced.0);
        acc.replaced.1 += later.replaced.1;
        acc.statics.extend(later.statics);
        for (fp, n) in later.inline {
            *acc.inline.entry(fp).or_default() += n;
        }
        acc.deferred.extend(later.deferred);
        for (key, (names, n)) in later.tls {
            acc.tls.entry(key).or_insert((names, 0)).1 += n;
        }
        for (name, info) in later.secrets {
            acc.secrets.entry(name).or_default().merge(info);
        }
    }

    fn bootstrap(&self, bootstrap: &crate::model::Bootstrap) {
        // The first bootstrap decides (a dump has one); a given matcher was set in `new`.
        let version = self.version.get_or_init(|| {
            bootstrap
                .node
                .envoy_version()
                .map(str::to_string)
                .or_else(|| self.settings.envoy_version.clone())
        });
        if self.fixed.is_none() {
            let _ = self
                .chosen
                .set(super::models::for_version(version.as_deref()).0);
        }
        let _ = self.known.get_or_init(|| {
            let proxy = Proxy::resolve(Some(bootstrap), &self.settings);
            let cx = proxy.context(&self.settings);
            (proxy, cx)
        });
    }

    /// The cost model reads none of what [`Detail::Shape`](crate::stream::Detail::Shape)
    /// leaves out: it counts TLS contexts, socket matches, endpoints and localities, and reads
    /// endpoint metadata.
    fn detail(&self) -> crate::stream::Detail {
        crate::stream::Detail::Shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Estimate;
    use crate::json::walk::tests::real_capture;
    use serde_json::Value;

    /// The fold's totals against the estimate over the collected dump (this crate's unit tests
    /// cut inputs into batches of a few entries, so resources meet across batches and within).
    fn assert_agree(entries: &[Value], model: &CostModel, what: &str) {
        let text = serde_json::to_vec_pretty(entries).unwrap();
        let s = Settings::default();
        let fold = CostFold::new(model, &s);
        let (_, acc) = crate::stream::fold_slice(&text, &Default::default(), &fold).unwrap();
        let dump = crate::Dump::from_slice(&text).unwrap();
        assert_eq!(
            fold.finish(&acc),
            Estimate::of(&dump, model, &s).totals(),
            "{what}"
        );
    }

    #[test]
    fn clusters_get_their_endpoints_whatever_the_order_and_the_repeats() {
        let raw: Value = serde_json::from_slice(&real_capture("sidecar/config_dump.json")).unwrap();
        let (mut clusters, mut endpoints) = (Vec::new(), Vec::new());
        for section in raw["configs"].as_array().unwrap() {
            for key in ["static_clusters", "dynamic_active_clusters"] {
                for e in section[key].as_array().into_iter().flatten() {
                    clusters.push(e["cluster"].clone());
                }
            }
            for e in section["dynamic_endpoint_configs"]
                .as_array()
                .into_iter()
                .flatten()
            {
                endpoints.push(e["endpoint_config"].clone());
            }
        }
        let inline = clusters
            .iter()
            .position(|c| c.get("load_assignment").is_some())
            .expect("a static cluster with inline endpoints");
        assert!(clusters.len() > 20 && endpoints.len() > 20);
        // Distinct coefficients, so that endpoints priced with the wrong object or twice show.
        let model = CostModel::new(
            "test",
            "cost::stream::tests",
            Feature::ALL
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name().to_string(), 97.3 * (i + 1) as f64 + 0.29))
                .collect(),
            None,
        )
        .unwrap();

        let dump_order: Vec<Value> = clusters.iter().chain(&endpoints).cloned().collect();
        assert_agree(&dump_order, &model, "clusters first");
        let reversed: Vec<Value> = endpoints.iter().chain(&clusters).cloned().collect();
        assert_agree(&reversed, &model, "endpoints first");
        let mut mixed = Vec::new();
        for i in 0..clusters.len().max(endpoints.len()) {
            mixed.extend(endpoints.get(i).cloned());
            mixed.extend(clusters.iter().rev().nth(i).cloned());
        }
        assert_agree(&mixed, &model, "interleaved");

        // Repeats: a configuration before and after its cluster (the first wins, the other is
        // an object of its own), a cluster read twice with inline endpoints (the second pays
        // for its own), a configuration no cluster asks for, clusters with none.
        let mut repeats = dump_order.clone();
        let name = endpoints[0]["cluster_name"].clone();
        let mut other = endpoints[1].clone();
        other["cluster_name"] = name.clone();
        repeats.insert(0, other);
        repeats.push(endpoints[0].clone());
        repeats.push(clusters[inline].clone());
        let mut orphan = endpoints[2].clone();
        orphan["cluster_name"] = "outbound|1||nobody.asks.for.this".into();
        repeats.push(orphan);
        repeats.retain(|v| v.get("name") != Some(&endpoints[3]["cluster_name"]));
        assert_agree(&repeats, &model, "repeats");
    }
}
