"""Customer keys in Vault Transit (hvac): one key per customer, envelope encryption of
templates with wrapped data keys, field encryption of phone/email/name, keyed lookups and
audit MACs computed inside Vault, crypto-shredding by key deletion."""

from __future__ import annotations

import base64
import os

import hvac
import requests
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest, VaultError

from gait.protection import CancelableTransform
from identity.domain.ports import Envelope
from mesh.errors import FailedPrecondition, Unavailable
from mesh.vault_provision import load_transform

MOUNT = "transit"
AUDIT_HEAD = "gaitpay/identity/audit-head"


def key_name(customer_id: str) -> str:
    return f"customer-{customer_id}"


class KeyShredded(FailedPrecondition):
    """The customer's key no longer exists: their ciphertexts are unreadable for good."""


class VaultKeys:
    def __init__(self, addr: str, token: str, timeout_s: float = 5.0) -> None:
        self._vault = hvac.Client(url=addr, token=token, timeout=timeout_s)

    def _call(self, what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except (InvalidPath, InvalidRequest) as exc:
            if "not found" in str(exc) or "no existing key" in str(exc) or isinstance(exc, InvalidPath):
                raise KeyShredded(f"{what}: the customer's key does not exist (erased)") from None
            raise Unavailable(f"vault refused {what}") from exc
        except Forbidden as exc:
            raise Unavailable(f"vault denied {what} to this service's token") from exc
        except (VaultError, requests.RequestException) as exc:
            raise Unavailable(f"vault unreachable during {what}") from exc

    # -- per-customer keys ---------------------------------------------------------------

    def create_customer_key(self, customer_id: str) -> None:
        self._call("key creation", self._vault.secrets.transit.create_key, key_name(customer_id),
                   key_type="aes256-gcm96", mount_point=MOUNT)

    def rotate(self, customer_id: str) -> int:
        name = key_name(customer_id)
        self._call("key rotation", self._vault.secrets.transit.rotate_key, name, mount_point=MOUNT)
        info = self._call("key read", self._vault.secrets.transit.read_key, name, mount_point=MOUNT)
        return int(info["data"]["latest_version"])

    def rewrap(self, customer_id: str, ciphertexts: list[str]) -> list[str]:
        """Re-encrypt under the newest key version inside Vault: no plaintext leaves it."""
        if not ciphertexts:
            return []
        result = self._call("rewrap", self._vault.secrets.transit.rewrap_data, key_name(customer_id),
                            ciphertext="", batch_input=[{"ciphertext": c} for c in ciphertexts],
                            mount_point=MOUNT)
        return [item["ciphertext"] for item in result["data"]["batch_results"]]

    def destroy(self, customer_id: str) -> None:
        """Crypto-shredding: every ciphertext under this key becomes unreadable."""
        name = key_name(customer_id)
        try:
            self._call("key config", self._vault.secrets.transit.update_key_configuration, name,
                       deletion_allowed=True, mount_point=MOUNT)
        except KeyShredded:
            return  # already gone: erasure is idempotent
        self._call("key deletion", self._vault.secrets.transit.delete_key, name, mount_point=MOUNT)

    # -- envelope encryption of templates ------------------------------------------------

    def seal(self, customer_id: str, plaintext: bytes, context: bytes) -> Envelope:
        key = self._call("data key", self._vault.secrets.transit.generate_data_key, key_name(customer_id),
                         key_type="plaintext", mount_point=MOUNT)["data"]
        data_key = base64.b64decode(key["plaintext"])
        nonce = os.urandom(12)
        return Envelope(key["ciphertext"], nonce, AESGCM(data_key).encrypt(nonce, plaintext, context))

    def open(self, customer_id: str, envelope: Envelope, context: bytes) -> bytes:
        plain = self._call("decrypt", self._vault.secrets.transit.decrypt_data, key_name(customer_id),
                           ciphertext=envelope.wrapped_key, mount_point=MOUNT)["data"]["plaintext"]
        return AESGCM(base64.b64decode(plain)).decrypt(envelope.nonce, envelope.ciphertext, context)

    # -- fields (phone, email, name) -----------------------------------------------------

    def encrypt_field(self, customer_id: str, value: str) -> str:
        if not value:
            return ""
        data = self._call("encrypt", self._vault.secrets.transit.encrypt_data, key_name(customer_id),
                          plaintext=base64.b64encode(value.encode()).decode(), mount_point=MOUNT)
        return str(data["data"]["ciphertext"])

    def decrypt_field(self, customer_id: str, ciphertext: str) -> str:
        if not ciphertext:
            return ""
        data = self._call("decrypt", self._vault.secrets.transit.decrypt_data, key_name(customer_id),
                          ciphertext=ciphertext, mount_point=MOUNT)
        return base64.b64decode(data["data"]["plaintext"]).decode()

    # -- shared MACs -----------------------------------------------------------------------

    def lookup_hash(self, value: str) -> str:
        """Keyed hash for lookups by phone or email: the key never leaves Vault."""
        data = self._call("lookup hmac", self._vault.secrets.transit.generate_hmac, "lookup",
                          hash_input=base64.b64encode(value.encode()).decode(), algorithm="sha2-256",
                          mount_point=MOUNT)
        return str(data["data"]["hmac"])

    def audit_macs(self, payloads: list[bytes]) -> list[str]:
        if not payloads:
            return []
        out: list[str] = []
        for start in range(0, len(payloads), 1000):  # hvac's generate_hmac has no batch form
            batch = [{"input": base64.b64encode(p).decode()} for p in payloads[start:start + 1000]]
            data = self._call("audit hmac", self._vault.adapter.post, f"/v1/{MOUNT}/hmac/audit/sha2-256",
                              json={"batch_input": batch})
            out += [str(item["hmac"]) for item in data["data"]["batch_results"]]
        return out

    def anchor_audit(self, sequence: int, mac: str) -> None:
        """Record the chain's head in Vault KV, outside the database an attacker might edit."""
        self._call("audit anchor", self._vault.secrets.kv.v2.create_or_update_secret, AUDIT_HEAD,
                   {"sequence": str(sequence), "mac": mac}, mount_point="secret")

    def audit_anchor(self) -> tuple[int, str] | None:
        try:
            data = self._vault.secrets.kv.v2.read_secret_version(AUDIT_HEAD, mount_point="secret",
                                                                 raise_on_deleted_version=True)["data"]["data"]
        except InvalidPath:
            return None  # nothing appended yet
        except (VaultError, requests.RequestException) as exc:
            raise Unavailable("vault unreachable while reading the audit anchor") from exc
        return int(data["sequence"]), str(data["mac"])

    def transform(self, dim: int) -> CancelableTransform:
        return load_transform(self._vault, dim)
