"""Mutual TLS to the regional broker, by configuration alone (a CA made for the test)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from linli.wire import topics
from tests.brokers import MosquittoProcess, settle
from tests.infrastructure import require_mosquitto
from tests.regional import REGION, uplink_config


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[str, str]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def make_pki(folder: Path, clients: dict[str, str] | None = None) -> dict[str, str]:
    """A CA, the broker's certificate for 127.0.0.1, and a gateway's client certificate.

    `clients`: more client certificates from the same CA, stem → common name (`<stem>_cert`, `<stem>_key`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Linli test region CA"))
        .issuer_name(_name("Linli test region CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": _write(folder, "ca", ca, ca_key)[0]}

    def issue(stem: str, common: str, server: bool) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        paths[f"{stem}_cert"], paths[f"{stem}_key"] = _write(
            folder, stem, builder.sign(ca_key, hashes.SHA256()), key
        )

    issue("server", "127.0.0.1", server=True)
    issue("gateway", "linli-up-community", server=False)
    issue("consumer", "linli-region-consumer", server=False)
    for stem, common in (clients or {}).items():
        issue(stem, common, server=False)
    return paths


def tls_broker(folder: Path, pki: dict[str, str]) -> MosquittoProcess:
    """A regional Mosquitto that speaks only TLS and wants a client certificate from our CA."""
    folder.mkdir(parents=True, exist_ok=True)
    return MosquittoProcess(
        folder,
        extra=(
            f"cafile {pki['ca']}\ncertfile {pki['server_cert']}\nkeyfile {pki['server_key']}\n"
            "require_certificate true\n"
        ),
    )


@pytest.mark.slow
async def test_uplink_with_mutual_tls(make_gateway, tmp_path) -> None:
    require_mosquitto()
    # given a regional broker that requires a client certificate from our CA
    pki = make_pki(tmp_path / "pki")
    broker = tls_broker(tmp_path / "region-tls", pki)
    broker.start()
    try:
        # when a gateway is configured with the CA and its certificate
        tls = {"ca_file": pki["ca"], "cert_file": pki["gateway_cert"], "key_file": pki["gateway_key"]}
        gateway = await make_gateway(
            data_dir=tmp_path / "with-cert",
            uplink=uplink_config(broker.port, tls=tls, client_id="gw-with-cert"),
        )
        # then its uplink connects and delivers (the region, too, shows a certificate)
        await gateway.components["uplink"].relay.async_wait_connected(10)
        context = ssl.create_default_context(cafile=pki["ca"])
        context.load_cert_chain(pki["gateway_cert"], pki["gateway_key"])
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5, tls_context=context
        ) as region:
            await region.subscribe(topics.region_up_filters(REGION)[0], qos=1)
            await gateway.components["uplink"].async_report_status()
            async with asyncio.timeout(10):
                async for message in region.messages:
                    assert message.topic.value.endswith("/up/status")
                    break
        # when a gateway trusts the broker but has no certificate of its own
        bare = await make_gateway(
            data_dir=tmp_path / "no-cert",
            gateway_id="gw-no-cert",
            uplink=uplink_config(
                broker.port, tls={"ca_file": pki["ca"]}, client_id="gw-no-cert", connect_timeout_s=1
            ),
        )
        relay = bare.components["uplink"].relay
        # then the broker refuses it, and the gateway keeps working locally
        await settle(lambda: relay.last_error is not None, timeout=10)
        assert not relay.connected
        assert bare.ready.is_set()
    finally:
        broker.stop()
