//! `listeners`: one row per listener, with one line per filter chain (`istioctl proxy-config
//! listener`, whose default `--verbose` output lists chains as MATCH and DESTINATION).

use super::{equal_fold, go_sort, Order, Pricing};
use crate::model::{
    Address, FilterChain, FilterChainMatch, Listener, NetworkFilter, PathMatch, RouteConfig,
    RouteSource, RouteTarget, Span, State, TcpTarget, VirtualHost,
};
use serde::Serialize;

const HCM: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
const BLACKHOLE: &str = "BlackHoleCluster";

/// `istioctl proxy-config listener`'s filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerFilter {
    /// `--address`: one of the listener's addresses is this (case-insensitive).
    pub address: Option<String>,
    /// `--port`: the listener's port is this.
    pub port: Option<u32>,
    /// `--type`: the listener's type is this (`HTTP`, `TCP`, `HTTP+TCP`, `UNKNOWN`;
    /// case-insensitive).
    pub r#type: Option<String>,
}

/// One filter chain of a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainRow {
    /// The chain's name, when it has one.
    pub name: Option<String>,
    /// Whether it is the listener's default chain.
    pub default: bool,
    /// What connections it takes, as `istioctl` describes it (`SNI: …; Trans: tls; Addr: …`).
    #[serde(rename = "match")]
    pub matches: String,
    /// Where they go (`Route: 9080`, `Cluster: …`, `Inline Route: …`, `Non-HTTP/Non-TCP`).
    pub destination: String,
    /// The chain's predicted bytes.
    pub cost: Option<u64>,
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerRow {
    /// The listener's name.
    pub name: String,
    /// Its address, then its additional addresses (empty strings for addresses that are not IPs
    /// or pipes, as `istioctl` shows them).
    pub addresses: Vec<String>,
    /// Its port (0 when it has none).
    pub port: u32,
    /// `HTTP`, `TCP`, `HTTP+TCP` or `UNKNOWN`, from its filters.
    #[serde(rename = "type")]
    pub kind: String,
    /// Static, active, warming or draining.
    pub state: State,
    /// The listener's predicted bytes.
    pub cost: Option<u64>,
    /// Its filter chains, in `istioctl`'s order (by destination, descending).
    pub chains: Vec<ChainRow>,
    /// Where the resource's dump entry sat in the input, to print it as it was.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The columns `istioctl` prints by default (`--verbose`), one line per chain.
pub const ISTIOCTL_COLUMNS: [&str; 4] = ["ADDRESSES", "PORT", "MATCH", "DESTINATION"];
/// The columns `istioctl` prints with `--verbose=false`, one line per listener.
pub const ISTIOCTL_SHORT_COLUMNS: [&str; 3] = ["ADDRESSES", "PORT", "TYPE"];

fn address_text(a: Option<&Address>) -> String {
    match a {
        Some(Address::Socket { address, .. }) => address.to_string(),
        Some(Address::Pipe { path }) => path.to_string(),
        _ => String::new(),
    }
}

fn is_filter(f: &NetworkFilter, name: &str) -> bool {
    f.name() == name
}

/// Whether a TCP proxy is Istio's black hole (`istioctl` looks for the cluster's name anywhere
/// in the proxy's config).
fn is_blackhole(f: &NetworkFilter) -> bool {
    match f {
        NetworkFilter::TcpProxy { config, .. } => {
            config.stat_prefix.contains(BLACKHOLE)
                || match &config.target {
                    TcpTarget::Cluster(c) => c.contains(BLACKHOLE),
                    TcpTarget::Weighted(ws) => ws.iter().any(|(c, _)| c.contains(BLACKHOLE)),
                    TcpTarget::None => false,
                }
        }
        _ => false,
    }
}

/// `HTTP`, `TCP`, `HTTP+TCP` or `UNKNOWN`: whether its chains hold connection managers and
/// (other than black holes) TCP proxies.
pub fn listener_type(l: &Listener) -> &'static str {
    let (mut http, mut tcp) = (0, 0);
    for fc in l.all_filter_chains() {
        for f in &fc.filters {
            if is_filter(f, HCM) {
                http += 1;
            } else if is_filter(f, TCP_PROXY) && !is_blackhole(f) {
                tcp += 1;
            }
        }
    }
    match (http > 0, tcp > 0) {
        (true, false) => "HTTP",
        (true, true) => "HTTP+TCP",
        (false, true) => "TCP",
        (false, false) => "UNKNOWN",
    }
}

impl ListenerFilter {
    /// Whether a listener passes.
    pub fn accepts(&self, l: &Listener) -> bool {
        if let Some(want) = self.address.as_deref().filter(|a| !a.is_empty()) {
            let mut addresses = std::iter::once(address_text(l.address.as_ref()))
                .chain(l.additional_addresses.iter().map(additional_text));
            if !addresses.any(|a| equal_fold(&a, want)) {
                return false;
            }
        }
        if let Some(p) = self.port.filter(|p| *p != 0) {
            if port_of(l) != p {
                return false;
            }
        }
        if let Some(t) = self.r#type.as_deref().filter(|t| !t.is_empty()) {
            if !equal_fold(listener_type(l), t) {
                return false;
            }
        }
        true
    }
}

/// An additional address as `istioctl` reads it: the socket address's IP, else nothing.
fn additional_text(a: &Address) -> String {
    match a {
        Address::Socket { address, .. } => address.to_string(),
        _ => String::new(),
    }
}

fn port_of(l: &Listener) -> u32 {
    match &l.address {
        Some(Address::Socket { port, .. }) => *port,
        _ => 0,
    }
}

const APP_PROTOCOLS: [(&str, &[&str]); 4] = [
    (
        "App: HTTP TLS",
        &[
            "http/1.0",
            "http/1.1",
            "h2c",
            "istio-http/1.0",
            "istio-http/1.1",
            "istio-h2",
        ],
    ),
    (
        "App: Istio HTTP Plain",
        &["istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"],
    ),
    ("App: TCP TLS", &["istio-peer-exchange", "istio"]),
    ("App: HTTP", &["http/1.0", "http/1.1", "h2c"]),
];

/// A chain's match as `istioctl` describes it.
pub fn describe_match(m: &FilterChainMatch) -> String {
    let mut descrs: Vec<String> = Vec::new();
    if !m.server_names.is_empty() {
        descrs.push(format!("SNI: {}", m.server_names.join(",")));
    }
    if let Some(t) = m.transport_protocol.as_deref().filter(|t| !t.is_empty()) {
        descrs.push(format!("Trans: {t}"));
    }
    if !m.application_protocols.is_empty() {
        let known = APP_PROTOCOLS.iter().find(|(_, list)| {
            list.len() == m.application_protocols.len()
                && list
                    .iter()
                    .zip(&m.application_protocols)
                    .all(|(a, b)| *a == &**b)
        });
        descrs.push(match known {
            Some((label, _)) => label.to_string(),
            None => format!("App: {}", m.application_protocols.join(",")),
        });
    }
    let port = m
        .destination_port
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    if !m.prefix_ranges.is_empty() {
        let ranges: Vec<String> = m.prefix_ranges.iter().map(ToString::to_string).collect();
        descrs.push(format!("Addr: {}{port}", ranges.join(",")));
    } else if !port.is_empty() {
        descrs.push(format!("Addr: *{port}"));
    }
    if descrs.is_empty() {
        return "ALL".into();
    }
    descrs.join("; ")
}

/// Where a chain's connections go, as `istioctl` describes it: the first connection manager
/// (its RDS name, or its inline routes) or non-black-hole TCP proxy.
pub fn describe_destination(fc: &FilterChain) -> String {
    for f in &fc.filters {
        if is_filter(f, HCM) {
            return match f {
                NetworkFilter::HttpConnectionManager { config, .. } => match &config.routes {
                    RouteSource::Inline(rc) => describe_route_config(rc),
                    RouteSource::Rds { route_config_name } if !route_config_name.is_empty() => {
                        format!("Route: {route_config_name}")
                    }
                    _ => "HTTP".into(),
                },
                _ => "HTTP".into(),
            };
        }
        if is_filter(f, TCP_PROXY) && !is_blackhole(f) {
            let cluster = match f {
                NetworkFilter::TcpProxy { config, .. } => match &config.target {
                    TcpTarget::Cluster(c) => c.to_string(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            return if cluster.contains("Cluster") {
                cluster
            } else {
                format!("Cluster: {cluster}")
            };
        }
    }
    "Non-HTTP/Non-TCP".into()
}

fn describe_route_config(rc: &RouteConfig) -> String {
    if let Some(c) = match_all_cluster(rc) {
        return c;
    }
    let vhosts: Vec<String> = rc
        .virtual_hosts
        .iter()
        .map(|vh| {
            let routes = describe_routes(vh);
            match describe_domains(vh) {
                None => routes,
                Some(d) => format!("{d} {routes}"),
            }
        })
        .collect();
    format!("Inline Route: {}", vhosts.join("; "))
}

/// A route configuration that sends everything to one cluster is shown as that cluster.
fn match_all_cluster(rc: &RouteConfig) -> Option<String> {
    let [vh] = &rc.virtual_hosts[..] else {
        return None;
    };
    if vh.domains.len() != 1 || &*vh.domains[0] != "*" {
        return None;
    }
    let [r] = &vh.routes[..] else {
        return None;
    };
    if !matches!(&r.route_match.path, PathMatch::Prefix(p) if &**p == "/") {
        return None;
    }
    let crate::model::Action::Route(action) = &r.action else {
        return None;
    };
    let RouteTarget::Cluster(c) = &action.target else {
        return None;
    };
    Some(if c.contains("Cluster") {
        c.to_string()
    } else {
        format!("Cluster: {c}")
    })
}

fn describe_domains(vh: &VirtualHost) -> Option<String> {
    if vh.domains.len() == 1 && &*vh.domains[0] == "*" {
        return None;
    }
    Some(vh.domains.join("/"))
}

fn describe_routes(vh: &VirtualHost) -> String {
    let routes: Vec<String> = vh
        .routes
        .iter()
        .map(|r| describe_path(&r.route_match.path))
        .collect();
    routes.join(", ")
}

/// A route's path rule as `istioctl` shows it (`/prefix*`, `/exact`, `PathPrefix:/p`,
/// `regex …`); headers and other rules are not shown.
pub fn describe_path(path: &PathMatch) -> String {
    match path {
        PathMatch::Prefix(p) if !p.is_empty() => format!("{p}*"),
        PathMatch::PathSeparatedPrefix(p) if !p.is_empty() => format!("PathPrefix:{p}"),
        PathMatch::Path(p) => p.to_string(),
        PathMatch::SafeRegex(r) => format!("regex {r}"),
        _ => String::new(),
    }
}

/// The row of one listener, or `None` when the filter drops it.
pub fn listener_row(
    l: &Listener,
    filter: &ListenerFilter,
    pricing: &dyn Pricing,
) -> Option<ListenerRow> {
    if !filter.accepts(l) {
        return None;
    }
    let default_index = l.filter_chains.len();
    let mut chains: Vec<ChainRow> = l
        .all_filter_chains()
        .enumerate()
        .map(|(i, fc)| ChainRow {
            name: fc.name.as_deref().map(str::to_string),
            default: i == default_index,
            matches: describe_match(&fc.filter_chain_match),
            destination: describe_destination(fc),
            cost: pricing.filter_chain(l, i),
        })
        .collect();
    go_sort(&mut chains, |a, b| a.destination > b.destination);
    let mut addresses = vec![address_text(l.address.as_ref())];
    addresses.extend(l.additional_addresses.iter().map(additional_text));
    Some(ListenerRow {
        name: l.name.to_string(),
        addresses,
        port: port_of(l),
        kind: listener_type(l).to_string(),
        state: l.meta.state,
        cost: pricing.listener(l),
        chains,
        span: l.meta.span,
    })
}

impl ListenerRow {
    /// The lines `istioctl` prints for this listener by default: one per chain.
    pub fn istioctl_cells(&self) -> Vec<[String; 4]> {
        let addresses = self.addresses.join(",");
        self.chains
            .iter()
            .map(|c| {
                [
                    addresses.clone(),
                    self.port.to_string(),
                    c.matches.clone(),
                    c.destination.clone(),
                ]
            })
            .collect()
    }

    /// The line `istioctl --verbose=false` prints for this listener.
    pub fn istioctl_short_cells(&self) -> [String; 3] {
        [
            self.addresses.join(","),
            self.port.to_string(),
            self.kind.clone(),
        ]
    }
}

/// Puts rows in `istioctl`'s order: by port, first address, then type. [`Order::Istioctl`]
/// keeps only active (dynamic) and static listeners, as `istioctl` lists them.
pub fn arrange(rows: Vec<ListenerRow>, order: Order) -> Vec<ListenerRow> {
    order.arrange(
        rows,
        |r| r.state,
        |a, b| {
            if a.port != b.port {
                return a.port < b.port;
            }
            if a.addresses[0] != b.addresses[0] {
                return a.addresses[0] < b.addresses[0];
            }
            a.kind < b.kind
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_read_like_istioctl() {
        let m = FilterChainMatch {
            destination_port: Some(9080),
            transport_protocol: Some("tls".into()),
            application_protocols: vec!["istio-peer-exchange".into(), "istio".into()],
            ..Default::default()
        };
        assert_eq!(describe_match(&m), "Trans: tls; App: TCP TLS; Addr: *:9080");
        assert_eq!(describe_match(&FilterChainMatch::default()), "ALL");
        let m = FilterChainMatch {
            server_names: vec!["a.com".into(), "b.com".into()],
            prefix_ranges: vec![crate::model::Cidr {
                address: "10.0.0.0".into(),
                prefix_len: 8,
            }],
            application_protocols: vec!["h2".into()],
            ..Default::default()
        };
        assert_eq!(
            describe_match(&m),
            "SNI: a.com,b.com; App: h2; Addr: 10.0.0.0/8"
        );
    }
}
