//! `endpoints`: one row per endpoint, from a config dump's load assignments (`istioctl
//! proxy-config endpoint`: NAME, STATUS, LOCALITY, CLUSTER) or from Envoy's live
//! `/clusters?format=json` (`istioctl proxy-config endpoint` on `/clusters`: ENDPOINT, STATUS,
//! OUTLIER CHECK, CLUSTER).

use super::{equal_fold, Order, Pricing, SubsetKey};
use crate::model::{
    Address, ClusterStatus, Endpoint, HostStatus, LoadAssignment, Locality, Span, State,
};
use serde::Serialize;

/// `istioctl proxy-config endpoint`'s filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFilter {
    /// `--address`: for load assignments, one of the endpoint's addresses as shown
    /// (`10.0.0.1:9080`, a pipe's path); for `/clusters`, the host's IP. Case-insensitive.
    pub address: Option<String>,
    /// `--port`: the endpoint's port.
    pub port: Option<u32>,
    /// `--cluster`: the cluster's name (case-insensitive).
    pub cluster: Option<String>,
    /// `--status`: the health status name (`HEALTHY`, …; case-insensitive).
    pub status: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// One endpoint of a load assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRow {
    /// Its addresses as `istioctl` shows them: `ip:port`, a pipe's path, `envoy://listener/id`.
    pub addresses: Vec<String>,
    /// Its health status (`HEALTHY`, `UNHEALTHY`, `DRAINING`, `TIMEOUT`, `DEGRADED`,
    /// `UNKNOWN`).
    pub status: String,
    /// `region/zone/sub_zone`, as far as given.
    pub locality: String,
    /// The cluster (or EDS service name) the assignment is for.
    pub cluster: String,
    /// Its load-balancing weight.
    pub weight: Option<u32>,
    /// Its locality's priority.
    pub priority: u32,
    /// The assignment's state.
    pub state: State,
    /// The endpoint's predicted bytes.
    pub cost: Option<u64>,
    /// Its position among the assignment's endpoints (all localities, in order).
    pub index: usize,
}

/// One load assignment's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadAssignmentRows {
    /// The cluster it is for.
    pub cluster: String,
    /// Static (bootstrap) or active (EDS).
    pub state: State,
    /// The endpoints the filter kept, in order.
    pub endpoints: Vec<EndpointRow>,
    /// Where the resource's dump entry sat in the input, to print it as it was.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The columns `istioctl` prints for a config dump's endpoints.
pub const ISTIOCTL_COLUMNS: [&str; 4] = ["NAME", "STATUS", "LOCALITY", "CLUSTER"];

/// An address as `istioctl` names an endpoint.
fn endpoint_address(a: Option<&Address>) -> String {
    match a {
        Some(Address::Socket { address, port, .. }) => format!("{address}:{port}"),
        Some(Address::Pipe { path }) => path.to_string(),
        Some(Address::Internal {
            server_listener_name,
            endpoint_id,
        }) if !server_listener_name.is_empty() => {
            format!("envoy://{server_listener_name}/{endpoint_id}")
        }
        _ => "unknown".into(),
    }
}

/// `istioctl`'s locality text: region, then `/zone`, then `/sub_zone`, stopping at the first
/// empty one after the region.
pub fn locality_text(l: &Locality) -> String {
    let mut out = l.region.to_string();
    if l.zone.is_empty() {
        return out;
    }
    out.push('/');
    out.push_str(&l.zone);
    if l.sub_zone.is_empty() {
        return out;
    }
    out.push('/');
    out.push_str(&l.sub_zone);
    out
}

impl EndpointFilter {
    fn accepts_endpoint(&self, e: &Endpoint, addresses: &[String], cluster: &str) -> bool {
        if let Some(want) = nonempty(&self.address) {
            if !addresses.iter().any(|a| equal_fold(a, want)) {
                return false;
            }
        }
        if let Some(p) = self.port.filter(|p| *p != 0) {
            let port = match &e.address {
                Some(Address::Socket { port, .. }) => *port,
                _ => 0,
            };
            if port != p {
                return false;
            }
        }
        self.accepts_rest(cluster, e.health.name())
    }

    fn accepts_rest(&self, cluster: &str, status: &str) -> bool {
        nonempty(&self.cluster).is_none_or(|c| equal_fold(cluster, c))
            && nonempty(&self.status).is_none_or(|s| equal_fold(status, s))
    }
}

/// The rows of one load assignment, or `None` when the filter keeps none of its endpoints
/// (`istioctl` then leaves the whole assignment out).
pub fn load_assignment_rows(
    la: &LoadAssignment,
    filter: &EndpointFilter,
    pricing: &dyn Pricing,
) -> Option<LoadAssignmentRows> {
    let mut endpoints = Vec::new();
    let mut index = 0;
    for locality in &la.localities {
        let locality_name = locality_text(&locality.locality);
        for e in &locality.endpoints {
            let i = index;
            index += 1;
            let mut addresses = vec![endpoint_address(e.address.as_ref())];
            addresses.extend(
                e.additional_addresses
                    .iter()
                    .map(|a| endpoint_address(Some(a))),
            );
            if !filter.accepts_endpoint(e, &addresses, &la.cluster_name) {
                continue;
            }
            endpoints.push(EndpointRow {
                addresses,
                status: e.health.name().to_string(),
                locality: locality_name.clone(),
                cluster: la.cluster_name.to_string(),
                weight: e.weight,
                priority: locality.priority,
                state: la.meta.state,
                cost: pricing.endpoint(la, i),
                index: i,
            });
        }
    }
    (!endpoints.is_empty()).then(|| LoadAssignmentRows {
        cluster: la.cluster_name.to_string(),
        state: la.meta.state,
        endpoints,
        span: la.meta.span,
    })
}

impl EndpointRow {
    /// The line `istioctl` prints for this endpoint.
    pub fn istioctl_cells(&self) -> [String; 4] {
        [
            self.addresses.join(","),
            self.status.clone(),
            self.locality.clone(),
            self.cluster.clone(),
        ]
    }
}

/// Puts load assignments in `istioctl`'s order: EDS ones before static ones, then by cluster
/// name as it reads them (host, subset, port, direction).
pub fn arrange(assignments: Vec<LoadAssignmentRows>, order: Order) -> Vec<LoadAssignmentRows> {
    order.arrange(
        assignments,
        |a| a.state,
        |a, b| SubsetKey::of(&a.cluster).less(&SubsetKey::of(&b.cluster)),
    )
}

/// One host of Envoy's live `/clusters` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostRow {
    /// `ip:port` (the IP alone when the port is 0), or `unix://path` for a pipe.
    pub endpoint: String,
    /// The host's IP (or `unix://path`).
    pub address: String,
    /// Its port (0 for a pipe).
    pub port: u32,
    /// Its EDS health status.
    pub status: String,
    /// Whether outlier detection has ejected it.
    pub failed_outlier_check: bool,
    /// Whether active health checking fails it.
    pub failed_active_health_check: bool,
    /// The cluster.
    pub cluster: String,
    /// Its load-balancing weight.
    pub weight: u32,
    /// Its priority.
    pub priority: u32,
    /// `region/zone/sub_zone`, as far as given.
    pub locality: String,
    /// Where the host's cluster sat in the input.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The columns `istioctl` prints for `/clusters` endpoints.
pub const ISTIOCTL_HOST_COLUMNS: [&str; 4] = ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"];

fn host_address(h: &HostStatus) -> (String, u32) {
    match &h.address {
        Some(Address::Socket { address, port, .. }) => (address.to_string(), *port),
        Some(Address::Pipe { path }) => (format!("unix://{path}"), 0),
        _ => ("unix://".into(), 0),
    }
}

/// The rows of one cluster's hosts that the filter keeps.
pub fn host_rows(c: &ClusterStatus, filter: &EndpointFilter) -> Vec<HostRow> {
    c.hosts
        .iter()
        .filter_map(|h| {
            let (address, port) = host_address(h);
            if let Some(want) = nonempty(&filter.address) {
                if !equal_fold(&address, want) {
                    return None;
                }
            }
            if filter.port.is_some_and(|p| p != 0 && p != port) {
                return None;
            }
            if !filter.accepts_rest(&c.name, h.health.name()) {
                return None;
            }
            Some(HostRow {
                endpoint: if port != 0 {
                    format!("{address}:{port}")
                } else {
                    address.clone()
                },
                address,
                port,
                status: h.health.name().to_string(),
                failed_outlier_check: h.failed_outlier_check,
                failed_active_health_check: h.failed_active_health_check,
                cluster: c.name.to_string(),
                weight: h.weight,
                priority: h.priority,
                locality: locality_text(&h.locality),
                span: c.meta.span,
            })
        })
        .collect()
}

impl HostRow {
    /// The line `istioctl` prints for this host.
    pub fn istioctl_cells(&self) -> [String; 4] {
        [
            self.endpoint.clone(),
            self.status.clone(),
            if self.failed_outlier_check {
                "FAILED"
            } else {
                "OK"
            }
            .to_string(),
            self.cluster.clone(),
        ]
    }
}

/// Puts hosts in `istioctl`'s order: by address, port, then cluster.
pub fn arrange_hosts(mut rows: Vec<HostRow>) -> Vec<HostRow> {
    super::go_sort(&mut rows, |a, b| {
        if a.address != b.address {
            return a.address < b.address;
        }
        if a.port != b.port {
            return a.port < b.port;
        }
        a.cluster < b.cluster
    });
    rows
}
