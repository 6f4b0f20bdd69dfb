"""Partner webhooks without a stack: the signature a receiver checks, the SSRF rules a URL and
its addresses must pass (also where the HTTP client connects), the retry schedule, and the
event types the feeds announce."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from datetime import datetime, timezone

import pytest
from aiohttp import web
from hypothesis import given, strategies as st

from billing.domain import events as billing_events
from gateway.adapters.webhook_http import HttpWebhookSender
from gateway.domain.webhooks import (EVENT_TYPES, FeedEvent, RetryPolicy, UrlNotAllowed, UrlPolicy, signature_header,
                                     signing_secret, verify_signature)
from payment.domain import events as payment_events

PUBLIC = UrlPolicy()
LOCAL_DEV = UrlPolicy(UrlPolicy.parse_networks("127.0.0.0/8"))


def test_the_gateway_offers_exactly_the_event_types_the_feeds_announce():
    assert set(EVENT_TYPES) == set(billing_events.EVENT_TYPES) | set(payment_events.EVENT_TYPES)


@given(body=st.binary(max_size=2048), at=st.integers(min_value=1_600_000_000, max_value=2_000_000_000))
def test_a_signature_verifies_and_any_change_breaks_it(body, at):
    secret = signing_secret(b"k" * 32, "endpoint-1")
    header = signature_header(secret, at, body)
    assert verify_signature(secret, header, body, now=at)
    assert not verify_signature(secret, header, body + b"x", now=at)
    assert not verify_signature(signing_secret(b"k" * 32, "endpoint-2"), header, body, now=at)
    assert not verify_signature(secret, header.replace(f"t={at}", f"t={at + 1}"), body, now=at)


def test_an_old_signature_is_refused_as_a_replay():
    secret, body = signing_secret(b"m" * 32, "e"), b'{"id":"1"}'
    header = signature_header(secret, 1_700_000_000, body)
    assert verify_signature(secret, header, body, now=1_700_000_000 + 299)
    assert not verify_signature(secret, header, body, now=1_700_000_000 + 301)
    assert not verify_signature(secret, "v1=deadbeef", body, now=1_700_000_000)


def test_secrets_are_derived_per_endpoint_and_generation():
    master = bytes(range(32))
    a, b = signing_secret(master, "e1"), signing_secret(master, "e2")
    assert a.startswith("whsec_") and a != b and a == signing_secret(master, "e1")
    assert signing_secret(master, "e1", generation=2) != a


@pytest.mark.parametrize("url, why", [
    ("ftp://example.com/hook", "https only"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("https://example.com/hook#x", "fragment"),
    ("http://example.com/hook", "https only"),
    ("https:///nohost", "https only"),
])
def test_urls_refused_before_any_lookup(url, why):
    with pytest.raises(UrlNotAllowed) as refused:
        PUBLIC.target(url)
    assert refused.value.reason == "WEBHOOK_URL_NOT_ALLOWED"
    assert any(why in v for _, v in refused.value.field_violations)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "240.0.0.1",
])
def test_addresses_inside_any_network_are_refused(address):
    target = PUBLIC.target("https://partner.example/hook")
    with pytest.raises(UrlNotAllowed):
        PUBLIC.check_addresses(target, [address])
    # One bad address among good ones is enough to refuse: the client might pick it.
    with pytest.raises(UrlNotAllowed):
        PUBLIC.check_addresses(target, ["93.184.215.14", address])


def test_public_addresses_pass_and_allowed_networks_open_plain_http():
    PUBLIC.check_addresses(PUBLIC.target("https://partner.example/hook"), ["93.184.215.14", "2606:2800:21f:cb07::1"])
    local = LOCAL_DEV.target("http://127.0.0.1:9000/hook")
    assert local.insecure and local.port == 9000
    LOCAL_DEV.check_addresses(local, ["127.0.0.1"])
    with pytest.raises(UrlNotAllowed):  # plain http never leaves the allowed networks
        LOCAL_DEV.check_addresses(LOCAL_DEV.target("http://partner.example/hook"), ["93.184.215.14"])
    with pytest.raises(UrlNotAllowed):
        PUBLIC.check_addresses(PUBLIC.target("https://partner.example/hook"), [])
    with pytest.raises(ValueError):
        UrlPolicy.parse_networks("10.0.0.0/33")


def test_backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after():
    policy = RetryPolicy(base_s=30, cap_s=3600, max_attempts=12)
    mid = [policy.delay_s(n, jitter=lambda: 0.5) for n in range(1, 10)]
    assert mid[:4] == [30, 60, 120, 240] and mid[-1] == 3600 and mid == sorted(mid)
    low, high = policy.delay_s(3, jitter=lambda: 0.0), policy.delay_s(3, jitter=lambda: 1.0)
    assert (low, high) == pytest.approx((96, 144))
    assert policy.delay_s(1, retry_after_s=600, jitter=lambda: 0.5) == 600
    assert policy.delay_s(1, retry_after_s=10**9, jitter=lambda: 0.5) == 3600


def test_the_payload_is_the_event_envelope_in_partner_json():
    event = FeedEvent("ev-1", "session.paid", "store-1", datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc),
                      "session", {"sessionId": "s-1", "state": "SESSION_STATE_PAID"})
    assert json.loads(event.payload()) == {"id": "ev-1", "type": "session.paid", "storeId": "store-1",
                                           "createdAt": "2026-11-25T10:00:00Z",
                                           "data": {"session": {"sessionId": "s-1", "state": "SESSION_STATE_PAID"}}}


def test_the_client_refuses_at_connection_time_what_a_name_resolves_to():
    """A name that resolves into a private network is refused where aiohttp connects (the
    check at registration alone would let a later DNS answer, rebinding, through)."""
    async def scenario() -> tuple[list[str], list[int]]:
        hits: list[int] = []

        async def hook(request: web.Request) -> web.Response:
            hits.append(1)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        errors = []
        try:
            public_only = HttpWebhookSender(UrlPolicy(), timeout_s=5)
            # "localhost" is a name: only the resolver sees 127.0.0.1.
            errors.append((await public_only.send(f"https://localhost:{port}/hook", {}, b"{}")).error)
            errors.append((await public_only.send(f"https://127.0.0.1:{port}/hook", {}, b"{}")).error)
            await public_only.close()
            dev = HttpWebhookSender(LOCAL_DEV, timeout_s=5)
            ok = await dev.send(f"http://localhost:{port}/hook", {"Content-Type": "application/json"}, b"{}")
            await dev.close()
            assert ok.ok and ok.status == 204
        finally:
            await runner.cleanup()
        return errors, hits

    errors, hits = asyncio.run(scenario())
    assert all("not a public address" in e or "not public" in e for e in errors), errors
    assert hits == [1]  # only the allowed delivery reached the server


def test_localhost_resolves_to_loopback_here():
    """The test above relies on it."""
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)}
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def test_verify_signature_uses_the_current_time_tolerance():
    secret, body = signing_secret(b"z" * 32, "e"), b"{}"
    now = int(time.time())
    assert verify_signature(secret, signature_header(secret, now, body), body, now=time.time())


class _Cursors:
    """The webhook core's cursor half: compare-and-set like the PostgreSQL store."""

    def __init__(self, cursor: str) -> None:
        self.value = cursor

    def cursor(self, feed: str) -> str:
        return self.value

    def fan_out(self, feed, read_from, next_cursor, events):  # type: ignore[no-untyped-def]
        if read_from != self.value:
            return None
        self.value = next_cursor
        return 0

    def claim_due(self, limit: int, lease_s: float) -> list:
        return []


def test_a_feed_cursor_past_retention_restarts_at_the_oldest_event_kept() -> None:
    from prometheus_client import CollectorRegistry

    from gateway.domain.webhooks import FeedCursorExpired
    from gateway.webhook_relay import RelayMetrics, WebhookRelay

    class Feed:
        name = "billing.sessions"
        reads: list[str] = []

        async def read(self, cursor: str, limit: int):  # type: ignore[no-untyped-def]
            self.reads.append(cursor)
            if cursor == "812.40":
                raise FeedCursorExpired("feed cursor 812.40 is older than the events kept")
            return [], cursor

    registry = CollectorRegistry()
    cursors, feed = _Cursors("812.40"), Feed()
    relay = WebhookRelay(cursors, [feed], sender=None, metrics=RelayMetrics(registry),  # type: ignore[arg-type]
                         poll_interval_s=1.0)
    assert asyncio.run(relay.step()) == 1  # moved: the next step follows at once
    assert cursors.value == ""
    assert registry.get_sample_value("gaitpay_gateway_webhook_feed_errors_total", {"feed": "billing.sessions"}) == 1
    assert asyncio.run(relay.step()) == 0
    assert feed.reads == ["812.40", ""]


def test_the_mesh_feed_turns_the_expired_cursor_status_into_its_own_error() -> None:
    import grpc

    from gateway.adapters.event_feeds import SESSION_FEED, MeshEventFeed
    from gateway.domain.webhooks import FeedCursorExpired
    from mesh.errors import MeshError, status_of

    def failing(reason: str, code: grpc.StatusCode):  # type: ignore[no-untyped-def]
        status = status_of(MeshError("no", reason=reason, code=code))
        error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(),
                                     grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
                                     details="no")

        def unary(service, method, response):  # type: ignore[no-untyped-def]
            async def call(request, timeout):  # type: ignore[no-untyped-def]
                raise error
            return call
        return MeshEventFeed(SESSION_FEED, unary, 1.0)

    with pytest.raises(FeedCursorExpired):
        asyncio.run(failing("FEED_CURSOR_EXPIRED", grpc.StatusCode.OUT_OF_RANGE).read("812.40", 10))
    with pytest.raises(grpc.aio.AioRpcError):  # anything else stays what it was (the relay waits and retries)
        asyncio.run(failing("DEPENDENCY_UNAVAILABLE", grpc.StatusCode.UNAVAILABLE).read("812.40", 10))
