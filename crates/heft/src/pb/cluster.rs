//! `envoy.config.cluster.v3.Cluster` read from the input, as `json::decode::cluster` reads it.
//!
//! Clusters are most of a big dump's objects, so they are read field by field from the wire;
//! the small sub-messages Heft models (durations, circuit breakers, outlier detection, protocol
//! options, TLS contexts) go through prost.

use super::common::{self, enum_name, opaque_message};
use super::endpoint::load_assignment;
use super::envoy::config::cluster::v3 as pb;
use super::envoy::extensions::upstreams::http::v3 as http;
use super::parts::{
    decode_at, duration, last_per_key, map_entry, merge, metadata, named_any, opaque, push_read,
    some, transport_socket,
};
use super::wire::{self, Fields, RawAny};
use crate::error::Result;
use crate::model::enums;
use crate::model::istio::IstioName;
use crate::model::{
    CircuitBreaker, Cluster, Discovery, HttpProtocol, Meta, OutlierDetection, TransportSocketMatch,
};
use crate::stream::Detail;

const HTTP_PROTOCOL_OPTIONS: &str =
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The `cluster_discovery_type` oneof.
enum DiscoveryField<'a> {
    Type(i32),
    /// `cluster_type`: the extension's name and config.
    Custom(&'a str, Option<RawAny<'a>>),
}

/// Reads one cluster whose bytes start at input offset `at`. Extensions are listed in
/// field-number order, the order Envoy prints them in JSON. Under [`Detail::Shape`] the
/// cluster's metadata and its socket matches' names and criteria are skipped unchecked, its
/// name is not parsed for what Istio encodes in it, and inline endpoints read as
/// [`load_assignment`] reads them, as in the JSON reader.
pub(crate) fn cluster(b: &[u8], at: u64, meta: Meta, detail: Detail) -> Result<Cluster> {
    let state = meta.state;
    let mut name = "";
    let mut out = Cluster::new("", Discovery::Static, meta);
    let mut discovery = None;
    let mut circuit_breakers: Option<pb::CircuitBreakers> = None;
    let mut outlier: Option<pb::OutlierDetection> = None;
    let mut http2 = false;
    let mut protocol_options: Vec<(&str, RawAny)> = Vec::new();
    let mut filters_bytes = None;
    let mut lb_policy_bytes = None;
    for f in Fields::new(b, at) {
        let f = f?;
        match f.number {
            1 => name = f.string()?,
            2 => discovery = Some(DiscoveryField::Type(f.i32()?)),
            3 => {
                for g in f.message()? {
                    let g = g?;
                    if g.number == 2 {
                        out.eds_service_name = some(g.string()?);
                    }
                }
            }
            4 => out.connect_timeout = Some(duration(&f).map_err(|e| e.in_key("connect_timeout"))?),
            6 => out.lb_policy = enum_name(&enums::LB_POLICY, f.i32()?),
            10 => merge(
                &f,
                circuit_breakers.get_or_insert_with(Default::default),
                "CircuitBreakers",
            )?,
            14 => {
                f.bytes()?;
                http2 = true;
            }
            19 => merge(
                &f,
                outlier.get_or_insert_with(Default::default),
                "OutlierDetection",
            )?,
            24 => {
                let s = transport_socket(&f, detail).map_err(|e| e.in_key("transport_socket"))?;
                out.transport_socket = Some(Box::new(s));
            }
            25 if detail == Detail::Shape => {
                f.bytes()?;
            }
            25 => {
                let (b, at) = f.bytes()?;
                out.metadata = metadata(b, at).map_err(|e| e.in_key("metadata"))?;
            }
            28 => out.alt_stat_name = some(f.string()?),
            33 => {
                let (b, at) = f.bytes()?;
                let la = load_assignment(b, at, Meta::new(state), detail)
                    .map_err(|e| e.in_key("load_assignment"))?;
                out.load_assignment = Some(Box::new(la));
            }
            36 => {
                let (key, value, value_at) = map_entry(&f)?;
                protocol_options.push((key, wire::any(value, value_at)?));
            }
            38 => {
                let (custom, config) = named_any(&f, 2)?;
                discovery = Some(DiscoveryField::Custom(custom, config));
            }
            40 => *filters_bytes.get_or_insert(0) += f.bytes()?.0.len(),
            41 => *lb_policy_bytes.get_or_insert(0) += f.bytes()?.0.len(),
            43 => push_read(
                &mut out.transport_socket_matches,
                "transport_socket_matches",
                socket_match(&f, detail),
            )?,
            _ => {}
        }
    }
    if detail == Detail::Full {
        out.istio = IstioName::parse(name);
    }
    out.name = name.into();
    if let Some(cb) = circuit_breakers {
        out.circuit_breakers = cb.thresholds.into_iter().map(threshold).collect();
    }
    out.outlier_detection = outlier.map(outlier_detection).transpose()?;
    if http2 {
        out.http_protocol = Some(HttpProtocol::Http2);
    }
    last_per_key(&mut protocol_options);
    for (_, any) in &protocol_options {
        if any.type_url == HTTP_PROTOCOL_OPTIONS {
            let o: http::HttpProtocolOptions = decode_at(any.value, any.value_at, any.type_url)?;
            if let Some(p) = http_protocol(o) {
                out.http_protocol = Some(p);
            }
        } else {
            out.extensions.push(opaque(any));
        }
    }
    match discovery {
        Some(DiscoveryField::Type(t)) => out.discovery = Discovery::from_number(t),
        Some(DiscoveryField::Custom(custom, config)) => {
            out.discovery = Discovery::Custom(custom.into());
            out.extensions.extend(config.as_ref().map(opaque));
        }
        None => {}
    }
    out.extensions
        .extend(filters_bytes.into_iter().map(opaque_message));
    out.extensions
        .extend(lb_policy_bytes.into_iter().map(opaque_message));
    Ok(out)
}

/// `TransportSocketMatch`: its name, string criteria and socket.
fn socket_match(f: &wire::Field, detail: Detail) -> Result<TransportSocketMatch> {
    let mut out = TransportSocketMatch {
        name: "".into(),
        criteria: Vec::new(),
        socket: None,
    };
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 | 2 if detail == Detail::Shape => {
                g.bytes()?;
            }
            1 => out.name = g.string()?.into(),
            2 => {
                let (b, at) = g.bytes()?;
                out.criteria = super::parts::struct_strings(b, at)?;
            }
            3 => out.socket = Some(transport_socket(&g, detail)?),
            _ => {}
        }
    }
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
        interval: o.interval.as_ref().map(common::duration).transpose()?,
        base_ejection_time: o
            .base_ejection_time
            .as_ref()
            .map(common::duration)
            .transpose()?,
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
