"""Readiness probes for the outside world a service depends on, each with a deadline.

A service starts serving only once its dependencies answer, so SERVING on the health
service means "can do its job", not just "process is up"."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Callable

import structlog

from mesh.errors import Unavailable

log = structlog.get_logger("mesh.dependencies")

Probe = Callable[[], None]


def postgres(dsn: str, timeout_s: float = 3.0) -> Probe:
    def probe() -> None:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))) as conn:
            conn.execute("SELECT 1")

    return probe


# pymilvus pings every 10 s even with no call in flight; a server that polices pings answers an
# idle client with GOAWAY "too_many_pings" and a call then fails into a reconnect (seen once in
# seven runs of the Milvus tests, a client idle while another server was busy). Every call has a
# deadline of its own, which finds a dead server anyway, so an idle channel stays quiet. pymilvus
# shares one channel per address, made with the options of the first client: pass these always.
MILVUS_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 60_000, "grpc.keepalive_permit_without_calls": False}


def milvus(uri: str, timeout_s: float = 3.0) -> Probe:
    def probe() -> None:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri, timeout=timeout_s, grpc_options=MILVUS_GRPC_OPTIONS)
        try:
            client.list_collections(timeout=timeout_s)
        finally:
            client.close()

    return probe


def smtp(url: str, timeout_s: float = 3.0) -> Probe:
    """An SMTP server answers NOOP (smtp://, smtp+starttls:// or smtps://host:port)."""

    def probe() -> None:
        import smtplib
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
        with smtp_class(parts.hostname, parts.port or 25, timeout=timeout_s) as server:
            server.noop()

    return probe


def vault(addr: str, token: str, timeout_s: float = 3.0) -> Probe:
    def probe() -> None:
        import hvac

        client = hvac.Client(url=addr, token=token, timeout=timeout_s)
        status = client.sys.read_health_status(method="GET")
        if not isinstance(status, dict) or status.get("sealed"):
            raise RuntimeError("vault is sealed or not initialised")

    return probe


def http(url: str, timeout_s: float = 3.0, headers: dict[str, str] | None = None) -> Probe:
    def probe() -> None:
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - local/configured URL
                response.read(1)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise
            # 4xx: the server answered, which is all a readiness probe asks.

    return probe


async def wait_ready(probes: dict[str, Probe], deadline_s: float = 30.0) -> None:
    """Wait until every probe passes, or raise Unavailable naming those that did not."""
    pending = dict(probes)
    errors: dict[str, str] = {}
    until = time.monotonic() + deadline_s
    while pending:
        for name, probe in list(pending.items()):
            try:
                await asyncio.to_thread(probe)
                del pending[name]
                log.info("dependency.ready", dependency=name)
            except Exception as exc:  # noqa: BLE001 - any failure means not ready yet
                errors[name] = f"{type(exc).__name__}: {exc}"[:300]
        if pending and time.monotonic() > until:
            detail = "; ".join(f"{name}: {errors.get(name, '?')}" for name in pending)
            raise Unavailable(f"dependencies not ready after {deadline_s:.0f}s: {detail}")
        if pending:
            await asyncio.sleep(0.25)

