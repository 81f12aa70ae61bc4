//! Route configurations, virtual hosts and routes.

use super::{Meta, Opaque};
use serde::Serialize;
use std::time::Duration;

/// A string rule (Envoy's `StringMatcher` and the older header match fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatch {
    /// Equal to.
    Exact(Box<str>),
    /// Starts with.
    Prefix(Box<str>),
    /// Ends with.
    Suffix(Box<str>),
    /// Contains.
    Contains(Box<str>),
    /// Matches an RE2 regex.
    Regex(Box<str>),
    /// Present at all.
    Present(bool),
    /// An integer range `[start, end)`.
    Range(i64, i64),
    /// A form Heft does not model.
    Other,
}

/// A route's path rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// `prefix`.
    Prefix(Box<str>),
    /// `path` (exact).
    Path(Box<str>),
    /// `safe_regex`.
    SafeRegex(Box<str>),
    /// `path_separated_prefix`.
    PathSeparatedPrefix(Box<str>),
    /// `path_match_policy` (an extension, e.g. URI templates), by type and size.
    PathMatchPolicy(Opaque),
    /// `connect_matcher`: CONNECT requests.
    Connect,
    /// No path rule: matches every path.
    #[default]
    Any,
}

/// A header rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderMatch {
    /// Header name.
    pub name: Box<str>,
    /// The rule.
    pub rule: StringMatch,
    /// Whether the rule is inverted.
    pub invert: bool,
    /// `treat_missing_header_as_empty`: an absent header is matched as an empty value.
    pub treat_missing_header_as_empty: bool,
    /// The `string_match`'s `ignore_case` (ASCII case folding for exact, prefix, suffix and
    /// contains; Envoy ignores it for regexes).
    pub ignore_case: bool,
}

/// A query parameter rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryParameterMatch {
    /// Parameter name.
    pub name: Box<str>,
    /// The rule (`Present(true)` for `present_match`).
    pub rule: StringMatch,
    /// The `string_match`'s `ignore_case`.
    pub ignore_case: bool,
}

/// What requests a route takes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RouteMatch {
    /// The path rule.
    pub path: PathMatch,
    /// Whether path matching is case sensitive (default true).
    pub case_sensitive: Option<bool>,
    /// Header rules, all of which must hold.
    pub headers: Vec<HeaderMatch>,
    /// Query parameter rules, all of which must hold.
    pub query_parameters: Vec<QueryParameterMatch>,
    /// Only gRPC requests.
    pub grpc: bool,
    /// Sampled by a runtime fraction.
    pub runtime_fraction: bool,
}

/// One cluster of a weighted split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedCluster {
    /// Cluster name.
    pub name: Box<str>,
    /// Weight.
    pub weight: u32,
}

/// Where a route sends requests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTarget {
    /// One cluster.
    Cluster(Box<str>),
    /// A weighted split.
    Weighted(Vec<WeightedCluster>),
    /// The cluster named by a request header.
    ClusterHeader(Box<str>),
    /// A cluster specifier plugin.
    Plugin(Box<str>),
    /// None given.
    #[default]
    None,
}

impl RouteTarget {
    /// The clusters it names (none for a header or plugin that picks one per request).
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        let (one, weighted) = match self {
            RouteTarget::Cluster(c) => (Some(&**c), &[][..]),
            RouteTarget::Weighted(ws) => (None, &ws[..]),
            _ => (None, &[][..]),
        };
        one.into_iter().chain(weighted.iter().map(|w| &*w.name))
    }
}

/// A retry policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RetryPolicy {
    /// Conditions (`connect-failure,refused-stream,…`).
    pub retry_on: Option<Box<str>>,
    /// Number of retries.
    pub num_retries: Option<u32>,
    /// Timeout per try.
    pub per_try_timeout: Option<Duration>,
    /// Status codes that are retried.
    pub retriable_status_codes: Vec<u32>,
}

/// Forwarding to clusters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RouteAction {
    /// Where requests go.
    pub target: RouteTarget,
    /// Request timeout (Envoy's default is 15 s; Istio sets 0s, no timeout).
    pub timeout: Option<Duration>,
    /// Retries.
    pub retry_policy: Option<RetryPolicy>,
    /// Path prefix rewrite.
    pub prefix_rewrite: Option<Box<str>>,
    /// Host rewrite.
    pub host_rewrite: Option<Box<str>>,
}

/// What a route does with a request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Forward.
    Route(RouteAction),
    /// Redirect.
    Redirect {
        /// Host to redirect to.
        host: Option<Box<str>>,
        /// Path to redirect to.
        path: Option<Box<str>>,
        /// Whether to switch to https.
        https: bool,
        /// Response code name (`MOVED_PERMANENTLY`, …).
        response_code: Box<str>,
    },
    /// Answer directly.
    DirectResponse {
        /// HTTP status.
        status: u32,
        /// Body size in the config, in bytes.
        body_bytes: u64,
    },
    /// A filter action or non-forwarding action.
    #[default]
    Other,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Route {
    /// Its name (Istio names routes after the VirtualService route).
    pub name: Option<Box<str>>,
    /// What it matches.
    pub route_match: RouteMatch,
    /// What it does.
    pub action: Action,
    /// Decorator operation (Istio writes `host:port/*`).
    pub decorator: Option<Box<str>>,
    /// `metadata.filter_metadata.istio.config`: the VirtualService that made it.
    pub istio_config: Option<Box<str>>,
    /// Per-filter configs and other payloads Heft keeps opaque.
    pub extensions: Vec<Opaque>,
}

/// A virtual host: domains and their routes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VirtualHost {
    /// Its name (Istio: `reviews.default.svc.cluster.local:9080`).
    pub name: Box<str>,
    /// Host header values it serves.
    pub domains: Vec<Box<str>>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// Virtual-host level retry policy.
    pub retry_policy: Option<RetryPolicy>,
    /// `NONE`, `EXTERNAL_ONLY` or `ALL`.
    pub require_tls: Option<Box<str>>,
    /// Per-filter configs and other payloads Heft keeps opaque.
    pub extensions: Vec<Opaque>,
}

/// A route configuration (RDS resource, or inline in a listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteConfig {
    /// State, version and input span.
    pub meta: Meta,
    /// Its name (Istio: the port, such as `9080`, or `http.8080` on gateways).
    pub name: Box<str>,
    /// Virtual hosts.
    pub virtual_hosts: Vec<VirtualHost>,
    /// Whether Envoy checks that route targets exist.
    pub validate_clusters: Option<bool>,
    /// `ignore_port_in_host_matching`: virtual hosts are chosen on the host without its port.
    pub ignore_port_in_host_matching: bool,
    /// `ignore_path_parameters_in_path_matching`: `;params` are cut from the path before matching.
    pub ignore_path_parameters_in_path_matching: bool,
    /// `vhost_header`: the header virtual hosts are chosen on, instead of `:authority`.
    pub vhost_header: Option<Box<str>>,
}

impl RouteConfig {
    /// A route configuration with no name and no virtual hosts, every setting at its default.
    pub fn new(meta: Meta) -> RouteConfig {
        RouteConfig {
            meta,
            name: "".into(),
            virtual_hosts: Vec::new(),
            validate_clusters: None,
            ignore_port_in_host_matching: false,
            ignore_path_parameters_in_path_matching: false,
            vhost_header: None,
        }
    }

    /// Number of routes over all virtual hosts.
    pub fn route_count(&self) -> usize {
        self.virtual_hosts.iter().map(|v| v.routes.len()).sum()
    }
}
