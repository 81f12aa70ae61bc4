//! `ClusterLoadAssignment` (prost) to the model, as `json::decode::endpoint` reads it.

use super::common::{address, locality, metadata, some};
use super::envoy::config::endpoint::v3 as pb;
use crate::error::Result;
use crate::model::{Endpoint, HealthStatus, LoadAssignment, LocalityEndpoints, Meta};

pub(crate) fn load_assignment(la: pb::ClusterLoadAssignment, meta: Meta) -> Result<LoadAssignment> {
    Ok(LoadAssignment {
        meta,
        cluster_name: la.cluster_name.into(),
        localities: la.endpoints.into_iter().map(locality_endpoints).collect(),
        overprovisioning_factor: la.policy.and_then(|p| p.overprovisioning_factor),
    })
}

fn locality_endpoints(l: pb::LocalityLbEndpoints) -> LocalityEndpoints {
    LocalityEndpoints {
        locality: locality(l.locality),
        priority: l.priority,
        weight: l.load_balancing_weight,
        endpoints: l.lb_endpoints.into_iter().map(lb_endpoint).collect(),
    }
}

fn lb_endpoint(e: pb::LbEndpoint) -> Endpoint {
    let mut out = Endpoint {
        address: None,
        additional_addresses: Vec::new(),
        hostname: None,
        health: HealthStatus::from_name(&super::common::enum_name(
            &HealthStatus::NAMES,
            e.health_status,
        )),
        weight: e.load_balancing_weight,
        health_check_port: None,
        metadata: metadata(e.metadata),
    };
    if let Some(pb::lb_endpoint::HostIdentifier::Endpoint(ep)) = e.host_identifier {
        out.address = ep.address.and_then(address);
        out.additional_addresses = ep
            .additional_addresses
            .into_iter()
            .filter_map(|a| a.address.and_then(address))
            .collect();
        out.hostname = some(ep.hostname);
        out.health_check_port = ep
            .health_check_config
            .and_then(|h| (h.port_value != 0).then_some(h.port_value));
    }
    out
}
