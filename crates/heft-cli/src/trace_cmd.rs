//! `heft trace`: flags into a [`heft::trace::Query`], and the [`heft::trace::Trace`] into text.

use heft::trace::{ActionSeen, Candidate, Query, Trace, Verdict};
use std::fmt::Write as _;
use std::net::IpAddr;

/// What to trace.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// Destination port of the connection (its original destination, before any redirect).
    #[arg(long)]
    port: u32,
    /// Destination IP of the connection (its original destination).
    #[arg(long, value_name = "IP")]
    address: Option<IpAddr>,
    /// The listener that accepted the connection when it was redirected to one (e.g.
    /// `virtualInbound`) [default: the listener bound on the destination, else the
    /// use_original_dst listener that captures outbound traffic].
    #[arg(long, value_name = "LISTENER")]
    via: Option<String>,
    /// Source of the connection: `IP` or `IP:PORT` (`[IPv6]:PORT`).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_source)]
    source: Option<(IpAddr, Option<u32>)>,
    /// TLS server name the client sends (implies --tls).
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// The client opens TLS.
    #[arg(long)]
    tls: bool,
    /// ALPN protocols the client offers, comma-separated [default for plaintext HTTP: what
    /// http_inspector detects, http/1.1].
    #[arg(long, value_name = "PROTO,...", value_delimiter = ',')]
    alpn: Vec<String>,
    /// The connection carries no HTTP (a TCP client).
    #[arg(long, conflicts_with_all = ["host", "path", "method", "header"])]
    tcp: bool,
    /// Host header [default: the destination, as curl sends it].
    #[arg(long)]
    host: Option<String>,
    /// Request path with query string.
    #[arg(long, default_value = "/")]
    path: String,
    /// Request method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// A request header, `NAME=VALUE` (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    header: Vec<(String, String)>,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("{s:?} has an empty header name"));
    }
    Ok((k.to_string(), v.trim_start().to_string()))
}

fn parse_source(s: &str) -> Result<(IpAddr, Option<u32>), String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let a: std::net::SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not IP or IP:PORT"))?;
    Ok((a.ip(), Some(u32::from(a.port()))))
}

impl TraceArgs {
    /// The library query these flags describe.
    pub fn query(&self) -> Query {
        Query {
            port: self.port,
            address: self.address,
            via: self.via.clone(),
            source: self.source.map(|(ip, _)| ip),
            source_port: self.source.and_then(|(_, p)| p),
            tls: self.tls || self.sni.is_some(),
            sni: self.sni.clone(),
            alpn: self.alpn.clone(),
            http: (!self.tcp).then(|| heft::trace::HttpRequest {
                host: self.host.clone(),
                path: self.path.clone(),
                method: self.method.clone(),
                headers: self.header.clone(),
            }),
        }
    }
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Selected => "✓",
        Verdict::Rejected => "✗",
        Verdict::Undetermined => "?",
    }
}

/// At most this many rejected candidates are listed per step in text; JSON lists them all.
const SHOWN: usize = 12;

/// Lists candidates; `relevant` picks the rejected ones worth a line (the rest are counted).
fn candidates(
    out: &mut String,
    list: &[Candidate],
    indexed: bool,
    relevant: impl Fn(&Candidate) -> bool,
) {
    let mut hidden = 0;
    let mut shown = 0;
    let mut irrelevant = 0;
    for c in list {
        if c.verdict == Verdict::Rejected && !relevant(c) {
            irrelevant += 1;
            continue;
        }
        // Keep the chosen one, undetermined ones, and the first rejected ones.
        if c.verdict == Verdict::Rejected && shown >= SHOWN {
            hidden += 1;
            continue;
        }
        if c.verdict == Verdict::Rejected {
            shown += 1;
        }
        let label = match (indexed, c.index, c.name.is_empty()) {
            (true, Some(i), true) => format!("#{i}"),
            (true, Some(i), false) => format!("#{i} {}", c.name),
            (true, None, _) if c.name.is_empty() => "default".to_string(),
            _ => c.name.clone(),
        };
        let _ = writeln!(out, "  {} {label}  [{}]", mark(c.verdict), c.detail);
        for r in &c.reasons {
            let _ = writeln!(out, "      {r}");
        }
    }
    if hidden > 0 {
        let _ = writeln!(out, "  … {hidden} more rejected (-o json lists them all)");
    }
    if irrelevant > 0 {
        let _ = writeln!(
            out,
            "  … {irrelevant} more with nothing matching (-o json lists them all)"
        );
    }
}

fn any(_: &Candidate) -> bool {
    true
}

fn action(a: &ActionSeen) -> String {
    match a {
        ActionSeen::Cluster { cluster } => format!("cluster {cluster}"),
        ActionSeen::WeightedClusters { clusters } => {
            let parts: Vec<String> = clusters
                .iter()
                .map(|w| format!("{} weight {} ({}%)", w.name, w.weight, w.percent))
                .collect();
            format!("weighted clusters: {}", parts.join(", "))
        }
        ActionSeen::ClusterHeader { header, value } => format!(
            "cluster named by header {header}: {}",
            value.as_deref().unwrap_or("(absent)")
        ),
        ActionSeen::Redirect { status, location } => format!("redirect {status} to {location}"),
        ActionSeen::DirectResponse { status } => format!("direct response {status}"),
        ActionSeen::Other { description } => description.clone(),
    }
}

/// The human report.
pub fn render(t: &Trace) -> String {
    let mut out = String::new();
    let c = &t.connection;
    let dst = match &c.destination_ip {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{}", c.destination_port),
        Some(ip) => format!("{ip}:{}", c.destination_port),
        None => format!("?:{}", c.destination_port),
    };
    let src = match (&c.source_ip, c.source_port) {
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (Some(ip), None) => ip.clone(),
        _ => "unknown".into(),
    };
    let protos = if c.application_protocols.is_empty() {
        "(none)".to_string()
    } else {
        c.application_protocols.join(",")
    };
    let _ = writeln!(
        out,
        "connection    to {dst} from {src}; transport {}, server name {}, application protocols {protos}",
        c.transport_protocol,
        c.server_name.as_deref().unwrap_or("(none)"),
    );
    let l = &t.listener;
    let _ = writeln!(
        out,
        "\nlistener      {}",
        l.selected.as_deref().unwrap_or("(none)")
    );
    for r in &l.reasons {
        let _ = writeln!(out, "  · {r}");
    }
    candidates(&mut out, &l.candidates, false, any);
    if let Some(fc) = &t.filter_chain {
        let which = match (fc.selected_index, fc.is_default) {
            (_, true) => "default_filter_chain".to_string(),
            (Some(i), _) => format!("#{i}"),
            (None, _) => "(none)".to_string(),
        };
        let name = fc
            .selected_name
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n})"));
        let certain = if fc.certain { "" } else { "  [undetermined]" };
        let _ = writeln!(
            out,
            "\nfilter chain  {which}{name} of {}{certain}",
            fc.listener
        );
        for r in &fc.reasons {
            let _ = writeln!(out, "  · {r}");
        }
        candidates(&mut out, &fc.candidates, true, any);
    }
    if let Some(n) = &t.network {
        let tls = if n.terminates_tls {
            ", terminates TLS"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "\nnetwork       {} ({}{tls})",
            n.filters.join(" → "),
            n.terminal
        );
    }
    if let Some(h) = &t.http {
        let r = &h.request;
        let _ = writeln!(
            out,
            "\nrequest       {} {}://{}{}",
            r.method, r.scheme, r.authority, r.path
        );
        for change in &r.changes {
            let _ = writeln!(out, "  · {change}");
        }
        let rc = &h.route_config;
        let _ = writeln!(
            out,
            "route config  {} ({}{})",
            rc.name.as_deref().unwrap_or("(unnamed)"),
            rc.source,
            if rc.found { "" } else { ", not in the dump" }
        );
        if let Some(v) = &h.virtual_host {
            match &v.selected {
                Some(name) => {
                    let _ = writeln!(
                        out,
                        "virtual host  {name}: host {} matches domain {} ({})",
                        v.host,
                        v.matched_domain.as_deref().unwrap_or(""),
                        v.match_kind.as_deref().unwrap_or("")
                    );
                }
                None => {
                    let _ = writeln!(out, "virtual host  (none) for host {}", v.host);
                }
            }
            // Virtual hosts with no matching domain are many in a mesh: count them only.
            candidates(&mut out, &v.candidates, false, |c| {
                !c.reasons.iter().any(|r| r.starts_with("no domain matches"))
            });
        }
        if let Some(route) = &h.route {
            let which = match (route.selected_index, &route.selected_name) {
                (Some(i), Some(n)) => format!("#{i} ({n})"),
                (Some(i), None) => format!("#{i}"),
                _ => "(none)".into(),
            };
            let certain = if route.certain {
                ""
            } else {
                "  [undetermined]"
            };
            let _ = writeln!(out, "route         {which}{certain}");
            candidates(&mut out, &route.candidates, true, any);
        }
        if let Some(a) = &h.action {
            let _ = writeln!(out, "action        {}", action(a));
        }
    }
    if let Some(tcp) = &t.tcp_proxy {
        let _ = writeln!(
            out,
            "\ntcp proxy     {}: {}",
            tcp.stat_prefix,
            action(&tcp.action)
        );
    }
    for u in &t.upstreams {
        let share = match u.weight {
            Some(w) => format!(", weight {w} ({}%)", u.percent),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\nupstream      {} ({}, {}{share})",
            u.cluster,
            u.discovery.as_deref().unwrap_or("?"),
            u.state.as_deref().unwrap_or("not in the dump")
        );
        for r in &u.reasons {
            let _ = writeln!(out, "  · {r}");
        }
        for p in &u.priorities {
            let panic = if p.panic { ", panic" } else { "" };
            let _ = writeln!(
                out,
                "  priority {}: {}/{} healthy, {} degraded, {}% of requests{panic}",
                p.priority, p.healthy, p.hosts, p.degraded, p.load_percent
            );
        }
        for (i, e) in u.endpoints.iter().enumerate() {
            if i == SHOWN {
                let _ = writeln!(out, "    … {} more endpoints", u.endpoints.len() - SHOWN);
                break;
            }
            let weight = e.weight.map_or(String::new(), |w| format!("  weight {w}"));
            let _ = writeln!(
                out,
                "    {}  {}  p{}  {}{weight}",
                e.address, e.health, e.priority, e.locality
            );
        }
    }
    let o = &t.outcome;
    let status = o.status.map_or(String::new(), |s| format!(" [{s}]"));
    let certain = if o.certain { "" } else { " (not certain)" };
    let _ = writeln!(out, "\noutcome       {}{status}{certain}", o.summary);
    if !t.notes.is_empty() {
        let _ = writeln!(out, "\nnotes");
        for n in &t.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_on_the_first_equals_or_colon() {
        assert_eq!(
            parse_header("x-env=a=b").unwrap(),
            ("x-env".into(), "a=b".into())
        );
        assert_eq!(
            parse_header("x-env: canary").unwrap(),
            ("x-env".into(), "canary".into())
        );
        assert!(parse_header("novalue").is_err());
    }

    #[test]
    fn sources_take_an_optional_port() {
        assert_eq!(
            parse_source("10.0.0.1").unwrap(),
            ("10.0.0.1".parse().unwrap(), None)
        );
        assert_eq!(
            parse_source("[::1]:5000").unwrap(),
            ("::1".parse().unwrap(), Some(5000))
        );
        assert!(parse_source("nope").is_err());
    }
}
