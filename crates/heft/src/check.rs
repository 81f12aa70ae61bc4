//! `check`: what is wrong in one dump, each finding with its consequence.
//!
//! [`check`] reads the model only. Each [`Finding`] has a severity, a stable code, the resource
//! and one line saying what happens because of it:
//!
//! | code | severity | what |
//! |---|---|---|
//! | `rejected` | error | an update Envoy NACKed: it runs the version before |
//! | `missing-cluster` | error | a route or TCP proxy names a cluster the dump lacks: 503, `NC` |
//! | `duplicate-domain` | error | two virtual hosts of one route configuration claim a domain |
//! | `missing-secret` | error | a TLS context names an SDS secret the dump lacks |
//! | `cert-expired` | error | a certificate's validity has ended |
//! | `warming` | warning | received, not in use until what it waits for arrives |
//! | `shadowed-route` | warning | an earlier route of its virtual host takes every request it would |
//! | `unreachable-filter-chain` | warning | a listener's filter chain no connection can select |
//! | `no-endpoints` | warning | an EDS cluster with no endpoint: 503, `UH` |
//! | `all-unhealthy` | warning | every endpoint unhealthy: Envoy balances over all of them (panic mode) |
//! | `cert-expiring` | warning | a certificate ends within the window asked for |
//! | `unused-cluster` | info | a service cluster nothing routes to |
//!
//! ```
//! let dump = heft::Dump::from_slice(br#"{"configs": [{
//!   "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
//!   "dynamic_route_configs": [{"route_config": {"name": "80", "virtual_hosts": [
//!     {"name": "a", "domains": ["a.example.com"], "routes": [
//!       {"match": {"prefix": "/"}, "route": {"cluster": "gone"}},
//!       {"match": {"prefix": "/api"}, "route": {"cluster": "gone"}}]}]}}]}]}"#)?;
//! let findings = heft::check::check(&dump, &heft::check::Options::default());
//! let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
//! assert_eq!(codes, ["shadowed-route"]); // no clusters in the dump: none can be called missing
//! # Ok::<(), heft::Error>(())
//! ```

use crate::model::{
    Action, Discovery, Dump, HealthStatus, NetworkFilter, PathMatch, RouteConfig, RouteMatch,
    State, VirtualHost,
};
use crate::scope::service_of;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Traffic fails or configuration is not applied.
    Error,
    /// Traffic may go where it should not, or will fail soon.
    Warning,
    /// Costs memory or attention, harms nothing.
    Info,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// A stable code (see the module's table).
    pub code: &'static str,
    /// The resource's kind: `cluster`, `listener`, `route_config`, `route`, `virtual_host`,
    /// `endpoint_config`, `secret`.
    pub kind: &'static str,
    /// The resource, as the dump names it (a route: `route configuration/virtual host/route`).
    pub name: String,
    /// What it is and what happens because of it, in one line.
    pub message: String,
}

/// What [`check`] looks for beyond the dump.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds since the epoch to judge certificates at.
    pub now_unix: i64,
    /// A certificate ending within this many days is `cert-expiring`.
    pub within_days: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            now_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            within_days: 30,
        }
    }
}

/// Every finding in `dump`, most severe first, then by code and resource.
pub fn check(dump: &Dump, options: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    readiness(dump, &mut out);
    routes(dump, &mut out);
    filter_chains(dump, &mut out);
    secrets(dump, options, &mut out);
    endpoints(dump, &mut out);
    unused(dump, &mut out);
    out.sort_by(|a, b| {
        (a.severity, a.code, &a.kind, &a.name).cmp(&(b.severity, b.code, &b.kind, &b.name))
    });
    out.dedup();
    out
}

fn finding(
    severity: Severity,
    code: &'static str,
    kind: &'static str,
    name: impl Into<String>,
    message: String,
) -> Finding {
    Finding {
        severity,
        code,
        kind,
        name: name.into(),
        message,
    }
}

fn readiness(dump: &Dump, out: &mut Vec<Finding>) {
    let summary = crate::Summary::of(dump);
    for r in summary.rejected {
        let when = r
            .when
            .as_deref()
            .map_or(String::new(), |w| format!(" (last tried {w})"));
        out.push(finding(
            Severity::Error,
            "rejected",
            r.kind,
            r.name,
            format!(
                "Envoy rejected this update{when} and runs the version it accepted before: {}",
                r.message
            ),
        ));
    }
    for w in summary.warming {
        out.push(finding(
            Severity::Warning,
            "warming",
            w.kind,
            w.name,
            format!(
                "received but not in use until it gets {}",
                if w.waits_for.is_empty() {
                    "what it waits for".to_string()
                } else {
                    w.waits_for.join(", ")
                }
            ),
        ));
    }
}

fn routes(dump: &Dump, out: &mut Vec<Finding>) {
    let clusters: HashSet<&str> = dump.clusters.iter().map(|c| &*c.name).collect();
    // A dump without clusters (one section, a list of routes) cannot say a cluster is missing.
    let judge_clusters = !clusters.is_empty();
    for rc in dump.route_configs_in_use() {
        let mut domains: HashMap<String, &str> = HashMap::new();
        for vh in &rc.virtual_hosts {
            for d in &vh.domains {
                let key = d.to_ascii_lowercase();
                match domains.get(&key) {
                    Some(first) if *first != &*vh.name => out.push(finding(
                        Severity::Error,
                        "duplicate-domain",
                        "virtual_host",
                        format!("{}/{}", rc.name, vh.name),
                        format!(
                            "domain {d} is also claimed by virtual host {first}: Envoy rejects a route configuration that has a domain twice"
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        domains.insert(key, &vh.name);
                    }
                }
            }
            shadowed(rc, vh, out);
            if judge_clusters {
                for (i, r) in vh.routes.iter().enumerate() {
                    if let Action::Route(a) = &r.action {
                        for c in a.target.clusters().filter(|c| !clusters.contains(c)) {
                            out.push(finding(
                                Severity::Error,
                                "missing-cluster",
                                "route",
                                route_name(rc, vh, i, r.name.as_deref()),
                                format!(
                                    "routes to cluster {c}, which the dump does not hold: requests it takes get 503 with response flag NC"
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    if !judge_clusters {
        return;
    }
    for l in &dump.listeners {
        for fc in l.all_filter_chains() {
            for f in &fc.filters {
                if let NetworkFilter::TcpProxy { config, .. } = f {
                    for c in config.target.clusters().filter(|c| !clusters.contains(c)) {
                        out.push(finding(
                            Severity::Error,
                            "missing-cluster",
                            "listener",
                            l.name.to_string(),
                            format!(
                                "its TCP proxy sends connections to cluster {c}, which the dump does not hold: they are closed (response flag NC)"
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// Filter chains no connection can select: one whose match repeats an earlier chain's; one that
/// wants a destination port the listener never receives (no original destination, and not one
/// of its ports); one that wants a server name, TLS or ALPN that no listener filter detects.
fn filter_chains(dump: &Dump, out: &mut Vec<Finding>) {
    for l in dump
        .listeners
        .iter()
        .filter(|l| l.meta.state != State::Draining)
    {
        if l.filter_chain_matcher.is_some() {
            // The unified matcher chooses chains: filter_chain_match does not apply.
            continue;
        }
        let has = |filter: &str| l.listener_filters.iter().any(|f| f.ends_with(filter));
        let tls_inspector = has("tls_inspector");
        let alpn_inspector = tls_inspector || has("http_inspector");
        let original_dst = l.use_original_dst || has("original_dst");
        let ports: Vec<u32> = l
            .address
            .iter()
            .chain(&l.additional_addresses)
            .filter_map(|a| match a {
                crate::model::Address::Socket { port, .. } => Some(*port),
                _ => None,
            })
            .collect();
        let mut unreachable = |i: usize, fc: &crate::model::FilterChain, why: String| {
            let chain = fc
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .map_or(format!("#{}", i + 1), str::to_string);
            out.push(finding(
                Severity::Warning,
                "unreachable-filter-chain",
                "listener",
                format!("{}/{chain}", l.name),
                format!("no connection reaches this filter chain: {why}"),
            ));
        };
        for (i, fc) in l.filter_chains.iter().enumerate() {
            let m = &fc.filter_chain_match;
            if let Some(j) = l.filter_chains[..i]
                .iter()
                .position(|e| e.filter_chain_match == *m)
            {
                unreachable(
                    i,
                    fc,
                    format!("chain #{} before it matches exactly the same connections (Envoy rejects such a listener)", j + 1),
                );
                continue;
            }
            if let Some(p) = m.destination_port {
                if !original_dst && !ports.is_empty() && !ports.contains(&p) {
                    unreachable(
                        i,
                        fc,
                        format!("it wants destination port {p}, and the listener takes connections only on {ports:?} (no original destination)"),
                    );
                    continue;
                }
            }
            let wants_tls =
                !m.server_names.is_empty() || m.transport_protocol.as_deref() == Some("tls");
            if wants_tls && !tls_inspector {
                unreachable(
                    i,
                    fc,
                    "it wants a TLS server name or transport, and no tls_inspector listener filter reads them".to_string(),
                );
            } else if !m.application_protocols.is_empty() && !alpn_inspector {
                unreachable(
                    i,
                    fc,
                    "it wants ALPN values, and no tls_inspector or http_inspector listener filter reads them".to_string(),
                );
            }
        }
    }
}

fn route_name(rc: &RouteConfig, vh: &VirtualHost, index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{}/{}/{n}", rc.name, vh.name),
        _ => format!("{}/{}/#{}", rc.name, vh.name, index + 1),
    }
}

/// Later routes of `vh` that an earlier one shadows: it matches every request they match.
fn shadowed(rc: &RouteConfig, vh: &VirtualHost, out: &mut Vec<Finding>) {
    for (j, later) in vh.routes.iter().enumerate() {
        if let Some((i, earlier)) = vh.routes[..j]
            .iter()
            .enumerate()
            .find(|(_, e)| covers(&e.route_match, &later.route_match))
        {
            out.push(finding(
                Severity::Warning,
                "shadowed-route",
                "route",
                route_name(rc, vh, j, later.name.as_deref()),
                format!(
                    "never matched: route {} before it in virtual host {} takes every request it would",
                    route_name(rc, vh, i, earlier.name.as_deref()),
                    vh.name
                ),
            ));
        }
    }
}

/// Whether every request `b` matches is matched by `a`, as far as can be decided; `false` when
/// it cannot be (regexes other than match-all, runtime fractions, URI templates).
pub fn covers(a: &RouteMatch, b: &RouteMatch) -> bool {
    if a.runtime_fraction || (a.grpc && !b.grpc) {
        return false;
    }
    let sensitive = |m: &RouteMatch| m.case_sensitive.unwrap_or(true);
    if !matches!(a.path, PathMatch::Any) && sensitive(a) != sensitive(b) && sensitive(a) {
        // A case-sensitive rule does not take the other case of what a case-insensitive one does.
        return false;
    }
    // Every header and query rule of `a` must be one of `b`'s: then `b`'s requests pass them.
    if !a.headers.iter().all(|h| b.headers.contains(h))
        || !a
            .query_parameters
            .iter()
            .all(|q| b.query_parameters.contains(q))
    {
        return false;
    }
    let fold = |s: &str| {
        if sensitive(a) {
            s.to_string()
        } else {
            s.to_ascii_lowercase()
        }
    };
    let all_paths = match &a.path {
        PathMatch::Any => true,
        PathMatch::Prefix(p) => p.is_empty() || &**p == "/",
        PathMatch::SafeRegex(r) => matches!(&**r, ".*" | "/.*" | "^.*$" | "^/.*$"),
        _ => false,
    };
    if all_paths {
        return !matches!(b.path, PathMatch::Connect);
    }
    match (&a.path, &b.path) {
        (PathMatch::Prefix(p), PathMatch::Prefix(q) | PathMatch::Path(q))
        | (PathMatch::Prefix(p), PathMatch::PathSeparatedPrefix(q)) => {
            fold(q).starts_with(&fold(p))
        }
        (PathMatch::Path(p), PathMatch::Path(q)) => fold(p) == fold(q),
        (
            PathMatch::PathSeparatedPrefix(p),
            PathMatch::Path(q) | PathMatch::PathSeparatedPrefix(q),
        ) => {
            let (p, q) = (fold(p), fold(q));
            q == p || q.starts_with(&format!("{p}/"))
        }
        (PathMatch::PathSeparatedPrefix(p), PathMatch::Prefix(q)) => {
            fold(q).starts_with(&format!("{}/", fold(p)))
        }
        _ => false,
    }
}

fn secrets(dump: &Dump, options: &Options, out: &mut Vec<Finding>) {
    let known: HashSet<&str> = dump.secrets.iter().map(|s| &*s.name).collect();
    // A dump without a secrets section cannot say a secret is missing.
    let has_secrets = dump
        .sections
        .iter()
        .any(|s| s.type_url.ends_with("SecretsConfigDump"))
        || !known.is_empty();
    if has_secrets {
        let mut missing = |kind: &'static str, name: &str, secret: &str| {
            if !known.contains(secret) {
                out.push(finding(
                    Severity::Error,
                    "missing-secret",
                    kind,
                    name,
                    format!(
                        "its TLS context names SDS secret {secret}, which the dump does not hold: the context is not built and TLS with it fails"
                    ),
                ));
            }
        };
        for c in &dump.clusters {
            for s in c.sds_secrets() {
                missing("cluster", &c.name, s);
            }
        }
        for l in &dump.listeners {
            for s in l.sds_secrets() {
                missing("listener", &l.name, s);
            }
        }
    }
    let window = i64::from(options.within_days) * 86_400;
    for s in &dump.secrets {
        for c in &s.certificates {
            let who = match (c.subject.is_empty(), c.sans.first()) {
                (true, Some(san)) => san.to_string(),
                _ => c.subject.to_string(),
            };
            let left = c.not_after_unix - options.now_unix;
            if left < 0 {
                out.push(finding(
                    Severity::Error,
                    "cert-expired",
                    "secret",
                    s.name.to_string(),
                    format!(
                        "certificate {who} (serial {}) expired {}: peers refuse it",
                        c.serial, c.not_after
                    ),
                ));
            } else if left < window {
                out.push(finding(
                    Severity::Warning,
                    "cert-expiring",
                    "secret",
                    s.name.to_string(),
                    format!(
                        "certificate {who} (serial {}) expires {}, in {} day(s)",
                        c.serial,
                        c.not_after,
                        left / 86_400
                    ),
                ));
            }
        }
    }
}

fn endpoints(dump: &Dump, out: &mut Vec<Finding>) {
    let by_name: HashMap<&str, &crate::model::LoadAssignment> = dump
        .endpoint_configs
        .iter()
        .map(|la| (&*la.cluster_name, la))
        .collect();
    for la in &dump.endpoint_configs {
        let mut hosts = la.endpoints().peekable();
        if hosts.peek().is_none() {
            continue;
        }
        let all_unhealthy = hosts.all(|e| {
            matches!(
                e.health,
                HealthStatus::Unhealthy | HealthStatus::Draining | HealthStatus::Timeout
            )
        });
        if all_unhealthy {
            out.push(finding(
                Severity::Warning,
                "all-unhealthy",
                "endpoint_config",
                la.cluster_name.to_string(),
                format!(
                    "all {} endpoints are unhealthy: Envoy runs the cluster in panic mode and balances over all of them, unhealthy ones included",
                    la.endpoints().count()
                ),
            ));
        }
    }
    // Without any endpoint configuration the dump was taken without ?include_eds: the summary's
    // warning says so once instead of once per cluster.
    if dump.endpoint_configs.is_empty() {
        return;
    }
    for c in dump
        .clusters
        .iter()
        .filter(|c| c.discovery == Discovery::Eds && c.meta.state != State::Warming)
    {
        let name = c.eds_service_name.as_deref().unwrap_or(&c.name);
        if by_name
            .get(name)
            .is_none_or(|la| la.endpoints().next().is_none())
        {
            out.push(finding(
                Severity::Warning,
                "no-endpoints",
                "cluster",
                c.name.to_string(),
                "an EDS cluster with no endpoint: requests routed to it get 503 with response flag UH".to_string(),
            ));
        }
    }
}

fn unused(dump: &Dump, out: &mut Vec<Finding>) {
    let refs = crate::why::references(dump);
    let dynamic_route = if refs.cluster_header_routes {
        " (a route picks its cluster from a request header: it may still be used)"
    } else {
        ""
    };
    let unused: BTreeSet<&str> = dump
        .clusters
        .iter()
        .filter(|c| service_of(c).is_some() && !refs.clusters.contains(&*c.name))
        .map(|c| &*c.name)
        .collect();
    for name in unused {
        out.push(finding(
            Severity::Info,
            "unused-cluster",
            "cluster",
            name,
            format!(
                "no route or TCP proxy sends traffic to it: it costs memory and serves nothing{dynamic_route}"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HeaderMatch, StringMatch};

    fn m(path: PathMatch) -> RouteMatch {
        RouteMatch {
            path,
            ..RouteMatch::default()
        }
    }

    #[test]
    fn path_rules_cover_what_envoy_would_send_to_them_first() {
        let prefix = |p: &str| m(PathMatch::Prefix(p.into()));
        let path = |p: &str| m(PathMatch::Path(p.into()));
        let sep = |p: &str| m(PathMatch::PathSeparatedPrefix(p.into()));
        let regex = |r: &str| m(PathMatch::SafeRegex(r.into()));
        assert!(covers(&prefix("/"), &path("/x")));
        assert!(covers(&prefix("/api"), &prefix("/api/v1")));
        assert!(covers(&prefix("/api"), &path("/apix")));
        assert!(!covers(&prefix("/api/v1"), &prefix("/api")));
        assert!(covers(&path("/a"), &path("/a")));
        assert!(!covers(&path("/a"), &prefix("/a")));
        assert!(covers(&sep("/api"), &path("/api/x")));
        assert!(covers(&sep("/api"), &path("/api")));
        assert!(!covers(&sep("/api"), &path("/apix")));
        assert!(covers(&sep("/api"), &prefix("/api/")));
        assert!(!covers(&sep("/api"), &prefix("/api")));
        assert!(covers(&regex(".*"), &regex("/a[0-9]+")));
        assert!(
            !covers(&regex("/a.*"), &prefix("/a")),
            "not decided: not claimed"
        );
        assert!(covers(&prefix("/"), &regex("/a.*")));
        assert!(!covers(&prefix("/"), &m(PathMatch::Connect)));
    }

    #[test]
    fn filter_chains_no_connection_can_select_are_found() {
        let dump = crate::Dump::from_slice(
            br#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "dynamic_listeners": [{"name": "l", "active_state": {"listener": {"name": "l",
              "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
              "filter_chains": [
                {"name": "port-ok", "filter_chain_match": {"destination_port": 8080}},
                {"name": "port-never", "filter_chain_match": {"destination_port": 9090}},
                {"name": "sni", "filter_chain_match": {"server_names": ["a.test"]}},
                {"name": "alpn", "filter_chain_match": {"application_protocols": ["h2"]}},
                {"name": "again", "filter_chain_match": {"destination_port": 8080}}]}}}]}]}"#,
        )
        .unwrap();
        let names: Vec<String> = check(&dump, &Options::default())
            .into_iter()
            .filter(|f| f.code == "unreachable-filter-chain")
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["l/again", "l/alpn", "l/port-never", "l/sni"]);
    }

    #[test]
    fn a_domain_claimed_twice_is_found_in_any_case() {
        let dump = crate::Dump::from_slice(
            br#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "dynamic_route_configs": [{"route_config": {"name": "80", "virtual_hosts": [
              {"name": "a", "domains": ["a.example.com", "b.example.com"]},
              {"name": "b", "domains": ["B.example.com"]},
              {"name": "c", "domains": ["c.example.com"]}]}}]}]}"#,
        )
        .unwrap();
        let f = check(&dump, &Options::default());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].code, f[0].name.as_str()),
            ("duplicate-domain", "80/b")
        );
        assert!(f[0].message.contains("virtual host a"), "{}", f[0].message);
    }

    #[test]
    fn header_rules_and_case_narrow_what_a_route_covers() {
        let h = HeaderMatch {
            name: "x-canary".into(),
            rule: StringMatch::Exact("1".into()),
            invert: false,
            treat_missing_header_as_empty: false,
            ignore_case: false,
        };
        let with = RouteMatch {
            path: PathMatch::Prefix("/".into()),
            headers: vec![h.clone()],
            ..RouteMatch::default()
        };
        let plain = m(PathMatch::Prefix("/".into()));
        assert!(
            !covers(&with, &plain),
            "the header rule lets some requests through"
        );
        assert!(covers(&plain, &with));
        assert!(covers(&with, &with.clone()));
        let insensitive = RouteMatch {
            path: PathMatch::Prefix("/API".into()),
            case_sensitive: Some(false),
            ..RouteMatch::default()
        };
        assert!(covers(&insensitive, &m(PathMatch::Prefix("/api/x".into()))));
        assert!(!covers(
            &m(PathMatch::Prefix("/api".into())),
            &RouteMatch {
                path: PathMatch::Prefix("/api/x".into()),
                case_sensitive: Some(false),
                ..RouteMatch::default()
            }
        ));
        let sampled = RouteMatch {
            runtime_fraction: true,
            ..plain.clone()
        };
        assert!(!covers(&sampled, &plain));
    }
}
