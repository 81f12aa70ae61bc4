//! Which filter chain of a listener takes a connection.
//!
//! Envoy's `FilterChainManagerImpl` narrows the chains level by level, and at each level keeps
//! only the most specific value that matches, never falling back to a less specific one: the
//! destination port (a chain naming the port beats chains without one), the destination IP
//! (longest prefix), the server name (exact, then the longest `*.` suffix, then chains without
//! server names), the transport protocol, the application protocols (in the client's order),
//! the directly connected source IP, the source type, the source IP and the source port. When
//! the set runs empty, the `default_filter_chain` takes the connection, if there is one. The
//! unified `filter_chain_matcher` replaces all of this; Heft keeps it opaque and says so.

use super::{Candidate, Connection, FilterChainStep, Verdict};
use crate::model::{Cidr, FilterChain, FilterChainMatch, Listener};
use std::net::IpAddr;

/// An IP prefix, parsed.
#[derive(Debug, Clone, Copy)]
struct Net {
    ip: IpAddr,
    len: u32,
}

impl Net {
    fn parse(c: &Cidr) -> Option<Net> {
        let ip: IpAddr = c.address.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (c.prefix_len <= max).then_some(Net {
            ip,
            len: c.prefix_len,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.ip, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.len).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

fn list(ranges: &[Cidr]) -> String {
    ranges
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one level decided.
#[derive(Default)]
struct Level {
    group: Vec<usize>,
    rejected: Vec<(usize, String)>,
    undetermined: Vec<(usize, String)>,
}

/// Longest-prefix selection on one IP (destination, direct source or source).
fn ip_level(
    chains: &[FilterChain],
    alive: &[usize],
    ranges: fn(&FilterChainMatch) -> &[Cidr],
    ip: Option<IpAddr>,
    what: &str,
) -> Level {
    let mut level = Level::default();
    let Some(ip) = ip else {
        // Unknown IP: chains without ranges (or with a /0) match whatever it is; a chain with a
        // longer prefix might win, which Heft cannot tell.
        for &i in alive {
            let r = ranges(&chains[i].filter_chain_match);
            if r.is_empty() || r.iter().any(|c| c.prefix_len == 0) {
                level.group.push(i);
            } else {
                level.undetermined.push((
                    i,
                    format!("matches on {what} {} but the {what} is unknown", list(r)),
                ));
            }
        }
        return level;
    };
    let score = |i: usize| -> Option<u32> {
        let r = ranges(&chains[i].filter_chain_match);
        if r.is_empty() {
            return Some(0);
        }
        r.iter()
            .filter_map(Net::parse)
            .filter(|n| n.contains(ip))
            .map(|n| n.len)
            .max()
    };
    let best = alive.iter().filter_map(|&i| score(i)).max();
    for &i in alive {
        match (score(i), best) {
            (Some(s), Some(b)) if s == b => level.group.push(i),
            (Some(s), Some(b)) => level.rejected.push((
                i,
                format!(
                    "{what} {ip} matches its /{s}, but another chain has a longer prefix (/{b})"
                ),
            )),
            _ => level.rejected.push((
                i,
                format!(
                    "{what} {ip} is not in {}",
                    list(ranges(&chains[i].filter_chain_match))
                ),
            )),
        }
    }
    level
}

fn names_of(m: &FilterChainMatch) -> Vec<String> {
    m.server_names
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// Exact server name, then the longest `*.suffix`, then chains without server names.
fn server_name_level(chains: &[FilterChain], alive: &[usize], sni: &str) -> Level {
    let mut level = Level::default();
    let has = |i: usize, key: &str| -> bool {
        let names = names_of(&chains[i].filter_chain_match);
        if key.is_empty() {
            names.is_empty()
        } else {
            names.iter().any(|n| n == key)
        }
    };
    let mut keys = vec![sni.to_string()];
    // Envoy tries ".example.com", then ".com" for "www.example.com".
    let mut pos = sni.get(1..).and_then(|s| s.find('.')).map(|p| p + 1);
    while let Some(p) = pos {
        if p + 1 >= sni.len() {
            break;
        }
        keys.push(format!("*{}", &sni[p..]));
        pos = sni[p + 1..].find('.').map(|q| q + p + 1);
    }
    keys.push(String::new());
    let chosen = keys
        .iter()
        .find(|k| alive.iter().any(|&i| has(i, k)))
        .cloned();
    let shown_sni = if sni.is_empty() { "(none)" } else { sni };
    for &i in alive {
        match &chosen {
            Some(k) if has(i, k) => level.group.push(i),
            Some(k) => {
                let names = names_of(&chains[i].filter_chain_match);
                let why = if names.is_empty() {
                    format!(
                        "has no server_names, and a chain naming {} matches server name {shown_sni} first",
                        if k.starts_with('*') { k.as_str() } else { shown_sni }
                    )
                } else if let Some(weaker) = keys.iter().find(|key| names.contains(key)) {
                    format!(
                        "server name {shown_sni} matches its {weaker}, but another chain's {} is more specific",
                        if k.is_empty() { "(none)" } else { k.as_str() }
                    )
                } else {
                    format!("server name {shown_sni} is not in {}", names.join(", "))
                };
                level.rejected.push((i, why));
            }
            None => level.rejected.push((
                i,
                format!(
                    "server name {shown_sni} is not in {}",
                    names_of(&chains[i].filter_chain_match).join(", ")
                ),
            )),
        }
    }
    level
}

/// The detected value, else chains that ask for none.
fn transport_level(chains: &[FilterChain], alive: &[usize], detected: &str) -> Level {
    let mut level = Level::default();
    let of = |i: usize| {
        chains[i]
            .filter_chain_match
            .transport_protocol
            .as_deref()
            .unwrap_or("")
    };
    let exact = alive.iter().any(|&i| of(i) == detected);
    for &i in alive {
        let t = of(i);
        if (exact && t == detected) || (!exact && t.is_empty()) {
            level.group.push(i);
        } else if t.is_empty() {
            level.rejected.push((
                i,
                format!(
                    "has no transport_protocol, and a chain asking for {detected} matches first"
                ),
            ));
        } else {
            level.rejected.push((
                i,
                format!("transport protocol is {detected}, the chain wants {t}"),
            ));
        }
    }
    level
}

/// The first of the client's protocols some chain asks for, else chains that ask for none.
fn application_level(chains: &[FilterChain], alive: &[usize], detected: &[String]) -> Level {
    let mut level = Level::default();
    let of = |i: usize| &chains[i].filter_chain_match.application_protocols;
    let chosen = detected.iter().find(|p| {
        alive
            .iter()
            .any(|&i| of(i).iter().any(|a| **a == *p.as_str()))
    });
    let shown = if detected.is_empty() {
        "(none)".to_string()
    } else {
        detected.join(", ")
    };
    for &i in alive {
        let protos = of(i);
        let keep = match chosen {
            Some(p) => protos.iter().any(|a| **a == *p.as_str()),
            None => protos.is_empty(),
        };
        if keep {
            level.group.push(i);
        } else if protos.is_empty() {
            level.rejected.push((
                i,
                format!(
                    "has no application_protocols, and a chain asking for {} matches first",
                    chosen.map_or("", |p| p.as_str())
                ),
            ));
        } else {
            let names: Vec<&str> = protos.iter().map(|p| &**p).collect();
            level.rejected.push((
                i,
                format!(
                    "application protocols {shown}: the chain wants one of {}",
                    names.join(", ")
                ),
            ));
        }
    }
    level
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SourceType {
    Any,
    Local,
    External,
}

fn source_type_of(m: &FilterChainMatch) -> SourceType {
    match m.source_type.as_deref() {
        Some("SAME_IP_OR_LOOPBACK") => SourceType::Local,
        Some("EXTERNAL") => SourceType::External,
        _ => SourceType::Any,
    }
}

fn source_type_level(chains: &[FilterChain], alive: &[usize], conn: &Connection) -> Level {
    let mut level = Level::default();
    let of = |i: usize| source_type_of(&chains[i].filter_chain_match);
    let has_local = alive.iter().any(|&i| of(i) == SourceType::Local);
    let has_external = alive.iter().any(|&i| of(i) == SourceType::External);
    if !has_local && !has_external {
        level.group = alive.to_vec();
        return level;
    }
    let source: Option<IpAddr> = conn.source_ip.as_deref().and_then(|s| s.parse().ok());
    let Some(source) = source else {
        for &i in alive {
            if of(i) == SourceType::Any {
                level.group.push(i);
            } else {
                level.undetermined.push((
                    i,
                    "matches on source_type, but the source address is unknown (--source)".into(),
                ));
            }
        }
        return level;
    };
    let destination: Option<IpAddr> = conn.destination_ip.as_deref().and_then(|s| s.parse().ok());
    let local = source.is_loopback() || Some(source) == destination;
    let want = if local && has_local {
        SourceType::Local
    } else if !local && has_external {
        SourceType::External
    } else {
        SourceType::Any
    };
    let kind = if local {
        "local (loopback or same IP)"
    } else {
        "external"
    };
    for &i in alive {
        if of(i) == want {
            level.group.push(i);
        } else {
            let name = |t: SourceType| match t {
                SourceType::Any => "ANY",
                SourceType::Local => "SAME_IP_OR_LOOPBACK",
                SourceType::External => "EXTERNAL",
            };
            level.rejected.push((
                i,
                format!(
                    "the source is {kind}: Envoy takes the {} chains, this one is {}",
                    name(want),
                    name(of(i))
                ),
            ));
        }
    }
    level
}

fn source_port_level(chains: &[FilterChain], alive: &[usize], port: Option<u32>) -> Level {
    let mut level = Level::default();
    let of = |i: usize| &chains[i].filter_chain_match.source_ports;
    let Some(port) = port else {
        for &i in alive {
            if of(i).is_empty() {
                level.group.push(i);
            } else {
                level.undetermined.push((
                    i,
                    "matches on source_ports, but the source port is unknown".into(),
                ));
            }
        }
        return level;
    };
    let exact = alive.iter().any(|&i| of(i).contains(&port));
    for &i in alive {
        let ports = of(i);
        if (exact && ports.contains(&port)) || (!exact && ports.is_empty()) {
            level.group.push(i);
        } else if ports.is_empty() {
            level.rejected.push((
                i,
                format!("has no source_ports, and a chain naming port {port} matches first"),
            ));
        } else {
            level
                .rejected
                .push((i, format!("source port {port} is not in {ports:?}")));
        }
    }
    level
}

fn describe(m: &FilterChainMatch) -> String {
    let mut parts = Vec::new();
    if let Some(p) = m.destination_port {
        parts.push(format!("destination_port {p}"));
    }
    if !m.prefix_ranges.is_empty() {
        parts.push(format!("prefix_ranges {}", list(&m.prefix_ranges)));
    }
    if !m.server_names.is_empty() {
        let names: Vec<&str> = m.server_names.iter().map(|s| &**s).collect();
        parts.push(format!("server_names {}", names.join(", ")));
    }
    if let Some(t) = &m.transport_protocol {
        parts.push(format!("transport_protocol {t}"));
    }
    if !m.application_protocols.is_empty() {
        let names: Vec<&str> = m.application_protocols.iter().map(|s| &**s).collect();
        parts.push(format!("application_protocols {}", names.join(", ")));
    }
    if !m.direct_source_prefix_ranges.is_empty() {
        parts.push(format!(
            "direct_source_prefix_ranges {}",
            list(&m.direct_source_prefix_ranges)
        ));
    }
    if let Some(t) = &m.source_type {
        parts.push(format!("source_type {t}"));
    }
    if !m.source_prefix_ranges.is_empty() {
        parts.push(format!(
            "source_prefix_ranges {}",
            list(&m.source_prefix_ranges)
        ));
    }
    if !m.source_ports.is_empty() {
        parts.push(format!("source_ports {:?}", m.source_ports));
    }
    if parts.is_empty() {
        "any connection".into()
    } else {
        parts.join(", ")
    }
}

/// Chooses the filter chain of `l` for `conn`.
pub(crate) fn select<'a>(
    l: &'a Listener,
    conn: &Connection,
) -> (FilterChainStep, Option<&'a FilterChain>) {
    let chains = &l.filter_chains;
    let mut step = FilterChainStep {
        listener: l.name.to_string(),
        certain: true,
        ..FilterChainStep::default()
    };
    let mut outcome: Vec<Option<(Verdict, Vec<String>)>> = vec![None; chains.len()];
    if l.filter_chain_matcher.is_some() {
        step.certain = false;
        step.reasons.push(
            "the listener chooses chains with filter_chain_matcher (the unified matcher), which \
             Heft keeps opaque; Envoy then ignores every filter_chain_match"
                .into(),
        );
        step.candidates = chains
            .iter()
            .enumerate()
            .map(|(i, c)| Candidate {
                name: c.name.as_deref().unwrap_or("").to_string(),
                index: Some(i),
                detail: describe(&c.filter_chain_match),
                verdict: Verdict::Undetermined,
                reasons: vec!["chosen by filter_chain_matcher, which Heft cannot evaluate".into()],
            })
            .collect();
        return (step, None);
    }

    let port = conn.destination_port;
    // Destination port: chains naming this port, else chains naming none (0 means none).
    let port_of = |i: usize| {
        chains[i]
            .filter_chain_match
            .destination_port
            .filter(|p| *p != 0)
    };
    let all: Vec<usize> = (0..chains.len()).collect();
    let specific = all.iter().any(|&i| port_of(i) == Some(port));
    let mut level = Level::default();
    for &i in &all {
        match port_of(i) {
            Some(p) if p == port => level.group.push(i),
            None if !specific => level.group.push(i),
            None => level.rejected.push((
                i,
                format!(
                    "has no destination_port, and chains naming port {port} exist: Envoy matches \
                     only those"
                ),
            )),
            Some(p) => level.rejected.push((
                i,
                format!("destination_port {p}, the connection's is {port}"),
            )),
        }
    }
    let destination: Option<IpAddr> = conn.destination_ip.as_deref().and_then(|s| s.parse().ok());
    let source: Option<IpAddr> = conn.source_ip.as_deref().and_then(|s| s.parse().ok());
    let sni = conn.server_name.clone().unwrap_or_default();
    let mut alive = Vec::new();
    for stage in 0..9 {
        if stage > 0 {
            level = match stage {
                1 => ip_level(
                    chains,
                    &alive,
                    |m| &m.prefix_ranges,
                    destination,
                    "destination IP",
                ),
                2 => server_name_level(chains, &alive, &sni),
                3 => transport_level(chains, &alive, &conn.transport_protocol),
                4 => application_level(chains, &alive, &conn.application_protocols),
                5 => ip_level(
                    chains,
                    &alive,
                    |m| &m.direct_source_prefix_ranges,
                    source,
                    "direct source IP",
                ),
                6 => source_type_level(chains, &alive, conn),
                7 => ip_level(
                    chains,
                    &alive,
                    |m| &m.source_prefix_ranges,
                    source,
                    "source IP",
                ),
                _ => source_port_level(chains, &alive, conn.source_port),
            };
        }
        for (i, why) in level.rejected.drain(..) {
            outcome[i] = Some((Verdict::Rejected, vec![why]));
        }
        if !level.undetermined.is_empty() {
            step.certain = false;
        }
        for (i, why) in level.undetermined.drain(..) {
            outcome[i] = Some((Verdict::Undetermined, vec![why]));
        }
        alive = std::mem::take(&mut level.group);
        if alive.is_empty() {
            break;
        }
    }
    let chosen = alive.first().copied();
    if alive.len() > 1 {
        step.reasons.push(format!(
            "chains {alive:?} match alike; Envoy rejects listeners with overlapping chains, so \
             this dump is unusual: Heft takes the first"
        ));
        for &i in &alive[1..] {
            outcome[i] = Some((
                Verdict::Rejected,
                vec!["matches alike; Heft takes the first such chain".into()],
            ));
        }
    }
    let result = match chosen {
        Some(i) => {
            outcome[i] = Some((Verdict::Selected, vec!["the most specific match".into()]));
            step.selected_index = Some(i);
            step.selected_name = chains[i].name.as_ref().map(|n| n.to_string());
            step.reasons.push(format!(
                "chain #{i}{} matches: {}",
                chains[i]
                    .name
                    .as_ref()
                    .map_or(String::new(), |n| format!(" ({n})")),
                describe(&chains[i].filter_chain_match)
            ));
            Some(&chains[i])
        }
        None => match &l.default_filter_chain {
            Some(d) if step.certain => {
                step.is_default = true;
                step.selected_name = d.name.as_ref().map(|n| n.to_string());
                step.reasons
                    .push("no chain matches: the default_filter_chain takes the connection".into());
                Some(d)
            }
            _ if !step.certain => {
                step.reasons.push(
                    "no chain is certain to match: the choice depends on what Heft cannot tell"
                        .into(),
                );
                None
            }
            _ => {
                step.reasons.push(
                    "no chain matches and there is no default_filter_chain: Envoy closes the \
                     connection"
                        .into(),
                );
                None
            }
        },
    };
    step.candidates = chains
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (verdict, reasons) = outcome[i]
                .clone()
                .unwrap_or((Verdict::Rejected, vec!["not reached".into()]));
            Candidate {
                name: c.name.as_deref().unwrap_or("").to_string(),
                index: Some(i),
                detail: describe(&c.filter_chain_match),
                verdict,
                reasons,
            }
        })
        .collect();
    if let Some(d) = &l.default_filter_chain {
        step.candidates.push(Candidate {
            name: d.name.as_deref().unwrap_or("").to_string(),
            index: None,
            detail: "default_filter_chain".into(),
            verdict: if step.is_default {
                Verdict::Selected
            } else {
                Verdict::Rejected
            },
            reasons: vec![if step.is_default {
                "no other chain matches".into()
            } else {
                "used only when no chain matches".into()
            }],
        });
    }
    (step, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_contain_their_addresses() {
        let n = Net::parse(&Cidr {
            address: "10.1.0.0".into(),
            prefix_len: 16,
        })
        .unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        let all = Net::parse(&Cidr {
            address: "0.0.0.0".into(),
            prefix_len: 0,
        })
        .unwrap();
        assert!(all.contains("192.168.1.1".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6 = Net::parse(&Cidr {
            address: "fd00::".into(),
            prefix_len: 8,
        })
        .unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
    }
}
