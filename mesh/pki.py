"""A local certificate authority for service-to-service mTLS.

On first start the stack creates HOME/pki/ca.{crt,key} and one certificate per identity
(each service, the operator CLI). A certificate names its identity twice: as the subject
common name and as a SPIFFE-style URI SAN (spiffe://gaitpay.local/<identity>), so the same
authorisation rules work with certificates a production mesh (cert-manager, SPIRE) issues.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "gaitpay.local"
VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class Credentials:
    """PEM bytes for one identity."""

    identity: str
    ca_cert: bytes
    cert: bytes
    key: bytes


def spiffe_id(identity: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/{identity}"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _ensure_ca(pki: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = pki / "ca.crt", pki / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "GaitPay local CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + 10 * VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(identity: str, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    key = _new_key()
    now = dt.datetime.now(dt.timezone.utc)
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(spiffe_id(identity)),
            x509.DNSName("localhost"),
            x509.DNSName(f"{identity}.gaitpay.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def credentials(pki: Path, identity: str) -> Credentials:
    """The identity's credentials, creating the CA and the certificate on first use.

    A file lock makes concurrent first starts (several services at once) create one CA.
    Where the identity's certificate and the CA certificate are already there (Kubernetes
    mounts them read-only from cert-manager or Vault PKI, without the CA's key), they are
    read as they are."""
    ca_path, cert_path, key_path = pki / "ca.crt", pki / f"{identity}.crt", pki / f"{identity}.key"
    if ca_path.exists() and cert_path.exists() and key_path.exists() and not (pki / "ca.key").exists():
        return Credentials(identity=identity, ca_cert=ca_path.read_bytes(), cert=cert_path.read_bytes(),
                           key=key_path.read_bytes())
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(pki / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ca_cert, ca_key = _ensure_ca(pki)
        cert_path, key_path = pki / f"{identity}.crt", pki / f"{identity}.key"
        if not (cert_path.exists() and key_path.exists()):
            cert, key = _issue(identity, ca_cert, ca_key)
            _write_private(key_path, key)
            cert_path.write_bytes(cert)
        return Credentials(
            identity=identity,
            ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM),
            cert=cert_path.read_bytes(),
            key=key_path.read_bytes(),
        )


def foreign_credentials(pki: Path, identity: str) -> Credentials:
    """Credentials signed by a different, throwaway CA (for tests of refusal)."""
    pki.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert, ca_key = _ensure_ca(pki)
    cert, key = _issue(identity, ca_cert, ca_key)
    return Credentials(identity, ca_cert.public_bytes(serialization.Encoding.PEM), cert, key)
