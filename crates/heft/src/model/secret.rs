//! Secrets: certificates and validation contexts (never private keys).

use super::Meta;
use serde::Serialize;

/// What a secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A certificate chain with its key (`tls_certificate`).
    Certificate,
    /// Trusted CAs and peer rules (`validation_context`).
    ValidationContext,
    /// Session ticket keys.
    SessionTicketKeys,
    /// A generic secret.
    Generic,
    /// Nothing yet (a warming secret) or a kind Heft does not know.
    Unknown,
}

/// What Heft read from one X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// Serial number, lower-case hex without separators.
    pub serial: Box<str>,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: Box<str>,
    /// End of validity, RFC 3339 UTC.
    pub not_after: Box<str>,
    /// Start of validity, seconds since the epoch.
    pub not_before_unix: i64,
    /// End of validity, seconds since the epoch.
    pub not_after_unix: i64,
    /// Subject alternative names (`URI:spiffe://…`, `DNS:…`).
    pub sans: Vec<Box<str>>,
    /// Subject distinguished name.
    pub subject: Box<str>,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// The SPIFFE trust domain whose bundle holds it, for SPIFFE validation contexts.
    pub trust_domain: Option<Box<str>>,
    /// The size of its RSA public key in bits (0 for other keys): an RSA key costs every TLS
    /// context that loads it more than an EC one.
    pub rsa_bits: u32,
}

/// A secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    /// State, version and input span.
    pub meta: Meta,
    /// Its name (Istio: `default`, `ROOTCA`, `kubernetes://…`).
    pub name: Box<str>,
    /// What it holds.
    pub kind: SecretKind,
    /// The certificates of its chain or trusted CA bundle that Heft could read, in order.
    pub certificates: Vec<Certificate>,
    /// Why a certificate present in the secret could not be read.
    pub certificate_error: Option<Box<str>>,
}
