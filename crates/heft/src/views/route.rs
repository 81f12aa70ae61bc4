//! `routes`: one row per route of each virtual host (`istioctl proxy-config route`).

use super::listener::describe_path;
use super::{istio_config_name, parse_int, Order, Pricing};
use crate::model::{Action, RouteConfig, RouteTarget, Span, State};
use serde::Serialize;
use std::collections::HashSet;

/// `istioctl proxy-config route`'s filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteFilter {
    /// `--name`: the route configuration's name is exactly this.
    pub name: Option<String>,
}

impl RouteFilter {
    /// Whether a route configuration of this name passes.
    pub fn accepts(&self, name: &str) -> bool {
        self.name
            .as_deref()
            .is_none_or(|want| want.is_empty() || want == name)
    }
}

/// One route (or one virtual host without routes, which answers 404).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    /// The route configuration's name.
    pub route_config: String,
    /// The virtual host's name.
    pub virtual_host: String,
    /// The virtual host's domains, shortened as `istioctl` shows them.
    pub domains: String,
    /// The route's path rule (`/get*`, `/exact`, `PathPrefix:/p`, `regex …`).
    #[serde(rename = "match")]
    pub matches: String,
    /// The VirtualService that made the route (`name.namespace`), or `404` for a virtual host
    /// without routes.
    pub virtual_service: String,
    /// Where the route sends requests: a cluster, weighted clusters (`a=90,b=10`), or what it
    /// does instead (`redirect`, `direct_response 200`).
    pub destination: String,
    /// The route's name, when it has one.
    pub name: Option<String>,
    /// The route configuration's state.
    pub state: State,
    /// The route's predicted bytes (the virtual host's, for a 404 row).
    pub cost: Option<u64>,
}

/// One route configuration and its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteConfigRows {
    /// Its name.
    pub name: String,
    /// Static (inline or bootstrap) or active (RDS).
    pub state: State,
    /// How many virtual hosts it has.
    pub virtual_hosts: usize,
    /// Its predicted bytes.
    pub cost: Option<u64>,
    /// Its routes, in order (routes to `PassthroughCluster` are left out, as `istioctl` does).
    pub routes: Vec<RouteRow>,
    /// Where the resource's dump entry sat in the input, to print it as it was.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The columns `istioctl` prints by default (`--verbose`).
pub const ISTIOCTL_COLUMNS: [&str; 5] =
    ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"];
/// The columns `istioctl` prints with `--verbose=false`.
pub const ISTIOCTL_SHORT_COLUMNS: [&str; 2] = ["NAME", "VIRTUAL HOSTS"];

/// A virtual host's domains as `istioctl` shows them: the one domain, or the domains without a
/// port (IPv6 literals kept), without the `.svc` and `.svc.cluster.local` expansions of a name
/// also listed, at most two and a count of the rest.
pub fn describe_domains(domains: &[Box<str>]) -> String {
    match domains {
        [] => return String::new(),
        [one] => return one.to_string(),
        _ => {}
    }
    let without_port: Vec<&str> = domains
        .iter()
        .map(|d| &**d)
        .filter(|d| !d.contains(':') || (d.matches(':').count() > 2 && d.ends_with(']')))
        .collect();
    let unique: HashSet<&str> = without_port.iter().copied().collect();
    let expanded = |h: &str| {
        [".svc.cluster.local", ".svc"].iter().any(|suffix| {
            h.strip_suffix(suffix)
                .is_some_and(|short| unique.contains(short))
        })
    };
    let kept: Vec<&str> = without_port
        .iter()
        .copied()
        .filter(|h| !expanded(h))
        .collect();
    const MAX: usize = 2;
    if kept.len() > MAX {
        return format!("{} + {} more...", kept[..MAX].join(", "), kept.len() - MAX);
    }
    kept.join(", ")
}

fn describe_action(action: &Action) -> String {
    match action {
        Action::Route(r) => match &r.target {
            RouteTarget::Cluster(c) => c.to_string(),
            RouteTarget::Weighted(ws) => ws
                .iter()
                .map(|w| format!("{}={}", w.name, w.weight))
                .collect::<Vec<_>>()
                .join(","),
            RouteTarget::ClusterHeader(h) => format!("header:{h}"),
            RouteTarget::Plugin(p) => format!("plugin:{p}"),
            RouteTarget::None => String::new(),
        },
        Action::Redirect { .. } => "redirect".into(),
        Action::DirectResponse { status, .. } => format!("direct_response {status}"),
        Action::Other => String::new(),
    }
}

fn is_passthrough(action: &Action) -> bool {
    matches!(action, Action::Route(r) if matches!(&r.target, RouteTarget::Cluster(c) if &**c == "PassthroughCluster"))
}

/// The rows of one route configuration, or `None` when the filter drops it.
pub fn route_rows(
    rc: &RouteConfig,
    filter: &RouteFilter,
    pricing: &dyn Pricing,
) -> Option<RouteConfigRows> {
    if !filter.accepts(&rc.name) {
        return None;
    }
    let mut routes = Vec::new();
    for (v, vh) in rc.virtual_hosts.iter().enumerate() {
        let domains = describe_domains(&vh.domains);
        for (i, r) in vh.routes.iter().enumerate() {
            if is_passthrough(&r.action) {
                continue;
            }
            routes.push(RouteRow {
                route_config: rc.name.to_string(),
                virtual_host: vh.name.to_string(),
                domains: domains.clone(),
                matches: describe_path(&r.route_match.path),
                virtual_service: istio_config_name(r.istio_config.as_deref()),
                destination: describe_action(&r.action),
                name: r.name.as_deref().map(str::to_string),
                state: rc.meta.state,
                cost: pricing.route(rc, v, i),
            });
        }
        if vh.routes.is_empty() {
            routes.push(RouteRow {
                route_config: rc.name.to_string(),
                virtual_host: vh.name.to_string(),
                domains,
                matches: "/*".into(),
                virtual_service: "404".into(),
                destination: String::new(),
                name: None,
                state: rc.meta.state,
                cost: pricing.virtual_host(rc, v),
            });
        }
    }
    Some(RouteConfigRows {
        name: rc.name.to_string(),
        state: rc.meta.state,
        virtual_hosts: rc.virtual_hosts.len(),
        cost: pricing.route_config(rc),
        routes,
        span: rc.meta.span,
    })
}

impl RouteRow {
    /// The line `istioctl` prints for this route.
    pub fn istioctl_cells(&self) -> [String; 5] {
        [
            self.route_config.clone(),
            self.virtual_host.clone(),
            self.domains.clone(),
            self.matches.clone(),
            self.virtual_service.clone(),
        ]
    }
}

impl RouteConfigRows {
    /// The line `istioctl --verbose=false` prints for this route configuration.
    pub fn istioctl_short_cells(&self) -> [String; 2] {
        [self.name.clone(), self.virtual_hosts.to_string()]
    }
}

/// Puts route configurations in `istioctl`'s order: RDS ones before static ones, then its sort,
/// which compares two configurations only when both names are numbers (ports) and otherwise
/// leaves them where they are. [`Order::Istioctl`] and [`Order::Heft`] keep the same rows:
/// route configurations are never warming.
pub fn arrange(configs: Vec<RouteConfigRows>, order: Order) -> Vec<RouteConfigRows> {
    order.arrange(
        configs,
        |c| c.state,
        |a, b| match (parse_int(&a.name), parse_int(&b.name)) {
            (Some(x), Some(y)) => x < y,
            _ => false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(v: &[&str]) -> Vec<Box<str>> {
        v.iter().map(|s| (*s).into()).collect()
    }

    #[test]
    fn domains_drop_ports_and_expansions_and_count_the_rest() {
        let d = boxed(&[
            "reviews.default.svc.cluster.local",
            "reviews.default.svc.cluster.local:9080",
            "reviews",
            "reviews:9080",
            "reviews.default.svc",
            "reviews.default.svc:9080",
            "reviews.default",
            "reviews.default:9080",
            "10.96.1.2",
            "10.96.1.2:9080",
        ]);
        assert_eq!(describe_domains(&d), "reviews, reviews.default + 1 more...");
        assert_eq!(describe_domains(&boxed(&["*"])), "*");
        assert_eq!(
            describe_domains(&boxed(&["a:80", "[fd00:10::7fc7]", "[fd00:10::7fc7]:80"])),
            "[fd00:10::7fc7]"
        );
        assert_eq!(describe_domains(&[]), "");
    }
}
