"""The broker's TLS certificate, from a small CA the gateway makes for itself.

Devices on the community network connect to the TLS listener (8883) and pin the
gateway's CA (the provisioning payload carries it). The CA is made once and kept
(10 years); the server certificate is re-issued when it nears its end or when the
names it must answer to change. Keys are 0600 in the broker's own folder.
Blocking (key generation, files): call from a worker thread.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS: Final = 3650
SERVER_DAYS: Final = 825
RENEW_BEFORE: Final = datetime.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class BrokerTls:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def ca_pem(self) -> str:
        return self.ca_file.read_text(encoding="ascii")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _current_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName)
    )


def ensure_certificates(folder: Path, names: list[str], community: str) -> BrokerTls:
    """The CA and a server certificate for `names` (host names and addresses devices dial)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tls = BrokerTls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    now = datetime.datetime.now(datetime.UTC)
    ca_key_file = folder / "ca.key"
    if tls.ca_file.exists() and ca_key_file.exists():
        ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name(f"Linli gateway CA · {community}"))
            .issuer_name(_name(f"Linli gateway CA · {community}"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(ca_key_file, ca_key)
        tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    if tls.cert_file.exists() and tls.key_file.exists():
        cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
        fresh = cert.not_valid_after_utc - now > RENEW_BEFORE and cert.issuer == ca.subject
        if fresh and _current_names(cert) == set(names):
            return tls
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(tls.key_file, key)
    tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return tls
