//! Binary protobuf input as JSON text, for the outputs that print resources (`--raw`,
//! `--istioctl -o json|yaml`).
//!
//! The model keeps only what Heft explains, so a resource cannot be printed from it. Instead the
//! binary input is converted whole into the JSON Envoy's admin endpoint prints (proto field
//! names, `@type` on every `Any`, 64-bit integers as strings), with the descriptors of Envoy's
//! whole v3 API (`data/envoy-api.binpb.zst`, made by `scripts/envoy_descriptors.py` from
//! xds-protos), and that text is read as any JSON dump is. A `DiscoveryResponse`, or a stream of
//! them, becomes the array of its resources (`Resource` wrappers unwrapped), as
//! `istioctl proxy-config … -o json` prints resources.
//!
//! This module converts; it never decides what is printed.

use heft::model::DocumentKind;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions, Value};

/// Envoy's v3 API as a `FileDescriptorSet`, zstd-compressed (about 110 KiB; 730 KiB unpacked).
static DESCRIPTORS: &[u8] = include_bytes!("../data/envoy-api.binpb.zst");

const CONFIG_DUMP: &str = "envoy.admin.v3.ConfigDump";
const RESPONSE: &str = "envoy.service.discovery.v3.DiscoveryResponse";
const RESOURCE: &str = "type.googleapis.com/envoy.service.discovery.v3.Resource";

/// The descriptors of Envoy's v3 API.
pub fn pool() -> Result<DescriptorPool, String> {
    let bytes = zstd::decode_all(DESCRIPTORS)
        .map_err(|e| format!("unpacking Envoy's API descriptors: {e}"))?;
    DescriptorPool::decode(&bytes[..]).map_err(|e| format!("reading Envoy's API descriptors: {e}"))
}

fn message(pool: &DescriptorPool, name: &str) -> Result<MessageDescriptor, String> {
    pool.get_message_by_name(name)
        .ok_or_else(|| format!("Envoy's API descriptors have no {name}"))
}

fn options() -> SerializeOptions {
    SerializeOptions::new().use_proto_field_name(true)
}

fn write_json(m: &DynamicMessage, out: &mut Vec<u8>) -> Result<(), String> {
    let mut v = m
        .serialize_with_options(serde_json::value::Serializer, &options())
        .map_err(|e| format!("converting the protobuf input to JSON: {e}"))?;
    whole_numbers(&mut v);
    serde_json::to_writer_pretty(out, &v).map_err(|e| format!("writing JSON: {e}"))
}

/// Doubles with no fraction written as integers (`7070`, not `7070.0`), as Envoy's JSON printer
/// writes them: a `Struct` holds every number as a double.
fn whole_numbers(v: &mut serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                // Within 2^53 a double is an exact integer.
                if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        J::Array(a) => a.iter_mut().for_each(whole_numbers),
        J::Object(m) => m.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// The JSON text of a binary input that Heft read as a document of this kind.
pub fn to_json(bytes: &[u8], kind: DocumentKind) -> Result<Vec<u8>, String> {
    let pool = pool()?;
    let mut out = Vec::with_capacity(bytes.len() * 2);
    if kind == DocumentKind::ConfigDump {
        let dump = DynamicMessage::decode(message(&pool, CONFIG_DUMP)?, bytes)
            .map_err(|e| format!("decoding the ConfigDump: {e}"))?;
        write_json(&dump, &mut out)?;
        out.push(b'\n');
        return Ok(out);
    }
    let response = message(&pool, RESPONSE)?;
    let responses = match stream(bytes, &response) {
        Some(r) => r,
        None => vec![DynamicMessage::decode(response, bytes)
            .map_err(|e| format!("decoding the DiscoveryResponse: {e}"))?],
    };
    out.extend_from_slice(b"[\n");
    let mut first = true;
    for r in &responses {
        let Some(Value::List(resources)) = r.get_field_by_name("resources").map(|v| v.into_owned())
        else {
            continue;
        };
        for any in resources {
            let Value::Message(any) = any else { continue };
            let any = unwrap_resource(&pool, any);
            if !first {
                out.extend_from_slice(b",\n");
            }
            first = false;
            write_json(&any, &mut out)?;
        }
    }
    out.extend_from_slice(b"\n]\n");
    Ok(out)
}

/// The responses of a stream (each after its length as a varint), if `bytes` is one: every
/// frame whole and a DiscoveryResponse, up to the last byte.
fn stream(bytes: &[u8], response: &MessageDescriptor) -> Option<Vec<DynamicMessage>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = heft::pb::prost::encoding::decode_varint(&mut rest).ok()?;
        let len = usize::try_from(len).ok().filter(|l| *l <= rest.len())?;
        let (frame, after) = rest.split_at(len);
        out.push(DynamicMessage::decode(response.clone(), frame).ok()?);
        rest = after;
    }
    (!out.is_empty()).then_some(out)
}

/// The `Any` a `Resource` wrapper holds; any other `Any` as it is.
fn unwrap_resource(pool: &DescriptorPool, any: DynamicMessage) -> DynamicMessage {
    let type_url = any
        .get_field_by_name("type_url")
        .and_then(|v| v.as_str().map(str::to_string));
    if type_url.as_deref() != Some(RESOURCE) {
        return any;
    }
    let Some(Value::Bytes(value)) = any.get_field_by_name("value").map(|v| v.into_owned()) else {
        return any;
    };
    let Some(wrapper) = pool.get_message_by_name("envoy.service.discovery.v3.Resource") else {
        return any;
    };
    match DynamicMessage::decode(wrapper, value)
        .ok()
        .and_then(|w| w.get_field_by_name("resource").map(|v| v.into_owned()))
    {
        Some(Value::Message(inner)) => inner,
        _ => any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_descriptors_hold_every_type_a_dump_names() {
        let pool = pool().unwrap();
        for name in [
            CONFIG_DUMP,
            RESPONSE,
            "envoy.admin.v3.ClustersConfigDump",
            "envoy.config.cluster.v3.Cluster",
            "envoy.config.listener.v3.Listener",
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "envoy.extensions.transport_sockets.tls.v3.Secret",
            "envoy.extensions.filters.http.router.v3.Router",
            "google.protobuf.Struct",
        ] {
            assert!(pool.get_message_by_name(name).is_some(), "{name}");
        }
    }
}
