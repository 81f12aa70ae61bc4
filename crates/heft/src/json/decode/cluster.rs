//! Decodes `envoy.config.cluster.v3.Cluster`.

use super::common::{metadata, opaque, transport_socket};
use super::endpoint::load_assignment;
use crate::error::Result;
use crate::json::parser::Parser;
use crate::model::enums;
use crate::model::{
    CircuitBreaker, Cluster, Discovery, HttpProtocol, Meta, OutlierDetection, TransportSocketMatch,
};

const HTTP_PROTOCOL_OPTIONS: &str =
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

pub(crate) fn cluster(p: &mut Parser, meta: Meta) -> Result<Cluster> {
    let mut c = Cluster::new("", Discovery::Static, meta);
    p.fields(|p, k| {
        match k {
            "name" => c.name = p.string()?,
            "alt_stat_name" => c.alt_stat_name = super::common::nonempty(p)?,
            "type" => c.discovery = p.enum_with(&Discovery::NAMES, Discovery::from_name)?,
            "cluster_type" => {
                let (name, config) = super::common::typed_extension(p)?;
                c.discovery = Discovery::Custom(name);
                c.extensions.extend(config);
            }
            "eds_cluster_config" => p.fields(|p, k| {
                if k == "service_name" {
                    c.eds_service_name = super::common::nonempty(p)?;
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            "lb_policy" => c.lb_policy = p.enum_name(&enums::LB_POLICY)?,
            "connect_timeout" => c.connect_timeout = Some(p.duration()?),
            "circuit_breakers" => p.fields(|p, k| {
                if k == "thresholds" {
                    c.circuit_breakers = p.list(threshold)?;
                } else {
                    p.skip()?;
                }
                Ok(())
            })?,
            "outlier_detection" => c.outlier_detection = Some(outlier_detection(p)?),
            "transport_socket" => c.transport_socket = Some(Box::new(transport_socket(p)?)),
            "transport_socket_matches" => {
                c.transport_socket_matches = p.list(transport_socket_match)?;
            }
            "typed_extension_protocol_options" => p.entries(|p, _name| {
                if p.peek_type_url()?.as_deref() == Some(HTTP_PROTOCOL_OPTIONS) {
                    if let Some(proto) = http_protocol_options(p)? {
                        c.http_protocol = Some(proto);
                    }
                } else {
                    c.extensions.push(opaque(p)?);
                }
                Ok(())
            })?,
            "http2_protocol_options" => {
                p.skip()?;
                c.http_protocol = Some(HttpProtocol::Http2);
            }
            "metadata" if p.shape_only() => p.skip()?,
            "metadata" => c.metadata = metadata(p)?,
            "load_assignment" => {
                let la = load_assignment(p, Meta::new(c.meta.state))?;
                c.load_assignment = Some(Box::new(la));
            }
            "load_balancing_policy" | "upstream_config" | "cluster_provided" => {
                c.extensions.push(opaque(p)?)
            }
            "filters" => c.extensions.extend(super::common::opaque_list(p)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    if !p.shape_only() {
        c.istio = crate::model::istio::IstioName::parse(&c.name);
    }
    c.extensions.shrink_to_fit();
    Ok(c)
}

fn threshold(p: &mut Parser) -> Result<CircuitBreaker> {
    let mut t = CircuitBreaker {
        priority: "DEFAULT".into(),
        ..Default::default()
    };
    p.fields(|p, k| {
        match k {
            "priority" => t.priority = p.enum_name(&enums::ROUTING_PRIORITY)?,
            "max_connections" => t.max_connections = Some(p.wrapped_u32()?),
            "max_pending_requests" => t.max_pending_requests = Some(p.wrapped_u32()?),
            "max_requests" => t.max_requests = Some(p.wrapped_u32()?),
            "max_retries" => t.max_retries = Some(p.wrapped_u32()?),
            "track_remaining" => t.track_remaining = p.bool()?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(t)
}

fn outlier_detection(p: &mut Parser) -> Result<OutlierDetection> {
    let mut o = OutlierDetection::default();
    p.fields(|p, k| {
        match k {
            // proto3 JSON names drop the underscore before a digit (`consecutive5xx`), which
            // camelCase-to-snake conversion cannot put back.
            "consecutive_5xx" | "consecutive5xx" => o.consecutive_5xx = Some(p.wrapped_u32()?),
            "interval" => o.interval = Some(p.duration()?),
            "base_ejection_time" => o.base_ejection_time = Some(p.duration()?),
            "max_ejection_percent" => o.max_ejection_percent = Some(p.wrapped_u32()?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(o)
}

fn transport_socket_match(p: &mut Parser) -> Result<TransportSocketMatch> {
    let mut m = TransportSocketMatch {
        name: "".into(),
        criteria: Vec::new(),
        socket: None,
    };
    p.fields(|p, k| {
        match k {
            "name" | "match" if p.shape_only() => p.skip()?,
            "name" => m.name = p.string()?,
            "match" => p.entries(|p, key| {
                if let Some(v) = super::common::opt_string(p)? {
                    m.criteria.push((key.into(), v));
                }
                Ok(())
            })?,
            "transport_socket" => m.socket = Some(transport_socket(p)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    m.criteria.shrink_to_fit();
    Ok(m)
}

/// `HttpProtocolOptions`: which protocol it selects.
fn http_protocol_options(p: &mut Parser) -> Result<Option<HttpProtocol>> {
    let mut out = None;
    p.fields(|p, k| {
        match k {
            "explicit_http_config" => p.fields(|p, k| {
                match k {
                    "http_protocol_options" => out = Some(HttpProtocol::Http1),
                    "http2_protocol_options" => out = Some(HttpProtocol::Http2),
                    "http3_protocol_options" => out = Some(HttpProtocol::Http3),
                    _ => {}
                }
                p.skip()
            })?,
            "use_downstream_protocol_config" => {
                out = Some(HttpProtocol::Downstream);
                p.skip()?;
            }
            "auto_config" => {
                out = Some(HttpProtocol::Auto);
                p.skip()?;
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(out)
}
