//! From a route's (or TCP proxy's) target to clusters and their endpoints.
//!
//! A cluster is used only when it is active or static; a warming cluster is not in Envoy's
//! thread-local cluster manager yet, so a request for it gets 503 as for a missing one. Endpoints
//! come from the dump's endpoint configurations (EDS, and static ones with `?include_eds`), else
//! the cluster's inline `load_assignment`; an ORIGINAL_DST cluster connects to the connection's
//! original destination. Priority loads follow Envoy's `LoadBalancerBase`: each priority's health
//! is `min(100, overprovisioning_factor × healthy / hosts)`, and load goes to the highest
//! priorities first, scaled when the total health is under 100.

use super::{
    ActionSeen, Connection, EndpointSeen, Outcome, OutcomeKind, PrioritySeen, Upstream,
    WeightedSeen,
};
use crate::model::{Cluster, Discovery, HealthStatus, LoadAssignment, State};
use crate::Dump;

/// Envoy's default overprovisioning factor, in percent.
const OVERPROVISIONING: u64 = 140;
/// Envoy's default panic threshold, in percent.
const PANIC_THRESHOLD: u64 = 50;

/// The clusters of a weighted split with their shares.
pub(crate) fn weighted<'a>(clusters: impl Iterator<Item = (&'a str, u32)>) -> Vec<WeightedSeen> {
    let list: Vec<(&str, u32)> = clusters.collect();
    let total: u64 = list.iter().map(|(_, w)| u64::from(*w)).sum();
    list.into_iter()
        .map(|(name, weight)| WeightedSeen {
            name: name.to_string(),
            weight,
            percent: if total == 0 {
                0.0
            } else {
                (f64::from(weight) * 100.0 / total as f64 * 100.0).round() / 100.0
            },
        })
        .collect()
}

fn find_cluster<'a>(dump: &'a Dump, name: &str) -> Option<&'a Cluster> {
    let mut found = dump.clusters.iter().filter(|c| *c.name == *name);
    let all: Vec<&Cluster> = found.by_ref().collect();
    all.iter()
        .find(|c| matches!(c.meta.state, State::Active | State::Static))
        .or_else(|| all.first())
        .copied()
}

fn assignment<'a>(dump: &'a Dump, c: &'a Cluster) -> Option<(&'a LoadAssignment, &'static str)> {
    let service = c.eds_service_name.as_deref().unwrap_or(&c.name);
    dump.endpoint_configs
        .iter()
        .find(|la| *la.cluster_name == *c.name)
        .or_else(|| {
            dump.endpoint_configs
                .iter()
                .find(|la| *la.cluster_name == *service)
        })
        .map(|la| (la, "endpoint_config"))
        .or_else(|| {
            c.load_assignment
                .as_deref()
                .map(|la| (la, "load_assignment"))
        })
}

fn is_healthy(h: HealthStatus) -> bool {
    matches!(h, HealthStatus::Healthy | HealthStatus::Unknown)
}

/// Envoy's priority load: healthy availability first, then degraded, the rest to the first
/// available priority.
fn priority_loads(levels: &mut [PrioritySeen], factor: u64) {
    let avail = |n: usize, total: usize| -> u64 {
        if total == 0 {
            0
        } else {
            (factor * n as u64 / total as u64).min(100)
        }
    };
    let health: Vec<u64> = levels.iter().map(|l| avail(l.healthy, l.hosts)).collect();
    let degraded: Vec<u64> = levels.iter().map(|l| avail(l.degraded, l.hosts)).collect();
    let total = (health.iter().sum::<u64>() + degraded.iter().sum::<u64>()).min(100);
    for l in levels.iter_mut() {
        l.panic = l.hosts > 0
            && (100 * (l.healthy + l.degraded) as u64 / l.hosts as u64) < PANIC_THRESHOLD;
    }
    if total == 0 {
        // Every priority is unusable: Envoy balances over all hosts in proportion (total panic).
        let hosts: usize = levels.iter().map(|l| l.hosts).sum();
        for l in levels.iter_mut() {
            l.load_percent = if hosts == 0 {
                0.0
            } else {
                (l.hosts as f64 * 100.0 / hosts as f64).round()
            };
        }
        return;
    }
    let mut remaining = 100u64;
    let mut loads = vec![0u64; levels.len()];
    for (i, h) in health.iter().enumerate() {
        let share = (h * 100 / total).min(remaining);
        loads[i] += share;
        remaining -= share;
    }
    for (i, d) in degraded.iter().enumerate() {
        let share = (d * 100 / total).min(remaining);
        loads[i] += share;
        remaining -= share;
    }
    if remaining > 0 {
        let first = health
            .iter()
            .position(|h| *h > 0)
            .or_else(|| degraded.iter().position(|d| *d > 0))
            .unwrap_or(0);
        loads[first] += remaining;
    }
    for (l, load) in levels.iter_mut().zip(loads) {
        l.load_percent = load as f64;
    }
}

fn upstream(
    dump: &Dump,
    name: &str,
    weight: Option<u32>,
    percent: f64,
    conn: &Connection,
) -> Upstream {
    let mut up = Upstream {
        cluster: name.to_string(),
        weight,
        percent,
        endpoint_source: "none".into(),
        ..Upstream::default()
    };
    let Some(c) = find_cluster(dump, name) else {
        up.reasons
            .push("the dump has no cluster of this name".into());
        return up;
    };
    up.state = Some(c.meta.state.name().to_string());
    up.discovery = Some(c.discovery.name().to_string());
    up.found = matches!(c.meta.state, State::Active | State::Static);
    if !up.found {
        up.reasons.push(format!(
            "the cluster is {}: Envoy does not use it yet",
            c.meta.state.name()
        ));
    }
    if c.discovery == Discovery::OriginalDst {
        up.endpoint_source = "original_destination".into();
        let address = match (&conn.destination_ip, conn.destination_port) {
            (Some(ip), port) if ip.contains(':') => format!("[{ip}]:{port}"),
            (Some(ip), port) => format!("{ip}:{port}"),
            (None, port) => format!("?:{port}"),
        };
        up.reasons
            .push("ORIGINAL_DST: Envoy connects to the connection's original destination".into());
        up.endpoints.push(EndpointSeen {
            address,
            health: "HEALTHY".into(),
            priority: 0,
            locality: String::new(),
            weight: None,
        });
        return up;
    }
    let Some((la, source)) = assignment(dump, c) else {
        up.reasons.push(match c.discovery {
            Discovery::Eds => {
                "no endpoints for it in the dump (was it taken with ?include_eds?)".into()
            }
            Discovery::Custom(ref t) => format!("custom cluster type {t}: Heft does not follow it"),
            _ => "the cluster lists no endpoints".into(),
        });
        return up;
    };
    up.endpoint_source = source.into();
    let mut levels: Vec<PrioritySeen> = Vec::new();
    for loc in &la.localities {
        let locality = [
            &*loc.locality.region,
            &*loc.locality.zone,
            &*loc.locality.sub_zone,
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
        let level = match levels.iter_mut().position(|l| l.priority == loc.priority) {
            Some(i) => i,
            None => {
                levels.push(PrioritySeen {
                    priority: loc.priority,
                    hosts: 0,
                    healthy: 0,
                    degraded: 0,
                    load_percent: 0.0,
                    panic: false,
                });
                levels.len() - 1
            }
        };
        for e in &loc.endpoints {
            let l = &mut levels[level];
            l.hosts += 1;
            if is_healthy(e.health) {
                l.healthy += 1;
            } else if e.health == HealthStatus::Degraded {
                l.degraded += 1;
            }
            up.endpoints.push(EndpointSeen {
                address: match (&e.address, &e.hostname) {
                    (Some(a), _) => a.to_string(),
                    (None, Some(h)) => h.to_string(),
                    _ => String::new(),
                },
                health: e.health.name().to_string(),
                priority: loc.priority,
                locality: locality.clone(),
                weight: e.weight,
            });
        }
    }
    levels.sort_by_key(|l| l.priority);
    let factor = la
        .overprovisioning_factor
        .map_or(OVERPROVISIONING, u64::from);
    priority_loads(&mut levels, factor);
    if levels.iter().any(|l| l.panic) {
        up.reasons.push(
            "a priority has under half its hosts healthy: Envoy's panic mode balances over all \
             its hosts, healthy or not"
                .into(),
        );
    }
    up.priorities = levels;
    up
}

fn result(kind: OutcomeKind, status: Option<u32>, summary: String) -> Outcome {
    Outcome {
        kind,
        certain: true,
        status,
        clusters: Vec::new(),
        summary,
    }
}

/// The clusters and endpoints of a forwarding action, and the outcome.
pub(crate) fn resolve(
    dump: &Dump,
    action: &ActionSeen,
    conn: &Connection,
    http: bool,
) -> (Vec<Upstream>, Outcome) {
    let missing = |name: &str, up: &Upstream| {
        let why = match up.state.as_deref() {
            Some(state) => format!("cluster {name} is {state}, not in use"),
            None => format!("cluster {name} is not in the dump"),
        };
        if http {
            result(
                OutcomeKind::ClusterNotFound,
                Some(503),
                format!("{why}: Envoy answers 503 (cluster_not_found_response_code)"),
            )
        } else {
            result(
                OutcomeKind::ClusterNotFound,
                None,
                format!("{why}: the TCP proxy closes the connection"),
            )
        }
    };
    match action {
        ActionSeen::Cluster { cluster } => {
            let up = upstream(dump, cluster, None, 100.0, conn);
            let out = if up.found {
                let mut o = result(OutcomeKind::Cluster, None, format!("to cluster {cluster}"));
                o.clusters.push(cluster.clone());
                o
            } else {
                missing(cluster, &up)
            };
            (vec![up], out)
        }
        ActionSeen::ClusterHeader { header, value } => match value {
            Some(v) => {
                let up = upstream(dump, v, None, 100.0, conn);
                let out = if up.found {
                    let mut o = result(
                        OutcomeKind::Cluster,
                        None,
                        format!("to cluster {v}, named by header {header}"),
                    );
                    o.clusters.push(v.clone());
                    o
                } else {
                    missing(v, &up)
                };
                (vec![up], out)
            }
            None => (
                Vec::new(),
                result(
                    OutcomeKind::ClusterNotFound,
                    Some(503),
                    format!("the request has no {header} header to name a cluster: 503"),
                ),
            ),
        },
        ActionSeen::WeightedClusters { clusters } => {
            let ups: Vec<Upstream> = clusters
                .iter()
                .map(|w| upstream(dump, &w.name, Some(w.weight), w.percent, conn))
                .collect();
            let mut live: Vec<&WeightedSeen> = clusters.iter().filter(|w| w.weight > 0).collect();
            live.sort_by_key(|w| std::cmp::Reverse(w.weight));
            let shares: Vec<String> = live
                .iter()
                .map(|w| format!("{} ({}%)", w.name, w.percent))
                .collect();
            let mut out = result(
                OutcomeKind::WeightedClusters,
                None,
                format!(
                    "to one of {}, chosen at random per {}",
                    shares.join(", "),
                    if http { "request" } else { "connection" }
                ),
            );
            out.clusters = live.iter().map(|w| w.name.clone()).collect();
            let absent: Vec<&str> = ups
                .iter()
                .filter(|u| !u.found && u.weight.unwrap_or(0) > 0)
                .map(|u| u.cluster.as_str())
                .collect();
            if !absent.is_empty() {
                out.summary.push_str(&format!(
                    "; not in use, so their share fails: {}",
                    absent.join(", ")
                ));
            }
            (ups, out)
        }
        ActionSeen::Other { description } => {
            let mut o = result(
                OutcomeKind::Undetermined,
                None,
                format!("{description}: Heft does not follow it"),
            );
            o.certain = false;
            (Vec::new(), o)
        }
        ActionSeen::Redirect { status, .. } | ActionSeen::DirectResponse { status } => (
            Vec::new(),
            result(OutcomeKind::DirectResponse, Some(*status), String::new()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(priority: u32, hosts: usize, healthy: usize) -> PrioritySeen {
        PrioritySeen {
            priority,
            hosts,
            healthy,
            degraded: 0,
            load_percent: 0.0,
            panic: false,
        }
    }

    #[test]
    fn a_fully_healthy_first_priority_takes_everything() {
        let mut l = vec![level(0, 3, 3), level(1, 2, 2)];
        priority_loads(&mut l, 140);
        assert_eq!((l[0].load_percent, l[1].load_percent), (100.0, 0.0));
    }

    #[test]
    fn overprovisioning_spills_to_the_next_priority() {
        // Envoy's documented example: P0 at 50% healthy has health 70%, so P1 gets 30%.
        let mut l = vec![level(0, 2, 1), level(1, 2, 2)];
        priority_loads(&mut l, 140);
        assert_eq!((l[0].load_percent, l[1].load_percent), (70.0, 30.0));
    }

    #[test]
    fn low_total_health_is_normalised() {
        // 20% + 20% health scale to 50% / 50%.
        let mut l = vec![level(0, 7, 1), level(1, 7, 1)];
        priority_loads(&mut l, 140);
        assert_eq!((l[0].load_percent, l[1].load_percent), (50.0, 50.0));
        assert!(l[0].panic && l[1].panic);
    }

    #[test]
    fn weights_become_percentages() {
        let w = weighted([("a", 90), ("b", 10), ("c", 0)].into_iter());
        assert_eq!(w[0].percent, 90.0);
        assert_eq!(w[2].percent, 0.0);
    }
}
