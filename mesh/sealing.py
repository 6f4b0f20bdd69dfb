"""Sealed boxes for data that must stay secret beyond the TLS hop (the hot cache an edge
keeps on disk): X25519 with a one-time sender key, HKDF-SHA256, AES-256-GCM, all from
`cryptography`. Only the holder of the recipient's private key can open a box."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
# HKDF info of the matcher's hot-cache exports (the matcher seals, the edge opens).
HOT_CACHE_INFO = b"gaitpay hot cache v1"


class SealError(ValueError):
    """A box that cannot be opened: wrong key, altered bytes or other associated data."""


@dataclass(frozen=True)
class Sealed:
    box: bytes  # 12-byte nonce + ciphertext with its tag
    ephemeral_public_key: bytes


def _key(shared: bytes, sender: bytes, recipient: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=sender + recipient, info=info).derive(shared)


def public_key_bytes(private: X25519PrivateKey) -> bytes:
    """The 32 raw bytes of a private key's public half, as boxes are addressed to."""
    return private.public_key().public_bytes(*_RAW)


def new_keypair() -> tuple[X25519PrivateKey, bytes]:
    private = X25519PrivateKey.generate()
    return private, public_key_bytes(private)


def seal(plaintext: bytes, recipient_public_key: bytes, associated: bytes, info: bytes) -> Sealed:
    try:
        recipient = X25519PublicKey.from_public_bytes(recipient_public_key)
    except ValueError as exc:
        raise SealError(f"recipient public key unusable: {exc}") from None
    ephemeral = X25519PrivateKey.generate()
    sender = public_key_bytes(ephemeral)
    key = _key(ephemeral.exchange(recipient), sender, recipient_public_key, info)
    nonce = os.urandom(12)
    return Sealed(nonce + AESGCM(key).encrypt(nonce, plaintext, associated), sender)


def open_sealed(sealed: Sealed, recipient: X25519PrivateKey, associated: bytes, info: bytes) -> bytes:
    own = public_key_bytes(recipient)
    try:
        shared = recipient.exchange(X25519PublicKey.from_public_bytes(sealed.ephemeral_public_key))
        key = _key(shared, sealed.ephemeral_public_key, own, info)
        return AESGCM(key).decrypt(sealed.box[:12], sealed.box[12:], associated)
    except (InvalidTag, ValueError) as exc:
        raise SealError("sealed box cannot be opened with this key and associated data") from exc
