"""Provisioning a Vault (or OpenBao) for the mesh, with a privileged token: the Transit
engine and its shared keys, the per-service policies from vault-policies/, the template
transform secret, and one token per service. `gaitpay up` runs it against its dev server;
`gaitpay vault provision` runs it against a production Vault (where Kubernetes auth, not
these tokens, then hands services their policies)."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import hvac
import numpy as np
import requests
import structlog
from hvac.exceptions import InvalidPath, InvalidRequest, VaultError

from gait.protection import CancelableTransform
from mesh.errors import Unavailable

log = structlog.get_logger("gaitpay.vault")
POLICY_DIR = Path(__file__).resolve().parent.parent / "vault-policies"
TRANSFORM_PATH = "gaitpay/template-transform"
SHARED_KEYS = ("lookup", "audit")  # HMAC keys: phone/email lookups, audit chain


@dataclass(frozen=True)
class Provisioned:
    tokens: dict[str, str]
    transform_version: int


def client(addr: str, token: str, timeout_s: float = 5.0) -> hvac.Client:
    return hvac.Client(url=addr, token=token, timeout=timeout_s)


def policies() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(POLICY_DIR.glob("*.hcl"))}


def provision(addr: str, root_token: str, token_ttl: str = "768h") -> Provisioned:
    vault = client(addr, root_token)
    mounts = vault.sys.list_mounted_secrets_engines()
    mounted = mounts.get("data", mounts)
    if "transit/" not in mounted:
        vault.sys.enable_secrets_engine("transit", path="transit")
    if "secret/" not in mounted:
        vault.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    for name in SHARED_KEYS:  # Transit keeps an HMAC key inside every named key
        if not _exists(vault, name):
            vault.secrets.transit.create_key(name, key_type="aes256-gcm96", mount_point="transit")
    try:
        current = vault.secrets.kv.v2.read_secret_version(TRANSFORM_PATH, mount_point="secret",
                                                           raise_on_deleted_version=True)
        version = int(current["data"]["metadata"]["version"])
    except InvalidPath:
        created = vault.secrets.kv.v2.create_or_update_secret(
            TRANSFORM_PATH, {"secret": secrets.token_hex(32)}, cas=0, mount_point="secret")
        version = int(created["data"]["version"])
    tokens = {}
    for name, text in policies().items():
        vault.sys.create_or_update_policy(f"gaitpay-{name}", text)
        made = vault.auth.token.create(policies=[f"gaitpay-{name}"], ttl=token_ttl, renewable=True,
                                       no_default_policy=False, display_name=f"gaitpay-{name}")
        tokens[name] = made["auth"]["client_token"]
    return Provisioned(tokens, version)


def _exists(vault: hvac.Client, key: str) -> bool:
    try:
        vault.secrets.transit.read_key(key, mount_point="transit")
        return True
    except (InvalidPath, InvalidRequest):
        return False


def reissue_transform(addr: str, token: str) -> int:
    """A new template-transform secret (a new KV version); returns its version. The old
    protected vectors match nothing under it: `ReprotectTemplates` brings the index over."""
    vault = client(addr, token)
    made = vault.secrets.kv.v2.create_or_update_secret(TRANSFORM_PATH, {"secret": secrets.token_hex(32)},
                                                       mount_point="secret")
    return int(made["data"]["version"])


class RefreshingTransform:
    """The template transform, re-read from Vault every refresh_s by a background thread, so
    a re-issued secret reaches enrolment (identity) and queries (the matcher) without a
    restart, and no enrolment or query ever waits on Vault (the matcher applies it on its
    event loop). If Vault does not answer, the transform in hand is kept until it does."""

    def __init__(self, load: Callable[[], CancelableTransform], refresh_s: float = 60.0) -> None:
        self._load, self._refresh_s = load, max(refresh_s, 0.5)
        self._value = load()
        self._stop = threading.Event()
        threading.Thread(target=self._keep_fresh, name="transform-refresh", daemon=True).start()

    def _keep_fresh(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self._value = self._load()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bad read; the old value stays
                log.warning("template transform not refreshed", error=type(exc).__name__, detail=str(exc)[:200],
                            version=self._value.version)

    def current(self) -> CancelableTransform:
        return self._value

    def fresh(self) -> CancelableTransform:
        """Read now (a re-protection must not use the cached one); Vault's errors propagate."""
        self._value = self._load()
        return self._value

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        return self._value.apply(embeddings)

    def close(self) -> None:
        self._stop.set()


def load_transform(vault: hvac.Client, dim: int) -> CancelableTransform:
    try:
        secret = vault.secrets.kv.v2.read_secret_version(TRANSFORM_PATH, mount_point="secret",
                                                          raise_on_deleted_version=True)
    except InvalidPath:
        raise Unavailable("the template-transform secret is not provisioned (gaitpay vault provision)") from None
    except (VaultError, requests.RequestException) as exc:
        raise Unavailable("vault unreachable while reading the template transform") from exc
    data = secret["data"]
    return CancelableTransform(bytes.fromhex(data["data"]["secret"]), int(data["metadata"]["version"]), dim)
