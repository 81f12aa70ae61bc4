//! Decodes `ClusterLoadAssignment` and `/clusters?format=json` cluster statuses.

use super::common::{address, locality, metadata, opt_string};
use crate::error::Result;
use crate::json::parser::Parser;
use crate::model::State;
use crate::model::{
    ClusterStatus, Endpoint, HealthStatus, HostStatus, LoadAssignment, Locality, LocalityEndpoints,
    Meta,
};

pub(crate) fn load_assignment(p: &mut Parser, meta: Meta) -> Result<LoadAssignment> {
    let mut la = LoadAssignment {
        meta,
        cluster_name: "".into(),
        localities: Vec::new(),
        overprovisioning_factor: None,
    };
    p.fields(|p, k| {
        match k {
            "cluster_name" => la.cluster_name = p.string()?,
            "endpoints" => la.localities = p.list(locality_endpoints)?,
            "policy" => p.fields(|p, k| {
                if k == "overprovisioning_factor" {
                    la.overprovisioning_factor = Some(p.wrapped_u32()?);
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(la)
}

fn locality_endpoints(p: &mut Parser) -> Result<LocalityEndpoints> {
    let mut l = LocalityEndpoints {
        locality: Locality::default(),
        priority: 0,
        weight: None,
        endpoints: Vec::new(),
    };
    p.fields(|p, k| {
        match k {
            "locality" if p.shape_only() => p.skip()?,
            "locality" => l.locality = locality(p)?,
            "priority" => l.priority = p.u32()?,
            "load_balancing_weight" => l.weight = Some(p.wrapped_u32()?),
            "lb_endpoints" => l.endpoints = p.list(lb_endpoint)?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(l)
}

fn lb_endpoint(p: &mut Parser) -> Result<Endpoint> {
    let mut e = Endpoint {
        address: None,
        additional_addresses: Vec::new(),
        hostname: None,
        health: HealthStatus::Unknown,
        weight: None,
        health_check_port: None,
        metadata: Default::default(),
    };
    p.fields(|p, k| {
        match k {
            "endpoint" if p.shape_only() => p.skip()?,
            "endpoint" => p.fields(|p, k| {
                match k {
                    "address" => e.address = address(p)?,
                    "additional_addresses" => p.array(|p| {
                        p.fields(|p, k| {
                            match k {
                                "address" => e.additional_addresses.extend(address(p)?),
                                _ => p.skip()?,
                            }
                            Ok(())
                        })
                    })?,
                    "hostname" => e.hostname = super::common::nonempty(p)?,
                    "health_check_config" => p.fields(|p, k| {
                        if k == "port_value" {
                            e.health_check_port = Some(p.u32()?).filter(|&port| port != 0);
                        } else {
                            p.skip()?;
                        }
                        Ok(())
                    })?,
                    _ => p.skip()?,
                }
                Ok(())
            })?,
            "health_status" => {
                e.health = p.enum_with(&HealthStatus::NAMES, HealthStatus::from_name)?
            }
            "load_balancing_weight" => e.weight = Some(p.wrapped_u32()?),
            "metadata" => e.metadata = metadata(p)?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(e)
}

/// One element of `cluster_statuses`: static unless `added_via_api`.
pub(crate) fn cluster_status(p: &mut Parser, meta: Meta) -> Result<ClusterStatus> {
    let mut c = ClusterStatus {
        meta: Meta {
            state: State::Static,
            ..meta
        },
        name: "".into(),
        added_via_api: false,
        hosts: Vec::new(),
    };
    p.fields(|p, k| {
        match k {
            "name" => c.name = p.string()?,
            "added_via_api" => {
                c.added_via_api = p.bool()?;
                c.meta.state = if c.added_via_api {
                    State::Active
                } else {
                    State::Static
                };
            }
            "host_statuses" => c.hosts = p.list(host_status)?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(c)
}

fn host_status(p: &mut Parser) -> Result<HostStatus> {
    let mut h = HostStatus {
        address: None,
        hostname: None,
        health: HealthStatus::Unknown,
        failed_active_health_check: false,
        failed_outlier_check: false,
        weight: 0,
        priority: 0,
        locality: Locality::default(),
        stats: Vec::new(),
    };
    p.fields(|p, k| {
        match k {
            "address" => h.address = address(p)?,
            "hostname" => h.hostname = super::common::nonempty(p)?,
            "weight" => h.weight = p.u32()?,
            "priority" => h.priority = p.u32()?,
            "locality" => h.locality = locality(p)?,
            "health_status" => p.fields(|p, k| {
                match k {
                    "eds_health_status" => {
                        h.health = p.enum_with(&HealthStatus::NAMES, HealthStatus::from_name)?
                    }
                    "failed_active_health_check" => h.failed_active_health_check = p.bool()?,
                    "failed_outlier_check" => h.failed_outlier_check = p.bool()?,
                    _ => p.skip()?,
                }
                Ok(())
            })?,
            "stats" => p.array(|p| {
                let (mut name, mut value) = (None, 0u64);
                p.fields(|p, k| {
                    match k {
                        "name" => name = opt_string(p)?,
                        "value" => value = p.u64()?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                if let Some(name) = name {
                    h.stats.push((name, value));
                }
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(h)
}
