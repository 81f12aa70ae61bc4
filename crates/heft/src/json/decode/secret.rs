//! Decodes `envoy.extensions.transport_sockets.tls.v3.Secret` and reads its certificates.
//!
//! Private keys are skipped unread: Heft never stores, and so can never print, key material.

use crate::error::Result;
use crate::json::parser::Parser;
use crate::model::{Certificate, Meta, Secret, SecretKind};
use base64::Engine;

pub(crate) fn secret(p: &mut Parser, meta: Meta, name: Option<Box<str>>) -> Result<Secret> {
    let mut s = Secret {
        meta,
        name: name.unwrap_or_default(),
        kind: SecretKind::Unknown,
        certificates: Vec::new(),
        certificate_error: None,
    };
    // (trust domain, PEM) pairs: one for a plain secret, one per SPIFFE trust domain.
    let mut pems: Vec<(Option<Box<str>>, Vec<u8>)> = Vec::new();
    p.fields(|p, k| {
        match k {
            "name" => {
                let n = p.string()?;
                if s.name.is_empty() {
                    s.name = n;
                }
            }
            "tls_certificate" => {
                s.kind = SecretKind::Certificate;
                p.fields(|p, k| {
                    if k == "certificate_chain" {
                        pems.extend(data_source(p)?.map(|pem| (None, pem)));
                    } else {
                        // private_key, password and the rest: skipped, never read.
                        p.skip()?;
                    }
                    Ok(())
                })?;
            }
            "validation_context" => {
                s.kind = SecretKind::ValidationContext;
                p.fields(|p, k| {
                    match k {
                        "trusted_ca" => pems.extend(data_source(p)?.map(|pem| (None, pem))),
                        "custom_validator_config" => spiffe_bundles(p, &mut pems)?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
            }
            "session_ticket_keys" => {
                s.kind = SecretKind::SessionTicketKeys;
                p.skip()?;
            }
            "generic_secret" => {
                s.kind = SecretKind::Generic;
                p.skip()?;
            }
            _ => p.skip()?,
        }
        Ok(())
    })?;
    for (trust_domain, pem) in pems {
        match certificates(&pem) {
            Ok(certs) => s.certificates.extend(certs.into_iter().map(|mut c| {
                c.trust_domain.clone_from(&trust_domain);
                c
            })),
            Err(e) => s.certificate_error = Some(e.into()),
        }
    }
    Ok(s)
}

/// `custom_validator_config` with a `SPIFFECertValidatorConfig`: one trust bundle per domain.
fn spiffe_bundles(p: &mut Parser, pems: &mut Vec<(Option<Box<str>>, Vec<u8>)>) -> Result<()> {
    p.fields(|p, k| {
        if k != "typed_config" {
            return p.skip();
        }
        p.fields(|p, k| {
            if k != "trust_domains" {
                return p.skip();
            }
            p.array(|p| {
                let mut name = None;
                let mut pem = None;
                p.fields(|p, k| {
                    match k {
                        "name" => name = Some(p.string()?),
                        "trust_bundle" => pem = data_source(p)?,
                        _ => p.skip()?,
                    }
                    Ok(())
                })?;
                pems.extend(pem.map(|pem| (name, pem)));
                Ok(())
            })
        })
    })
}

/// The bytes of a `DataSource` given inline; `None` for files, env vars and redacted values.
fn data_source(p: &mut Parser) -> Result<Option<Vec<u8>>> {
    let mut out = None;
    p.fields(|p, k| {
        match k {
            "inline_bytes" => {
                let at = p.offset();
                let text = p.str()?;
                let bytes = proto3_base64(&text).map_err(|e| {
                    crate::error::Error::at(
                        crate::error::ErrorKind::InvalidValue,
                        at,
                        format!("inline_bytes is not valid base64: {e}"),
                    )
                })?;
                out = Some(bytes);
            }
            "inline_string" => out = Some(p.str()?.as_bytes().to_vec()),
            _ => p.skip()?,
        }
        Ok(())
    })?;
    Ok(out)
}

/// Decodes proto3 JSON `bytes`: standard or URL-safe base64, with or without padding.
fn proto3_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let url_safe = text.bytes().any(|b| b == b'-' || b == b'_');
    let alphabet = if url_safe { &URL_SAFE } else { &STANDARD };
    GeneralPurpose::new(alphabet, config).decode(text.as_bytes())
}

/// Reads every certificate of a PEM bundle.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<Certificate>, String> {
    use x509_parser::prelude::*;
    let mut out = Vec::new();
    for item in Pem::iter_from_buffer(pem) {
        let item = item.map_err(|e| format!("invalid PEM: {e}"))?;
        if item.label != "CERTIFICATE" {
            continue;
        }
        let (_, cert) = X509Certificate::from_der(&item.contents)
            .map_err(|e| format!("invalid certificate: {e}"))?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                let text = match name {
                    GeneralName::URI(u) => format!("URI:{u}"),
                    GeneralName::DNSName(d) => format!("DNS:{d}"),
                    GeneralName::RFC822Name(e) => format!("email:{e}"),
                    GeneralName::IPAddress(ip) => format!("IP:{}", ip_text(ip)),
                    other => format!("{other:?}"),
                };
                sans.push(text.into());
            }
        }
        let validity = cert.validity();
        out.push(Certificate {
            serial: cert.raw_serial_as_string().replace(':', "").into(),
            not_before: rfc3339(validity.not_before.timestamp()).into(),
            not_after: rfc3339(validity.not_after.timestamp()).into(),
            not_before_unix: validity.not_before.timestamp(),
            not_after_unix: validity.not_after.timestamp(),
            sans,
            subject: cert.subject().to_string().into(),
            is_ca: cert.is_ca(),
            trust_domain: None,
            rsa_bits: match cert.public_key().parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                    u32::try_from(rsa.key_size()).unwrap_or(u32::MAX)
                }
                _ => 0,
            },
        });
    }
    if out.is_empty() && !pem.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(out)
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(b).to_string()
        }
        _ => format!("{bytes:02x?}"),
    }
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2023-05-16T01:32:52Z`).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z");
    }
    // Every entry of a binary dump has a timestamp: digits written directly, not through
    // `format!`, which cost 3% of a binary read.
    let mut out = *b"0000-00-00T00:00:00Z";
    let digits = |out: &mut [u8], mut v: i64| {
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(&mut out[0..4], y);
    digits(&mut out[5..7], m);
    digits(&mut out[8..10], d);
    digits(&mut out[11..13], h);
    digits(&mut out[14..16], min);
    digits(&mut out[17..19], s);
    // ASCII digits and separators only: the check cannot fail.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{proto3_base64, rfc3339};

    #[test]
    fn bytes_read_in_every_base64_variant() {
        // 0xfb 0xff: '+' and '/' in the standard alphabet, '-' and '_' in the URL-safe one.
        for text in ["+/8+", "-_8-"] {
            assert_eq!(proto3_base64(text).unwrap(), [0xfb, 0xff, 0x3e], "{text}");
        }
        for text in ["+/8=", "+/8", "-_8=", "-_8"] {
            assert_eq!(proto3_base64(text).unwrap(), [0xfb, 0xff], "{text}");
        }
        assert_eq!(proto3_base64("W3JlZGFjdGVkXQ==").unwrap(), b"[redacted]");
        assert_eq!(proto3_base64("W3JlZGFjdGVkXQ").unwrap(), b"[redacted]");
        assert!(proto3_base64("+/8-").is_err(), "one alphabet per value");
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_684_200_772), "2023-05-16T01:32:52Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
