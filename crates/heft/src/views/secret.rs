//! `secrets`: one row per secret, or per SPIFFE trust domain of a trust bundle secret
//! (`istioctl proxy-config secret`).

use super::Pricing;
use crate::model::{Certificate, Secret, SecretKind, Span, State};
use serde::Serialize;

/// One secret (or one trust domain of a SPIFFE bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRow {
    /// The secret's name (`default`, `ROOTCA`, `kubernetes://…`).
    pub name: String,
    /// `Cert Chain` or `CA`, from the first certificate; empty when none could be read.
    #[serde(rename = "type")]
    pub cert_type: String,
    /// What the secret holds.
    pub kind: SecretKind,
    /// `ACTIVE`, `WARMING` or `STATIC`.
    pub status: String,
    /// Whether the first certificate is within its validity period now.
    pub valid: bool,
    /// Its serial number in hex, as `istioctl` prints it (no leading zero bytes).
    pub serial_number: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// The SPIFFE trust domain: the bundle's, or the one in a certificate's `spiffe://` SAN.
    pub trust_domain: Option<String>,
    /// Whether the row is one trust domain of a SPIFFE validation bundle.
    pub spiffe_bundle: bool,
    /// The first certificate's subject alternative names.
    pub sans: Vec<String>,
    /// The secret's state.
    pub state: State,
    /// The secret's predicted bytes.
    pub cost: Option<u64>,
    /// Where the resource's dump entry sat in the input, to print it as it was.
    #[serde(skip)]
    pub span: Option<Span>,
}

/// The columns `istioctl` prints; it adds [`TRUST_DOMAIN_COLUMN`] when a SPIFFE trust bundle is
/// among the secrets.
pub const ISTIOCTL_COLUMNS: [&str; 7] = [
    "RESOURCE NAME",
    "TYPE",
    "STATUS",
    "VALID CERT",
    "SERIAL NUMBER",
    "NOT AFTER",
    "NOT BEFORE",
];
/// The column `istioctl` adds for SPIFFE trust domains.
pub const TRUST_DOMAIN_COLUMN: &str = "TRUST DOMAIN";

/// The trust domain of a `spiffe://` URI SAN.
fn san_trust_domain(c: &Certificate) -> Option<String> {
    c.sans.iter().find_map(|s| {
        let rest = s.strip_prefix("URI:spiffe://")?;
        let domain = rest.split('/').next().unwrap_or("");
        (!domain.is_empty()).then(|| domain.to_string())
    })
}

/// A serial number as `istioctl` prints it: the minimal big-endian bytes in hex (the DER sign
/// byte dropped).
fn serial_text(serial: &str) -> String {
    let mut s = serial;
    while s.len() > 2 && s.starts_with("00") {
        s = &s[2..];
    }
    if s == "00" {
        String::new()
    } else {
        s.to_string()
    }
}

fn status_of(state: State) -> &'static str {
    match state {
        State::Warming => "WARMING",
        State::Static => "STATIC",
        _ => "ACTIVE",
    }
}

/// The rows of one secret: one, or one per trust domain of a SPIFFE trust bundle. `now_unix`
/// (seconds since the epoch) decides VALID CERT.
pub fn secret_rows(s: &Secret, now_unix: i64, pricing: &dyn Pricing) -> Vec<SecretRow> {
    let cost = pricing.secret(s);
    let row = |first: Option<&Certificate>, trust_domain: Option<String>, spiffe_bundle| {
        let (cert_type, valid, serial, not_after, not_before, sans) = match first {
            Some(c) => (
                if c.is_ca { "CA" } else { "Cert Chain" }.to_string(),
                c.not_before_unix <= now_unix && now_unix <= c.not_after_unix,
                serial_text(&c.serial),
                c.not_after.to_string(),
                c.not_before.to_string(),
                c.sans.iter().map(ToString::to_string).collect(),
            ),
            None => Default::default(),
        };
        SecretRow {
            name: s.name.to_string(),
            cert_type,
            kind: s.kind,
            status: status_of(s.meta.state).to_string(),
            valid,
            serial_number: serial,
            not_after,
            not_before,
            trust_domain: trust_domain.or_else(|| first.and_then(san_trust_domain)),
            spiffe_bundle,
            sans,
            state: s.meta.state,
            cost,
            span: s.meta.span,
        }
    };
    // A secret whose certificate could not be read shows no certificate at all, as in istioctl.
    if s.certificate_error.is_some() && s.certificates.is_empty() {
        return vec![row(None, None, false)];
    }
    let mut rows = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for c in &s.certificates {
        if let Some(td) = c.trust_domain.as_deref() {
            if !seen.contains(&td) {
                seen.push(td);
                rows.push(row(Some(c), Some(td.to_string()), true));
            }
        }
    }
    if rows.is_empty() {
        rows.push(row(s.certificates.first(), None, false));
    }
    rows
}

impl SecretRow {
    /// The line `istioctl` prints for this row (the trust domain last, when asked for).
    pub fn istioctl_cells(&self, with_trust_domain: bool) -> Vec<String> {
        let mut cells = vec![
            self.name.clone(),
            self.cert_type.clone(),
            self.status.clone(),
            self.valid.to_string(),
            self.serial_number.clone(),
            self.not_after.clone(),
            self.not_before.clone(),
        ];
        if with_trust_domain {
            cells.push(self.trust_domain.clone().unwrap_or_default());
        }
        cells
    }
}

/// Whether `istioctl` would add the TRUST DOMAIN column for these rows.
pub fn shows_trust_domain(rows: &[SecretRow]) -> bool {
    rows.iter().any(|r| r.spiffe_bundle)
}

/// `istioctl`'s rows and order: warming secrets, then active ones, each in dump order (it does
/// not sort); Heft's order adds static (bootstrap) secrets last.
pub fn arrange(rows: Vec<SecretRow>, order: super::Order) -> Vec<SecretRow> {
    let rank = |s: State| match (s, order) {
        (State::Warming, _) => Some(0),
        (State::Active, _) => Some(1),
        (_, super::Order::Heft) => Some(2),
        (_, super::Order::Istioctl) => None,
    };
    let mut ranked: Vec<(u8, SecretRow)> = rows
        .into_iter()
        .filter_map(|r| rank(r.state).map(|k| (k, r)))
        .collect();
    ranked.sort_by_key(|(k, _)| *k);
    ranked.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_drop_the_der_sign_byte_but_keep_leading_nibbles() {
        assert_eq!(serial_text("00cd49"), "cd49");
        assert_eq!(serial_text("0193a5"), "0193a5");
        assert_eq!(serial_text("00"), "");
    }
}
