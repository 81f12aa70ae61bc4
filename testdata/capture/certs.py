"""Makes the throwaway certificates the scenarios serve over SDS: a mesh root CA and leaves it signs.

Keys are fresh on every run (so captured PEM bytes differ between runs); serial numbers and subjects are
fixed so tests can look for them. Validity starts now and lasts 24 hours. Keys are ECDSA P-256 (what
Istio's CA issues by default) unless asked for RSA: `KEY_TYPES`. A CA may be an intermediate of
another (`CertificateAuthority(parent=...)`); the chains it issues then carry every CA up to the root.
"""

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(hours=24)
KEY_TYPES = ("ec-p256", "rsa-2048", "rsa-4096")


def new_key(kind="ec-p256"):
    """A fresh private key: "ec-p256", "rsa-2048" or "rsa-4096"."""
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind in ("rsa-2048", "rsa-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.split("-")[1]))
    raise ValueError(f"unknown key type {kind!r} (one of {', '.join(KEY_TYPES)})")


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class CertificateAuthority:
    """A self-signed root like Istio's (O=cluster.local), able to sign leaf certificates; with
    `parent`, an intermediate CA that `parent` signs (as a plugged-in Istio CA is)."""

    def __init__(self, organization="cluster.local", serial=0x1A57C0DE, key_type="ec-p256", parent=None):
        self.key_type = key_type
        self.key = new_key(key_type)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
        issuer = parent.cert.subject if parent else name
        signer = parent.key if parent else self.key
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(issuer)
            .public_key(self.key.public_key())
            .serial_number(serial)
            .not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(signer, hashes.SHA256())
        )
        self.pem = _pem(self.cert)
        # This CA and every CA above it, nearest first: what a leaf's chain carries after the leaf.
        self.chain_pem = self.pem + (parent.chain_pem if parent else "")

    def issue(self, serial, uris=(), dns_names=(), common_name=None):
        """Returns (certificate chain PEM, private key PEM) for a leaf with the given SANs."""
        key = new_key(self.key_type)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
        sans = [x509.UniformResourceIdentifier(u) for u in uris] + [x509.DNSName(d) for d in dns_names]
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=not common_name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return _pem(cert) + self.chain_pem, _key_pem(key)


def tls_certificate_secret(name, chain_pem, key_pem):
    """An SDS Secret holding a certificate chain and its private key (Envoy redacts the key in dumps)."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        "name": name,
        "tls_certificate": {
            "certificate_chain": {"inline_bytes": _b64(chain_pem)},
            "private_key": {"inline_bytes": _b64(key_pem)},
        },
    }


def validation_context_secret(name, ca_pem):
    """An SDS Secret holding the trusted roots (PEM, one or more), like Istio's ROOTCA."""
    return {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        "name": name,
        "validation_context": {"trusted_ca": {"inline_bytes": _b64(ca_pem)}},
    }


def _b64(text):
    return base64.b64encode(text.encode()).decode()
