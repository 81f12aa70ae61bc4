//! Decoders for the small messages many resources share: addresses, metadata, TLS, matchers.

use crate::error::Result;
use crate::json::parser::Parser;
use crate::model::enums;
use crate::model::{
    Address, IstioServiceRef, Locality, Metadata, Opaque, SanMatcher, StringMatch, TlsContext,
    TlsSide, TransportSocket,
};

pub(crate) const TLS_UPSTREAM: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
pub(crate) const TLS_DOWNSTREAM: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

/// Reads a string if one is next, otherwise skips the value (lenient reads of `Struct` fields).
pub(crate) fn opt_string(p: &mut Parser) -> Result<Option<Box<str>>> {
    if p.peek()? == b'"' {
        Ok(Some(p.string()?))
    } else {
        p.skip()?;
        Ok(None)
    }
}

/// Reads a proto3 `string` field: empty is its default, the same as absent (`None`), as the
/// protobuf reader has it.
pub(crate) fn nonempty(p: &mut Parser) -> Result<Option<Box<str>>> {
    let s = p.string()?;
    Ok((!s.is_empty()).then_some(s))
}

/// Reads an enum field whose default (number 0) means "not set": `None` for it, by name or
/// number, as the protobuf reader has it.
pub(crate) fn opt_enum(p: &mut Parser, names: &[&str]) -> Result<Option<Box<str>>> {
    let name = p.enum_name(names)?;
    Ok((Some(&*name) != names.first().copied()).then_some(name))
}

/// Keeps any value as its `@type` (if it has one) and size.
pub(crate) fn opaque(p: &mut Parser) -> Result<Opaque> {
    let type_url = p.peek_type_url()?.map(Into::into).unwrap_or_default();
    let (start, end) = p.skip_span()?;
    Ok(Opaque {
        type_url,
        bytes: (end - start) as u64,
    })
}

/// A repeated field kept opaque as one payload; `None` for an empty list (its default, the same
/// as absent).
pub(crate) fn opaque_list(p: &mut Parser) -> Result<Option<Opaque>> {
    p.peek()?;
    let start = p.pos();
    let mut n = 0;
    p.array(|p| {
        n += 1;
        p.skip()
    })?;
    Ok((n > 0).then(|| Opaque {
        type_url: "".into(),
        bytes: (p.pos() - start) as u64,
    }))
}

/// `TypedExtensionConfig` (`{name, typed_config}`) kept opaque: returns the name and payload.
pub(crate) fn typed_extension(p: &mut Parser) -> Result<(Box<str>, Option<Opaque>)> {
    let mut name = Box::<str>::default();
    let mut config = None;
    p.fields(|p, k| {
        match k {
            "name" => name = p.string()?,
            "typed_config" | "config_discovery" => config = Some(opaque(p)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok((name, config))
}

pub(crate) fn address(p: &mut Parser) -> Result<Option<Address>> {
    let mut out = None;
    p.fields(|p, k| {
        match k {
            "socket_address" => {
                let (mut address, mut port, mut protocol) =
                    (Box::<str>::default(), 0, Box::<str>::from("TCP"));
                p.fields(|p, k| {
                    match k {
                        "address" => address = p.string()?,
                        "port_value" => port = p.u32()?,
                        "protocol" => protocol = p.enum_name(&enums::SOCKET_PROTOCOL)?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                out = Some(Address::Socket {
                    address,
                    port,
                    protocol,
                });
            }
            "pipe" => {
                let mut path = Box::<str>::default();
                p.fields(|p, k| {
                    if k == "path" {
                        path = p.string()?;
                    } else {
                        p.skip()?;
                    }
                    Ok(())
                })?;
                out = Some(Address::Pipe { path });
            }
            "envoy_internal_address" => {
                let mut server_listener_name = Box::<str>::default();
                let mut endpoint_id = Box::<str>::default();
                p.fields(|p, k| {
                    match k {
                        "server_listener_name" => server_listener_name = p.string()?,
                        "endpoint_id" => endpoint_id = p.string()?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                out = Some(Address::Internal {
                    server_listener_name,
                    endpoint_id,
                });
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn locality(p: &mut Parser) -> Result<Locality> {
    let mut l = Locality::default();
    p.fields(|p, k| {
        match k {
            "region" => l.region = p.string()?,
            "zone" => l.zone = p.string()?,
            "sub_zone" => l.sub_zone = p.string()?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(l)
}

/// `envoy.config.core.v3.Metadata`: keeps Istio's keys and the total size.
pub(crate) fn metadata(p: &mut Parser) -> Result<Metadata> {
    let mut m = Metadata::default();
    p.peek()?;
    let start = p.pos();
    p.fields(|p, k| {
        match k {
            "filter_metadata" | "typed_filter_metadata" => p.entries(|p, ns| {
                m.namespaces.push(ns.into());
                match ns {
                    "istio" => p.entries(|p, k| {
                        match k {
                            "config" => m.istio_config = opt_string(p)?,
                            "workload" => m.istio_workload = opt_string(p)?,
                            "services" => {
                                m.istio_services = p.list(istio_service)?;
                            }
                            _ => p.skip()?,
                        }
                        Ok(())
                    }),
                    "envoy.transport_socket_match" => p.entries(|p, k| {
                        if k == "tlsMode" {
                            m.tls_mode = opt_string(p)?;
                        } else {
                            p.skip()?;
                        }
                        Ok(())
                    }),
                    _ => p.skip(),
                }
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    m.bytes = (p.pos() - start) as u64;
    m.namespaces.shrink_to_fit();
    Ok(m)
}

fn istio_service(p: &mut Parser) -> Result<IstioServiceRef> {
    let mut s = IstioServiceRef::default();
    p.entries(|p, k| {
        match k {
            "host" => s.host = opt_string(p)?.unwrap_or_default(),
            "name" => s.name = opt_string(p)?.unwrap_or_default(),
            "namespace" => s.namespace = opt_string(p)?.unwrap_or_default(),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(s)
}

/// `envoy.type.matcher.v3.StringMatcher`.
pub(crate) fn string_matcher(p: &mut Parser) -> Result<StringMatch> {
    Ok(string_matcher_case(p)?.0)
}

/// `StringMatcher` with its `ignore_case`.
pub(crate) fn string_matcher_case(p: &mut Parser) -> Result<(StringMatch, bool)> {
    let mut m = StringMatch::Other;
    let mut ignore_case = false;
    p.fields(|p, k| {
        match k {
            "exact" => m = StringMatch::Exact(p.string()?),
            "prefix" => m = StringMatch::Prefix(p.string()?),
            "suffix" => m = StringMatch::Suffix(p.string()?),
            "contains" => m = StringMatch::Contains(p.string()?),
            "safe_regex" => m = StringMatch::Regex(regex(p)?),
            "ignore_case" => ignore_case = p.bool()?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok((m, ignore_case))
}

/// `RegexMatcher`: its `regex`.
pub(crate) fn regex(p: &mut Parser) -> Result<Box<str>> {
    let mut r = Box::<str>::default();
    p.fields(|p, k| {
        if k == "regex" {
            r = p.string()?;
        } else {
            p.skip()?;
        }
        Ok(())
    })?;
    Ok(r)
}

/// `SdsSecretConfig`: its `name`.
fn sds_name(p: &mut Parser) -> Result<Box<str>> {
    let mut name = Box::<str>::default();
    p.fields(|p, k| {
        if k == "name" {
            name = p.string()?;
        } else {
            p.skip()?;
        }
        Ok(())
    })?;
    Ok(name)
}

/// Reads the SAN rules of a `CertificateValidationContext`.
fn validation_context(p: &mut Parser, sans: &mut Vec<SanMatcher>) -> Result<()> {
    p.fields(|p, k| {
        match k {
            "match_subject_alt_names" => p.array(|p| {
                sans.push(SanMatcher {
                    san_type: "".into(),
                    matcher: string_matcher(p)?,
                });
                Ok(())
            })?,
            "match_typed_subject_alt_names" => p.array(|p| {
                let mut san_type = Box::<str>::from("SAN_TYPE_UNSPECIFIED");
                let mut matcher = StringMatch::Other;
                p.fields(|p, k| {
                    match k {
                        "san_type" => san_type = p.enum_name(&enums::SAN_TYPE)?,
                        "matcher" => matcher = string_matcher(p)?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                sans.push(SanMatcher { san_type, matcher });
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })
}

/// `UpstreamTlsContext` / `DownstreamTlsContext` (the fields of the `Any`).
pub(crate) fn tls_context(p: &mut Parser, side: TlsSide) -> Result<TlsContext> {
    let mut t = TlsContext::empty(side);
    if p.shape_only() {
        // The cost model needs only the SDS secrets a context waits for.
        p.fields(|p, k| {
            if k != "common_tls_context" {
                return p.skip();
            }
            p.fields(|p, k| {
                match k {
                    "tls_certificate_sds_secret_configs" => t.certificate_sds = p.list(sds_name)?,
                    "validation_context_sds_secret_config" => t.validation_sds = Some(sds_name(p)?),
                    "combined_validation_context" => p.fields(|p, k| {
                        if k == "validation_context_sds_secret_config" {
                            t.validation_sds = Some(sds_name(p)?);
                        } else {
                            p.skip()?;
                        }
                        Ok(())
                    })?,
                    _ => p.skip()?,
                }
                Ok(())
            })
        })?;
        return Ok(t);
    }
    p.fields(|p, k| {
        match k {
            "sni" => t.sni = nonempty(p)?,
            "require_client_certificate" => t.require_client_certificate = p.wrapped_bool()?,
            "common_tls_context" => p.fields(|p, k| {
                match k {
                    "alpn_protocols" => t.alpn = p.strings()?,
                    "tls_certificate_sds_secret_configs" => {
                        t.certificate_sds = p.list(sds_name)?;
                    }
                    "tls_certificates" => p.array(|p| {
                        t.inline_certificates += 1;
                        p.skip()
                    })?,
                    "validation_context_sds_secret_config" => {
                        t.validation_sds = Some(sds_name(p)?);
                    }
                    "validation_context" => validation_context(p, &mut t.san_matchers)?,
                    "combined_validation_context" => p.fields(|p, k| {
                        match k {
                            "default_validation_context" => {
                                validation_context(p, &mut t.san_matchers)?
                            }
                            "validation_context_sds_secret_config" => {
                                t.validation_sds = Some(sds_name(p)?);
                            }
                            _ => p.skip()?,
                        }
                        Ok(())
                    })?,
                    _ => p.skip()?,
                }
                Ok(())
            })?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    t.san_matchers.shrink_to_fit();
    Ok(t)
}

/// `envoy.config.core.v3.TransportSocket`.
pub(crate) fn transport_socket(p: &mut Parser) -> Result<TransportSocket> {
    let mut s = TransportSocket {
        name: "".into(),
        tls: None,
        other: None,
    };
    p.fields(|p, k| {
        match k {
            "name" => s.name = p.string()?,
            "typed_config" => {
                let type_url = p.peek_type_url()?;
                match type_url.as_deref() {
                    Some(TLS_UPSTREAM) => s.tls = Some(tls_context(p, TlsSide::Upstream)?),
                    Some(TLS_DOWNSTREAM) => s.tls = Some(tls_context(p, TlsSide::Downstream)?),
                    _ => s.other = Some(opaque(p)?),
                }
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(s)
}

/// `envoy.config.core.v3.CidrRange`.
pub(crate) fn cidr(p: &mut Parser) -> Result<crate::model::Cidr> {
    let mut c = crate::model::Cidr {
        address: "".into(),
        prefix_len: 0,
    };
    p.fields(|p, k| {
        match k {
            "address_prefix" => c.address = p.string()?,
            "prefix_len" => c.prefix_len = p.wrapped_u32()?,
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(c)
}

/// `UpdateFailureState`.
pub(crate) fn update_failure(p: &mut Parser) -> Result<Box<crate::model::UpdateFailure>> {
    let mut f = crate::model::UpdateFailure::default();
    p.fields(|p, k| {
        match k {
            "details" => f.details = p.string()?,
            "version_info" => f.version_info = nonempty(p)?,
            "last_update_attempt" => f.last_update_attempt = Some(p.string()?),
            "failed_configuration" => f.failed_configuration = Some(opaque(p)?),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(Box::new(f))
}
