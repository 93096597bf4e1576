"""Ed25519 signatures on what the region sends down (announcements, its clock).

The region holds the private key; every gateway is configured with the region's
public key(s) (`uplink.region_public_keys`, base64 of the 32 raw bytes; several
during a key rotation). A downlink message is

    {"payload": "<base64 of the JSON bytes>", "sig": "<base64 Ed25519 signature>", "key": "<key id>"}

The signature covers a domain prefix and the exact payload bytes, so no JSON
canonicalisation is needed and a signature made for something else cannot be
replayed as a downlink message. The key id is the first 16 hex digits of the
SHA-256 of the public key.

The `cryptography` package (PyCA) provides Ed25519 on OpenSSL; it is what pip,
Twisted and most of the Python ecosystem already trust for this.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

DOMAIN: Final = b"linli-downlink-v1\n"


class SignatureError(ValueError):
    """A downlink message that must not be trusted; `reason` is a short stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None


class Signer:
    """The region's side: signs payloads with its private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(self.public_raw)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        """A key file holds the base64 of the 32 raw private bytes (as `linli region keygen` writes)."""
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise ValueError(
                f"signing key file {path} does not exist: create it with `linli region keygen`"
            ) from None
        raw = _b64decode(text, f"signing key file {path}")
        if len(raw) != 32:
            raise ValueError(f"signing key file {path} must hold 32 bytes (base64), not {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_text(self) -> str:
        raw = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return base64.b64encode(raw).decode()

    @property
    def public_text(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    def sign(self, payload: dict[str, Any]) -> bytes:
        body = orjson.dumps(payload)
        signature = self._key.sign(DOMAIN + body)
        return orjson.dumps(
            {
                "payload": base64.b64encode(body).decode(),
                "sig": base64.b64encode(signature).decode(),
                "key": self.key_id,
            }
        )

    def __repr__(self) -> str:  # never print the private key
        return f"Signer(key {self.key_id})"


class Verifier:
    """The gateway's side: trusts only messages signed by one of the region's keys."""

    def __init__(self, public_keys: list[str]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for index, text in enumerate(public_keys):
            raw = _b64decode(text, f"uplink.region_public_keys[{index}]")
            if len(raw) != 32:
                raise ValueError(
                    f"uplink.region_public_keys[{index}] must be 32 bytes (base64 of an Ed25519 public key), "
                    f"not {len(raw)}"
                )
            self._keys[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)

    def __len__(self) -> int:
        return len(self._keys)

    def verify(self, message: bytes) -> dict[str, Any]:
        """The payload of a correctly signed message; SignatureError otherwise."""
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise SignatureError("malformed", "downlink message is not JSON") from None
        if not isinstance(doc, dict) or not {"payload", "sig", "key"} <= doc.keys():
            raise SignatureError("unsigned", "downlink message lacks payload/sig/key: it is not signed")
        if not all(isinstance(doc[k], str) for k in ("payload", "sig", "key")):
            raise SignatureError("malformed", "downlink message fields payload/sig/key must be strings")
        public = self._keys.get(doc["key"])
        if public is None:
            raise SignatureError(
                "unknown_key",
                f"downlink message signed by key {doc['key'][:16]!r}, which is not one of the region's "
                f"{len(self._keys)} configured key(s)",
            )
        try:
            body = base64.b64decode(doc["payload"], validate=True)
            signature = base64.b64decode(doc["sig"], validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("malformed", "downlink message payload/sig is not base64") from None
        try:
            public.verify(signature, DOMAIN + body)
        except InvalidSignature:
            raise SignatureError("bad_signature", "downlink message signature does not verify") from None
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SignatureError("malformed", "signed payload is not JSON") from None
        if not isinstance(payload, dict):
            raise SignatureError("malformed", "signed payload is not a JSON object")
        return payload
