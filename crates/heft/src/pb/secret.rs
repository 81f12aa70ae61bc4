//! `envoy.extensions.transport_sockets.tls.v3.Secret` (prost) to the model. Certificates are read
//! by the JSON reader's own parser (`json::decode::secret::certificates`); private keys are
//! never read.

use super::envoy::config::core::v3 as core;
use super::envoy::extensions::transport_sockets::tls::v3 as pb;
use crate::error::Result;
use crate::model::{Meta, Secret, SecretKind};

const SPIFFE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig";

/// `SPIFFECertValidatorConfig`, which Heft's trimmed protos do not carry: only its trust domains.
#[derive(Clone, PartialEq, prost::Message)]
struct SpiffeValidator {
    #[prost(message, repeated, tag = "1")]
    trust_domains: Vec<TrustDomain>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TrustDomain {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    trust_bundle: Option<core::DataSource>,
}

pub(crate) fn secret(s: pb::Secret, meta: Meta) -> Result<Secret> {
    use pb::secret::Type as T;
    let mut out = Secret {
        meta,
        name: s.name.into(),
        kind: SecretKind::Unknown,
        certificates: Vec::new(),
        certificate_error: None,
    };
    // (trust domain, PEM) pairs: one for a plain secret, one per SPIFFE trust domain.
    let mut pems: Vec<(Option<Box<str>>, Vec<u8>)> = Vec::new();
    match s.r#type {
        Some(T::TlsCertificate(c)) => {
            out.kind = SecretKind::Certificate;
            pems.extend(c.certificate_chain.and_then(data_source).map(|p| (None, p)));
        }
        Some(T::ValidationContext(v)) => {
            out.kind = SecretKind::ValidationContext;
            pems.extend(v.trusted_ca.and_then(data_source).map(|p| (None, p)));
            let spiffe = v
                .custom_validator_config
                .and_then(|c| c.typed_config)
                .filter(|a| a.type_url == SPIFFE);
            if let Some(any) = spiffe {
                let cfg: SpiffeValidator = super::common::unpack(&any)?;
                for d in cfg.trust_domains {
                    let name = Some(d.name.into());
                    pems.extend(d.trust_bundle.and_then(data_source).map(|p| (name, p)));
                }
            }
        }
        Some(T::SessionTicketKeys(_)) => out.kind = SecretKind::SessionTicketKeys,
        Some(T::GenericSecret(_)) => out.kind = SecretKind::Generic,
        None => {}
    }
    for (trust_domain, pem) in pems {
        match crate::json::decode::secret::certificates(&pem) {
            Ok(certs) => out.certificates.extend(certs.into_iter().map(|mut c| {
                c.trust_domain.clone_from(&trust_domain);
                c
            })),
            Err(e) => out.certificate_error = Some(e.into()),
        }
    }
    Ok(out)
}

/// The bytes of a `DataSource` given inline; `None` for files, env vars and redacted values.
fn data_source(d: core::DataSource) -> Option<Vec<u8>> {
    match d.specifier? {
        core::data_source::Specifier::InlineBytes(b) => Some(b),
        core::data_source::Specifier::InlineString(s) => Some(s.into_bytes()),
        _ => None,
    }
}
