//! Which listener takes a connection, and what its listener filters learn about it.
//!
//! A connection reaches the listener bound on its destination (the kernel prefers a listener on
//! the exact IP to one on `0.0.0.0`); in an Istio sidecar, iptables redirect it to the
//! `use_original_dst` listener (`virtualOutbound`) instead. A `use_original_dst` listener hands a
//! connection whose destination its `original_dst` listener filter restored to the listener
//! bound (usually `bind_to_port: false`) on that exact `address:port`, else on `0.0.0.0:port`,
//! else keeps it (Envoy's `ConnectionHandlerImpl::getBalancedHandlerByAddress`).

use super::{Candidate, Connection, ListenerStep, Query, Verdict};
use crate::model::{Address, Listener, State};
use crate::Dump;
use std::net::IpAddr;

/// Whether the listener serves new connections (draining and warming ones do not).
fn serving(l: &Listener) -> bool {
    matches!(l.meta.state, State::Static | State::Active)
}

fn sockets(l: &Listener) -> impl Iterator<Item = (&str, u32)> {
    l.address
        .iter()
        .chain(l.additional_addresses.iter())
        .filter_map(|a| match a {
            Address::Socket { address, port, .. } => Some((&**address, *port)),
            _ => None,
        })
}

fn shown(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn addresses(l: &Listener) -> String {
    let all: Vec<String> = sockets(l).map(|(a, p)| shown(a, p)).collect();
    if all.is_empty() {
        "no socket address".into()
    } else {
        all.join(", ")
    }
}

fn binds(l: &Listener) -> bool {
    l.bind_to_port != Some(false)
}

/// Whether `listener_ip` (as configured) accepts connections to `dst` on the kernel's terms.
fn ip_accepts(listener_ip: &str, dst: Option<IpAddr>) -> IpFit {
    let Ok(ip) = listener_ip.parse::<IpAddr>() else {
        return IpFit::No;
    };
    match dst {
        Some(d) if ip == d => IpFit::Exact,
        Some(d) if ip.is_unspecified() && ip.is_ipv4() == d.is_ipv4() => IpFit::Wildcard,
        // An IPv6 wildcard socket takes IPv4 connections too unless it is v6-only.
        Some(d) if ip.is_unspecified() && ip.is_ipv6() && d.is_ipv4() => IpFit::Wildcard,
        Some(_) => IpFit::No,
        None if ip.is_unspecified() => IpFit::Wildcard,
        None => IpFit::Unknown,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IpFit {
    No,
    Unknown,
    Wildcard,
    Exact,
}

pub(crate) fn has_listener_filter(l: &Listener, kind: &str, type_name: &str) -> bool {
    l.listener_filters.iter().any(|n| n.ends_with(kind))
        || l.extensions.iter().any(|e| e.type_url.contains(type_name))
}

/// The exact-address, then wildcard lookup Envoy does when it hands a connection off.
fn handoff_target(dump: &Dump, dst: Option<IpAddr>, port: u32) -> Option<&Listener> {
    let live = || dump.listeners.iter().filter(|l| serving(l));
    if let Some(d) = dst {
        let exact = live()
            .find(|l| sockets(l).any(|(a, p)| p == port && a.parse::<IpAddr>().ok() == Some(d)));
        if exact.is_some() {
            return exact;
        }
    }
    let v6 = dst.is_some_and(|d| d.is_ipv6());
    live().find(|l| {
        sockets(l).any(|(a, p)| {
            p == port
                && a.parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_unspecified() && ip.is_ipv6() == v6)
        })
    })
}

/// The listener a connection reaches before any hand-off, with the reason.
fn entry<'a>(dump: &'a Dump, q: &Query) -> Result<(&'a Listener, String), String> {
    if let Some(via) = &q.via {
        return dump
            .listeners
            .iter()
            .filter(|l| serving(l))
            .find(|l| *l.name == **via)
            .map(|l| (l, format!("accepted by {via}, as asked (--via)")))
            .ok_or_else(|| format!("no listener named {via} is in use (active or static)"));
    }
    let bound = dump
        .listeners
        .iter()
        .filter(|l| serving(l) && binds(l))
        .filter_map(|l| {
            sockets(l)
                .filter(|(_, p)| *p == q.port)
                .map(|(a, _)| ip_accepts(a, q.address))
                .max()
                .filter(|fit| *fit != IpFit::No)
                .map(|fit| (fit, l))
        })
        .max_by_key(|(fit, _)| *fit);
    if let Some((fit, l)) = bound {
        let how = match fit {
            IpFit::Exact => "bound on the destination address",
            IpFit::Wildcard => "bound on the wildcard address for this port",
            _ => {
                "bound on this port; without --address the destination is taken to be its \
                  address"
            }
        };
        return Ok((
            l,
            format!("accepted by {} ({}), {how}", l.name, addresses(l)),
        ));
    }
    let capturing: Vec<&Listener> = dump
        .listeners
        .iter()
        .filter(|l| serving(l) && l.use_original_dst && binds(l))
        .collect();
    let pick = capturing
        .iter()
        .find(|l| l.traffic_direction.as_deref() == Some("OUTBOUND"))
        .or_else(|| capturing.iter().find(|l| &*l.name == "virtualOutbound"))
        .or_else(|| (capturing.len() == 1).then(|| &capturing[0]));
    match pick {
        Some(l) => Ok((
            l,
            format!(
                "no listener is bound on port {}; as in an Istio sidecar, iptables redirect the \
                 connection to {} ({}), which has use_original_dst",
                q.port,
                l.name,
                addresses(l)
            ),
        )),
        None => Err(format!(
            "no listener is bound on port {} and none has use_original_dst to capture it",
            q.port
        )),
    }
}

/// Chooses the listener and reads the connection as its listener filters would.
pub(crate) fn select<'a>(
    dump: &'a Dump,
    q: &Query,
    notes: &mut Vec<String>,
) -> (ListenerStep, Option<&'a Listener>, Connection) {
    let mut step = ListenerStep::default();
    let mut conn = Connection {
        destination_ip: q.address.map(|a| a.to_string()),
        destination_port: q.port,
        source_ip: q.source.map(|a| a.to_string()),
        source_port: q.source_port,
        tls: q.tls || q.sni.is_some(),
        server_name: None,
        transport_protocol: "raw_buffer".into(),
        application_protocols: Vec::new(),
    };
    let (accepted, why) = match entry(dump, q) {
        Ok(found) => found,
        Err(why) => {
            step.reasons.push(why);
            step.candidates = candidates(dump, q, None, None);
            return (step, None, conn);
        }
    };
    step.accepted_by = Some(accepted.name.to_string());
    step.reasons.push(why);
    if conn.destination_ip.is_none() && !accepted.use_original_dst {
        // The accepted socket's local address is the listener's, when it is a specific IP.
        if let Some((a, _)) = sockets(accepted).find(|(_, p)| *p == q.port) {
            if a.parse::<IpAddr>().is_ok_and(|ip| !ip.is_unspecified()) {
                conn.destination_ip = Some(a.to_string());
            }
        }
    }
    let mut selected = accepted;
    if accepted.use_original_dst {
        let restores = has_listener_filter(accepted, "original_dst", "original_dst.v3.OriginalDst");
        if !restores {
            step.reasons.push(format!(
                "{} has use_original_dst but no original_dst listener filter, so the destination \
                 is never restored and the connection stays",
                accepted.name
            ));
        } else {
            let dst = conn.destination_ip.as_deref().and_then(|a| a.parse().ok());
            if dst.is_none() {
                notes.push(
                    "the destination IP is unknown (--address): only a listener on the wildcard \
                     address can take the hand-off"
                        .into(),
                );
            }
            match handoff_target(dump, dst, q.port) {
                Some(t) if !std::ptr::eq(t, accepted) => {
                    step.reasons.push(format!(
                        "{} has use_original_dst: it hands the connection to {} ({}), the \
                         listener on its original destination",
                        accepted.name,
                        t.name,
                        addresses(t)
                    ));
                    step.handed_off = true;
                    selected = t;
                }
                _ => step.reasons.push(format!(
                    "{} has use_original_dst, but no listener is on {} or on the wildcard \
                     address for port {}: it keeps the connection",
                    accepted.name,
                    conn.destination_ip
                        .as_deref()
                        .map_or_else(|| format!("?:{}", q.port), |a| shown(a, q.port)),
                    q.port
                )),
            }
        }
    }
    step.selected = Some(selected.name.to_string());
    step.candidates = candidates(dump, q, Some(accepted), Some(selected));
    detect(&[accepted, selected], q, &mut conn, notes);
    (step, Some(selected), conn)
}

/// What `tls_inspector` and `http_inspector` on the connection's path tell Envoy.
fn detect(path: &[&Listener], q: &Query, conn: &mut Connection, notes: &mut Vec<String>) {
    let tls_inspector = path
        .iter()
        .any(|l| has_listener_filter(l, "tls_inspector", "tls_inspector.v3.TlsInspector"));
    let http_inspector = path
        .iter()
        .any(|l| has_listener_filter(l, "http_inspector", "http_inspector.v3.HttpInspector"));
    if conn.tls {
        if tls_inspector {
            conn.transport_protocol = "tls".into();
            conn.server_name = q.sni.as_ref().map(|s| s.to_ascii_lowercase());
            conn.application_protocols = q.alpn.clone();
        } else {
            notes.push(
                "no tls_inspector listener filter: Envoy does not read the ClientHello, so it \
                 sees no server name and transport protocol raw_buffer"
                    .into(),
            );
        }
        return;
    }
    if http_inspector && q.http.is_some() {
        conn.application_protocols = if q.alpn.is_empty() {
            vec!["http/1.1".into()]
        } else {
            q.alpn.clone()
        };
    } else if !q.alpn.is_empty() {
        notes.push(
            "application protocols given for a plaintext connection are ignored: only \
             http_inspector detects one, for HTTP requests"
                .into(),
        );
    }
}

fn candidates(
    dump: &Dump,
    q: &Query,
    accepted: Option<&Listener>,
    selected: Option<&Listener>,
) -> Vec<Candidate> {
    let is = |a: Option<&Listener>, l: &Listener| a.is_some_and(|a| std::ptr::eq(a, l));
    dump.listeners
        .iter()
        .filter(|l| {
            sockets(l).any(|(_, p)| p == q.port)
                || is(accepted, l)
                || (l.use_original_dst && serving(l))
        })
        .map(|l| {
            let mut reasons = Vec::new();
            let verdict = if is(selected, l) {
                reasons.push("takes the connection".into());
                Verdict::Selected
            } else {
                if is(accepted, l) {
                    reasons.push("accepted the connection, then handed it off".into());
                } else if !serving(l) {
                    reasons.push(format!(
                        "{}: it takes no new connections",
                        l.meta.state.name()
                    ));
                } else if !sockets(l).any(|(_, p)| p == q.port) {
                    reasons.push(format!(
                        "not on port {}; it takes only connections redirected to it (--via)",
                        q.port
                    ));
                } else if !binds(l) {
                    reasons.push(
                        "bind_to_port: false: it takes only connections a use_original_dst \
                         listener hands it"
                            .into(),
                    );
                } else {
                    reasons.push("bound on another address of this port".into());
                }
                Verdict::Rejected
            };
            let mut detail = addresses(l);
            if !binds(l) {
                detail.push_str(" (bind_to_port: false)");
            }
            if l.use_original_dst {
                detail.push_str(" (use_original_dst)");
            }
            Candidate {
                name: l.name.to_string(),
                index: None,
                detail,
                verdict,
                reasons,
            }
        })
        .collect()
}
