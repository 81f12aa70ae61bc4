//! Conversions from prost messages to the model for the small messages many resources share:
//! addresses, metadata, TLS, matchers, durations, timestamps and `Any` payloads.
//!
//! Each conversion produces exactly what the JSON decoders (`json::decode::common`) produce for
//! the same message as Envoy prints it: proto3 JSON omits default values, so an empty string or
//! a zero enum here is an absent key there.

use super::envoy::config::core::v3 as core;
use super::envoy::extensions::transport_sockets::tls::v3 as tls;
use super::envoy::r#type::matcher::v3 as matcher;
use super::wire::RawAny;
use crate::error::{Error, ErrorKind, Result};
use crate::model::enums;
use crate::model::{
    Address, Cidr, Opaque, SanMatcher, StringMatch, TlsContext, TlsSide, TransportSocket,
    UpdateFailure,
};
use crate::stream::Detail;
use prost::Message;
use prost_types::value::Kind;
use std::time::Duration;

pub(crate) const TLS_UPSTREAM: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
pub(crate) const TLS_DOWNSTREAM: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

/// Decodes the payload of an `Any` Heft models, naming the type in the error.
pub(crate) fn unpack<M: Message + Default>(any: &prost_types::Any) -> Result<M> {
    M::decode(any.value.as_slice()).map_err(|e| decode_error(&e, &any.type_url))
}

/// Turns a prost error into Heft's: too deep, or malformed.
pub(crate) fn decode_error(e: &prost::DecodeError, what: &str) -> Error {
    let text = e.to_string();
    let kind = if text.contains("recursion limit") {
        ErrorKind::TooDeep
    } else {
        ErrorKind::Syntax
    };
    let text = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    Error::new(kind, format!("invalid {what}: {text}"))
}

/// `Some` for a non-empty string: proto3 JSON omits empty ones.
pub(crate) fn some(s: String) -> Option<Box<str>> {
    (!s.is_empty()).then(|| s.into())
}

/// An enum value's name from `names` (index = number); unknown numbers keep their digits, as
/// in the JSON reader.
pub(crate) fn enum_name(names: &[&str], n: i32) -> Box<str> {
    usize::try_from(n)
        .ok()
        .and_then(|i| names.get(i))
        .map(|s| Box::<str>::from(*s))
        .unwrap_or_else(|| n.to_string().into())
}

/// Like [`enum_name`], but `None` for 0 (the default, which proto3 JSON omits).
pub(crate) fn opt_enum_name(names: &[&str], n: i32) -> Option<Box<str>> {
    (n != 0).then(|| enum_name(names, n))
}

/// An `Any` kept as type URL and payload size.
pub(crate) fn opaque_any(any: &prost_types::Any) -> Opaque {
    Opaque {
        type_url: any.type_url.as_str().into(),
        bytes: any.value.len() as u64,
    }
}

/// A message that is not an `Any`, kept opaque: no type URL (as in JSON), its encoded size.
pub(crate) fn opaque_message(bytes: usize) -> Opaque {
    Opaque {
        type_url: "".into(),
        bytes: bytes as u64,
    }
}

/// A `Duration` as the JSON reader reads Envoy's text for it (`"1.5s"` parsed as `f64`), so
/// both readers round alike.
pub(crate) fn duration(d: &prost_types::Duration) -> Result<Duration> {
    // Whole seconds (nearly every duration in a dump): the text `"10s"` parses to exactly this.
    if d.nanos == 0 && (0..1 << 53).contains(&d.seconds) {
        return Ok(Duration::from_secs(d.seconds as u64));
    }
    let negative = d.seconds < 0 || d.nanos < 0;
    let text = format!(
        "{}{}.{:09}",
        if negative { "-" } else { "" },
        d.seconds.unsigned_abs(),
        d.nanos.unsigned_abs()
    );
    let secs: f64 = text.parse().unwrap_or(f64::NAN);
    Duration::try_from_secs_f64(secs).map_err(|_| {
        Error::new(
            ErrorKind::InvalidValue,
            format!("duration {secs}s is out of range"),
        )
    })
}

/// A `Timestamp` as proto3 JSON prints it: RFC 3339 UTC with 0, 3, 6 or 9 fractional digits.
pub(crate) fn timestamp(t: &prost_types::Timestamp) -> Box<str> {
    let mut out = crate::json::decode::secret::rfc3339(t.seconds);
    out.reserve(10);
    out.pop();
    let n = t.nanos;
    let (value, digits) = if n <= 0 {
        (0, 0)
    } else if n % 1_000_000 == 0 {
        (n / 1_000_000, 3)
    } else if n % 1_000 == 0 {
        (n / 1_000, 6)
    } else {
        (n, 9)
    };
    if digits > 0 {
        out.push('.');
        let mut buf = [b'0'; 9];
        let mut v = value as u32;
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.push_str(std::str::from_utf8(&buf[..digits]).unwrap_or(""));
    }
    out.push('Z');
    out.into()
}

/// `envoy.config.core.v3.Address`, read as a binary input's addresses are.
pub(crate) fn address(a: core::Address) -> Option<Address> {
    // A message prost encoded always reads back.
    super::parts::address(&a.encode_to_vec(), 0).ok().flatten()
}

/// A `Struct` as the JSON value Envoy prints for it. Integral numbers become integers, as they
/// read from Envoy's JSON (which prints `1`, not `1.0`).
pub(crate) fn struct_json(s: prost_types::Struct) -> serde_json::Map<String, serde_json::Value> {
    s.fields
        .into_iter()
        .map(|(k, v)| (k, value_json(v)))
        .collect()
}

fn value_json(v: prost_types::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v.kind {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                J::from(n as i64)
            } else {
                serde_json::Number::from_f64(n).map_or(J::Null, J::Number)
            }
        }
        Some(Kind::StringValue(s)) => J::String(s),
        Some(Kind::BoolValue(b)) => J::Bool(b),
        Some(Kind::StructValue(s)) => J::Object(struct_json(s)),
        Some(Kind::ListValue(l)) => J::Array(l.values.into_iter().map(value_json).collect()),
    }
}

/// The string values of a `Struct` as `(key, value)` pairs, in key order.
pub(crate) fn struct_strings(s: Option<prost_types::Struct>) -> Vec<(Box<str>, Box<str>)> {
    // A message prost encoded always reads back.
    s.and_then(|s| super::parts::struct_strings(&s.encode_to_vec(), 0).ok())
        .unwrap_or_default()
}

pub(crate) fn string_matcher(m: matcher::StringMatcher) -> StringMatch {
    use matcher::string_matcher::MatchPattern as P;
    match m.match_pattern {
        Some(P::Exact(v)) => StringMatch::Exact(v.into()),
        Some(P::Prefix(v)) => StringMatch::Prefix(v.into()),
        Some(P::Suffix(v)) => StringMatch::Suffix(v.into()),
        Some(P::Contains(v)) => StringMatch::Contains(v.into()),
        Some(P::SafeRegex(r)) => StringMatch::Regex(r.regex.into()),
        None => StringMatch::Other,
    }
}

fn validation_context(v: tls::CertificateValidationContext, sans: &mut Vec<SanMatcher>) {
    // Envoy prints fields in number order: `match_subject_alt_names` (9) before the typed (15).
    sans.extend(v.match_subject_alt_names.into_iter().map(|m| SanMatcher {
        san_type: "".into(),
        matcher: string_matcher(m),
    }));
    sans.extend(
        v.match_typed_subject_alt_names
            .into_iter()
            .map(|m| SanMatcher {
                san_type: enum_name(&enums::SAN_TYPE, m.san_type),
                matcher: m.matcher.map_or(StringMatch::Other, string_matcher),
            }),
    );
}

/// `UpstreamTlsContext` / `DownstreamTlsContext` through their shared `CommonTlsContext`.
pub(crate) fn tls_context(
    side: TlsSide,
    common: Option<tls::CommonTlsContext>,
    sni: String,
    require_client_certificate: bool,
) -> TlsContext {
    use tls::common_tls_context::ValidationContextType as V;
    let mut t = TlsContext {
        sni: some(sni),
        require_client_certificate,
        ..TlsContext::empty(side)
    };
    let Some(c) = common else {
        return t;
    };
    t.alpn = c.alpn_protocols.into_iter().map(Into::into).collect();
    t.certificate_sds = c
        .tls_certificate_sds_secret_configs
        .into_iter()
        .map(|s| s.name.into())
        .collect();
    t.inline_certificates = c.tls_certificates.len();
    match c.validation_context_type {
        Some(V::ValidationContext(v)) => validation_context(v, &mut t.san_matchers),
        Some(V::ValidationContextSdsSecretConfig(s)) => t.validation_sds = Some(s.name.into()),
        Some(V::CombinedValidationContext(c)) => {
            if let Some(v) = c.default_validation_context {
                validation_context(v, &mut t.san_matchers);
            }
            if let Some(s) = c.validation_context_sds_secret_config {
                t.validation_sds = Some(s.name.into());
            }
        }
        _ => {}
    }
    t
}

/// `envoy.config.core.v3.TransportSocket`, decoding TLS contexts from its `Any` (except under
/// [`Detail::Shape`], which keeps only their side).
pub(crate) fn transport_socket(
    s: core::TransportSocket,
    detail: Detail,
) -> Result<TransportSocket> {
    use core::transport_socket::ConfigType;
    let config = s
        .config_type
        .as_ref()
        .map(|ConfigType::TypedConfig(any)| RawAny {
            type_url: &any.type_url,
            value: &any.value,
            value_at: 0,
        });
    // The payload was copied out of the input: an offset into it would mislead.
    super::parts::socket(&s.name, config.as_ref(), detail).map_err(Error::without_offset)
}

pub(crate) fn cidr(c: core::CidrRange) -> Cidr {
    Cidr {
        address: c.address_prefix.into(),
        prefix_len: c.prefix_len.unwrap_or(0),
    }
}

/// `TypedExtensionConfig` kept opaque: the name and the payload.
pub(crate) fn typed_extension(t: core::TypedExtensionConfig) -> (Box<str>, Option<Opaque>) {
    (t.name.into(), t.typed_config.as_ref().map(opaque_any))
}

/// `UpdateFailureState`.
pub(crate) fn update_failure(f: super::envoy::admin::v3::UpdateFailureState) -> Box<UpdateFailure> {
    Box::new(UpdateFailure {
        details: f.details.into(),
        version_info: some(f.version_info),
        last_update_attempt: f.last_update_attempt.as_ref().map(timestamp),
        failed_configuration: f.failed_configuration.as_ref().map(opaque_any),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_proto3_json() {
        let t = |seconds, nanos| timestamp(&prost_types::Timestamp { seconds, nanos });
        assert_eq!(&*t(1_684_200_772, 0), "2023-05-16T01:32:52Z");
        assert_eq!(&*t(1_684_200_772, 120_000_000), "2023-05-16T01:32:52.120Z");
        assert_eq!(
            &*t(1_684_200_772, 123_456_000),
            "2023-05-16T01:32:52.123456Z"
        );
        assert_eq!(&*t(1_684_200_772, 1), "2023-05-16T01:32:52.000000001Z");
    }

    #[test]
    fn durations_round_like_the_json_reader() {
        let d = duration(&prost_types::Duration {
            seconds: 0,
            nanos: 100_000_000,
        })
        .unwrap();
        assert_eq!(d, Duration::try_from_secs_f64(0.1).unwrap());
        assert!(duration(&prost_types::Duration {
            seconds: -1,
            nanos: 0
        })
        .is_err());
    }
}
