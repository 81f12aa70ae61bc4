//! Endpoints: EDS load assignments and live host status from `/clusters`.

use super::{Address, Meta, Metadata};
use serde::Serialize;

/// An endpoint's health as the control plane (or health checking) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// Not reported (the proto3 default).
    Unknown,
    /// Healthy.
    Healthy,
    /// Unhealthy.
    Unhealthy,
    /// Draining.
    Draining,
    /// Health check timed out.
    Timeout,
    /// Degraded.
    Degraded,
}

impl HealthStatus {
    pub(crate) const NAMES: [&'static str; 6] = [
        "UNKNOWN",
        "HEALTHY",
        "UNHEALTHY",
        "DRAINING",
        "TIMEOUT",
        "DEGRADED",
    ];

    pub(crate) fn from_name(name: &str) -> HealthStatus {
        match name {
            "HEALTHY" => HealthStatus::Healthy,
            "UNHEALTHY" => HealthStatus::Unhealthy,
            "DRAINING" => HealthStatus::Draining,
            "TIMEOUT" => HealthStatus::Timeout,
            "DEGRADED" => HealthStatus::Degraded,
            _ => HealthStatus::Unknown,
        }
    }

    /// By number, as protobuf holds it: the inverse of [`name`](Self::name)'s index into
    /// `NAMES`. Numbers Heft does not know read as `Unknown`, as unknown names do.
    pub(crate) fn from_number(n: i32) -> HealthStatus {
        use HealthStatus as H;
        const BY_NUMBER: [HealthStatus; 6] = [
            H::Unknown,
            H::Healthy,
            H::Unhealthy,
            H::Draining,
            H::Timeout,
            H::Degraded,
        ];
        usize::try_from(n)
            .ok()
            .and_then(|i| BY_NUMBER.get(i))
            .copied()
            .unwrap_or(H::Unknown)
    }

    /// The enum name (`HEALTHY`, …).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A locality (region / zone / sub-zone).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Locality {
    /// Region.
    pub region: Box<str>,
    /// Zone.
    pub zone: Box<str>,
    /// Sub-zone.
    pub sub_zone: Box<str>,
}

/// One upstream host of a load assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Its address.
    pub address: Option<Address>,
    /// More addresses of the same host (`additional_addresses`, e.g. its IPv6 address).
    pub additional_addresses: Vec<Address>,
    /// Hostname, when given.
    pub hostname: Option<Box<str>>,
    /// Health reported by the control plane.
    pub health: HealthStatus,
    /// Load-balancing weight.
    pub weight: Option<u32>,
    /// Health check port override.
    pub health_check_port: Option<u32>,
    /// Istio metadata (workload, `tlsMode`).
    pub metadata: Metadata,
}

/// The endpoints of one locality and priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalityEndpoints {
    /// Where they are.
    pub locality: Locality,
    /// Priority (0 is highest).
    pub priority: u32,
    /// Locality weight.
    pub weight: Option<u32>,
    /// The hosts.
    pub endpoints: Vec<Endpoint>,
}

/// A cluster's endpoints (`ClusterLoadAssignment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadAssignment {
    /// State, version and input span.
    pub meta: Meta,
    /// The cluster (or EDS service name) it is for.
    pub cluster_name: Box<str>,
    /// Localities with their endpoints.
    pub localities: Vec<LocalityEndpoints>,
    /// Overprovisioning factor, when set.
    pub overprovisioning_factor: Option<u32>,
}

impl LoadAssignment {
    /// Every endpoint over all localities.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.localities.iter().flat_map(|l| l.endpoints.iter())
    }
}

/// One host's live status, from `/clusters?format=json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostStatus {
    /// Its address.
    pub address: Option<Address>,
    /// Hostname.
    pub hostname: Option<Box<str>>,
    /// Health the control plane reported (`eds_health_status`).
    pub health: HealthStatus,
    /// Failing active health checks.
    pub failed_active_health_check: bool,
    /// Ejected by outlier detection.
    pub failed_outlier_check: bool,
    /// Load-balancing weight.
    pub weight: u32,
    /// Priority.
    pub priority: u32,
    /// Locality.
    pub locality: Locality,
    /// Counters and gauges (`cx_total`, `rq_total`, …).
    pub stats: Vec<(Box<str>, u64)>,
}

/// One cluster's live status, from `/clusters?format=json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    /// Where the entry sat in the input.
    pub meta: Meta,
    /// Cluster name.
    pub name: Box<str>,
    /// Added over xDS (rather than from the bootstrap).
    pub added_via_api: bool,
    /// Its hosts.
    pub hosts: Vec<HostStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_numbers_and_names_agree() {
        for (n, name) in HealthStatus::NAMES.iter().enumerate() {
            let by_number = HealthStatus::from_number(n as i32);
            assert_eq!(by_number, HealthStatus::from_name(name));
            assert_eq!(by_number.name(), *name);
        }
        assert_eq!(HealthStatus::from_number(6), HealthStatus::Unknown);
        assert_eq!(HealthStatus::from_number(-1), HealthStatus::Unknown);
    }
}
