//! What an Istio `Sidecar` resource's egress `hosts` would leave in a proxy's configuration.
//!
//! A [`Scope`] is a list of [`EgressHost`]s in Istio's `namespace/dnsName` form: the namespace is
//! a name, `*` (any), `.` (the workload's own) or `~` (none); the name is a host, `*` (every
//! service of that namespace), or a left-most wildcard such as `*.example.com` (any host ending in
//! `.example.com`). [`Scope::apply`] removes what istiod would no longer send: outbound service
//! clusters out of scope with their endpoints (and client secrets only they used), the virtual
//! hosts of those services from the outbound route configurations, route configurations left
//! with no service, and outbound listeners that only led to removed services. It keeps what Istio
//! keeps for every sidecar: inbound clusters and listeners, the catch-all clusters
//! (`BlackHoleCluster`, `PassthroughCluster`, …), the bootstrap's resources, and catch-all virtual
//! hosts such as `allow_any`.
//!
//! ```
//! use heft::scope::Scope;
//! let dump = heft::Dump::from_slice(br#"{"configs": [{
//!   "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
//!   "dynamic_active_clusters": [
//!     {"cluster": {"name": "outbound|9080||reviews.default.svc.cluster.local", "type": "EDS"}},
//!     {"cluster": {"name": "outbound|80||billing.shop.svc.cluster.local", "type": "EDS"}},
//!     {"cluster": {"name": "BlackHoleCluster", "type": "STATIC"}}]}]}"#)?;
//! let scope = Scope::parse(&["./*"], "default").unwrap();
//! let scoped = scope.apply(&dump);
//! let names: Vec<&str> = scoped.dump.clusters.iter().map(|c| &*c.name).collect();
//! assert_eq!(names, ["outbound|9080||reviews.default.svc.cluster.local", "BlackHoleCluster"]);
//! assert_eq!(scoped.removed.clusters, 1);
//! # Ok::<(), heft::Error>(())
//! ```

use crate::model::istio::{Direction, IstioName};
use crate::model::{Cluster, Dump, Listener, NetworkFilter, RouteSource, State, TcpTarget};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Which namespaces an egress host selects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Namespaces {
    /// `*`: any namespace.
    Any,
    /// `.`: the workload's own.
    Own,
    /// `~`: none.
    None,
    /// One namespace by name.
    Named(String),
}

/// Which hosts an egress host selects within its namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// `*`: every service.
    Any,
    /// `*.example.com`: hosts ending in `.example.com` (the part after the `*`).
    Suffix(String),
    /// One host.
    Exact(String),
}

/// One entry of a Sidecar's `egress[].hosts`, in `namespace/dnsName` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressHost {
    text: String,
    namespaces: Namespaces,
    hosts: Hosts,
}

impl EgressHost {
    /// Reads `namespace/dnsName`, as Istio validates it.
    ///
    /// ```
    /// assert!(heft::scope::EgressHost::parse("istio-system/*").is_ok());
    /// assert!(heft::scope::EgressHost::parse("reviews.default.svc.cluster.local").is_err());
    /// assert!(heft::scope::EgressHost::parse("./foo*.example.com").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<EgressHost, String> {
        let (ns, name) = text.split_once('/').ok_or_else(|| {
            format!("egress host {text:?} is not of the form namespace/dnsName (e.g. ./*, istio-system/*)")
        })?;
        let namespaces = match ns {
            "*" => Namespaces::Any,
            "." => Namespaces::Own,
            "~" => Namespaces::None,
            "" => return Err(format!("egress host {text:?} has an empty namespace")),
            n if n.contains(['*', '/']) => {
                return Err(format!(
                    "egress host {text:?}: namespace {n:?} is not *, ., ~ or a name"
                ))
            }
            n => Namespaces::Named(n.to_string()),
        };
        let hosts = match name {
            "*" => Hosts::Any,
            "" => return Err(format!("egress host {text:?} has an empty dnsName")),
            n if n.starts_with("*.") && !n[1..].contains('*') => Hosts::Suffix(n[1..].to_string()),
            n if n.contains('*') => {
                return Err(format!(
                    "egress host {text:?}: a wildcard may only be the whole name or its left-most label (*.example.com)"
                ))
            }
            n => Hosts::Exact(n.to_ascii_lowercase()),
        };
        if namespaces == Namespaces::None && hosts != Hosts::Any {
            return Err(format!("egress host {text:?}: ~ must be written ~/*"));
        }
        Ok(EgressHost {
            text: text.to_string(),
            namespaces,
            hosts,
        })
    }

    /// The host as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn selects(&self, own_namespace: &str, namespace: &str, host: &str) -> bool {
        let namespace_ok = match &self.namespaces {
            Namespaces::Any => true,
            Namespaces::Own => namespace == own_namespace,
            Namespaces::None => false,
            Namespaces::Named(n) => namespace == n,
        };
        namespace_ok && self.selects_host(host)
    }

    fn selects_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match &self.hosts {
            Hosts::Any => true,
            Hosts::Exact(h) => match host.strip_prefix('*') {
                // A wildcard service (a ServiceEntry for `*.wikipedia.org`) is selected by a
                // host it covers.
                Some(suffix) => h.ends_with(suffix),
                None => *h == host,
            },
            Hosts::Suffix(s) => host.ends_with(s.as_str()),
        }
    }
}

/// A Sidecar's egress hosts, for a workload in `own_namespace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    hosts: Vec<EgressHost>,
    own_namespace: String,
}

/// How many objects a scope removed, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Outbound service clusters.
    pub clusters: usize,
    /// Endpoint configurations of those clusters.
    pub endpoint_configs: usize,
    /// Endpoints in them.
    pub endpoints: usize,
    /// Listeners that only led to removed services.
    pub listeners: usize,
    /// Route configurations left with no service.
    pub route_configs: usize,
    /// Virtual hosts of removed services.
    pub virtual_hosts: usize,
    /// Routes in those virtual hosts.
    pub routes: usize,
    /// Secrets only removed clusters used.
    pub secrets: usize,
}

/// A dump as a Sidecar scope leaves it.
#[derive(Debug, Clone)]
pub struct Scoped {
    /// The configuration left.
    pub dump: Dump,
    /// What was removed.
    pub removed: Removed,
    /// Services kept, by host, with their namespace.
    pub kept_services: BTreeMap<String, String>,
    /// Services removed, by host, with their namespace.
    pub removed_services: BTreeMap<String, String>,
    /// Outbound clusters whose namespace the dump does not say, kept to be safe.
    pub undecided: Vec<String>,
}

/// A service cluster's host and namespace: the namespace from Istio's cluster metadata (what
/// istiod knows), else from a Kubernetes host name.
pub(crate) fn service_of(c: &Cluster) -> Option<(&str, Option<&str>)> {
    let Some(IstioName::Service {
        direction: Direction::Outbound,
        host,
        namespace,
        ..
    }) = &c.istio
    else {
        return None;
    };
    let from_metadata = c
        .metadata
        .istio_services
        .iter()
        .find(|s| s.host == *host && !s.namespace.is_empty())
        .map(|s| &*s.namespace);
    Some((host, from_metadata.or(namespace.as_deref())))
}

/// The service host an Istio virtual host serves: its name is `host:port`.
pub(crate) fn virtual_host_service(name: &str) -> Option<&str> {
    let (host, port) = name.rsplit_once(':')?;
    port.parse::<u16>().ok().map(|_| host)
}

impl Scope {
    /// Reads egress hosts for a workload in `own_namespace`.
    pub fn parse(hosts: &[&str], own_namespace: &str) -> Result<Scope, String> {
        if hosts.is_empty() {
            return Err("a Sidecar scope needs at least one egress host".to_string());
        }
        Ok(Scope {
            hosts: hosts
                .iter()
                .map(|h| EgressHost::parse(h))
                .collect::<Result<_, _>>()?,
            own_namespace: own_namespace.to_string(),
        })
    }

    /// The egress hosts.
    pub fn hosts(&self) -> &[EgressHost] {
        &self.hosts
    }

    /// The workload's namespace (what `.` means).
    pub fn own_namespace(&self) -> &str {
        &self.own_namespace
    }

    /// Whether the scope keeps the service `host` of `namespace`.
    pub fn keeps(&self, namespace: &str, host: &str) -> bool {
        self.hosts
            .iter()
            .any(|h| h.selects(&self.own_namespace, namespace, host))
    }

    /// The egress hosts, as written, that select no outbound service of `dump` (`~/*` selects
    /// none by design and is left out).
    pub fn unmatched(&self, dump: &Dump) -> Vec<String> {
        let services: Vec<(&str, &str)> = dump
            .clusters
            .iter()
            .filter_map(|c| {
                let (host, ns) = service_of(c)?;
                Some((host, ns.unwrap_or_default()))
            })
            .collect();
        self.hosts
            .iter()
            .filter(|h| h.namespaces != Namespaces::None)
            .filter(|h| {
                !services
                    .iter()
                    .any(|(host, ns)| h.selects(&self.own_namespace, ns, host))
            })
            .map(|h| h.text.clone())
            .collect()
    }

    /// The dump as this scope leaves it.
    pub fn apply(&self, dump: &Dump) -> Scoped {
        let mut removed = Removed::default();
        let mut kept_services = BTreeMap::new();
        let mut removed_services = BTreeMap::new();
        let mut undecided = Vec::new();
        // Every host's namespace, as the clusters say it (virtual hosts are named by host only).
        let mut namespace_of: HashMap<&str, &str> = HashMap::new();
        for c in &dump.clusters {
            if let Some((host, Some(ns))) = service_of(c) {
                namespace_of.entry(host).or_insert(ns);
            }
        }
        let mut gone_clusters: HashSet<&str> = HashSet::new();
        let mut gone_eds: HashSet<&str> = HashSet::new();
        let mut clusters = Vec::with_capacity(dump.clusters.len());
        for c in &dump.clusters {
            let keep = match service_of(c) {
                None => true,
                Some((host, ns)) => match ns.or_else(|| namespace_of.get(host).copied()) {
                    None => {
                        undecided.push(c.name.to_string());
                        true
                    }
                    Some(ns) => {
                        let keep = self.keeps(ns, host);
                        let into = if keep {
                            &mut kept_services
                        } else {
                            &mut removed_services
                        };
                        into.insert(host.to_string(), ns.to_string());
                        keep
                    }
                },
            };
            if keep {
                clusters.push(c.clone());
            } else {
                removed.clusters += 1;
                gone_clusters.insert(&c.name);
                gone_eds.insert(c.eds_service_name.as_deref().unwrap_or(&c.name));
            }
        }

        let endpoint_configs: Vec<_> = dump
            .endpoint_configs
            .iter()
            .filter(|la| {
                let gone = gone_eds.contains(&*la.cluster_name)
                    || gone_clusters.contains(&*la.cluster_name);
                if gone {
                    removed.endpoint_configs += 1;
                    removed.endpoints += la.endpoints().count();
                }
                !gone
            })
            .cloned()
            .collect();

        // Route configurations: drop removed services' virtual hosts; a configuration that
        // served services and serves none now is gone, and so are its listeners.
        let vhost_gone = |name: &str| -> bool {
            let Some(host) = virtual_host_service(name) else {
                return false;
            };
            let ns: Option<String> = match namespace_of.get(host) {
                Some(ns) => Some(ns.to_string()),
                None => IstioName::parse(&format!("outbound|1||{host}"))
                    .and_then(|n| n.namespace().map(str::to_string)),
            };
            ns.is_some_and(|ns| !self.keeps(&ns, host))
        };
        let mut gone_routes: HashSet<&str> = HashSet::new();
        let mut route_configs = Vec::with_capacity(dump.route_configs.len());
        for rc in &dump.route_configs {
            let services_before = rc
                .virtual_hosts
                .iter()
                .filter(|v| virtual_host_service(&v.name).is_some())
                .count();
            let mut rc2 = rc.clone();
            rc2.virtual_hosts.retain(|v| {
                let gone = vhost_gone(&v.name);
                if gone {
                    removed.virtual_hosts += 1;
                    removed.routes += v.routes.len();
                }
                !gone
            });
            let services_after = rc2
                .virtual_hosts
                .iter()
                .filter(|v| virtual_host_service(&v.name).is_some())
                .count();
            if services_before > 0 && services_after == 0 && rc.meta.state != State::Static {
                removed.route_configs += 1;
                gone_routes.insert(&rc.name);
            } else {
                route_configs.push(rc2);
            }
        }

        let listeners: Vec<Listener> = dump
            .listeners
            .iter()
            .filter(|l| {
                let gone =
                    l.meta.state != State::Static && leads_only_to(l, &gone_clusters, &gone_routes);
                if gone {
                    removed.listeners += 1;
                }
                !gone
            })
            .cloned()
            .collect();

        // Secrets: those only removed clusters referred to are no longer asked for.
        let used_before: HashSet<&str> = referenced_secrets(&dump.clusters, &dump.listeners);
        let used_after: HashSet<&str> = referenced_secrets(&clusters, &listeners);
        let secrets: Vec<_> = dump
            .secrets
            .iter()
            .filter(|s| {
                let gone = s.meta.state != State::Static
                    && used_before.contains(&*s.name)
                    && !used_after.contains(&*s.name);
                if gone {
                    removed.secrets += 1;
                }
                !gone
            })
            .cloned()
            .collect();

        let cluster_statuses = dump
            .cluster_statuses
            .iter()
            .filter(|s| !gone_clusters.contains(&*s.name))
            .cloned()
            .collect();
        let dump = Dump {
            source: dump.source.clone(),
            bootstrap: dump.bootstrap.clone(),
            clusters,
            listeners,
            route_configs,
            endpoint_configs,
            secrets,
            cluster_statuses,
            rejected: dump.rejected.clone(),
            opaque: dump.opaque.clone(),
            sections: dump.sections.clone(),
            skipped: dump.skipped.clone(),
        };
        Scoped {
            dump,
            removed,
            kept_services,
            removed_services,
            undecided,
        }
    }
}

/// Whether every filter chain of a listener leads only to removed clusters or route
/// configurations (a listener with nothing removed behind it is kept).
fn leads_only_to(l: &Listener, clusters: &HashSet<&str>, routes: &HashSet<&str>) -> bool {
    let mut any = false;
    for fc in l.all_filter_chains() {
        for f in &fc.filters {
            let gone = match f {
                NetworkFilter::HttpConnectionManager { config, .. } => match &config.routes {
                    RouteSource::Rds { route_config_name } => routes.contains(&**route_config_name),
                    _ => false,
                },
                NetworkFilter::TcpProxy { config, .. } => match &config.target {
                    TcpTarget::Cluster(c) => clusters.contains(&**c),
                    TcpTarget::Weighted(ws) => {
                        !ws.is_empty() && ws.iter().all(|(c, _)| clusters.contains(&**c))
                    }
                    TcpTarget::None => false,
                },
                NetworkFilter::Other { .. } => continue,
            };
            if !gone {
                return false;
            }
            any = true;
        }
    }
    any
}

fn referenced_secrets<'a>(clusters: &'a [Cluster], listeners: &'a [Listener]) -> HashSet<&'a str> {
    let mut out: HashSet<&str> = clusters.iter().flat_map(|c| c.sds_secrets()).collect();
    for l in listeners {
        for fc in l.all_filter_chains() {
            if let Some(tls) = fc.transport_socket.as_ref().and_then(|t| t.tls.as_ref()) {
                out.extend(tls.certificate_sds.iter().map(|s| &**s));
                out.extend(tls.validation_sds.iter().map(|s| &**s));
            }
        }
    }
    out
}
