//! `trace`: how one connection, and the HTTP request on it, flows through the proxy a dump
//! describes: which listener and filter chain take the connection, which route configuration,
//! virtual host and route match the request, which clusters it goes to with their weights, and
//! which endpoints serve them. Every step says why it chose what it chose and why each earlier
//! candidate was passed over, as Envoy's router check tool does.
//!
//! It follows Envoy 1.40's matching (`FilterChainManagerImpl`, `RouteMatcher`, the route entry
//! classes, `HeaderUtility`), reads only the model, and prints nothing; the CLI renders the
//! [`Trace`] (see `docs/trace.md` for its JSON form). Where a decision depends on something a dump
//! cannot tell (a runtime fraction, the unified `filter_chain_matcher`, an extension), the step is
//! marked undetermined instead of guessed.
//!
//! ```
//! let dump = heft::Dump::from_slice(br#"{"configs": [{
//!   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
//!   "static_clusters": [{"cluster": {"name": "api-v1", "type": "STATIC", "load_assignment": {
//!     "cluster_name": "api-v1", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
//!       {"socket_address": {"address": "10.0.0.7", "port_value": 8000}}}}]}]}}}]}, {
//!   "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
//!   "static_listeners": [{"listener": {
//!     "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
//!     "name": "web", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
//!     "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
//!       "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
//!         "stat_prefix": "web", "route_config": {"virtual_hosts": [
//!           {"name": "api", "domains": ["api.example.com"],
//!            "routes": [{"match": {"prefix": "/v1"}, "route": {"cluster": "api-v1"}}]},
//!           {"name": "rest", "domains": ["*"],
//!            "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]}]}}}]}]}}]}]}"#)?;
//! let query = heft::trace::Query {
//!     port: 8080,
//!     http: Some(heft::trace::HttpRequest {
//!         host: Some("api.example.com".into()),
//!         path: "/v1/users".into(),
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let trace = heft::trace::trace(&dump, &query);
//! assert_eq!(trace.outcome.clusters, ["api-v1"]);
//! assert_eq!(trace.upstreams[0].endpoints[0].address, "10.0.0.7:8000");
//! assert_eq!(trace.http.unwrap().virtual_host.unwrap().selected.as_deref(), Some("api"));
//! # Ok::<(), heft::Error>(())
//! ```

mod chain;
mod http;
mod listener;
mod matcher;
mod upstream;

use crate::model::{NetworkFilter, TcpTarget};
use crate::Dump;
use serde::Serialize;
use std::net::IpAddr;

/// What to trace: a connection and, optionally, the HTTP request sent on it.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Destination port (the original destination, before any iptables redirect).
    pub port: u32,
    /// Destination IP (the original destination); `None` when unknown.
    pub address: Option<IpAddr>,
    /// The listener that accepted the connection, when it was redirected to one (Istio's
    /// `virtualInbound`); by default a listener bound on the destination, else the
    /// `use_original_dst` listener that captures outbound traffic (`virtualOutbound`).
    pub via: Option<String>,
    /// Source IP of the connection, when known.
    pub source: Option<IpAddr>,
    /// Source port of the connection, when known.
    pub source_port: Option<u32>,
    /// The client opens TLS (implied by `sni`).
    pub tls: bool,
    /// The TLS server name (SNI) the client sends.
    pub sni: Option<String>,
    /// ALPN protocols the client offers in TLS, or the protocol `http_inspector` would detect on
    /// a plaintext connection; empty: derived (`http/1.1` for a plaintext HTTP request).
    pub alpn: Vec<String>,
    /// The HTTP request; `None` for a connection that carries other bytes.
    pub http: Option<HttpRequest>,
}

/// An HTTP/1.1 request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Host header (`:authority`); `None`: the destination, as curl would send it.
    pub host: Option<String>,
    /// Path with query string.
    pub path: String,
    /// Method.
    pub method: String,
    /// Other headers, in order (`host` here replaces [`HttpRequest::host`]).
    pub headers: Vec<(String, String)>,
}

impl Default for HttpRequest {
    fn default() -> HttpRequest {
        HttpRequest {
            host: None,
            path: "/".into(),
            method: "GET".into(),
            headers: Vec::new(),
        }
    }
}

/// How a candidate fared at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Chosen.
    Selected,
    /// Passed over; `reasons` say why.
    Rejected,
    /// Heft cannot tell whether Envoy would choose it; `reasons` say why.
    Undetermined,
}

/// One candidate at a step: a listener, filter chain, virtual host or route.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Its name (empty when it has none).
    pub name: String,
    /// Its position in its list (filter chains, virtual hosts, routes), when it has one.
    pub index: Option<usize>,
    /// What it matches: address, match rules, domains.
    pub detail: String,
    /// Chosen, passed over or undetermined.
    pub verdict: Verdict,
    /// Why.
    pub reasons: Vec<String>,
}

/// The connection as Envoy's listener filters see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Connection {
    /// Destination IP, when known.
    pub destination_ip: Option<String>,
    /// Destination port.
    pub destination_port: u32,
    /// Source IP, when known.
    pub source_ip: Option<String>,
    /// Source port, when known.
    pub source_port: Option<u32>,
    /// Whether the client opens TLS.
    pub tls: bool,
    /// The server name Envoy reads (needs `tls_inspector`), lower-cased.
    pub server_name: Option<String>,
    /// `tls` or `raw_buffer`, as Envoy detects it.
    pub transport_protocol: String,
    /// Application protocols Envoy detects (TLS ALPN, or `http_inspector`).
    pub application_protocols: Vec<String>,
}

/// Which listener takes the connection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListenerStep {
    /// The listener that accepted the connection.
    pub accepted_by: Option<String>,
    /// The listener whose filter chains handle it (differs when `use_original_dst` handed the
    /// connection off).
    pub selected: Option<String>,
    /// Whether `use_original_dst` handed the connection to another listener.
    pub handed_off: bool,
    /// Why.
    pub reasons: Vec<String>,
    /// Listeners on the destination port and the capturing listener, with verdicts.
    pub candidates: Vec<Candidate>,
}

/// Which filter chain takes the connection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilterChainStep {
    /// The listener whose chains were matched.
    pub listener: String,
    /// The chosen chain's position in `filter_chains`; `None` for the default chain or none.
    pub selected_index: Option<usize>,
    /// The chosen chain's name.
    pub selected_name: Option<String>,
    /// Whether the chosen chain is the listener's `default_filter_chain`.
    pub is_default: bool,
    /// Whether the choice does not depend on anything Heft cannot tell.
    pub certain: bool,
    /// Why.
    pub reasons: Vec<String>,
    /// Every chain, with its verdict (the default chain has no index).
    pub candidates: Vec<Candidate>,
}

/// The chosen chain's network filters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkStep {
    /// Filter names in order.
    pub filters: Vec<String>,
    /// `http_connection_manager`, `tcp_proxy`, or the last filter's name.
    pub terminal: String,
    /// Whether the chain terminates TLS (a TLS transport socket).
    pub terminates_tls: bool,
    /// Other filters that may act on the connection but which Heft does not evaluate.
    pub not_evaluated: Vec<String>,
}

/// The route configuration a connection manager uses.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteConfigSeen {
    /// Its name.
    pub name: Option<String>,
    /// `rds`, `inline`, `scoped` or `none`.
    pub source: String,
    /// Whether the dump holds it.
    pub found: bool,
}

/// One header of the request as the router sees it.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderSeen {
    /// Lower-case name (pseudo-headers start with `:`).
    pub name: String,
    /// Value.
    pub value: String,
}

/// The request as the router sees it, after the connection manager's normalisations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestSeen {
    /// `:method`.
    pub method: String,
    /// `:scheme` (and `x-forwarded-proto`).
    pub scheme: String,
    /// `:authority` after port and trailing-dot stripping.
    pub authority: String,
    /// `:path` after normalisation.
    pub path: String,
    /// Every header the route rules can see.
    pub headers: Vec<HeaderSeen>,
    /// What the connection manager changed, in order.
    pub changes: Vec<String>,
}

/// Which virtual host takes the request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VirtualHostStep {
    /// The host value matched (lower-cased; port removed under `ignore_port_in_host_matching`).
    pub host: String,
    /// The chosen virtual host.
    pub selected: Option<String>,
    /// The domain that chose it.
    pub matched_domain: Option<String>,
    /// `exact`, `suffix_wildcard`, `prefix_wildcard` or `default`.
    pub match_kind: Option<String>,
    /// Every virtual host, with its verdict.
    pub candidates: Vec<Candidate>,
}

/// Which route takes the request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteStep {
    /// The chosen route's position in its virtual host.
    pub selected_index: Option<usize>,
    /// The chosen route's name.
    pub selected_name: Option<String>,
    /// Whether the choice does not depend on anything Heft cannot tell.
    pub certain: bool,
    /// The routes before the chosen one (or all, when none matched) and the chosen one.
    pub candidates: Vec<Candidate>,
}

/// One cluster of a weighted split.
#[derive(Debug, Clone, Serialize)]
pub struct WeightedSeen {
    /// Cluster name.
    pub name: String,
    /// Weight.
    pub weight: u32,
    /// Share of requests, in percent.
    pub percent: f64,
}

/// What the chosen route (or TCP proxy) does.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionSeen {
    /// Forward to one cluster.
    Cluster {
        /// Its name.
        cluster: String,
    },
    /// Forward to one of weighted clusters, chosen at random per request (or connection).
    WeightedClusters {
        /// The clusters with their weights.
        clusters: Vec<WeightedSeen>,
    },
    /// Forward to the cluster a request header names.
    ClusterHeader {
        /// The header.
        header: String,
        /// Its value in this request.
        value: Option<String>,
    },
    /// Answer with a redirect.
    Redirect {
        /// HTTP status.
        status: u32,
        /// The `location` Envoy writes, as far as the model tells it.
        location: String,
    },
    /// Answer directly.
    DirectResponse {
        /// HTTP status.
        status: u32,
    },
    /// An action Heft does not evaluate (cluster specifier plugin, filter action, …).
    Other {
        /// What it is.
        description: String,
    },
}

/// What the connection manager and router do with the request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpStep {
    /// The route configuration.
    pub route_config: RouteConfigSeen,
    /// The request the router sees.
    pub request: RequestSeen,
    /// Virtual host selection, when it happened.
    pub virtual_host: Option<VirtualHostStep>,
    /// Route selection, when it happened.
    pub route: Option<RouteStep>,
    /// The chosen route's action.
    pub action: Option<ActionSeen>,
}

/// Where a TCP proxy sends the connection.
#[derive(Debug, Clone, Serialize)]
pub struct TcpStep {
    /// Its stats prefix.
    pub stat_prefix: String,
    /// Its target.
    pub action: ActionSeen,
}

/// One priority level of a cluster's endpoints.
#[derive(Debug, Clone, Serialize)]
pub struct PrioritySeen {
    /// Priority (0 first).
    pub priority: u32,
    /// Hosts.
    pub hosts: usize,
    /// Healthy hosts (HEALTHY, or no status).
    pub healthy: usize,
    /// Degraded hosts.
    pub degraded: usize,
    /// Share of the cluster's requests Envoy sends to this priority, in percent.
    pub load_percent: f64,
    /// Whether under half its hosts are healthy, so Envoy balances over all of them (panic).
    pub panic: bool,
}

/// One endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointSeen {
    /// Address (`ip:port`, or a hostname).
    pub address: String,
    /// Health status (`HEALTHY`, `UNHEALTHY`, …; `UNKNOWN` when unset).
    pub health: String,
    /// Priority.
    pub priority: u32,
    /// `region/zone/sub_zone`.
    pub locality: String,
    /// Load-balancing weight.
    pub weight: Option<u32>,
}

/// A cluster the connection or request may go to, with its endpoints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Upstream {
    /// Cluster name.
    pub cluster: String,
    /// Weight, in a weighted split.
    pub weight: Option<u32>,
    /// Share of requests, in percent.
    pub percent: f64,
    /// Whether the dump holds the cluster in use (active or static).
    pub found: bool,
    /// Its state (`active`, `static`, `warming`), when the dump holds it.
    pub state: Option<String>,
    /// Its discovery type.
    pub discovery: Option<String>,
    /// Where its endpoints come from: `endpoint_config`, `load_assignment`,
    /// `original_destination` or `none`.
    pub endpoint_source: String,
    /// Priority levels, with the share of traffic each receives.
    pub priorities: Vec<PrioritySeen>,
    /// Endpoints.
    pub endpoints: Vec<EndpointSeen>,
    /// Notes on this cluster.
    pub reasons: Vec<String>,
}

/// What finally happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Forwarded to one cluster.
    Cluster,
    /// Forwarded to one of several clusters (weighted).
    WeightedClusters,
    /// Answered with a redirect.
    Redirect,
    /// Answered directly.
    DirectResponse,
    /// No listener takes the connection (refused).
    NoListener,
    /// No filter chain takes the connection (closed).
    NoFilterChain,
    /// No virtual host matches (404).
    NoVirtualHost,
    /// No route matches (404).
    NoRoute,
    /// The target cluster is not in use (503, or the connection is closed).
    ClusterNotFound,
    /// The connection manager rejects the request (400).
    Rejected,
    /// The terminal filter is one Heft does not follow.
    OtherFilter,
    /// Heft cannot tell; the steps say why.
    Undetermined,
}

/// What finally happens to the connection or request.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The kind of outcome.
    pub kind: OutcomeKind,
    /// Whether no step depended on anything Heft cannot tell.
    pub certain: bool,
    /// HTTP status Envoy answers with itself (direct response, redirect, 404, 503, 400).
    pub status: Option<u32>,
    /// Clusters the traffic may go to (weight above zero), most likely first.
    pub clusters: Vec<String>,
    /// One line for people.
    pub summary: String,
}

/// The whole trace.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The connection as Envoy sees it.
    pub connection: Connection,
    /// Listener selection.
    pub listener: ListenerStep,
    /// Filter chain selection, when a listener took the connection.
    pub filter_chain: Option<FilterChainStep>,
    /// The chosen chain's network filters.
    pub network: Option<NetworkStep>,
    /// The HTTP side, when the chain ends in an HTTP connection manager.
    pub http: Option<HttpStep>,
    /// The TCP proxy, when the chain ends in one.
    pub tcp_proxy: Option<TcpStep>,
    /// The clusters the traffic may go to, with their endpoints.
    pub upstreams: Vec<Upstream>,
    /// What finally happens.
    pub outcome: Outcome,
    /// Assumptions Heft made, and what it could not evaluate.
    pub notes: Vec<String>,
}

fn outcome(kind: OutcomeKind, status: Option<u32>, summary: String) -> Outcome {
    Outcome {
        kind,
        certain: true,
        status,
        clusters: Vec::new(),
        summary,
    }
}

/// Traces `query` through the proxy `dump` describes.
pub fn trace(dump: &Dump, query: &Query) -> Trace {
    let mut notes = Vec::new();
    let (listener_step, selected, connection) = listener::select(dump, query, &mut notes);
    let mut t = Trace {
        connection,
        listener: listener_step,
        filter_chain: None,
        network: None,
        http: None,
        tcp_proxy: None,
        upstreams: Vec::new(),
        outcome: outcome(OutcomeKind::NoListener, None, String::new()),
        notes,
    };
    let Some(l) = selected else {
        t.outcome.summary = format!(
            "no listener takes connections to port {}: the connection is refused",
            query.port
        );
        return t;
    };
    let (chain_step, chain) = chain::select(l, &t.connection);
    let chain_certain = chain_step.certain;
    t.filter_chain = Some(chain_step);
    let Some(chain) = chain else {
        t.outcome = if l.filter_chain_matcher.is_some() || !chain_certain {
            outcome(
                OutcomeKind::Undetermined,
                None,
                format!(
                    "Heft cannot tell which filter chain of {} takes the connection",
                    l.name
                ),
            )
        } else {
            outcome(
                OutcomeKind::NoFilterChain,
                None,
                format!(
                    "no filter chain of {} matches and it has no default_filter_chain: the \
                     connection is closed",
                    l.name
                ),
            )
        };
        t.outcome.certain = chain_certain && l.filter_chain_matcher.is_none();
        return t;
    };
    let terminates_tls = chain
        .transport_socket
        .as_ref()
        .is_some_and(|s| s.tls.is_some());
    let filters: Vec<String> = chain.filters.iter().map(|f| f.name().to_string()).collect();
    let terminal = chain.filters.iter().find(|f| {
        matches!(
            f,
            NetworkFilter::HttpConnectionManager { .. } | NetworkFilter::TcpProxy { .. }
        )
    });
    let not_evaluated: Vec<String> = chain
        .filters
        .iter()
        .take_while(|f| {
            !matches!(
                f,
                NetworkFilter::HttpConnectionManager { .. } | NetworkFilter::TcpProxy { .. }
            )
        })
        .map(|f| f.name().to_string())
        .collect();
    if !not_evaluated.is_empty() {
        t.notes.push(format!(
            "network filters before the terminal one are not evaluated (they may reject or \
             change the connection): {}",
            not_evaluated.join(", ")
        ));
    }
    if terminates_tls && !t.connection.tls {
        t.notes.push(
            "the chain terminates TLS but the client speaks plaintext: Envoy's TLS handshake \
             would fail"
                .into(),
        );
    }
    t.network = Some(NetworkStep {
        filters,
        terminal: match terminal {
            Some(NetworkFilter::HttpConnectionManager { .. }) => "http_connection_manager".into(),
            Some(NetworkFilter::TcpProxy { .. }) => "tcp_proxy".into(),
            _ => chain
                .filters
                .last()
                .map_or_else(String::new, |f| f.name().to_string()),
        },
        terminates_tls,
        not_evaluated,
    });
    match terminal {
        Some(NetworkFilter::HttpConnectionManager { config, .. }) => {
            if t.connection.tls && !terminates_tls {
                t.notes.push(
                    "the client speaks TLS but the chain does not terminate it: the HTTP \
                     connection manager would not parse the bytes"
                        .into(),
                );
            }
            let (step, action_outcome, upstreams) = http::route(
                dump,
                config,
                query,
                &t.connection,
                terminates_tls,
                &mut t.notes,
            );
            t.http = Some(step);
            t.upstreams = upstreams;
            t.outcome = action_outcome;
        }
        Some(NetworkFilter::TcpProxy { config, .. }) => {
            let action = match &config.target {
                TcpTarget::Cluster(c) => ActionSeen::Cluster {
                    cluster: c.to_string(),
                },
                TcpTarget::Weighted(ws) => ActionSeen::WeightedClusters {
                    clusters: upstream::weighted(ws.iter().map(|(n, w)| (&**n, *w))),
                },
                TcpTarget::None => ActionSeen::Other {
                    description: "a TCP proxy without cluster or weighted_clusters".into(),
                },
            };
            let (upstreams, out) = upstream::resolve(dump, &action, &t.connection, false);
            t.tcp_proxy = Some(TcpStep {
                stat_prefix: config.stat_prefix.to_string(),
                action,
            });
            t.upstreams = upstreams;
            t.outcome = out;
        }
        _ => {
            t.outcome = outcome(
                OutcomeKind::OtherFilter,
                None,
                format!(
                    "the chain ends in {}, which Heft does not follow",
                    t.network.as_ref().map_or("", |n| n.terminal.as_str())
                ),
            );
        }
    }
    if !chain_certain {
        t.outcome.certain = false;
    }
    t
}

#[cfg(test)]
mod tests;
