"""Partner webhooks: endpoints a partner registers for one of its stores, the signature on
every delivery, the SSRF rules a URL must pass, and the retry schedule.

What is sent comes from the billing and payment event feeds (transactional outboxes read in
commit order); the gateway fans each event out to the store's endpoints as deliveries, in one
transaction with the feed cursor, so an event becomes each endpoint's delivery exactly once,
and a delivery is sent at least once (a partner dedupes on the event id)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import grpc

from gateway.domain.ports import WebhookStore
from mesh.errors import FailedPrecondition, InvalidArgument, MeshError, NotFound
from mesh.idempotency import request_fingerprint

SIGNATURE_HEADER = "GaitPay-Signature"
EVENT_ID_HEADER = "GaitPay-Event-Id"
SECRET_PREFIX = "whsec_"
# What the feeds announce (billing.domain.events and payment.domain.events; a test keeps
# the three equal). A partner may subscribe to any subset.
EVENT_TYPES = ("session.opened", "session.cart_updated", "session.exited", "session.awaiting_confirmation",
               "session.paid", "session.staff_checkout", "session.payment_link", "session.cancelled",
               "payment.captured", "payment.declined", "payment.requires_action", "payment.partially_refunded",
               "payment.refunded", "payment.disputed")
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlNotAllowed(MeshError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "WEBHOOK_URL_NOT_ALLOWED"


# -- signatures ------------------------------------------------------------------------------


def signing_secret(master_key: bytes, endpoint_id: str, generation: int = 1) -> str:
    """The endpoint's HMAC key, derived rather than stored: the database never holds one."""
    mac = hmac.new(master_key, f"webhook-endpoint:{endpoint_id}:{generation}".encode(), hashlib.sha256)
    return SECRET_PREFIX + mac.hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the timestamp is signed too,
    so a captured delivery cannot be replayed later than the receiver's tolerance."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, now: float, tolerance_s: float = 300.0) -> bool:
    """What a partner's receiver does (documented in docs/partner-webhooks.md): recompute,
    compare in constant time, refuse a timestamp outside the tolerance."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature_header(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


# -- SSRF --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    insecure: bool  # plain http: only into an allowed network


@dataclass(frozen=True)
class UrlPolicy:
    """Where the gateway may send a partner's webhooks. The URL is checked when it is
    registered, and every address it resolves to is checked again on each delivery, at
    connection time (a DNS answer that changes after registration, rebinding, cannot steer a
    delivery inside the network)."""

    allowed_networks: tuple[Network, ...] = ()

    @staticmethod
    def parse_networks(text: str) -> tuple[Network, ...]:
        try:
            return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
        except ValueError as exc:
            raise ValueError(f"GAITPAY_WEBHOOK_ALLOWED_NETWORKS: {exc}") from None

    def target(self, url: str) -> Target:
        """The URL's parts, or UrlNotAllowed for what no address check could make safe."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UrlNotAllowed(f"not a URL: {exc}", field_violations=[("url", "malformed")]) from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UrlNotAllowed("the URL must be https://host/...", field_violations=[("url", "https only")])
        if parts.username is not None or parts.password is not None:
            raise UrlNotAllowed("the URL may not carry credentials", field_violations=[("url", "credentials")])
        if parts.fragment:
            raise UrlNotAllowed("the URL may not have a fragment", field_violations=[("url", "fragment")])
        insecure = parts.scheme == "http"
        if insecure and not self.allowed_networks:
            raise UrlNotAllowed("the URL must be https", field_violations=[("url", "https only")])
        return Target(url, parts.hostname, port or (80 if insecure else 443), insecure)

    def refusal(self, address: str, insecure: bool) -> str | None:
        """Why the gateway will not connect to this address, or None when it may."""
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(ip in network for network in self.allowed_networks):
            return None
        if insecure:
            return f"{ip}: plain http is allowed only into GAITPAY_WEBHOOK_ALLOWED_NETWORKS"
        if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
            return f"{ip} is not a public address"
        return None

    def check_addresses(self, target: Target, addresses: Sequence[str]) -> None:
        if not addresses:
            raise UrlNotAllowed(f"{target.host} does not resolve", field_violations=[("url", "unresolvable")])
        for address in addresses:
            why = self.refusal(address, target.insecure)
            if why:
                raise UrlNotAllowed(f"{target.host} resolves to {why}", field_violations=[("url", "not public")])


# -- retries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 30.0
    cap_s: float = 6 * 3600.0
    max_attempts: int = 12

    def delay_s(self, attempts_made: int, retry_after_s: float | None = None,
                jitter: Callable[[], float] = random.random) -> float:
        """Exponential backoff with +-20 % jitter (endpoints that failed together do not all
        come back at once); a longer Retry-After from the endpoint is honoured, up to the cap."""
        wait = min(self.cap_s, self.base_s * 2 ** max(0, attempts_made - 1)) * (0.8 + 0.4 * jitter())
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.cap_s))
        return wait


# -- the records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    store_id: str
    retailer_id: str
    url: str
    event_types: tuple[str, ...]
    created_at: datetime
    generation: int = 1


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    state: str
    attempts: int
    last_status: int
    last_error: str
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class FeedCursorExpired(Exception):
    """The feed no longer holds the event at our cursor (deleted by its retention): the events
    after it that were deleted too can no longer be sent."""


@dataclass(frozen=True)
class FeedEvent:
    """One event of a feed, with its object already as partner JSON (internal fields gone)."""

    event_id: str
    event_type: str
    store_id: str
    occurred_at: datetime
    object_name: str  # "session" or "payment"
    data: dict[str, Any]

    def payload(self) -> bytes:
        """The body every endpoint receives for this event (the same bytes on every retry)."""
        return json.dumps({"id": self.event_id, "type": self.event_type, "storeId": self.store_id,
                           "createdAt": self.occurred_at.isoformat().replace("+00:00", "Z"),
                           "data": {self.object_name: self.data}}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: str
    endpoint_id: str
    url: str
    event_id: str
    payload: bytes
    attempts: int
    generation: int


@dataclass(frozen=True)
class SendResult:
    status: int = 0  # the HTTP status; 0: no answer
    error: str = ""
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# -- the core ----------------------------------------------------------------------------------


class PartnerWebhooks:
    def __init__(self, store: WebhookStore, resolve: Callable[[str, int], list[str]], policy: UrlPolicy,
                 master_key: bytes, retry: RetryPolicy = RetryPolicy()) -> None:
        self._store, self._resolve, self.policy, self._master, self.retry = store, resolve, policy, master_key, retry

    def create_endpoint(self, request_id: str, store_id: str, retailer_id: str, url: str,
                        event_types: Sequence[str]) -> tuple[Endpoint, str]:
        """The endpoint and its signing secret ("" when request_id was seen before)."""
        if not self._master:
            raise FailedPrecondition("partner webhooks are not configured here (GAITPAY_WEBHOOK_MASTER_KEY)")
        for i, event_type in enumerate(event_types):
            if event_type not in EVENT_TYPES:
                raise InvalidArgument(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}",
                                      field_violations=[(f"event_types[{i}]", "unknown")])
        target = self.policy.target(url)
        try:
            addresses = self._resolve(target.host, target.port)
        except OSError as exc:
            raise UrlNotAllowed(f"{target.host} does not resolve: {exc}",
                                field_violations=[("url", "unresolvable")]) from None
        self.policy.check_addresses(target, addresses)
        fingerprint = request_fingerprint("webhook-endpoint", store_id, url, sorted(event_types))
        candidate = Endpoint(str(uuid.uuid4()), store_id, retailer_id, url, tuple(event_types), datetime.now(timezone.utc))
        endpoint, created = self._store.create_endpoint(request_id, fingerprint, candidate)
        return endpoint, self.secret_of(endpoint.endpoint_id, endpoint.generation) if created else ""

    def secret_of(self, endpoint_id: str, generation: int) -> str:
        return signing_secret(self._master, endpoint_id, generation)

    def endpoints(self, store_id: str) -> list[Endpoint]:
        return self._store.endpoints(store_id)

    def delete_endpoint(self, store_id: str, endpoint_id: str) -> None:
        if not self._store.delete_endpoint(store_id, endpoint_id):
            raise NotFound(f"no webhook endpoint {endpoint_id} in store {store_id}",
                           metadata={"endpoint_id": endpoint_id})

    def deliveries(self, store_id: str, endpoint_id: str, limit: int) -> list[Delivery]:
        if not any(e.endpoint_id == endpoint_id for e in self._store.endpoints(store_id)):
            raise NotFound(f"no webhook endpoint {endpoint_id} in store {store_id}",
                           metadata={"endpoint_id": endpoint_id})
        return self._store.deliveries(endpoint_id, limit)

    # -- the relay's steps (gateway.webhook_relay drives them) --

    def cursor(self, feed: str) -> str:
        return self._store.cursor(feed)

    def fan_out(self, feed: str, read_from: str, next_cursor: str, events: Sequence[FeedEvent]) -> int | None:
        """Deliveries for every endpoint of each event's store that wants its type; None when
        another replica moved the cursor first (its fan-out stands, this one is dropped)."""
        return self._store.fan_out(feed, read_from, next_cursor, events)

    def claim_due(self, limit: int, lease_s: float) -> list[DueDelivery]:
        return self._store.claim_due(limit, lease_s)

    def signed_headers(self, due: DueDelivery, now: float) -> dict[str, str]:
        secret = self.secret_of(due.endpoint_id, due.generation)
        return {"Content-Type": "application/json", EVENT_ID_HEADER: due.event_id,
                SIGNATURE_HEADER: signature_header(secret, int(now), due.payload),
                "User-Agent": "GaitPay-Webhooks/1"}

    def record(self, due: DueDelivery, result: SendResult) -> str:
        """Delivered, pending again after the backoff, or failed for good; the new state."""
        attempts = due.attempts + 1
        if result.ok:
            self._store.finish(due.delivery_id, DELIVERED, attempts, result.status, "", None)
            return DELIVERED
        if attempts >= self.retry.max_attempts:
            self._store.finish(due.delivery_id, FAILED, attempts, result.status, result.error, None)
            return FAILED
        self._store.finish(due.delivery_id, PENDING, attempts, result.status, result.error,
                           self.retry.delay_s(attempts, result.retry_after_s))
        return PENDING
