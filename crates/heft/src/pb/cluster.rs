//! `envoy.config.cluster.v3.Cluster` (prost) to the model, as `json::decode::cluster` reads it.

use super::common::{
    duration, enum_name, metadata, opaque_any, opaque_message, some, struct_strings,
    transport_socket, unpack,
};
use super::endpoint::load_assignment;
use super::envoy::config::cluster::v3 as pb;
use super::envoy::extensions::upstreams::http::v3 as http;
use crate::error::Result;
use crate::model::enums;
use crate::model::{
    CircuitBreaker, Cluster, Discovery, HttpProtocol, Meta, OutlierDetection, TransportSocketMatch,
};
use crate::stream::Detail;
use prost::Message;

const HTTP_PROTOCOL_OPTIONS: &str =
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Converts one cluster. Extensions are listed in field-number order, the order Envoy prints
/// them in JSON.
pub(crate) fn cluster(c: pb::Cluster, meta: Meta, detail: Detail) -> Result<Cluster> {
    let state = meta.state;
    let mut out = Cluster::new(&c.name, Discovery::Static, meta);
    out.alt_stat_name = some(c.alt_stat_name);
    out.eds_service_name = c.eds_cluster_config.and_then(|e| some(e.service_name));
    out.lb_policy = enum_name(&enums::LB_POLICY, c.lb_policy);
    out.connect_timeout = c.connect_timeout.as_ref().map(duration).transpose()?;
    if let Some(cb) = c.circuit_breakers {
        out.circuit_breakers = cb.thresholds.into_iter().map(threshold).collect();
    }
    out.outlier_detection = c.outlier_detection.map(outlier_detection).transpose()?;
    if c.http2_protocol_options.is_some() {
        out.http_protocol = Some(HttpProtocol::Http2);
    }
    for any in c.typed_extension_protocol_options.values() {
        if any.type_url == HTTP_PROTOCOL_OPTIONS {
            let o: http::HttpProtocolOptions = unpack(any)?;
            if let Some(p) = http_protocol(o) {
                out.http_protocol = Some(p);
            }
        } else {
            out.extensions.push(opaque_any(any));
        }
    }
    out.transport_socket = c
        .transport_socket
        .map(|s| transport_socket(s, detail))
        .transpose()?
        .map(Box::new);
    out.metadata = metadata(c.metadata);
    if let Some(la) = c.load_assignment {
        out.load_assignment = Some(Box::new(load_assignment(la, Meta::new(state))?));
    }
    match c.cluster_discovery_type {
        Some(pb::cluster::ClusterDiscoveryType::Type(t)) => {
            out.discovery = Discovery::from_name(&enum_name(&Discovery::NAMES, t));
        }
        Some(pb::cluster::ClusterDiscoveryType::ClusterType(t)) => {
            out.discovery = Discovery::Custom(t.name.into());
            out.extensions
                .extend(t.typed_config.as_ref().map(opaque_any));
        }
        None => {}
    }
    if !c.filters.is_empty() {
        let bytes = c.filters.iter().map(Message::encoded_len).sum();
        out.extensions.push(opaque_message(bytes));
    }
    if let Some(p) = &c.load_balancing_policy {
        out.extensions.push(opaque_message(p.encoded_len()));
    }
    out.transport_socket_matches = c
        .transport_socket_matches
        .into_iter()
        .map(|m| {
            Ok(TransportSocketMatch {
                name: m.name.into(),
                criteria: struct_strings(m.r#match),
                socket: m
                    .transport_socket
                    .map(|s| transport_socket(s, detail))
                    .transpose()?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(out)
}

fn threshold(t: pb::circuit_breakers::Thresholds) -> CircuitBreaker {
    CircuitBreaker {
        priority: enum_name(&enums::ROUTING_PRIORITY, t.priority),
        max_connections: t.max_connections,
        max_pending_requests: t.max_pending_requests,
        max_requests: t.max_requests,
        max_retries: t.max_retries,
        track_remaining: t.track_remaining,
    }
}

fn outlier_detection(o: pb::OutlierDetection) -> Result<OutlierDetection> {
    Ok(OutlierDetection {
        consecutive_5xx: o.consecutive_5xx,
        interval: o.interval.as_ref().map(duration).transpose()?,
        base_ejection_time: o.base_ejection_time.as_ref().map(duration).transpose()?,
        max_ejection_percent: o.max_ejection_percent,
    })
}

/// `HttpProtocolOptions`: which protocol it selects.
fn http_protocol(o: http::HttpProtocolOptions) -> Option<HttpProtocol> {
    use http::http_protocol_options::explicit_http_config::ProtocolConfig as P;
    use http::http_protocol_options::UpstreamProtocolOptions as U;
    match o.upstream_protocol_options? {
        U::ExplicitHttpConfig(e) => match e.protocol_config? {
            P::HttpProtocolOptions(_) => Some(HttpProtocol::Http1),
            P::Http2ProtocolOptions(_) => Some(HttpProtocol::Http2),
            P::Http3ProtocolOptions(_) => Some(HttpProtocol::Http3),
        },
        U::UseDownstreamProtocolConfig(_) => Some(HttpProtocol::Downstream),
        U::AutoConfig(_) => Some(HttpProtocol::Auto),
    }
}
