//! What each object of a dump makes Envoy allocate, as amounts of features.
//!
//! A feature is one thing Envoy builds per unit: a cluster of a discovery type, its stats, its
//! per-worker copies, a TLS context, an endpoint, a filter chain, a route… The cost model gives
//! each feature a byte coefficient; an object's cost is the sum of its features' amounts times
//! their coefficients, grouped into [`Part`]s. Features read only the model, so every input form
//! of the same config costs the same.

use super::{Proxy, Settings};
use crate::model::{
    Action, Address, Cluster, Discovery, Endpoint, FilterChain, HttpProtocol, Listener,
    LoadAssignment, Metadata, NetworkFilter, PathMatch, Route, RouteConfig, RouteSource,
    RouteTarget, Secret, State, StatsMatcher, VirtualHost,
};
use crate::usage::Usage;
use foldhash::HashSet;
use serde::Serialize;
use std::hash::{BuildHasher, Hash, Hasher};

/// Which share of an object's memory a feature accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The object's own configuration and runtime state on the main thread.
    Config,
    /// Its stats (counters, gauges, histograms, and the names of rejected ones).
    Stats,
    /// The copies each worker thread keeps.
    PerWorker,
    /// Its endpoints (hosts), for clusters and endpoint configs.
    Endpoints,
}

impl Part {
    /// Every part, in report order.
    pub const ALL: [Part; 4] = [Part::Config, Part::Stats, Part::PerWorker, Part::Endpoints];

    /// The part's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Part::Config => "config",
            Part::Stats => "stats",
            Part::PerWorker => "per_worker",
            Part::Endpoints => "endpoints",
        }
    }
}

macro_rules! features {
    ($($variant:ident = $name:literal, $part:ident, $doc:literal;)*) => {
        /// A unit Envoy allocates memory for. The names are the keys of a model file.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Feature {
            $(#[doc = $doc] $variant,)*
        }

        impl Feature {
            /// Every feature, in model-file order.
            pub const ALL: &'static [Feature] = &[$(Feature::$variant,)*];

            /// Its key in a model file.
            pub fn name(self) -> &'static str {
                match self { $(Feature::$variant => $name,)* }
            }

            /// The part of its object it belongs to.
            pub fn part(self) -> Part {
                match self { $(Feature::$variant => Part::$part,)* }
            }

            /// What one unit of it is.
            pub fn doc(self) -> &'static str {
                match self { $(Feature::$variant => $doc,)* }
            }

            /// The feature with this model-file key.
            pub fn from_name(name: &str) -> Option<Feature> {
                match name { $($name => Some(Feature::$variant),)* _ => None }
            }
        }
    };
}

features! {
    Baseline = "baseline", Config, "A running proxy with an empty configuration (once).";
    BaselineStats = "baseline.stats", Stats, "The server's own stats, unless every stat is rejected (once).";
    BaselinePerWorker = "baseline.per_worker", PerWorker, "A worker thread (per worker).";
    ClusterEds = "cluster.eds", Config, "An EDS cluster.";
    ClusterStatic = "cluster.static", Config, "A STATIC cluster.";
    ClusterDns = "cluster.dns", Config, "A STRICT_DNS or LOGICAL_DNS cluster.";
    ClusterOriginalDst = "cluster.original_dst", Config, "An ORIGINAL_DST cluster.";
    ClusterOther = "cluster.other", Config, "A cluster of a custom discovery type.";
    ClusterStats = "cluster.stats", Stats, "A cluster's stats (the share the stats matcher keeps).";
    ClusterStatsRejected = "cluster.stats_rejected", Stats, "A cluster's stats the matcher rejects (Envoy remembers their names).";
    ClusterStatsDeferred = "cluster.stats_deferred", Stats, "A cluster's kept stats while their creation waits for traffic (deferred stats).";
    ClusterStatsDeferredRejected = "cluster.stats_deferred_rejected", Stats, "A cluster's rejected stats while their creation waits for traffic (deferred stats).";
    ClusterPerWorker = "cluster.per_worker", PerWorker, "A cluster's copy on one worker (per worker).";
    ClusterPerWorkerDeferred = "cluster.per_worker_deferred", PerWorker, "A cluster one worker has not built yet (deferred cluster creation; per worker).";
    ClusterTlsContext = "cluster.tls_context", Config, "An upstream TLS context of a cluster.";
    ClusterTlsWaiting = "cluster.tls_context.waiting", Config, "An upstream TLS context waiting for its SDS secrets: its socket factory and secret watches, not yet the context.";
    ClusterTlsRsa = "cluster.tls_context.rsa_kbit", Config, "A kilobit of RSA key in the certificates an upstream TLS context loads.";
    ClusterTlsCertificate = "cluster.tls_context.certificate", Config, "A certificate (of a chain, or a trusted CA) an upstream TLS context loads from its SDS secrets.";
    ClusterSocketMatch = "cluster.socket_match", Config, "A transport socket match of a cluster.";
    ClusterHttpOptions = "cluster.http_options", Config, "A cluster's HttpProtocolOptions.";
    ClusterHttp2 = "cluster.http2", Config, "A cluster speaking HTTP/2 upstream (or choosing per request).";
    ClusterCircuitBreaker = "cluster.circuit_breaker", Config, "A circuit breaker threshold set.";
    ClusterCircuitBreakerTracking = "cluster.circuit_breaker_tracking", Config, "A circuit breaker threshold set tracking its remaining capacity (`track_remaining`).";
    ClusterTraffic = "cluster.traffic", PerWorker, "A cluster that has carried traffic: its connection pools and connections.";
    ClusterOutlierDetection = "cluster.outlier_detection", Config, "Outlier detection on a cluster.";
    ClusterOutlierDetectionStats = "cluster.outlier_detection.stats", Stats, "Outlier detection's stats on a cluster (the share the stats matcher keeps; made with the detector, never deferred).";
    Endpoint = "endpoint", Endpoints, "An endpoint (host).";
    EndpointTlsMode = "endpoint.tls_mode", Endpoints, "An endpoint whose metadata selects a transport socket match (Istio's tlsMode).";
    EndpointMetadata = "endpoint.metadata", Endpoints, "An endpoint carrying other filter metadata (Istio's workload).";
    EndpointDistinctMetadata = "endpoint.distinct_metadata", Endpoints, "A distinct endpoint metadata value within its endpoint configuration, paid by the first endpoint carrying it: two clusters with the same value each pay.";
    EndpointPerWorker = "endpoint.per_worker", Endpoints, "An endpoint in one worker's host sets (per worker).";
    EndpointMetadataUnshared = "endpoint.metadata_unshared", Endpoints, "An endpoint whose metadata value no other endpoint configuration carries (as istiod's per-workload metadata).";
    EndpointLocality = "endpoint.locality", Endpoints, "A locality (with its priority) of a load assignment.";
    Listener = "listener", Config, "A listener.";
    ListenerStats = "listener.stats", Stats, "A listener's stats (the share the stats matcher keeps).";
    ListenerStatsRejected = "listener.stats_rejected", Stats, "A listener's stats the matcher rejects.";
    ListenerPerWorker = "listener.per_worker", PerWorker, "A listener's copy on one worker (per worker).";
    FilterChain = "filter_chain", Config, "A filter chain.";
    FilterChainServerName = "filter_chain.server_name", Config, "A server name (SNI) a filter chain matches.";
    FilterChainTlsContext = "filter_chain.tls_context", Config, "A downstream TLS context of a filter chain.";
    HttpConnectionManager = "network_filter.http", Config, "An HTTP connection manager.";
    HttpStats = "network_filter.http_stats", Stats, "An HTTP connection manager's stats (the share kept).";
    HttpFilter = "http_filter", Config, "An HTTP filter of a connection manager.";
    TcpProxy = "network_filter.tcp", Config, "A TCP proxy.";
    RouteConfig = "route_config", Config, "A route configuration.";
    VirtualHost = "virtual_host", Config, "A virtual host.";
    Domain = "domain", Config, "A domain of a virtual host.";
    Route = "route", Config, "A route.";
    RouteRegex = "route.regex", Config, "A route matching a regex.";
    RouteHeaderMatcher = "route.header_matcher", Config, "A header or query parameter matcher of a route.";
    RouteWeightedCluster = "route.weighted_cluster", Config, "A weighted cluster of a route.";
    RouteRetryPolicy = "route.retry_policy", Config, "A route's retry policy.";
    RouteDecorator = "route.decorator", Config, "A route's tracing decorator.";
    Secret = "secret", Config, "A secret (SDS resource).";
    SecretCertificate = "secret.certificate", Config, "A certificate in a secret.";
}

/// Where the amounts of an object's features go: a dense vector (fitting) or a priced
/// accumulator (attribution).
pub trait Tally {
    /// Adds `amount` units of `feature`.
    fn add(&mut self, feature: Feature, amount: f64);
}

/// Amounts per feature, indexed by `Feature as usize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Amounts(pub Vec<f64>);

impl Default for Amounts {
    fn default() -> Self {
        Amounts(vec![0.0; Feature::ALL.len()])
    }
}

impl Tally for Amounts {
    fn add(&mut self, feature: Feature, amount: f64) {
        self.0[feature as usize] += amount;
    }
}

/// Decides which stat names survive the proxy's stats matcher.
#[derive(Debug, Clone)]
pub(crate) struct StatsFilter {
    kind: FilterKind,
}

#[derive(Debug, Clone)]
enum FilterKind {
    All,
    RejectAll,
    Inclusion(Vec<Rule>),
    Exclusion(Vec<Rule>),
}

#[derive(Debug, Clone)]
enum Rule {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
    Regex(regex::Regex),
    /// A rule Heft cannot evaluate (an invalid regex, an unknown kind): counted as matching.
    Unknown,
}

impl StatsFilter {
    pub(crate) fn new(matcher: &StatsMatcher) -> StatsFilter {
        let rules = |list: &[Box<str>]| {
            list.iter()
                .map(|r| match r.split_once(':') {
                    Some(("exact", v)) => Rule::Exact(v.into()),
                    Some(("prefix", v)) => Rule::Prefix(v.into()),
                    Some(("suffix", v)) => Rule::Suffix(v.into()),
                    Some(("contains", v)) => Rule::Contains(v.into()),
                    // Envoy's safe_regex is RE2 and must match the whole name.
                    Some(("regex", v)) => regex::Regex::new(&format!("^(?:{v})$"))
                        .map(Rule::Regex)
                        .unwrap_or(Rule::Unknown),
                    _ => Rule::Unknown,
                })
                .collect()
        };
        let kind = match matcher {
            StatsMatcher::All => FilterKind::All,
            StatsMatcher::RejectAll => FilterKind::RejectAll,
            StatsMatcher::Inclusion(list) => FilterKind::Inclusion(rules(list)),
            StatsMatcher::Exclusion(list) => FilterKind::Exclusion(rules(list)),
        };
        StatsFilter { kind }
    }

    fn hit(rules: &[Rule], name: &str) -> bool {
        rules.iter().any(|r| match r {
            Rule::Exact(v) => name == &**v,
            Rule::Prefix(v) => name.starts_with(&**v),
            Rule::Suffix(v) => name.ends_with(&**v),
            Rule::Contains(v) => name.contains(&**v),
            Rule::Regex(re) => re.is_match(name),
            Rule::Unknown => true,
        })
    }

    /// Whether Envoy keeps the stat `name`.
    pub(crate) fn keeps(&self, name: &str) -> bool {
        match &self.kind {
            FilterKind::All => true,
            FilterKind::RejectAll => false,
            FilterKind::Inclusion(rules) => Self::hit(rules, name),
            FilterKind::Exclusion(rules) => !Self::hit(rules, name),
        }
    }

    /// Whether every stat is rejected without being looked at (`reject_all`).
    pub(crate) fn rejects_all(&self) -> bool {
        matches!(self.kind, FilterKind::RejectAll)
    }

    /// The kept and rejected shares of a stats scope, judged on representative stat names
    /// `prefix.suffix`. With `reject_all` nothing is kept and nothing remembered.
    pub(crate) fn shares(&self, prefix: &str, suffixes: &[&str]) -> (f64, f64) {
        self.shares_of(|| prefix, suffixes)
    }

    /// [`shares`](Self::shares) of a scope whose name is built only if the matcher reads names
    /// (most proxies keep every stat, and a big dump has a scope per cluster and listener).
    pub(crate) fn shares_of<S: AsRef<str>>(
        &self,
        scope: impl FnOnce() -> S,
        suffixes: &[&str],
    ) -> (f64, f64) {
        match self.kind {
            FilterKind::All => return (1.0, 0.0),
            FilterKind::RejectAll => return (0.0, 0.0),
            _ => {}
        }
        let scope = scope();
        let prefix = scope.as_ref();
        let mut name = String::with_capacity(prefix.len() + 40);
        let kept = suffixes
            .iter()
            .filter(|s| {
                name.clear();
                name.push_str(prefix);
                name.push('.');
                name.push_str(s);
                self.keeps(&name)
            })
            .count() as f64
            / suffixes.len() as f64;
        (kept, 1.0 - kept)
    }
}

/// A sample of each scope's stats, from counters, gauges and histograms.
pub(crate) const CLUSTER_STATS: &[&str] = &[
    "upstream_cx_total",
    "upstream_cx_active",
    "upstream_cx_connect_ms",
    "upstream_rq_total",
    "upstream_rq_time",
    "upstream_rq_timeout",
    "membership_healthy",
    "lb_healthy_panic",
    "update_success",
    "circuit_breakers.default.cx_open",
    "outlier_detection.ejections_active",
    "upstream_cx_tx_bytes_total",
];
/// Outlier detection's stats, in the cluster's scope.
pub(crate) const OUTLIER_STATS: &[&str] = &[
    "outlier_detection.ejections_active",
    "outlier_detection.ejections_total",
    "outlier_detection.ejections_enforced_total",
    "outlier_detection.ejections_consecutive_5xx",
    "outlier_detection.ejections_enforced_consecutive_gateway_failure",
    "outlier_detection.ejections_detected_success_rate",
];
pub(crate) const LISTENER_STATS: &[&str] = &[
    "downstream_cx_total",
    "downstream_cx_active",
    "downstream_cx_length_ms",
    "downstream_cx_destroy",
    "no_filter_chain_match",
    "server_ssl_socket_factory.ssl_context_update_by_sds",
];
pub(crate) const HTTP_STATS: &[&str] = &[
    "downstream_rq_total",
    "downstream_rq_time",
    "downstream_rq_2xx",
    "downstream_cx_active",
    "rq_total",
    "no_route",
];

/// Everything the features of one dump's objects depend on besides the object.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) stats: StatsFilter,
    pub(crate) concurrency: f64,
    /// Whether a cluster's traffic stats wait for its first traffic.
    pub(crate) deferred_stats: bool,
    /// Whether workers build a cluster only when they first need it.
    pub(crate) deferred_clusters: bool,
    /// What the proxy's stats show used, when given: used clusters have their stats and worker
    /// copies built under the deferrals.
    pub(crate) usage: Option<std::sync::Arc<Usage>>,
    /// The secrets of the dump, each with whether it is ready (active or static) and the RSA
    /// kilobits of its certificates, or `None` when the dump holds no secret at all (a partial
    /// input says nothing of them).
    pub(crate) secrets: Option<foldhash::HashMap<Box<str>, SecretInfo>>,
    /// The metadata values carried in more than one endpoint configuration, or `None` when the
    /// caller settles that itself (a stream sees the whole dump only at its end).
    pub(crate) spread_metadata: Option<HashSet<u64>>,
}

impl Context {
    pub(crate) fn new(matcher: &StatsMatcher, settings: &Settings, proxy: &Proxy) -> Context {
        Context {
            stats: StatsFilter::new(matcher),
            concurrency: f64::from(settings.concurrency),
            deferred_stats: proxy.deferred_stats,
            deferred_clusters: proxy.deferred_clusters,
            usage: settings.usage.clone(),
            secrets: None,
            spread_metadata: None,
        }
    }

    /// Records which secrets the dump holds, which are ready, and their keys.
    pub(crate) fn with_secrets<'s>(mut self, secrets: impl Iterator<Item = &'s Secret>) -> Context {
        let mut map: foldhash::HashMap<Box<str>, SecretInfo> = foldhash::HashMap::default();
        for s in secrets {
            map.entry(s.name.clone())
                .or_default()
                .merge(SecretInfo::of(s));
        }
        self.secrets = (!map.is_empty()).then_some(map);
        self
    }

    /// Whether Envoy builds a TLS context naming these SDS secrets (not while one of them is
    /// warming or missing from a dump that lists secrets), and what it loads from them.
    pub(crate) fn tls_built(&self, tls: &crate::model::TlsContext) -> Option<Loaded> {
        let Some(secrets) = &self.secrets else {
            return Some(Loaded::default());
        };
        SecretInfo::context(tls.certificate_sds.iter().chain(&tls.validation_sds), |n| {
            secrets.get(n).copied()
        })
    }

    /// Whether the stats show traffic through the cluster of this name.
    pub(crate) fn used(&self, name: &str) -> bool {
        self.usage.as_ref().is_some_and(|u| {
            u.cluster_used(name)
                || (!u.services.is_empty()
                    && crate::model::istio::IstioName::parse(name)
                        .is_some_and(|n| n.host().is_some_and(|h| u.services.contains_key(h))))
        })
    }

    /// How many workers hold a copy of the cluster of this name (or of a cluster's endpoints,
    /// by their configuration's name): every worker, unless creation is deferred and the
    /// cluster has seen no traffic.
    pub(crate) fn workers_for(&self, name: &str) -> f64 {
        if self.deferred_clusters && !self.used(name) {
            0.0
        } else {
            self.concurrency
        }
    }

    /// Records the metadata values more than one of these endpoint configurations carries.
    pub(crate) fn with_spread_metadata<'l>(
        mut self,
        assignments: impl Iterator<Item = &'l LoadAssignment>,
    ) -> Context {
        let mut owner: foldhash::HashMap<u64, usize> = foldhash::HashMap::default();
        let mut spread = HashSet::default();
        for (i, la) in assignments.enumerate() {
            for e in la.endpoints() {
                if let Some(key) = metadata_key(&e.metadata) {
                    match owner.entry(key) {
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(i);
                        }
                        std::collections::hash_map::Entry::Occupied(o) => {
                            if *o.get() != i {
                                spread.insert(key);
                            }
                        }
                    }
                }
            }
        }
        self.spread_metadata = Some(spread);
        self
    }
}

/// What a TLS context's cost depends on in a secret it names.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SecretInfo {
    pub(crate) ready: bool,
    pub(crate) rsa_kbits: f64,
    pub(crate) certificates: f64,
}

/// What a built TLS context loads from its secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Loaded {
    pub(crate) rsa_kbits: f64,
    pub(crate) certificates: f64,
}

impl Loaded {
    /// Its features, beside the context itself.
    pub(crate) fn tally(self, t: &mut impl Tally) {
        t.add(Feature::ClusterTlsRsa, self.rsa_kbits);
        t.add(Feature::ClusterTlsCertificate, self.certificates);
    }
}

impl SecretInfo {
    pub(crate) fn of(s: &Secret) -> SecretInfo {
        SecretInfo {
            ready: matches!(s.meta.state, State::Active | State::Static),
            rsa_kbits: s
                .certificates
                .iter()
                .map(|c| f64::from(c.rsa_bits) / 1024.0)
                .sum(),
            certificates: s.certificates.len() as f64,
        }
    }

    /// A name listed twice (a warming copy beside an active one) is ready if any copy is, with
    /// the ready copy's keys.
    pub(crate) fn merge(&mut self, other: SecretInfo) {
        if other.ready || !self.ready {
            *self = SecretInfo {
                ready: self.ready || other.ready,
                ..other
            };
        }
    }

    /// Whether a context naming these secrets is built, and what it loads from them.
    pub(crate) fn context<'n>(
        names: impl Iterator<Item = &'n Box<str>>,
        get: impl Fn(&str) -> Option<SecretInfo>,
    ) -> Option<Loaded> {
        let mut loaded = Loaded::default();
        for name in names {
            let info = get(name).filter(|i| i.ready)?;
            loaded.rsa_kbits += info.rsa_kbits;
            loaded.certificates += info.certificates;
        }
        Some(loaded)
    }
}

/// What makes two endpoints' metadata one value in Envoy's shared pool, from what the model keeps
/// of it (the same for JSON and binary input); `None` without metadata.
pub(crate) fn metadata_key(m: &Metadata) -> Option<u64> {
    if m.namespaces.is_empty() {
        return None;
    }
    // Metadata is a protobuf map: Envoy prints its keys in no fixed order, and its pool compares
    // contents, so the namespaces are hashed in sorted order.
    let mut namespaces: Vec<&str> = m.namespaces.iter().map(|n| &**n).collect();
    namespaces.sort_unstable();
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    (&namespaces, &m.istio_workload, &m.tls_mode, &m.istio_config).hash(&mut h);
    for s in &m.istio_services {
        (&s.host, &s.name, &s.namespace).hash(&mut h);
    }
    Some(h.finish())
}

/// The filter-metadata namespace Envoy matches transport socket matches against.
const SOCKET_MATCH_NAMESPACE: &str = "envoy.transport_socket_match";

/// The TLS contexts Envoy builds for a transport socket: one when it is TLS and its secrets are
/// ready.
fn tls(socket: Option<&crate::model::TransportSocket>, cx: &Context) -> bool {
    socket
        .and_then(|s| s.tls.as_ref())
        .is_some_and(|t| cx.tls_built(t).is_some())
}

/// Every TLS context a cluster's configuration names, built or not, with its SDS secrets.
pub(crate) fn cluster_tls(c: &Cluster) -> impl Iterator<Item = &crate::model::TlsContext> {
    c.transport_socket
        .as_deref()
        .into_iter()
        .chain(
            c.transport_socket_matches
                .iter()
                .filter_map(|m| m.socket.as_ref()),
        )
        .filter_map(|s| s.tls.as_ref())
}

/// A cluster's own features (not its endpoints: see [`endpoints`]).
pub(crate) fn cluster(t: &mut impl Tally, c: &Cluster, cx: &Context) {
    t.add(
        match c.discovery {
            Discovery::Eds => Feature::ClusterEds,
            Discovery::Static => Feature::ClusterStatic,
            Discovery::StrictDns | Discovery::LogicalDns => Feature::ClusterDns,
            Discovery::OriginalDst => Feature::ClusterOriginalDst,
            Discovery::Custom(_) => Feature::ClusterOther,
        },
        1.0,
    );
    let (kept, rejected) = cx.stats.shares_of(|| cluster_scope(c), CLUSTER_STATS);
    if cx.deferred_stats && !cx.used(&c.name) {
        t.add(Feature::ClusterStatsDeferred, kept);
        t.add(Feature::ClusterStatsDeferredRejected, rejected);
    } else {
        t.add(Feature::ClusterStats, kept);
        t.add(Feature::ClusterStatsRejected, rejected);
    }
    // A warming cluster is built on the main thread only: workers get it once it is active.
    if c.meta.state != State::Warming {
        let workers = cx.workers_for(&c.name);
        t.add(Feature::ClusterPerWorker, workers);
        t.add(Feature::ClusterPerWorkerDeferred, cx.concurrency - workers);
    }
    // One addition per context, so that a stream can take back, unit by unit, the contexts
    // whose secrets turn out not to be ready.
    for tls in cluster_tls(c) {
        match cx.tls_built(tls) {
            Some(loaded) => {
                t.add(Feature::ClusterTlsContext, 1.0);
                loaded.tally(t);
            }
            None => t.add(Feature::ClusterTlsWaiting, 1.0),
        }
    }
    if cx.used(&c.name) {
        t.add(Feature::ClusterTraffic, 1.0);
    }
    t.add(
        Feature::ClusterSocketMatch,
        c.transport_socket_matches.len() as f64,
    );
    if let Some(protocol) = c.http_protocol {
        t.add(Feature::ClusterHttpOptions, 1.0);
        if matches!(
            protocol,
            HttpProtocol::Http2 | HttpProtocol::Downstream | HttpProtocol::Auto
        ) {
            t.add(Feature::ClusterHttp2, 1.0);
        }
    }
    t.add(
        Feature::ClusterCircuitBreaker,
        c.circuit_breakers.len() as f64,
    );
    t.add(
        Feature::ClusterCircuitBreakerTracking,
        c.circuit_breakers
            .iter()
            .filter(|b| b.track_remaining)
            .count() as f64,
    );
    if c.outlier_detection.is_some() {
        t.add(Feature::ClusterOutlierDetection, 1.0);
        let (kept, _) = cx.stats.shares_of(|| cluster_scope(c), OUTLIER_STATS);
        t.add(Feature::ClusterOutlierDetectionStats, kept);
    }
}

/// The endpoints of a load assignment, one by one, so the total is exactly the sum of the
/// endpoints listed separately plus the localities.
pub(crate) fn endpoints(t: &mut impl Tally, la: &LoadAssignment, cx: &Context) {
    let workers = cx.workers_for(&la.cluster_name);
    t.add(Feature::EndpointLocality, la.localities.len() as f64);
    for (e, key, first) in with_first_metadata(la) {
        endpoint(t, e, key, first, cx, workers);
    }
}

/// The endpoints of a configuration, each with its metadata key and whether it is the first of
/// the configuration to carry that value. Measured on real Envoys, a value pays once per endpoint
/// configuration carrying it, not once per proxy: the second cluster of a service (a subset, or
/// another port) with the same endpoints costs as much as the first.
pub(crate) fn with_first_metadata(
    la: &LoadAssignment,
) -> impl Iterator<Item = (&Endpoint, Option<u64>, bool)> {
    let mut seen: HashSet<u64> = HashSet::default();
    la.endpoints().map(move |e| {
        let key = metadata_key(&e.metadata);
        (e, key, key.is_some_and(|k| seen.insert(k)))
    })
}

/// One endpoint's features (for listing endpoints one by one), held by `workers` workers;
/// `key` and `first` as [`with_first_metadata`] gives them.
pub(crate) fn endpoint(
    t: &mut impl Tally,
    e: &Endpoint,
    key: Option<u64>,
    first: bool,
    cx: &Context,
    workers: f64,
) {
    t.add(Feature::Endpoint, 1.0);
    let namespaces = &e.metadata.namespaces;
    if namespaces.iter().any(|n| &**n == SOCKET_MATCH_NAMESPACE) {
        t.add(Feature::EndpointTlsMode, 1.0);
    }
    if namespaces.iter().any(|n| &**n != SOCKET_MATCH_NAMESPACE) {
        t.add(Feature::EndpointMetadata, 1.0);
    }
    if first {
        t.add(Feature::EndpointDistinctMetadata, 1.0);
    }
    if let Some(spread) = &cx.spread_metadata {
        if key.is_some_and(|k| !spread.contains(&k)) {
            t.add(Feature::EndpointMetadataUnshared, 1.0);
        }
    }
    t.add(Feature::EndpointPerWorker, workers);
}

/// A route configuration's own features (not its virtual hosts).
pub(crate) fn route_config_own(t: &mut impl Tally, _rc: &RouteConfig) {
    t.add(Feature::RouteConfig, 1.0);
}

/// A virtual host's own features (not its routes).
pub(crate) fn virtual_host_own(t: &mut impl Tally, v: &VirtualHost) {
    t.add(Feature::VirtualHost, 1.0);
    t.add(Feature::Domain, v.domains.len() as f64);
}

/// A route's features.
pub(crate) fn route(t: &mut impl Tally, r: &Route) {
    t.add(Feature::Route, 1.0);
    if matches!(r.route_match.path, PathMatch::SafeRegex(_)) {
        t.add(Feature::RouteRegex, 1.0);
    }
    t.add(
        Feature::RouteHeaderMatcher,
        (r.route_match.headers.len() + r.route_match.query_parameters.len()) as f64,
    );
    if let Action::Route(a) = &r.action {
        if let RouteTarget::Weighted(ws) = &a.target {
            t.add(Feature::RouteWeightedCluster, ws.len() as f64);
        }
        if a.retry_policy.is_some() {
            t.add(Feature::RouteRetryPolicy, 1.0);
        }
    }
    if r.decorator.is_some() {
        t.add(Feature::RouteDecorator, 1.0);
    }
}

/// A whole route configuration: itself, its virtual hosts and their routes.
pub(crate) fn route_config(t: &mut impl Tally, rc: &RouteConfig) {
    route_config_own(t, rc);
    for v in &rc.virtual_hosts {
        virtual_host_own(t, v);
        for r in &v.routes {
            route(t, r);
        }
    }
}

/// The stats scope Envoy names a cluster's stats by: `cluster.<alt_stat_name or name>`.
pub(crate) fn cluster_scope(c: &Cluster) -> String {
    format!("cluster.{}", c.alt_stat_name.as_deref().unwrap_or(&c.name))
}

/// The stats scope of an HTTP connection manager: `http.<stat_prefix>`.
pub(crate) fn http_scope(config: &crate::model::HttpConnectionManager) -> String {
    format!("http.{}", config.stat_prefix)
}

/// The stats scope Envoy names a listener's stats by: its address (`listener.0.0.0.0_9080`).
pub(crate) fn listener_scope(l: &Listener) -> String {
    match &l.address {
        Some(Address::Socket { address, port, .. }) => format!("listener.{address}_{port}"),
        Some(other) => format!("listener.{other}"),
        None => format!("listener.{}", l.name),
    }
}

/// A listener's own features (not its filter chains).
pub(crate) fn listener_own(t: &mut impl Tally, l: &Listener, cx: &Context) {
    t.add(Feature::Listener, 1.0);
    let (kept, rejected) = cx.stats.shares_of(|| listener_scope(l), LISTENER_STATS);
    t.add(Feature::ListenerStats, kept);
    t.add(Feature::ListenerStatsRejected, rejected);
    // A warming listener is not yet on the workers.
    let workers = match l.meta.state {
        State::Warming => 0.0,
        _ => cx.concurrency,
    };
    t.add(Feature::ListenerPerWorker, workers);
}

/// A filter chain's features, its inline route configurations included.
pub(crate) fn filter_chain(t: &mut impl Tally, fc: &FilterChain, cx: &Context) {
    t.add(Feature::FilterChain, 1.0);
    t.add(
        Feature::FilterChainServerName,
        fc.filter_chain_match.server_names.len() as f64,
    );
    if tls(fc.transport_socket.as_ref(), cx) {
        t.add(Feature::FilterChainTlsContext, 1.0);
    }
    for f in &fc.filters {
        match f {
            NetworkFilter::HttpConnectionManager { config, .. } => {
                t.add(Feature::HttpConnectionManager, 1.0);
                let (kept, _) = cx.stats.shares_of(|| http_scope(config), HTTP_STATS);
                t.add(Feature::HttpStats, kept);
                t.add(Feature::HttpFilter, config.http_filters.len() as f64);
                if let RouteSource::Inline(rc) = &config.routes {
                    route_config(t, rc);
                }
            }
            NetworkFilter::TcpProxy { .. } => t.add(Feature::TcpProxy, 1.0),
            NetworkFilter::Other { .. } => {}
        }
    }
}

/// A whole listener: itself and its filter chains.
pub(crate) fn listener(t: &mut impl Tally, l: &Listener, cx: &Context) {
    listener_own(t, l, cx);
    for fc in l.all_filter_chains() {
        filter_chain(t, fc, cx);
    }
}

/// A secret's features.
pub(crate) fn secret(t: &mut impl Tally, s: &Secret) {
    t.add(Feature::Secret, 1.0);
    t.add(Feature::SecretCertificate, s.certificates.len() as f64);
}

/// The fixed cost of a running proxy.
pub(crate) fn baseline(t: &mut impl Tally, cx: &Context) {
    t.add(Feature::Baseline, 1.0);
    if !cx.stats.rejects_all() {
        t.add(Feature::BaselineStats, 1.0);
    }
    t.add(Feature::BaselinePerWorker, cx.concurrency);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_round_trip() {
        for (i, f) in Feature::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Feature::from_name(f.name()), Some(*f), "{}", f.name());
        }
    }

    #[test]
    fn stats_matchers_keep_what_they_name() {
        let inc = StatsFilter::new(&StatsMatcher::Inclusion(vec![
            "prefix:cluster.xds-grpc".into(),
            "regex:vhost\\..*\\.route\\..*".into(),
        ]));
        assert!(inc.keeps("cluster.xds-grpc.upstream_rq_total"));
        assert!(!inc.keeps("cluster.outbound|80||a.upstream_rq_total"));
        assert!(inc.keeps("vhost.a.route.b.upstream_rq_total"));
        // Envoy's regexes match whole names.
        assert!(!inc.keeps("x.vhost.a.route.b"));
        assert_eq!(inc.shares("cluster.xds-grpc", CLUSTER_STATS), (1.0, 0.0));
        assert_eq!(inc.shares("cluster.other", CLUSTER_STATS), (0.0, 1.0));
        let none = StatsFilter::new(&StatsMatcher::RejectAll);
        assert!(!none.keeps("cluster.a.x"));
        assert_eq!(none.shares("cluster.a", CLUSTER_STATS), (0.0, 0.0));
        let exc = StatsFilter::new(&StatsMatcher::Exclusion(vec!["suffix:rq_total".into()]));
        assert!(!exc.keeps("cluster.a.upstream_rq_total"));
        assert!(exc.keeps("cluster.a.upstream_cx_total"));
    }
}
