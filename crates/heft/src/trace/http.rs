//! The HTTP side: what the connection manager does to the request, which virtual host and route
//! take it, and what the route does.
//!
//! Virtual hosts are chosen on the lower-cased `:authority` (or `vhost_header`), without its
//! port under `ignore_port_in_host_matching`: an exact domain first, then the longest `*suffix`
//! wildcard, then the longest `prefix*` wildcard, then `*` (Envoy's `RouteMatcher`). A wildcard
//! must leave at least one character to match. Routes are tried in order and the first whose
//! path, headers, query parameters, gRPC and runtime conditions all hold takes the request.

use super::matcher::{self, Check, Headers};
use super::upstream;
use super::{
    ActionSeen, Candidate, Connection, HeaderSeen, HttpStep, Outcome, OutcomeKind, Query,
    RequestSeen, RouteConfigSeen, RouteStep, Upstream, Verdict, VirtualHostStep,
};
use crate::model::{
    Action, HttpConnectionManager, RouteConfig, RouteSource, RouteTarget, State, VirtualHost,
};
use crate::Dump;

/// `Http::HeaderUtility::getPortStart`: the `:port` of a host, not inside an IPv6 literal.
fn port_start(host: &str) -> Option<usize> {
    let colon = host.rfind(':')?;
    match host.rfind(']') {
        Some(end) if end > colon => None,
        _ => Some(colon),
    }
}

/// RFC 3986 dot-segment removal, as `normalize_path` does (Envoy also re-escapes some
/// characters; Heft does not).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn split_query(path: &str) -> (&str, &str) {
    match path.find(['?', '#']) {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    }
}

/// Replaces `%2F` and `%5C` (any case) with `/` and `\`.
fn unescape_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).map(|c| c.to_ascii_uppercase());
        match code.as_deref() {
            Some("2F") => {
                out.push('/');
                rest = &rest[i + 3..];
            }
            Some("5C") => {
                out.push('\\');
                rest = &rest[i + 3..];
            }
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What the connection manager hands the router, or the status it answers with itself.
struct Prepared {
    seen: RequestSeen,
    headers: Headers,
    reject: Option<(u32, String)>,
}

fn prepare(
    hcm: &HttpConnectionManager,
    q: &Query,
    conn: &Connection,
    tls: bool,
    notes: &mut Vec<String>,
) -> Prepared {
    let default = super::HttpRequest::default();
    let req = q.http.as_ref().unwrap_or_else(|| {
        notes.push("no HTTP request was given: Heft assumes GET / (--host, --path)".into());
        &default
    });
    let scheme = if tls { "https" } else { "http" };
    let mut changes = Vec::new();
    let header_host = req
        .headers
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let mut authority = match req.host.clone().or(header_host) {
        Some(h) => h,
        None => {
            let base = conn
                .server_name
                .clone()
                .or_else(|| q.sni.clone())
                .or_else(|| {
                    conn.destination_ip.as_ref().map(|ip| {
                        if ip.contains(':') {
                            format!("[{ip}]")
                        } else {
                            ip.clone()
                        }
                    })
                })
                .unwrap_or_else(|| "localhost".into());
            let default_port = if tls { 443 } else { 80 };
            let host = if conn.destination_port == default_port {
                base
            } else {
                format!("{base}:{}", conn.destination_port)
            };
            notes.push(format!(
                "no host was given: Heft assumes Host: {host}, as curl would send it"
            ));
            host
        }
    };
    if hcm.strip_trailing_host_dot {
        let (name, port) = match port_start(&authority) {
            Some(i) => (authority[..i].to_string(), authority[i..].to_string()),
            None => (authority.clone(), String::new()),
        };
        if let Some(stripped) = name.strip_suffix('.') {
            authority = format!("{stripped}{port}");
            changes.push("strip_trailing_host_dot removed the host's trailing dot".to_string());
        }
    }
    if let Some(i) = port_start(&authority) {
        let port: Option<u32> = authority[i + 1..].parse().ok();
        if port.is_some()
            && (hcm.strip_any_host_port
                || (hcm.strip_matching_host_port && port == Some(conn.destination_port)))
        {
            changes.push(format!(
                "{} removed the host's port",
                if hcm.strip_any_host_port {
                    "strip_any_host_port"
                } else {
                    "strip_matching_host_port"
                }
            ));
            authority.truncate(i);
        }
    }
    let mut path = req.path.clone();
    let mut reject = None;
    let (only, rest) = split_query(&req.path);
    if let Some(action @ ("UNESCAPE_AND_FORWARD" | "UNESCAPE_AND_REDIRECT" | "REJECT_REQUEST")) =
        hcm.path_with_escaped_slashes_action.as_deref()
    {
        let unescaped = unescape_slashes(only);
        if unescaped != only {
            match action {
                "REJECT_REQUEST" => {
                    reject = Some((
                        400,
                        "the path has escaped slashes and path_with_escaped_slashes_action is \
                         REJECT_REQUEST"
                            .into(),
                    ))
                }
                "UNESCAPE_AND_REDIRECT" => {
                    reject = Some((
                        307,
                        format!(
                            "the path has escaped slashes: Envoy redirects to {unescaped}{rest} \
                             (UNESCAPE_AND_REDIRECT)"
                        ),
                    ))
                }
                _ => {
                    changes.push(format!(
                        "UNESCAPE_AND_FORWARD unescaped slashes: {only} -> {unescaped}"
                    ));
                    path = format!("{unescaped}{rest}");
                }
            }
        }
    }
    if hcm.normalize_path == Some(true) {
        let (only, rest) = split_query(&path);
        let normal = remove_dot_segments(only);
        if normal != only {
            changes.push(format!("normalize_path: {only} -> {normal}"));
            path = format!("{normal}{rest}");
        }
    }
    if hcm.merge_slashes {
        let (only, rest) = split_query(&path);
        let mut merged = String::with_capacity(only.len());
        for c in only.chars() {
            if !(c == '/' && merged.ends_with('/')) {
                merged.push(c);
            }
        }
        if merged != only {
            changes.push(format!("merge_slashes: {only} -> {merged}"));
            path = format!("{merged}{rest}");
        }
    }
    let user_xfp = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-proto"))
        .map(|(_, v)| v.clone());
    let mut entries = vec![
        (":authority".to_string(), authority.clone()),
        (":path".to_string(), path.clone()),
        (":method".to_string(), req.method.clone()),
        (":scheme".to_string(), scheme.to_string()),
    ];
    if user_xfp.is_none() {
        entries.push(("x-forwarded-proto".into(), scheme.into()));
    }
    for (k, v) in &req.headers {
        let k = k.to_ascii_lowercase();
        if k != "host" {
            entries.push((k, v.clone()));
        }
    }
    let headers = Headers { entries };
    Prepared {
        seen: RequestSeen {
            method: req.method.clone(),
            scheme: scheme.into(),
            authority,
            path,
            headers: headers
                .entries
                .iter()
                .map(|(name, value)| HeaderSeen {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            changes,
        },
        headers,
        reject,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DomainKind {
    Default,
    Prefix,
    Suffix,
    Exact,
}

impl DomainKind {
    fn name(self) -> &'static str {
        match self {
            DomainKind::Exact => "exact",
            DomainKind::Suffix => "suffix_wildcard",
            DomainKind::Prefix => "prefix_wildcard",
            DomainKind::Default => "default",
        }
    }
}

/// How one domain matches `host`: its kind and its specificity (the wildcard's literal length).
fn domain_match(domain: &str, host: &str) -> Option<(DomainKind, usize)> {
    let d = domain.to_ascii_lowercase();
    if d == "*" {
        return Some((DomainKind::Default, 0));
    }
    if let Some(suffix) = d.strip_prefix('*') {
        return (suffix.len() < host.len() && host.ends_with(suffix))
            .then_some((DomainKind::Suffix, suffix.len()));
    }
    if let Some(prefix) = d.strip_suffix('*') {
        return (prefix.len() < host.len() && host.starts_with(prefix))
            .then_some((DomainKind::Prefix, prefix.len()));
    }
    (d == host).then_some((DomainKind::Exact, d.len()))
}

/// The best domain of a virtual host for `host`.
fn best_domain<'a>(v: &'a VirtualHost, host: &str) -> Option<(DomainKind, usize, &'a str)> {
    v.domains
        .iter()
        .filter_map(|d| domain_match(d, host).map(|(k, n)| (k, n, &**d)))
        .max_by_key(|(k, n, _)| (*k, *n))
}

fn select_virtual_host<'a>(
    rc: &'a RouteConfig,
    headers: &Headers,
) -> (VirtualHostStep, Option<&'a VirtualHost>) {
    let mut step = VirtualHostStep::default();
    let raw = match &rc.vhost_header {
        Some(h) => headers.first(h).map(str::to_string),
        None => headers.first(":authority").map(str::to_string),
    };
    let only_default = rc
        .virtual_hosts
        .iter()
        .all(|v| v.domains.iter().all(|d| &**d == "*"));
    let Some(raw) = raw else {
        let name = rc.vhost_header.as_deref().unwrap_or(":authority");
        step.candidates = rc
            .virtual_hosts
            .iter()
            .enumerate()
            .map(|(i, v)| Candidate {
                name: v.name.to_string(),
                index: Some(i),
                detail: v.domains.join(", "),
                verdict: Verdict::Rejected,
                reasons: vec![format!("the request has no {name} header")],
            })
            .collect();
        return (step, None);
    };
    let mut host = raw.clone();
    if rc.ignore_port_in_host_matching {
        if let Some(i) = port_start(&host) {
            host.truncate(i);
        }
    }
    let host = host.to_ascii_lowercase();
    step.host = host.clone();
    let scored: Vec<Option<(DomainKind, usize, &str)>> = rc
        .virtual_hosts
        .iter()
        .map(|v| {
            if only_default {
                // Envoy's fast path: with only `*`, the default host takes every request.
                v.domains
                    .iter()
                    .find(|d| &***d == "*")
                    .map(|d| (DomainKind::Default, 0, &**d))
            } else {
                best_domain(v, &host)
            }
        })
        .collect();
    let winner = scored
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|(k, n, _)| (i, k, n)))
        .max_by(|a, b| (a.1, a.2).cmp(&(b.1, b.2)).then(b.0.cmp(&a.0)));
    step.candidates = rc
        .virtual_hosts
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (verdict, reason) = match (scored[i], winner) {
                (Some((k, _, d)), Some((w, _, _))) if w == i => {
                    step.selected = Some(v.name.to_string());
                    step.matched_domain = Some(d.to_string());
                    step.match_kind = Some(k.name().to_string());
                    (
                        Verdict::Selected,
                        format!(
                            "domain {d} matches host {host} ({})",
                            k.name().replace('_', " ")
                        ),
                    )
                }
                (Some((k, _, d)), Some((w, wk, _))) => (
                    Verdict::Rejected,
                    format!(
                        "domain {d} matches host {host} ({}), but {}'s {} match is more specific",
                        k.name().replace('_', " "),
                        rc.virtual_hosts[w].name,
                        wk.name().replace('_', " ")
                    ),
                ),
                _ => (Verdict::Rejected, format!("no domain matches host {host}")),
            };
            Candidate {
                name: v.name.to_string(),
                index: Some(i),
                detail: v.domains.join(", "),
                verdict,
                reasons: vec![reason],
            }
        })
        .collect();
    let chosen = winner.map(|(i, _, _)| &rc.virtual_hosts[i]);
    (step, chosen)
}

/// Every condition of one route, in Envoy's order, then the path.
fn route_checks(
    r: &crate::model::Route,
    headers: &Headers,
    path: &str,
    method: &str,
    ignore_path_parameters: bool,
) -> Vec<Check> {
    let m = &r.route_match;
    let mut checks = Vec::new();
    if m.runtime_fraction {
        checks.push(Check::Unknown(
            "runtime_fraction: Envoy samples a fraction of requests at random".into(),
        ));
    }
    if m.grpc && !matcher::is_grpc(headers) {
        checks.push(Check::Fails(
            "gRPC only, and content-type is not application/grpc".into(),
        ));
    }
    for h in &m.headers {
        checks.push(matcher::header(h, headers));
    }
    if !m.query_parameters.is_empty() {
        let params = matcher::query_parameters(path);
        for q in &m.query_parameters {
            checks.push(matcher::query_parameter(q, &params));
        }
    }
    checks.push(matcher::path(m, path, method, ignore_path_parameters));
    checks
}

fn redirect_status(code: &str) -> u32 {
    match code {
        "FOUND" => 302,
        "SEE_OTHER" => 303,
        "TEMPORARY_REDIRECT" => 307,
        "PERMANENT_REDIRECT" => 308,
        _ => 301,
    }
}

fn http_outcome(kind: OutcomeKind, status: Option<u32>, summary: String) -> Outcome {
    Outcome {
        kind,
        certain: true,
        status,
        clusters: Vec::new(),
        summary,
    }
}

/// Routes the request through `hcm`.
pub(crate) fn route(
    dump: &Dump,
    hcm: &HttpConnectionManager,
    q: &Query,
    conn: &Connection,
    tls: bool,
    notes: &mut Vec<String>,
) -> (HttpStep, Outcome, Vec<Upstream>) {
    let prepared = prepare(hcm, q, conn, tls, notes);
    let mut step = HttpStep {
        request: prepared.seen,
        ..HttpStep::default()
    };
    let headers = prepared.headers;
    let rc: Option<&RouteConfig> = match &hcm.routes {
        RouteSource::Rds { route_config_name } => {
            step.route_config = RouteConfigSeen {
                name: Some(route_config_name.to_string()),
                source: "rds".into(),
                found: false,
            };
            dump.route_configs.iter().find(|rc| {
                rc.name == *route_config_name
                    && matches!(rc.meta.state, State::Active | State::Static)
            })
        }
        RouteSource::Inline(rc) => {
            step.route_config = RouteConfigSeen {
                name: (!rc.name.is_empty()).then(|| rc.name.to_string()),
                source: "inline".into(),
                found: false,
            };
            Some(&**rc)
        }
        RouteSource::Scoped => {
            step.route_config.source = "scoped".into();
            None
        }
        RouteSource::None => {
            step.route_config.source = "none".into();
            None
        }
    };
    if let Some((status, why)) = prepared.reject {
        let kind = if status == 307 {
            OutcomeKind::Redirect
        } else {
            OutcomeKind::Rejected
        };
        return (step, http_outcome(kind, Some(status), why), Vec::new());
    }
    let Some(rc) = rc else {
        let out = match step.route_config.source.as_str() {
            "rds" => {
                let mut o = http_outcome(
                    OutcomeKind::NoRoute,
                    Some(404),
                    format!(
                        "route configuration {} is not in the dump: Envoy would have no routes \
                         (404) until RDS delivers it",
                        step.route_config.name.as_deref().unwrap_or("")
                    ),
                );
                o.certain = false;
                o
            }
            "scoped" => {
                let mut o = http_outcome(
                    OutcomeKind::Undetermined,
                    None,
                    "the connection manager uses scoped routes, which Heft keeps opaque".into(),
                );
                o.certain = false;
                o
            }
            _ => http_outcome(
                OutcomeKind::NoRoute,
                Some(404),
                "the connection manager has no route configuration".into(),
            ),
        };
        return (step, out, Vec::new());
    };
    step.route_config.found = true;
    let (vh_step, vhost) = select_virtual_host(rc, &headers);
    step.virtual_host = Some(vh_step);
    let Some(vhost) = vhost else {
        let host = step.request.authority.clone();
        return (
            step,
            http_outcome(
                OutcomeKind::NoVirtualHost,
                Some(404),
                format!("no virtual host of {} matches host {host}: 404", rc.name),
            ),
            Vec::new(),
        );
    };
    let scheme = headers
        .first("x-forwarded-proto")
        .unwrap_or("http")
        .to_string();
    let internal = headers.first("x-envoy-internal") == Some("true");
    let requires_tls = match vhost.require_tls.as_deref() {
        Some("ALL") => Some(""),
        Some("EXTERNAL_ONLY") if !internal => Some(" for external requests"),
        _ => None,
    };
    if let (Some(which), false) = (requires_tls, scheme == "https") {
        let loc = format!("https://{}{}", step.request.authority, step.request.path);
        step.action = Some(ActionSeen::Redirect {
            status: 301,
            location: loc.clone(),
        });
        return (
            step,
            http_outcome(
                OutcomeKind::Redirect,
                Some(301),
                format!(
                    "virtual host {} requires TLS{which}: 301 to {loc}",
                    vhost.name
                ),
            ),
            Vec::new(),
        );
    }
    let mut route_step = RouteStep {
        certain: true,
        ..RouteStep::default()
    };
    let mut chosen = None;
    for (i, r) in vhost.routes.iter().enumerate() {
        let checks = route_checks(
            r,
            &headers,
            &step.request.path,
            &step.request.method,
            rc.ignore_path_parameters_in_path_matching,
        );
        let fails: Vec<String> = checks
            .iter()
            .filter_map(|c| match c {
                Check::Fails(w) => Some(w.clone()),
                _ => None,
            })
            .collect();
        let unknown: Vec<String> = checks
            .iter()
            .filter_map(|c| match c {
                Check::Unknown(w) => Some(w.clone()),
                _ => None,
            })
            .collect();
        let (verdict, reasons) = if !fails.is_empty() {
            (Verdict::Rejected, fails)
        } else if !unknown.is_empty() {
            route_step.certain = false;
            (Verdict::Undetermined, unknown)
        } else {
            (Verdict::Selected, vec!["every condition holds".into()])
        };
        route_step.candidates.push(Candidate {
            name: r.name.as_deref().unwrap_or("").to_string(),
            index: Some(i),
            detail: matcher::describe(&r.route_match),
            verdict,
            reasons,
        });
        if verdict == Verdict::Selected {
            chosen = Some((i, r));
            break;
        }
    }
    let certain = route_step.certain;
    let Some((i, r)) = chosen else {
        step.route = Some(route_step);
        let mut o = http_outcome(
            OutcomeKind::NoRoute,
            Some(404),
            format!("no route of virtual host {} matches: 404", vhost.name),
        );
        if !certain {
            o.kind = OutcomeKind::Undetermined;
            o.status = None;
            o.summary = format!(
                "no route of virtual host {} is certain to match; the outcome depends on what \
                 Heft cannot evaluate",
                vhost.name
            );
            o.certain = false;
        }
        return (step, o, Vec::new());
    };
    route_step.selected_index = Some(i);
    route_step.selected_name = r.name.as_ref().map(|n| n.to_string());
    step.route = Some(route_step);
    let route_label = match &r.name {
        Some(n) => format!("route #{i} ({n})"),
        None => format!("route #{i}"),
    };
    let (action, mut out, ups) = match &r.action {
        Action::Route(a) => {
            let action = match &a.target {
                RouteTarget::Cluster(c) => ActionSeen::Cluster {
                    cluster: c.to_string(),
                },
                RouteTarget::Weighted(ws) => ActionSeen::WeightedClusters {
                    clusters: upstream::weighted(ws.iter().map(|w| (&*w.name, w.weight))),
                },
                RouteTarget::ClusterHeader(h) => ActionSeen::ClusterHeader {
                    header: h.to_string(),
                    value: headers.first(h).map(str::to_string),
                },
                RouteTarget::Plugin(p) => ActionSeen::Other {
                    description: format!("cluster_specifier_plugin {p}"),
                },
                RouteTarget::None => ActionSeen::Other {
                    description: "an inline cluster specifier plugin".into(),
                },
            };
            let (ups, out) = upstream::resolve(dump, &action, conn, true);
            (action, out, ups)
        }
        Action::Redirect {
            host,
            path,
            https,
            response_code,
        } => {
            let status = redirect_status(response_code);
            let scheme = if *https {
                "https"
            } else {
                step.request.scheme.as_str()
            };
            let location = format!(
                "{scheme}://{}{}",
                host.as_deref().unwrap_or(&step.request.authority),
                path.as_deref().unwrap_or(&step.request.path)
            );
            let summary = format!("{route_label} redirects: {status} to {location}");
            (
                ActionSeen::Redirect { status, location },
                http_outcome(OutcomeKind::Redirect, Some(status), summary),
                Vec::new(),
            )
        }
        Action::DirectResponse { status, .. } => (
            ActionSeen::DirectResponse { status: *status },
            http_outcome(
                OutcomeKind::DirectResponse,
                Some(*status),
                format!("{route_label} answers directly with {status}"),
            ),
            Vec::new(),
        ),
        Action::Other => {
            let mut o = http_outcome(
                OutcomeKind::Undetermined,
                None,
                format!("{route_label} has a filter or non-forwarding action Heft does not follow"),
            );
            o.certain = false;
            (
                ActionSeen::Other {
                    description: "filter_action or non_forwarding_action".into(),
                },
                o,
                Vec::new(),
            )
        }
    };
    if !certain {
        out.certain = false;
        out.summary.push_str(
            " (an earlier route's match is undetermined; if it matched, it would take the \
             request)",
        );
    }
    step.action = Some(action);
    (step, out, ups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(remove_dot_segments("/a/./b/../c"), "/a/c");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(remove_dot_segments("/../a"), "/a");
        assert_eq!(remove_dot_segments("/a/b/."), "/a/b/");
    }

    #[test]
    fn escaped_slashes_unescape_in_any_case() {
        assert_eq!(unescape_slashes("/a%2Fb%2fc%5Cd%41"), "/a/b/c\\d%41");
    }

    #[test]
    fn ports_are_found_outside_ipv6_literals() {
        assert_eq!(port_start("a.b:80"), Some(3));
        assert_eq!(port_start("[::1]:80"), Some(5));
        assert_eq!(port_start("[::1]"), None);
        assert_eq!(port_start("a.b"), None);
    }

    #[test]
    fn wildcards_must_leave_a_character_and_longer_wins() {
        assert_eq!(
            domain_match("*.foo.com", "a.foo.com"),
            Some((DomainKind::Suffix, 8))
        );
        assert_eq!(domain_match("*.foo.com", ".foo.com"), None);
        assert_eq!(
            domain_match("foo.*", "foo.bar"),
            Some((DomainKind::Prefix, 4))
        );
        assert_eq!(domain_match("foo.*", "foo."), None);
        assert_eq!(
            domain_match("Foo.COM", "foo.com"),
            Some((DomainKind::Exact, 7))
        );
        assert!(domain_match("*-bar.baz.com", "x-bar.baz.com").unwrap().1 > 8);
    }
}
