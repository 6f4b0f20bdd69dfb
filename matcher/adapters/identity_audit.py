"""Identification records to identity's audit trail (AppendAuditEvent over the mesh, as the
mTLS identity "matcher"), sent from a bounded queue by one background task so identification
never waits on identity. Identity down or slow: the record at the head is retried with
backoff (its request id makes a retry append once). The queue is in memory: a matcher that
crashes loses what it had not sent yet, which the dropped and pending figures make visible."""

from __future__ import annotations

import asyncio
from typing import Callable

import grpc
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from matcher.domain.audit import ACTION, IdentificationRecord
from mesh.server import cancel_and_wait

log = structlog.get_logger("matcher.audit")
_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter("gaitpay_matcher_audit_records", "Identification audit records, by what became of "
                               "them: sent (appended by identity), dropped (the queue was full), rejected (identity "
                               "refused it for good), retried (an attempt failed and is repeated).", ["outcome"],
                               registry=registry)
        self.pending = Gauge("gaitpay_matcher_audit_pending", "Identification audit records waiting to be sent.",
                             registry=registry)


class IdentityAuditSink:
    def __init__(self, open_channel: Callable[[], grpc.aio.Channel], metrics: AuditMetrics, *, deadline_s: float,
                 capacity: int = 10_000, max_backoff_s: float = 30.0) -> None:
        self._open, self._metrics, self._deadline = open_channel, metrics, deadline_s
        self._queue: asyncio.Queue[IdentificationRecord] = asyncio.Queue(maxsize=capacity)
        self._max_backoff = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None

    def submit(self, record: IdentificationRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._metrics.records.labels("dropped").inc()
            log.error("audit.queue_full", customer_id=record.customer_id, capacity=self._queue.maxsize)
            return
        self._metrics.pending.set(self._queue.qsize())

    async def start(self) -> None:
        self._channel = self._open()
        self._task = asyncio.create_task(self._run(identity_pb2_grpc.IdentityServiceStub(self._channel)),
                                         name="identification-audit")

    async def stop(self, grace_s: float = 2.0) -> None:
        """Give what is queued a moment to leave, then stop."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout=grace_s)
        except asyncio.TimeoutError:
            log.warning("audit.unsent_at_shutdown", pending=self._queue.qsize())
        await cancel_and_wait(self._task)
        if self._channel is not None:
            await self._channel.close()

    async def _run(self, stub: identity_pb2_grpc.IdentityServiceStub) -> None:
        while True:
            record = await self._queue.get()
            try:
                await self._send(stub, record)
            finally:
                self._queue.task_done()
                self._metrics.pending.set(self._queue.qsize())

    async def _send(self, stub: identity_pb2_grpc.IdentityServiceStub, record: IdentificationRecord) -> None:
        backoff = 0.5
        request = identity_pb2.AppendAuditEventRequest(request_id=record.request_id, action=ACTION,
                                                       customer_id=record.customer_id, attributes=record.attributes)
        while True:
            try:
                await stub.AppendAuditEvent(request, timeout=self._deadline)
                self._metrics.records.labels("sent").inc()
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _TRANSIENT:
                    self._metrics.records.labels("rejected").inc()
                    log.error("audit.rejected", customer_id=record.customer_id, code=exc.code().name,
                              details=exc.details())
                    return
                self._metrics.records.labels("retried").inc()
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff, backoff * 2)
