//! `envoy.config.endpoint.v3.ClusterLoadAssignment` read from the input, as
//! `json::decode::endpoint` reads it.
//!
//! Load assignments hold most of a big dump's bytes, so they are read field by field from the
//! wire rather than through prost's owned messages.

use super::parts::{address, locality, metadata, push_read, some};
use super::wire::{Field, Fields};
use crate::error::Result;
use crate::model::{Endpoint, HealthStatus, LoadAssignment, LocalityEndpoints, Meta};
use crate::stream::Detail;

/// Reads a `ClusterLoadAssignment` whose bytes start at input offset `at`. Under
/// [`Detail::Shape`] endpoints keep no address, hostname or health check port, and localities
/// no names (their bytes go unchecked), as in the JSON reader.
pub(crate) fn load_assignment(
    b: &[u8],
    at: u64,
    meta: Meta,
    detail: Detail,
) -> Result<LoadAssignment> {
    let shape = detail == Detail::Shape;
    let mut out = LoadAssignment {
        meta,
        cluster_name: "".into(),
        localities: Vec::new(),
        overprovisioning_factor: None,
    };
    for f in Fields::new(b, at) {
        let f = f?;
        match f.number {
            1 => out.cluster_name = f.string()?.into(),
            2 => push_read(
                &mut out.localities,
                "endpoints",
                locality_endpoints(&f, shape),
            )?,
            4 => {
                for g in f.message()? {
                    let g = g?;
                    if g.number == 3 {
                        out.overprovisioning_factor = Some(g.u32_value()?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn locality_endpoints(f: &Field, shape: bool) -> Result<LocalityEndpoints> {
    let mut out = LocalityEndpoints {
        locality: Default::default(),
        priority: 0,
        weight: None,
        endpoints: Vec::new(),
    };
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 if shape => {
                g.bytes()?;
            }
            1 => out.locality = locality(&g)?,
            2 => push_read(&mut out.endpoints, "lb_endpoints", lb_endpoint(&g, shape))?,
            3 => out.weight = Some(g.u32_value()?),
            5 => out.priority = g.u32()?,
            _ => {}
        }
    }
    Ok(out)
}

fn lb_endpoint(f: &Field, shape: bool) -> Result<Endpoint> {
    let mut out = Endpoint {
        address: None,
        additional_addresses: Vec::new(),
        hostname: None,
        health: HealthStatus::Unknown,
        weight: None,
        health_check_port: None,
        metadata: Default::default(),
    };
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 | 5 if shape => {
                g.bytes()?;
            }
            1 => endpoint(&g, &mut out)?,
            // `endpoint_name`, the other member of the `host_identifier` oneof: Heft reads
            // no host from it.
            5 => {
                g.string()?;
                out.address = None;
                out.additional_addresses.clear();
                out.hostname = None;
                out.health_check_port = None;
            }
            2 => out.health = HealthStatus::from_number(g.i32()?),
            3 => {
                let (b, at) = g.bytes()?;
                out.metadata = metadata(b, at).map_err(|e| e.in_key("metadata"))?;
            }
            4 => out.weight = Some(g.u32_value()?),
            _ => {}
        }
    }
    Ok(out)
}

/// `Endpoint`: the host's addresses, hostname and health check port.
fn endpoint(f: &Field, out: &mut Endpoint) -> Result<()> {
    out.address = None;
    out.additional_addresses.clear();
    out.hostname = None;
    out.health_check_port = None;
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 => {
                let (b, at) = g.bytes()?;
                out.address = address(b, at)?;
            }
            2 => {
                for h in g.message()? {
                    let h = h?;
                    if h.number == 1 {
                        let port = h.u32()?;
                        out.health_check_port = (port != 0).then_some(port);
                    }
                }
            }
            3 => out.hostname = some(g.string()?),
            4 => {
                let mut last = None;
                for h in g.message()? {
                    let h = h?;
                    if h.number == 1 {
                        let (b, at) = h.bytes()?;
                        last = address(b, at)?;
                    }
                }
                out.additional_addresses.extend(last);
            }
            _ => {}
        }
    }
    Ok(())
}
