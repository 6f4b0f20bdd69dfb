"""The relay that turns the billing and payment event feeds into signed partner webhooks.

Each step reads every feed from its stored cursor and fans the events out into deliveries
(one transaction with the cursor), then sends the deliveries that are due, a bounded number
at once. Replicas of the gateway run it side by side: the cursor is compare-and-set, and
deliveries are leased with SKIP LOCKED, so none is fanned out or sent twice at once. A feed
that cannot be read (its service down) is tried again on the next step; nothing is lost,
the cursor simply stays. A cursor the feed no longer holds (the relay was stopped for longer
than the feed's retention) restarts at the oldest event kept, loudly: what was deleted in
between cannot be sent."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Protocol, Sequence

import structlog
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.domain.webhooks import (DELIVERED, FAILED, DueDelivery, FeedCursorExpired, FeedEvent, PartnerWebhooks,
                                     SendResult)
from mesh.server import cancel_and_wait

log = structlog.get_logger("gateway.webhooks")
tracer = trace.get_tracer("gaitpay.gateway")


class Feed(Protocol):
    name: str

    async def read(self, cursor: str, limit: int) -> tuple[list[FeedEvent], str]: ...


class Sender(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult: ...


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter("gaitpay_gateway_webhook_attempts", "Partner webhook attempts, by what came of "
                                "them: delivered, retry (another attempt is scheduled) or failed (none is left).",
                                ["outcome"], registry=registry)
        self.duration = Histogram("gaitpay_gateway_webhook_attempt_duration_seconds", "Time of one partner webhook "
                                  "attempt, until the endpoint answered or the attempt gave up.", registry=registry,
                                  buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.lag = Gauge("gaitpay_gateway_webhook_feed_lag_seconds", "Age of the newest event the relay has fanned "
                         "out, per feed, when it was fanned out.", ["feed"], registry=registry)
        self.feed_errors = Counter("gaitpay_gateway_webhook_feed_errors", "Feed reads that failed: the service "
                                   "was unreachable (the relay tries again on its next step) or the cursor had fallen "
                                   "behind the feed's retention (the relay restarts at the oldest event kept).", ["feed"],
                                   registry=registry)


class WebhookRelay:
    def __init__(self, core: PartnerWebhooks, feeds: Sequence[Feed], sender: Sender, metrics: RelayMetrics, *,
                 poll_interval_s: float, page_size: int = 500, batch: int = 64, concurrency: int = 16,
                 attempt_timeout_s: float = 10.0) -> None:
        self._core, self._feeds, self._sender, self._metrics = core, feeds, sender, metrics
        self._poll, self._page, self._batch = poll_interval_s, page_size, batch
        self._slots = asyncio.Semaphore(concurrency)
        self._lease_s = attempt_timeout_s + 30.0  # an attempt's lease outlives the attempt
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-relay")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            try:
                moved = await self.step()
            except Exception:  # noqa: BLE001 - the relay outlives any one failure; logged
                log.exception("webhooks.step_failed")
                moved = 0
            if not moved:
                await asyncio.sleep(self._poll)

    async def step(self) -> int:
        """Fan out what is new, send what is due; how much was done (0: idle)."""
        done = 0
        for feed in self._feeds:
            done += await self._ingest(feed)
        return done + await self._deliver()

    async def _ingest(self, feed: Feed) -> int:
        cursor = await asyncio.to_thread(self._core.cursor, feed.name)
        try:
            events, next_cursor = await feed.read(cursor, self._page)
        except FeedCursorExpired as exc:
            self._metrics.feed_errors.labels(feed.name).inc()
            log.error("webhooks.feed_cursor_expired", feed=feed.name, cursor=cursor, error=str(exc)[:200])
            # Compare-and-set like any fan-out: only the replica that still holds this cursor
            # moves it back to the start of what the feed keeps.
            await asyncio.to_thread(self._core.fan_out, feed.name, cursor, "", [])
            return 1
        except Exception as exc:  # noqa: BLE001 - the service is down or slow: next step
            self._metrics.feed_errors.labels(feed.name).inc()
            log.warning("webhooks.feed_unreadable", feed=feed.name, error=f"{type(exc).__name__}: {exc}"[:200])
            return 0
        if not events:
            return 0
        made = await asyncio.to_thread(self._core.fan_out, feed.name, cursor, next_cursor, events)
        newest = max(e.occurred_at for e in events)
        self._metrics.lag.labels(feed.name).set(max(0.0, (datetime.now(timezone.utc) - newest).total_seconds()))
        log.debug("webhooks.fanned_out", feed=feed.name, events=len(events), deliveries=made)
        return len(events)

    async def _deliver(self) -> int:
        due = await asyncio.to_thread(self._core.claim_due, self._batch, self._lease_s)
        await asyncio.gather(*(self._attempt(d) for d in due))
        return len(due)

    async def _attempt(self, due: DueDelivery) -> None:
        async with self._slots:
            with tracer.start_as_current_span("webhook delivery", kind=SpanKind.CLIENT) as span:
                span.set_attribute("gaitpay.webhook.event_id", due.event_id)
                span.set_attribute("gaitpay.webhook.endpoint_id", due.endpoint_id)
                span.set_attribute("gaitpay.webhook.attempt", due.attempts + 1)
                headers = self._core.signed_headers(due, time.time())
                propagate.inject(headers)  # the partner may join the trace
                started = time.perf_counter()
                result = await self._sender.send(due.url, headers, due.payload)
                self._metrics.duration.observe(time.perf_counter() - started)
                span.set_attribute("http.response.status_code", result.status)
                if not result.ok:
                    span.set_status(Status(StatusCode.ERROR, result.error))
            state = await asyncio.to_thread(self._core.record, due, result)
        outcome = "delivered" if state == DELIVERED else ("failed" if state == FAILED else "retry")
        self._metrics.attempts.labels(outcome).inc()
        if state == FAILED:
            log.warning("webhooks.delivery_failed", event_id=due.event_id, endpoint_id=due.endpoint_id,
                        attempts=due.attempts + 1, error=result.error)
