"""Partner API keys: issued for one retailer and some of its stores, stored as hashes only,
rotated with a grace period, revoked at once.

A key reads "gpk_<key_id>_<secret>". key_id is public (logs, the admin API); the secret is
256 random bits, so a plain SHA-256 of the whole key is a sound hash at rest (a slow
password hash protects low-entropy secrets; it would only slow every request here).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

import grpc

from gateway.domain.ports import KeyStore
from mesh.errors import AlreadyExists, FailedPrecondition, MeshError, NotFound

PREFIX = "gpk_"
_TOKEN = re.compile(r"^gpk_([0-9a-f]{16})_([A-Za-z0-9_-]{40,64})$")
DEFAULT_RATE_PER_S = 20


class InvalidApiKey(MeshError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "API_KEY_INVALID"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    retailer_id: str
    store_ids: frozenset[str]
    secret_hash: str
    created_at: datetime
    rate_per_s: int
    burst: int
    expires_at: datetime | None = None
    revoked: bool = False
    replaced_by: str = ""
    request_id: str = ""

    def usable_at(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def may_use_store(self, store_id: str) -> bool:
        return store_id in self.store_ids


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    found = _TOKEN.fullmatch(token)
    return found.group(1) if found else None


def _now() -> datetime:
    return datetime.now(timezone.utc)


class PartnerKeys:
    """Issue, rotate, revoke and check keys over a KeyStore."""

    def __init__(self, store: KeyStore, clock: Callable[[], datetime] = _now,
                 default_rate_per_s: int = DEFAULT_RATE_PER_S) -> None:
        self._store = store
        self._clock = clock
        self._default_rate = default_rate_per_s

    def _mint(self, retailer_id: str, store_ids: Sequence[str], rate_per_s: int, burst: int,
              request_id: str) -> tuple[ApiKey, str]:
        key_id = secrets.token_hex(8)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        rate = rate_per_s or self._default_rate
        key = ApiKey(key_id=key_id, retailer_id=retailer_id, store_ids=frozenset(store_ids),
                     secret_hash=hash_secret(token), created_at=self._clock(), rate_per_s=rate,
                     burst=burst or 2 * rate, request_id=request_id)
        return key, token

    def create(self, request_id: str, retailer_id: str, store_ids: Sequence[str], rate_per_s: int = 0,
               burst: int = 0) -> tuple[ApiKey, str]:
        """The new key and its secret; a replayed request_id returns the same key and no secret."""
        with self._store.transaction() as tx:
            earlier = tx.key_for_request(request_id)
            if earlier is not None:
                if earlier.retailer_id != retailer_id or earlier.store_ids != frozenset(store_ids):
                    raise AlreadyExists("request_id was already used for another key", metadata={"request_id": request_id})
                return earlier, ""
            key, token = self._mint(retailer_id, store_ids, rate_per_s, burst, request_id)
            tx.insert(key)
        return key, token

    def rotate(self, request_id: str, key_id: str, grace_s: int) -> tuple[ApiKey, str, ApiKey]:
        """A successor with the same retailer, stores and limits; the old key ends after grace_s."""
        with self._store.transaction() as tx:
            earlier = tx.key_for_request(request_id)
            if earlier is not None:
                previous = tx.get(key_id, lock=False)
                if previous is None or previous.replaced_by != earlier.key_id:
                    raise AlreadyExists("request_id was already used for another key", metadata={"request_id": request_id})
                return earlier, "", previous
            old = tx.get(key_id, lock=True)
            if old is None:
                raise NotFound(f"no API key {key_id}", metadata={"key_id": key_id})
            now = self._clock()
            if not old.usable_at(now):
                raise FailedPrecondition(f"API key {key_id} is revoked or expired; issue a new one",
                                         metadata={"key_id": key_id})
            new, token = self._mint(old.retailer_id, sorted(old.store_ids), old.rate_per_s, old.burst, request_id)
            ends = now + timedelta(seconds=grace_s)
            if old.expires_at is not None and old.expires_at < ends:
                ends = old.expires_at
            old = replace(old, expires_at=ends, replaced_by=new.key_id)
            tx.insert(new)
            tx.update(old)
        return new, token, old

    def revoke(self, key_id: str) -> ApiKey:
        with self._store.transaction() as tx:
            key = tx.get(key_id, lock=True)
            if key is None:
                raise NotFound(f"no API key {key_id}", metadata={"key_id": key_id})
            if not key.revoked:
                now = self._clock()
                key = replace(key, revoked=True, expires_at=min(key.expires_at or now, now))
                tx.update(key)
        return key

    def list(self, retailer_id: str = "") -> list[ApiKey]:
        with self._store.transaction() as tx:
            return tx.list(retailer_id)

    def find(self, key_id: str) -> ApiKey | None:
        with self._store.transaction() as tx:
            return tx.get(key_id, lock=False)

    def authenticate(self, token: str, lookup: Callable[[str], ApiKey | None] | None = None) -> ApiKey:
        """The key behind a bearer token, or InvalidApiKey (one message for every failure, so
        a caller learns nothing about which keys exist). `lookup` stands in for `find` (a cache)."""
        key_id = key_id_of(token)
        key = (lookup or self.find)(key_id) if key_id is not None else None
        if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(token)) \
                or not key.usable_at(self._clock()):
            raise InvalidApiKey("missing, unknown, revoked or expired API key")
        return key
