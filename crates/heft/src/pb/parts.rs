//! The small messages the wire-level decoders share, read straight from the input: metadata,
//! addresses, localities, transport sockets, string-valued `Struct`s.
//!
//! Each produces what its prost counterpart in [`common`](super::common) produces (and what the
//! JSON reader produces for the same message), with two differences. Errors point at the
//! offending byte. A singular message field given twice on the wire counts once, the last
//! time, where protobuf parsers merge the two (no encoder Heft knows of writes one twice).

use super::common::{decode_error, enum_name, TLS_DOWNSTREAM, TLS_UPSTREAM};
use super::envoy::extensions::transport_sockets::tls::v3 as tls;
use super::wire::{self, Field, Fields, RawAny};
use crate::error::{Error, Result};
use crate::model::enums;
use crate::model::{
    Address, IstioServiceRef, Locality, Metadata, Opaque, TlsContext, TlsSide, TransportSocket,
};
use crate::stream::Detail;
use prost::Message;

/// Points a prost error at the first malformed field, or at the message's first byte.
pub(crate) fn at_fault(e: Error, bytes: &[u8], at: u64) -> Error {
    let offset = wire::first_fault(bytes, at)
        .and_then(|f| f.offset())
        .unwrap_or(at);
    e.with_offset(offset)
}

/// Decodes bytes of the input with prost, the error pointing into the input.
pub(crate) fn decode_at<M: Message + Default>(bytes: &[u8], at: u64, what: &str) -> Result<M> {
    M::decode(bytes).map_err(|e| at_fault(decode_error(&e, what), bytes, at))
}

/// Merges a message field into `m` with prost, as protobuf does when a field repeats.
pub(crate) fn merge<M: Message>(f: &Field, m: &mut M, what: &str) -> Result<()> {
    let (b, at) = f.bytes()?;
    m.merge(b)
        .map_err(|e| at_fault(decode_error(&e, what), b, at))
}

/// A `google.protobuf.Duration`, converted as the prost reader converts one.
pub(crate) fn duration(f: &Field) -> Result<std::time::Duration> {
    let mut d = prost_types::Duration::default();
    for g in f.message()? {
        let g = g?;
        match g.number {
            1 => d.seconds = g.varint()? as i64,
            2 => d.nanos = g.i32()?,
            _ => {}
        }
    }
    super::common::duration(&d)
}

/// Pushes one more element of a repeated field, as read, onto `list`; a read error names the
/// element's index and the field's key.
#[inline]
pub(crate) fn push_read<T>(list: &mut Vec<T>, key: &str, read: Result<T>) -> Result<()> {
    let item = read.map_err(|e| e.in_index(list.len() as u64).in_key(key))?;
    list.push(item);
    Ok(())
}

/// `Some` for a non-empty string: proto3 JSON omits empty ones.
pub(crate) fn some(s: &str) -> Option<Box<str>> {
    (!s.is_empty()).then(|| s.into())
}

/// A map entry (`key = 1`, `value = 2`) with a string key: the key and the value's bytes.
pub(crate) fn map_entry<'a>(f: &Field<'a>) -> Result<(&'a str, &'a [u8], u64)> {
    let (mut key, mut value, mut value_at) = ("", &[][..], 0);
    for e in f.message()? {
        let e = e?;
        match e.number {
            1 => key = e.string()?,
            2 => (value, value_at) = e.bytes()?,
            _ => {}
        }
    }
    Ok((key, value, value_at))
}

/// A protobuf map's entries as read from the wire, put in key order, a repeated key counting
/// once with its last value (the map rule).
pub(crate) fn last_per_key<T>(entries: &mut Vec<(&str, T)>) {
    // Stable: among equal keys the last stays last, and `dedup_by` keeps the first of a run.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.reverse();
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    entries.reverse();
}

/// The parts of a `google.protobuf.Value` Heft reads.
enum Kind<'a> {
    String(&'a str),
    Struct(&'a [u8], u64),
    List(&'a [u8], u64),
    Other,
}

/// A `Value`'s kind: the last of its `oneof` fields.
fn kind(b: &[u8], at: u64) -> Result<Kind<'_>> {
    let mut kind = Kind::Other;
    for f in Fields::new(b, at) {
        let f = f?;
        kind = match f.number {
            3 => Kind::String(f.string()?),
            5 => {
                let (b, at) = f.bytes()?;
                Kind::Struct(b, at)
            }
            6 => {
                let (b, at) = f.bytes()?;
                Kind::List(b, at)
            }
            1 | 2 | 4 => Kind::Other,
            _ => continue,
        };
    }
    Ok(kind)
}

fn string_value(b: &[u8], at: u64) -> Result<Option<Box<str>>> {
    Ok(match kind(b, at)? {
        Kind::String(s) => Some(s.into()),
        _ => None,
    })
}

/// Calls `each` with every entry of a `Struct`: key, value bytes and their offset.
fn struct_entries<'a>(
    b: &'a [u8],
    at: u64,
    mut each: impl FnMut(&'a str, &'a [u8], u64) -> Result<()>,
) -> Result<()> {
    for f in Fields::new(b, at) {
        let f = f?;
        if f.number == 1 {
            let (key, value, value_at) = map_entry(&f)?;
            each(key, value, value_at)?;
        }
    }
    Ok(())
}

/// The string values of a `Struct` as `(key, value)` pairs in key order, a repeated key
/// counting once with its last value (a map's rule).
pub(crate) fn struct_strings(b: &[u8], at: u64) -> Result<Vec<(Box<str>, Box<str>)>> {
    let mut all: Vec<(&str, Option<&str>)> = Vec::new();
    struct_entries(b, at, |key, value, value_at| {
        let v = match kind(value, value_at)? {
            Kind::String(s) => Some(s),
            _ => None,
        };
        all.push((key, v));
        Ok(())
    })?;
    last_per_key(&mut all);
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| Some((k.into(), v?.into())))
        .collect())
}

/// `envoy.config.core.v3.Metadata`: Istio's keys, the namespaces in key order (those of
/// `filter_metadata`, then of `typed_filter_metadata`) and the encoded size.
pub(crate) fn metadata(b: &[u8], at: u64) -> Result<Metadata> {
    let mut out = Metadata {
        bytes: b.len() as u64,
        ..Metadata::default()
    };
    let mut typed: Vec<Box<str>> = Vec::new();
    for f in Fields::new(b, at) {
        let f = f?;
        let list = match f.number {
            1 => &mut out.namespaces,
            2 => &mut typed,
            _ => continue,
        };
        let (ns, value, value_at) = map_entry(&f)?;
        if !list.iter().any(|n| &**n == ns) {
            list.push(ns.into());
        }
        if f.number != 1 {
            // Typed metadata payloads are extension messages Heft has no schema for.
            continue;
        }
        match ns {
            "istio" => {
                // A repeated map key replaces the earlier value whole.
                out.istio_config = None;
                out.istio_workload = None;
                out.istio_services.clear();
                struct_entries(value, value_at, |key, v, v_at| {
                    match key {
                        "config" => out.istio_config = string_value(v, v_at)?,
                        "workload" => out.istio_workload = string_value(v, v_at)?,
                        "services" => out.istio_services = services(v, v_at)?,
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            "envoy.transport_socket_match" => {
                out.tls_mode = None;
                struct_entries(value, value_at, |key, v, v_at| {
                    if key == "tlsMode" {
                        out.tls_mode = string_value(v, v_at)?;
                    }
                    Ok(())
                })?;
            }
            _ => {}
        }
    }
    out.namespaces.sort_unstable();
    typed.sort_unstable();
    out.namespaces.append(&mut typed);
    Ok(out)
}

/// `istio.services`: a list of `{host, name, namespace}` structs.
fn services(b: &[u8], at: u64) -> Result<Vec<IstioServiceRef>> {
    let Kind::List(list, list_at) = kind(b, at)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in Fields::new(list, list_at) {
        let f = f?;
        if f.number != 1 {
            continue;
        }
        let (v, v_at) = f.bytes()?;
        let mut s = IstioServiceRef::default();
        if let Kind::Struct(st, st_at) = kind(v, v_at)? {
            struct_entries(st, st_at, |key, v, v_at| {
                let slot = match key {
                    "host" => &mut s.host,
                    "name" => &mut s.name,
                    "namespace" => &mut s.namespace,
                    _ => return Ok(()),
                };
                *slot = string_value(v, v_at)?.unwrap_or_default();
                Ok(())
            })?;
        }
        out.push(s);
    }
    Ok(out)
}

/// `envoy.config.core.v3.Address`; `None` when it names no kind of address.
pub(crate) fn address(b: &[u8], at: u64) -> Result<Option<Address>> {
    let mut out = None;
    for f in Fields::new(b, at) {
        let f = f?;
        match f.number {
            1 => {
                let (mut address, mut port, mut protocol) = ("", 0, 0);
                for g in f.message()? {
                    let g = g?;
                    match g.number {
                        1 => protocol = g.i32()?,
                        2 => address = g.string()?,
                        3 => port = g.u32()?,
                        // A named port: the oneof's other member, which Heft reads as 0.
                        4 => port = 0,
                        _ => {}
                    }
                }
                out = Some(Address::Socket {
                    address: address.into(),
                    port,
                    protocol: enum_name(&enums::SOCKET_PROTOCOL, protocol),
                });
            }
            2 => {
                let mut path = "";
                for g in f.message()? {
                    let g = g?;
                    if g.number == 1 {
                        path = g.string()?;
                    }
                }
                out = Some(Address::Pipe { path: path.into() });
            }
            3 => {
                let (mut server_listener_name, mut endpoint_id) = ("", "");
                for g in f.message()? {
                    let g = g?;
                    match g.number {
                        1 => server_listener_name = g.string()?,
                        2 => endpoint_id = g.string()?,
                        _ => {}
                    }
                }
                out = Some(Address::Internal {
                    server_listener_name: server_listener_name.into(),
                    endpoint_id: endpoint_id.into(),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `envoy.config.core.v3.Locality`.
pub(crate) fn locality(f: &Field) -> Result<Locality> {
    let mut l = Locality::default();
    for g in f.message()? {
        let g = g?;
        let slot = match g.number {
            1 => &mut l.region,
            2 => &mut l.zone,
            3 => &mut l.sub_zone,
            _ => continue,
        };
        *slot = g.string()?.into();
    }
    Ok(l)
}

/// An `Any` kept as type URL and payload size.
pub(crate) fn opaque(any: &RawAny) -> Opaque {
    Opaque {
        type_url: any.type_url.into(),
        bytes: any.value.len() as u64,
    }
}

/// A message naming an extension (field 1) and holding its config, an `Any`, at field
/// `config`: a transport socket, a custom cluster type.
pub(crate) fn named_any<'a>(f: &Field<'a>, config: u32) -> Result<(&'a str, Option<RawAny<'a>>)> {
    let (mut name, mut any) = ("", None);
    for g in f.message()? {
        let g = g?;
        if g.number == 1 {
            name = g.string()?;
        } else if g.number == config {
            let (b, at) = g.bytes()?;
            any = Some(wire::any(b, at)?);
        }
    }
    Ok((name, any))
}

/// `envoy.config.core.v3.TransportSocket` read from the input.
pub(crate) fn transport_socket(f: &Field, detail: Detail) -> Result<TransportSocket> {
    let (name, config) = named_any(f, 3)?;
    socket(name, config.as_ref(), detail)
}

/// A transport socket from its name and config, decoding TLS contexts (except under
/// [`Detail::Shape`], which keeps only their side). `config.value_at` places errors.
pub(crate) fn socket(
    name: &str,
    config: Option<&RawAny>,
    detail: Detail,
) -> Result<TransportSocket> {
    let mut out = TransportSocket {
        name: name.into(),
        tls: None,
        other: None,
    };
    let Some(any) = config else {
        return Ok(out);
    };
    out.tls = match any.type_url {
        TLS_UPSTREAM | TLS_DOWNSTREAM if detail == Detail::Shape => {
            // The cost model needs only the SDS secrets a context waits for.
            let side = match any.type_url {
                TLS_UPSTREAM => TlsSide::Upstream,
                _ => TlsSide::Downstream,
            };
            let full = socket(name, config, Detail::Full)?.tls;
            full.map(|t| TlsContext {
                certificate_sds: t.certificate_sds,
                validation_sds: t.validation_sds,
                ..TlsContext::empty(side)
            })
        }
        TLS_UPSTREAM => {
            let u: tls::UpstreamTlsContext = decode_at(any.value, any.value_at, TLS_UPSTREAM)?;
            Some(super::common::tls_context(
                TlsSide::Upstream,
                u.common_tls_context,
                u.sni,
                false,
            ))
        }
        TLS_DOWNSTREAM => {
            let d: tls::DownstreamTlsContext = decode_at(any.value, any.value_at, TLS_DOWNSTREAM)?;
            Some(super::common::tls_context(
                TlsSide::Downstream,
                d.common_tls_context,
                String::new(),
                d.require_client_certificate.unwrap_or(false),
            ))
        }
        _ => {
            out.other = Some(opaque(any));
            None
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::core::v3 as core;
    use prost_types::{value::Kind as K, Any, Struct, Value};

    fn strings(fields: &[(&str, &str)]) -> Struct {
        Struct {
            fields: fields
                .iter()
                .map(|(k, v)| {
                    let v = Value {
                        kind: Some(K::StringValue((*v).into())),
                    };
                    ((*k).to_string(), v)
                })
                .collect(),
        }
    }

    fn encoded(filter: Vec<(&str, Struct)>, typed: &[&str]) -> Vec<u8> {
        core::Metadata {
            filter_metadata: filter
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            typed_filter_metadata: typed
                .iter()
                .map(|k| (k.to_string(), Any::default()))
                .collect(),
        }
        .encode_to_vec()
    }

    #[test]
    fn a_repeated_namespace_counts_once_with_its_last_value() {
        // Two messages one after the other are one message on the wire, holding both maps'
        // entries: the later `istio` replaces the earlier one whole.
        let mut b = encoded(
            vec![
                ("zeta", strings(&[])),
                ("istio", strings(&[("config", "a"), ("workload", "w")])),
            ],
            &["alpha"],
        );
        b.extend(encoded(vec![("istio", strings(&[("config", "b")]))], &[]));
        let m = metadata(&b, 0).unwrap();
        assert_eq!(m.istio_config.as_deref(), Some("b"));
        assert_eq!(m.istio_workload, None);
        let namespaces: Vec<&str> = m.namespaces.iter().map(|n| &**n).collect();
        assert_eq!(namespaces, ["istio", "zeta", "alpha"]);
        assert_eq!(m.bytes, b.len() as u64);
    }

    #[test]
    fn struct_strings_keep_each_keys_last_value_in_key_order() {
        let mut b = strings(&[("b", "1"), ("a", "2"), ("c", "4")]).encode_to_vec();
        b.extend(strings(&[("b", "3")]).encode_to_vec());
        // A key whose last value is not a string drops out.
        let number = Value {
            kind: Some(K::NumberValue(1.0)),
        };
        b.extend(
            Struct {
                fields: [("a".to_string(), number)].into_iter().collect(),
            }
            .encode_to_vec(),
        );
        let got = struct_strings(&b, 0).unwrap();
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(got, [("b", "3"), ("c", "4")]);
    }
}
