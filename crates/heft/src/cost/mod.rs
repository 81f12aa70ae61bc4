//! What each object of a dump costs in Envoy's heap, from a model calibrated on a real Envoy.
//!
//! A [`CostModel`] gives each [`Feature`] (an EDS cluster, its stats, a worker's copy of it, an
//! endpoint, a route…) a byte coefficient. [`Estimate::of`] prices every object of a [`Dump`]:
//! clusters (with their endpoints), listeners (with their filter chains and inline routes), route
//! configurations (with their virtual hosts and routes), secrets, and endpoint configurations no
//! cluster uses. Each object's cost is split into [`Parts`]; parts sum to their object, children
//! (endpoints, filter chains, virtual hosts, routes) sum into their parents, and objects plus the
//! fixed baseline sum to the predicted heap.
//!
//! ```
//! use heft::cost::{CostModel, Estimate, Settings};
//! let dump = heft::Dump::from_slice(br#"{"configs": [{
//!     "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
//!     "dynamic_active_clusters": [{"cluster": {
//!         "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
//!         "name": "outbound|9080||reviews.default.svc.cluster.local", "type": "EDS"}}]}]}"#)?;
//! let model = CostModel::envoy_1_40();
//! let estimate = Estimate::of(&dump, &model, &Settings::default());
//! let cluster = &estimate.objects[0];
//! assert_eq!(cluster.parts.total(), cluster.bytes());
//! assert_eq!(estimate.total(), estimate.baseline.total() + cluster.bytes());
//! # Ok::<(), heft::Error>(())
//! ```

pub mod features;
mod fit;
pub mod models;
mod nnls;
pub mod stream;

pub use features::{Feature, Part};
pub use fit::{fit, point_usage, FitError, FitReport, Point, Residual};
pub use models::{Match, ModelUsed};

use crate::model::{
    istio::IstioName, Cluster, Discovery, Dump, Listener, LoadAssignment, NetworkFilter,
    RouteConfig, RouteSource, Secret, State, StatsMatcher, TcpTarget,
};
use features::{Context, Tally};
use indexmap::IndexMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the dump cannot say about the proxy, but its memory depends on, and what-if overrides
/// of what it does say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Worker threads (`--concurrency`); Istio sidecars run 2.
    pub concurrency: u32,
    /// Where the concurrency came from.
    pub concurrency_source: ConcurrencySource,
    /// The stats matcher to assume instead of the bootstrap's (or when the dump has none).
    pub stats: Option<StatsMatcher>,
    /// Deferred stats creation to assume instead of the bootstrap's.
    pub deferred_stats: Option<bool>,
    /// Deferred cluster creation to assume instead of the bootstrap's.
    pub deferred_clusters: Option<bool>,
    /// What the proxy's `/stats` show used: under the deferrals, used clusters are priced with
    /// their stats and worker copies built.
    pub usage: Option<std::sync::Arc<crate::usage::Usage>>,
    /// The proxy's Envoy version when the dump does not say (`/server_info`).
    pub envoy_version: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrency: 2,
            concurrency_source: ConcurrencySource::Assumed,
            stats: None,
            deferred_stats: None,
            deferred_clusters: None,
            usage: None,
            envoy_version: None,
        }
    }
}

/// Where an estimate's concurrency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencySource {
    /// Given (`--concurrency`).
    Given,
    /// The proxy's `/server_info`.
    ServerInfo,
    /// Neither: Istio's sidecar default, 2.
    Assumed,
}

/// The bootstrap settings an estimate prices under, each resolved from the [`Settings`], else
/// the dump's bootstrap, else Envoy's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proxy {
    /// The stats matcher applied.
    pub stats: StatsMatcher,
    /// Where it came from.
    pub stats_source: StatsSource,
    /// Whether clusters' traffic stats wait for traffic.
    pub deferred_stats: bool,
    /// Where that came from.
    pub deferred_stats_source: StatsSource,
    /// Whether workers build clusters only when they first need them.
    pub deferred_clusters: bool,
    /// Where that came from.
    pub deferred_clusters_source: StatsSource,
}

impl Proxy {
    /// Resolves the settings against a bootstrap.
    pub fn resolve(bootstrap: Option<&crate::model::Bootstrap>, settings: &Settings) -> Proxy {
        let pick = |given: Option<bool>, from: Option<bool>| match (given, from) {
            (Some(v), _) => (v, StatsSource::Given),
            (None, Some(v)) => (v, StatsSource::Bootstrap),
            (None, None) => (false, StatsSource::Default),
        };
        let (stats, stats_source) = match (&settings.stats, bootstrap) {
            (Some(m), _) => (m.clone(), StatsSource::Given),
            (None, Some(b)) => (b.stats.matcher.clone(), StatsSource::Bootstrap),
            (None, None) => (StatsMatcher::All, StatsSource::Default),
        };
        let (deferred_stats, deferred_stats_source) =
            pick(settings.deferred_stats, bootstrap.map(|b| b.deferred_stats));
        let (deferred_clusters, deferred_clusters_source) = pick(
            settings.deferred_clusters,
            bootstrap.map(|b| b.deferred_cluster_creation),
        );
        Proxy {
            stats,
            stats_source,
            deferred_stats,
            deferred_stats_source,
            deferred_clusters,
            deferred_clusters_source,
        }
    }

    pub(crate) fn context(&self, settings: &Settings) -> Context {
        Context::new(&self.stats, settings, self)
    }
}

/// The stats inclusion list istio-agent writes into a sidecar's bootstrap when the mesh asks for
/// no extra stats (`proxyStatsMatcher` unset).
pub fn istio_stats_matcher() -> StatsMatcher {
    StatsMatcher::Inclusion(
        [
            "prefix:reporter=",
            "prefix:cluster_manager",
            "prefix:listener_manager",
            "prefix:server",
            "prefix:cluster.xds-grpc",
            "prefix:wasm",
            "suffix:rbac.allowed",
            "suffix:rbac.denied",
            "suffix:shadow_allowed",
            "suffix:shadow_denied",
            "regex:vhost\\..*\\.route\\..*",
            "prefix:component",
            "prefix:istio",
        ]
        .into_iter()
        .map(Into::into)
        .collect(),
    )
}

/// Where a bootstrap setting of an estimate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsSource {
    /// Given in [`Settings`].
    Given,
    /// The dump's bootstrap `stats_config`.
    Bootstrap,
    /// Neither: Envoy's default (every stat, nothing deferred).
    Default,
}

/// Byte coefficients per feature, for one Envoy version, with how well they fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// Always `heft-cost-model/1`.
    pub format: String,
    /// The Envoy version measured (`/server_info` `version`).
    pub envoy_version: String,
    /// How the model was made (the command, the data).
    pub made_by: String,
    /// Bytes per unit of each feature, keyed by [`Feature::name`].
    pub coefficients: IndexMap<String, f64>,
    /// The fit: residuals on the points it was fitted to.
    pub fit: Option<FitReport>,
    #[serde(skip)]
    dense: Vec<f64>,
}

/// A model file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cost model: {}", self.0)
    }
}

impl std::error::Error for ModelError {}

const FORMAT: &str = "heft-cost-model/1";
const ENVOY_1_40: &str = include_str!("envoy-1.40.json");

impl CostModel {
    /// The model calibrated on Envoy 1.40 (`testdata/calibration/`), Heft's default.
    pub fn envoy_1_40() -> CostModel {
        CostModel::from_json(ENVOY_1_40).expect("the embedded cost model is valid")
    }

    /// A model from coefficients (every feature must be present).
    pub fn new(
        envoy_version: &str,
        made_by: &str,
        coefficients: IndexMap<String, f64>,
        fit: Option<FitReport>,
    ) -> Result<CostModel, ModelError> {
        let mut model = CostModel {
            format: FORMAT.to_string(),
            envoy_version: envoy_version.to_string(),
            made_by: made_by.to_string(),
            coefficients,
            fit,
            dense: Vec::new(),
        };
        model.densify()?;
        Ok(model)
    }

    /// Reads a model file.
    pub fn from_json(text: &str) -> Result<CostModel, ModelError> {
        let mut model: CostModel =
            serde_json::from_str(text).map_err(|e| ModelError(e.to_string()))?;
        if model.format != FORMAT {
            return Err(ModelError(format!(
                "format is {:?}, expected {FORMAT:?}",
                model.format
            )));
        }
        model.densify()?;
        Ok(model)
    }

    /// The model file's text.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a model serializes");
        text.push('\n');
        text
    }

    fn densify(&mut self) -> Result<(), ModelError> {
        for name in self.coefficients.keys() {
            if Feature::from_name(name).is_none() {
                return Err(ModelError(format!("unknown feature {name:?}")));
            }
        }
        self.dense = Feature::ALL
            .iter()
            .map(|f| match self.coefficients.get(f.name()) {
                Some(v) if v.is_finite() && *v >= 0.0 => Ok(*v),
                Some(v) => Err(ModelError(format!(
                    "coefficient {} is {v}: must be finite and ≥ 0",
                    f.name()
                ))),
                None => Err(ModelError(format!("no coefficient for {}", f.name()))),
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Bytes per unit of `feature`.
    pub fn coefficient(&self, feature: Feature) -> f64 {
        self.dense[feature as usize]
    }
}

/// An object's bytes, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Parts {
    /// Its configuration and main-thread state.
    pub config: u64,
    /// Its stats.
    pub stats: u64,
    /// Its per-worker copies.
    pub per_worker: u64,
    /// Its endpoints.
    pub endpoints: u64,
}

impl Parts {
    /// The object's bytes.
    pub fn total(&self) -> u64 {
        self.config + self.stats + self.per_worker + self.endpoints
    }

    /// The bytes of one part.
    pub fn get(&self, part: Part) -> u64 {
        match part {
            Part::Config => self.config,
            Part::Stats => self.stats,
            Part::PerWorker => self.per_worker,
            Part::Endpoints => self.endpoints,
        }
    }

    pub(crate) fn add(&mut self, other: &Parts) {
        self.config += other.config;
        self.stats += other.stats;
        self.per_worker += other.per_worker;
        self.endpoints += other.endpoints;
    }
}

/// Prices features as they are added: each addition is rounded to whole bytes, so a parent
/// priced from the same additions as its children is exactly their sum plus its own.
pub(crate) struct Pricer<'m> {
    model: &'m CostModel,
    pub(crate) parts: Parts,
}

impl<'m> Pricer<'m> {
    pub(crate) fn new(model: &'m CostModel) -> Self {
        Pricer {
            model,
            parts: Parts::default(),
        }
    }

    /// What one unit of `feature` costs, rounded as an addition is.
    pub(crate) fn unit(model: &'m CostModel, feature: Feature) -> Parts {
        let mut p = Pricer::new(model);
        p.add(feature, 1.0);
        p.parts
    }
}

impl Tally for Pricer<'_> {
    fn add(&mut self, feature: Feature, amount: f64) {
        let bytes = (self.model.coefficient(feature) * amount).round() as u64;
        match feature.part() {
            Part::Config => self.parts.config += bytes,
            Part::Stats => self.parts.stats += bytes,
            Part::PerWorker => self.parts.per_worker += bytes,
            Part::Endpoints => self.parts.endpoints += bytes,
        }
    }
}

/// What kind of object a priced object or child is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A cluster (its endpoints included).
    Cluster,
    /// An endpoint configuration no cluster in the dump uses.
    Endpoints,
    /// A listener (its filter chains included).
    Listener,
    /// A route configuration (its virtual hosts included).
    RouteConfig,
    /// A secret.
    Secret,
    /// One endpoint of a cluster.
    Endpoint,
    /// One filter chain of a listener.
    FilterChain,
    /// One virtual host of a route configuration.
    VirtualHost,
    /// One route of a virtual host.
    Route,
}

impl Kind {
    /// Every kind, top-level kinds first.
    pub const ALL: [Kind; 9] = [
        Kind::Cluster,
        Kind::Endpoints,
        Kind::Listener,
        Kind::RouteConfig,
        Kind::Secret,
        Kind::Endpoint,
        Kind::FilterChain,
        Kind::VirtualHost,
        Kind::Route,
    ];

    /// Its name in reports and on the command line (`route_config`, …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::Endpoints => "endpoints",
            Kind::Listener => "listener",
            Kind::RouteConfig => "route_config",
            Kind::Secret => "secret",
            Kind::Endpoint => "endpoint",
            Kind::FilterChain => "filter_chain",
            Kind::VirtualHost => "virtual_host",
            Kind::Route => "route",
        }
    }

    /// The kind named `name` (as [`Kind::name`] prints it, `-` or `_` alike).
    pub fn from_name(name: &str) -> Option<Kind> {
        let name = name.replace('-', "_");
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A top-level object of the dump.
#[derive(Debug, Clone, Copy)]
pub enum Object<'d> {
    /// A cluster, with the load assignment that gives its endpoints (inline or over EDS).
    Cluster(&'d Cluster, Option<&'d LoadAssignment>),
    /// An endpoint configuration no cluster in the dump uses.
    Endpoints(&'d LoadAssignment),
    /// A listener.
    Listener(&'d Listener),
    /// A route configuration.
    RouteConfig(&'d RouteConfig),
    /// A secret.
    Secret(&'d Secret),
}

impl<'d> Object<'d> {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Cluster(..) => Kind::Cluster,
            Object::Endpoints(_) => Kind::Endpoints,
            Object::Listener(_) => Kind::Listener,
            Object::RouteConfig(_) => Kind::RouteConfig,
            Object::Secret(_) => Kind::Secret,
        }
    }

    /// Its name.
    pub fn name(&self) -> &'d str {
        match self {
            Object::Cluster(c, _) => &c.name,
            Object::Endpoints(la) => &la.cluster_name,
            Object::Listener(l) => &l.name,
            Object::RouteConfig(rc) => &rc.name,
            Object::Secret(s) => &s.name,
        }
    }

    /// Its state in the proxy.
    pub fn state(&self) -> State {
        match self {
            Object::Cluster(c, _) => c.meta.state,
            Object::Endpoints(la) => la.meta.state,
            Object::Listener(l) => l.meta.state,
            Object::RouteConfig(rc) => rc.meta.state,
            Object::Secret(s) => s.meta.state,
        }
    }
}

/// An object and its cost.
#[derive(Debug, Clone)]
pub struct Priced<'d> {
    /// The object.
    pub object: Object<'d>,
    /// Its bytes by part.
    pub parts: Parts,
}

impl Priced<'_> {
    /// Its bytes.
    pub fn bytes(&self) -> u64 {
        self.parts.total()
    }
}

/// A part of an object (endpoint, filter chain, virtual host, route) and its cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Child {
    /// Its kind.
    pub kind: Kind,
    /// Its name (an address for endpoints, a match for unnamed filter chains and routes).
    pub name: String,
    /// Its bytes by part, its own children included.
    pub parts: Parts,
    /// Its own children (a filter chain's inline virtual hosts, a virtual host's routes).
    pub children: Vec<Child>,
}

/// The predicted heap of one dump, object by object.
#[derive(Debug, Clone)]
pub struct Estimate<'d> {
    /// The settings used (concurrency, and stats when given).
    pub settings: Settings,
    /// The bootstrap settings applied.
    pub proxy: Proxy,
    /// The stats matcher applied.
    pub stats: StatsMatcher,
    /// Where it came from.
    pub stats_source: StatsSource,
    /// The Envoy version of the model.
    pub envoy_version: String,
    /// The model used and how it matches the proxy.
    pub model_used: ModelUsed,
    /// What a proxy costs with nothing configured.
    pub baseline: Parts,
    /// Every top-level object, in dump order: clusters, listeners, route configurations,
    /// secrets, then endpoint configurations no cluster uses.
    pub objects: Vec<Priced<'d>>,
    /// The model's coefficients, and the context the objects were priced in, for children.
    model: CostModel,
    cx: Context,
}

/// The objects of a dump that hold memory, each once.
///
/// A cluster is matched with the endpoints Envoy holds for it: the dump's endpoint configuration
/// of its name (its EDS service name for EDS clusters) when there is one, which for DNS clusters
/// lists the resolved addresses; else its inline `load_assignment`. With `include_eds` Envoy lists
/// every cluster's endpoints, so a cluster's inline assignment is not priced again. Likewise a
/// listener's inline route configurations are priced in its filter chains, and their copies in
/// `static_route_configs` are left out.
pub fn objects(dump: &Dump) -> Vec<Object<'_>> {
    let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(dump.endpoint_configs.len());
    for (i, la) in dump.endpoint_configs.iter().enumerate().rev() {
        by_name.insert(&la.cluster_name, i);
    }
    let mut used = vec![false; dump.endpoint_configs.len()];
    let mut out = Vec::with_capacity(
        dump.clusters.len() + dump.listeners.len() + dump.route_configs.len() + dump.secrets.len(),
    );
    for c in &dump.clusters {
        let key = match c.discovery {
            Discovery::Eds => c.eds_service_name.as_deref().unwrap_or(&c.name),
            _ => &c.name,
        };
        let listed = by_name.get(key).copied().filter(|&i| !used[i]);
        let la = match listed {
            Some(i) => {
                used[i] = true;
                Some(&dump.endpoint_configs[i])
            }
            None => c.load_assignment.as_deref(),
        };
        out.push(Object::Cluster(c, la));
    }
    out.extend(dump.listeners.iter().map(Object::Listener));
    let mut inline: Vec<&RouteConfig> = dump
        .listeners
        .iter()
        .flat_map(|l| l.all_filter_chains())
        .flat_map(|fc| &fc.filters)
        .filter_map(|f| match f {
            NetworkFilter::HttpConnectionManager { config, .. } => match &config.routes {
                RouteSource::Inline(rc) => Some(&**rc),
                _ => None,
            },
            _ => None,
        })
        .collect();
    for rc in &dump.route_configs {
        let copy = (rc.meta.state == State::Static)
            .then(|| {
                inline
                    .iter()
                    .position(|i| i.name == rc.name && i.virtual_hosts == rc.virtual_hosts)
            })
            .flatten();
        match copy {
            Some(k) => {
                inline.swap_remove(k);
            }
            None => out.push(Object::RouteConfig(rc)),
        }
    }
    out.extend(dump.secrets.iter().map(Object::Secret));
    out.extend(
        dump.endpoint_configs
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .map(|(la, _)| Object::Endpoints(la)),
    );
    out
}

fn tally_object(t: &mut impl Tally, object: &Object<'_>, cx: &Context) {
    match object {
        Object::Cluster(c, la) => {
            features::cluster(t, c, cx);
            if let Some(la) = la {
                features::endpoints(t, la, cx);
            }
        }
        Object::Endpoints(la) => features::endpoints(t, la, cx),
        Object::Listener(l) => features::listener(t, l, cx),
        Object::RouteConfig(rc) => features::route_config(t, rc),
        Object::Secret(s) => features::secret(t, s),
    }
}

/// The proxy's Envoy version: its bootstrap node's, else the one given.
pub fn proxy_version<'a>(dump: &'a Dump, settings: &'a Settings) -> Option<&'a str> {
    dump.bootstrap
        .as_ref()
        .and_then(|b| b.node.envoy_version())
        .or(settings.envoy_version.as_deref())
}

impl<'d> Estimate<'d> {
    /// Prices every object of `dump` with the shipped model of its Envoy version (see
    /// [`models::for_version`]).
    pub fn of_builtin(dump: &'d Dump, settings: &Settings) -> Estimate<'d> {
        let (model, _) = models::for_version(proxy_version(dump, settings));
        Estimate::of(dump, model, settings)
    }
}

/// The context a whole dump's objects are priced in.
fn context_of(dump: &Dump, proxy: &Proxy, settings: &Settings, objects: &[Object<'_>]) -> Context {
    proxy
        .context(settings)
        .with_secrets(dump.secrets.iter())
        .with_spread_metadata(endpoints_of(objects))
}

/// The amounts of every feature in a whole dump, baseline included: one row of a calibration.
pub fn amounts(dump: &Dump, settings: &Settings) -> features::Amounts {
    let proxy = Proxy::resolve(dump.bootstrap.as_ref(), settings);
    let objects = objects(dump);
    let cx = context_of(dump, &proxy, settings, &objects);
    let mut amounts = features::Amounts::default();
    features::baseline(&mut amounts, &cx);
    for object in &objects {
        tally_object(&mut amounts, object, &cx);
    }
    amounts
}

/// Every endpoint configuration the objects hold.
fn endpoints_of<'a>(objects: &'a [Object<'a>]) -> impl Iterator<Item = &'a LoadAssignment> {
    objects.iter().filter_map(|o| match o {
        Object::Cluster(_, Some(la)) | Object::Endpoints(la) => Some(*la),
        _ => None,
    })
}

impl<'d> Estimate<'d> {
    /// Prices every object of `dump` with `model`.
    pub fn of(dump: &'d Dump, model: &CostModel, settings: &Settings) -> Estimate<'d> {
        let proxy = Proxy::resolve(dump.bootstrap.as_ref(), settings);
        let objects = objects(dump);
        let cx = context_of(dump, &proxy, settings, &objects);
        let mut base = Pricer::new(model);
        features::baseline(&mut base, &cx);
        let objects = objects
            .into_par_iter()
            .with_min_len(256)
            .map(|object| {
                let mut p = Pricer::new(model);
                tally_object(&mut p, &object, &cx);
                Priced {
                    object,
                    parts: p.parts,
                }
            })
            .collect();
        Estimate {
            settings: settings.clone(),
            stats: proxy.stats.clone(),
            stats_source: proxy.stats_source,
            proxy,
            envoy_version: model.envoy_version.clone(),
            model_used: models::compare(model, proxy_version(dump, settings)),
            baseline: base.parts,
            objects,
            model: CostModel {
                format: FORMAT.to_string(),
                envoy_version: model.envoy_version.clone(),
                made_by: String::new(),
                coefficients: IndexMap::new(),
                fit: None,
                dense: model.dense.clone(),
            },
            cx,
        }
    }

    /// The predicted heap (Envoy's `/memory` `allocated`), baseline included.
    pub fn total(&self) -> u64 {
        self.baseline.total() + self.objects.iter().map(Priced::bytes).sum::<u64>()
    }

    /// The figures a [`CostFold`](stream::CostFold) gives for the same dump: totals, and bytes
    /// and objects by kind.
    pub fn totals(&self) -> stream::CostTotals {
        let by_kind = Kind::ALL
            .iter()
            .filter_map(|&kind| {
                let (bytes, objects) = self
                    .objects
                    .iter()
                    .filter(|o| o.object.kind() == kind)
                    .fold((0, 0), |(bytes, n), o| (bytes + o.bytes(), n + 1));
                (objects > 0).then_some(stream::KindCost {
                    kind,
                    bytes,
                    objects,
                })
            })
            .collect();
        stream::CostTotals {
            envoy_version: self.envoy_version.clone(),
            model_used: self.model_used.clone(),
            concurrency: self.settings.concurrency,
            concurrency_source: self.settings.concurrency_source,
            proxy: self.proxy.clone(),
            stats_source: self.stats_source,
            baseline: self.baseline,
            parts: self.parts(),
            by_kind,
        }
    }

    /// All objects' bytes by part, baseline excluded.
    pub fn parts(&self) -> Parts {
        let mut sum = Parts::default();
        for o in &self.objects {
            sum.add(&o.parts);
        }
        sum
    }

    /// The children of an object, priced: a cluster's endpoints, a listener's filter chains
    /// (with their inline virtual hosts and routes), a route configuration's virtual hosts (with
    /// their routes). An object's own share is its bytes minus its children's.
    pub fn children(&self, object: &Object<'_>) -> Vec<Child> {
        let cx = &self.cx;
        let priced = |f: &mut dyn FnMut(&mut Pricer)| {
            let mut p = Pricer::new(&self.model);
            f(&mut p);
            p.parts
        };
        let vhosts = |rc: &RouteConfig| -> Vec<Child> {
            rc.virtual_hosts
                .iter()
                .map(|v| {
                    let routes: Vec<Child> = v
                        .routes
                        .iter()
                        .enumerate()
                        .map(|(i, r)| Child {
                            kind: Kind::Route,
                            name: r
                                .name
                                .as_deref()
                                .map_or_else(|| format!("{}[{i}]", v.name), ToString::to_string),
                            parts: priced(&mut |p| features::route(p, r)),
                            children: Vec::new(),
                        })
                        .collect();
                    let mut parts = priced(&mut |p| features::virtual_host_own(p, v));
                    for r in &routes {
                        parts.add(&r.parts);
                    }
                    Child {
                        kind: Kind::VirtualHost,
                        name: v.name.to_string(),
                        parts,
                        children: routes,
                    }
                })
                .collect()
        };
        match object {
            Object::Cluster(_, Some(la)) | Object::Endpoints(la) => {
                let workers = cx.workers_for(&la.cluster_name);
                features::with_first_metadata(la)
                    .map(|(e, key, first)| Child {
                        kind: Kind::Endpoint,
                        name: e
                            .address
                            .as_ref()
                            .map_or_else(|| "(no address)".to_string(), ToString::to_string),
                        parts: priced(&mut |p| features::endpoint(p, e, key, first, cx, workers)),
                        children: Vec::new(),
                    })
                    .collect()
            }
            Object::Cluster(_, None) | Object::Secret(_) => Vec::new(),
            Object::RouteConfig(rc) => vhosts(rc),
            Object::Listener(l) => l
                .all_filter_chains()
                .enumerate()
                .map(|(i, fc)| {
                    let children: Vec<Child> = fc
                        .filters
                        .iter()
                        .filter_map(|f| match f {
                            NetworkFilter::HttpConnectionManager { config, .. } => {
                                match &config.routes {
                                    RouteSource::Inline(rc) => Some(vhosts(rc)),
                                    _ => None,
                                }
                            }
                            _ => None,
                        })
                        .flatten()
                        .collect();
                    Child {
                        kind: Kind::FilterChain,
                        name: fc
                            .name
                            .as_deref()
                            .map_or_else(|| format!("{}[{i}]", l.name), ToString::to_string),
                        parts: priced(&mut |p| features::filter_chain(p, fc, cx)),
                        children,
                    }
                })
                .collect(),
        }
    }

    /// Bytes rolled up by `by`, heaviest first, the baseline as its own row.
    pub fn rollup(&self, by: RollupBy) -> Vec<Rollup> {
        let mut rows: IndexMap<String, (u64, usize)> = IndexMap::new();
        let mut add = |key: &str, bytes: u64, objects: usize| {
            let row = rows.entry(key.to_string()).or_insert((0, 0));
            row.0 += bytes;
            row.1 += objects;
        };
        add(BASELINE, self.baseline.total(), 0);
        let listeners_of = match by {
            RollupBy::Listener => self.route_users(),
            _ => HashMap::new(),
        };
        for o in &self.objects {
            match by {
                RollupBy::Kind => add(o.object.kind().name(), o.bytes(), 1),
                RollupBy::ClusterType => match o.object {
                    Object::Cluster(c, _) => add(c.discovery.name(), o.bytes(), 1),
                    Object::Endpoints(_) => add("EDS", o.bytes(), 1),
                    _ => add(NOT_A_CLUSTER, o.bytes(), 1),
                },
                RollupBy::Namespace | RollupBy::Service => {
                    let service = by == RollupBy::Service;
                    for (key, bytes, count) in self.attribute(o, service) {
                        add(&key, bytes, count);
                    }
                }
                RollupBy::Listener => match o.object {
                    Object::Listener(l) => add(&l.name, o.bytes(), 1),
                    Object::RouteConfig(rc) => match listeners_of.get(&*rc.name) {
                        Some(users) => {
                            // Shared route configurations are split evenly, the remainder to
                            // the first user, so the rows still sum to the total.
                            let share = o.bytes() / users.len() as u64;
                            let rest = o.bytes() - share * users.len() as u64;
                            for (i, user) in users.iter().enumerate() {
                                let extra = if i == 0 { rest } else { 0 };
                                add(user, share + extra, usize::from(i == 0));
                            }
                        }
                        None => add(NO_LISTENER, o.bytes(), 1),
                    },
                    _ => add(NO_LISTENER, o.bytes(), 1),
                },
            }
        }
        let mut out: Vec<Rollup> = rows
            .into_iter()
            .map(|(key, (bytes, objects))| Rollup {
                key,
                bytes,
                objects,
            })
            .collect();
        out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key.cmp(&b.key)));
        out
    }

    /// For each RDS route configuration name, the listeners whose connection managers use it.
    fn route_users(&self) -> HashMap<&str, Vec<&str>> {
        let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
        for o in &self.objects {
            if let Object::Listener(l) = o.object {
                for fc in l.all_filter_chains() {
                    for f in &fc.filters {
                        if let NetworkFilter::HttpConnectionManager { config, .. } = f {
                            if let RouteSource::Rds { route_config_name } = &config.routes {
                                let list = users.entry(&**route_config_name).or_default();
                                if !list.contains(&&*l.name) {
                                    list.push(&l.name);
                                }
                            }
                        }
                    }
                }
            }
        }
        users
    }

    /// Splits an object's bytes among the services (or namespaces) it serves: `(key, bytes,
    /// objects)`. Route configurations split by virtual host, listeners by filter chain; what
    /// serves no single service goes to `(shared)`.
    fn attribute(&self, o: &Priced<'_>, service: bool) -> Vec<(String, u64, usize)> {
        let key_of_cluster = |name: &str| -> String {
            match IstioName::parse(name) {
                Some(n) => {
                    let key = if service { n.host() } else { n.namespace() };
                    key.filter(|k| !k.is_empty())
                        .map_or_else(|| SHARED.to_string(), ToString::to_string)
                }
                None => SHARED.to_string(),
            }
        };
        match o.object {
            Object::Cluster(c, _) => vec![(key_of_cluster(&c.name), o.bytes(), 1)],
            Object::Endpoints(la) => vec![(key_of_cluster(&la.cluster_name), o.bytes(), 1)],
            Object::Secret(_) => vec![(SHARED.to_string(), o.bytes(), 1)],
            Object::RouteConfig(_) | Object::Listener(_) => {
                let children = self.children(&o.object);
                let mut out = Vec::new();
                let mut rest = o.bytes();
                let mut give = |key: Option<String>, bytes: u64| {
                    if let Some(key) = key {
                        rest -= bytes;
                        out.push((key, bytes, 0));
                    }
                };
                match o.object {
                    Object::Listener(l) => {
                        for (fc, child) in l.all_filter_chains().zip(&children) {
                            match tcp_cluster(fc) {
                                Some(cluster) => {
                                    let key = key_of_cluster(cluster);
                                    give((key != SHARED).then_some(key), child.parts.total());
                                }
                                // Inline virtual hosts go to their services.
                                None => {
                                    for v in &child.children {
                                        give(vhost_key(&v.name, service), v.parts.total());
                                    }
                                }
                            }
                        }
                    }
                    _ => {
                        for v in &children {
                            give(vhost_key(&v.name, service), v.parts.total());
                        }
                    }
                }
                out.push((SHARED.to_string(), rest, 1));
                out
            }
        }
    }
}

/// The service (host) or namespace an Istio virtual host serves: its name is `host:port`.
fn vhost_key(name: &str, service: bool) -> Option<String> {
    let host = name.rsplit_once(':').map_or(name, |(h, _)| h);
    let mut labels = host.split('.');
    let (_, namespace) = (labels.next()?, labels.next()?);
    if labels.next() != Some("svc") {
        return None;
    }
    Some(if service { host } else { namespace }.to_string())
}

/// The one cluster a filter chain's TCP proxy sends everything to.
fn tcp_cluster(fc: &crate::model::FilterChain) -> Option<&str> {
    fc.filters.iter().find_map(|f| match f {
        NetworkFilter::TcpProxy { config, .. } => match &config.target {
            TcpTarget::Cluster(c) => Some(&**c),
            _ => None,
        },
        _ => None,
    })
}

const BASELINE: &str = "(baseline)";
const SHARED: &str = "(shared)";
const NOT_A_CLUSTER: &str = "(not a cluster)";
const NO_LISTENER: &str = "(not under a listener)";

/// How to roll costs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupBy {
    /// By object kind.
    Kind,
    /// By the destination namespace Istio names in clusters and virtual hosts.
    Namespace,
    /// By destination service (host).
    Service,
    /// By cluster discovery type.
    ClusterType,
    /// By listener, each with the route configurations it uses.
    Listener,
}

/// One row of a roll-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollup {
    /// The key (`cluster`, a namespace, a service…), or `(baseline)`, `(shared)`, ….
    pub key: String,
    /// Its bytes.
    pub bytes: u64,
    /// How many top-level objects it holds.
    pub objects: usize,
}
