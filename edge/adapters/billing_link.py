"""Sends the durable queue to billing, oldest first, and marks what billing acknowledged.

One stream per batch: the queue's pending events go out in order; each acknowledgement
marks its event. A cut (UNAVAILABLE, a deadline, a reset) ends the batch; whatever was not
acknowledged stays queued and goes again, in the same order, when the link is back."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import grpc

from edge.adapters.event_queue import EventQueue
from gaitpay.billing.v1 import billing_pb2, billing_pb2_grpc
from mesh.client import open_channel
from mesh.config import Settings

log = logging.getLogger(__name__)


class EventForwarder:
    def __init__(self, settings: Settings, queue: EventQueue, *, address: str | None = None,
                 batch: int = 100, deadline_s: float = 10.0, retry_s: float = 0.5) -> None:
        self._channel = open_channel(settings, identity="edge", service="billing", address=address)
        self._stub = billing_pb2_grpc.BillingServiceStub(self._channel)
        self.queue = queue
        self.batch = batch
        self.deadline_s = deadline_s
        self.retry_s = retry_s
        self.online = False
        self.failures = 0

    async def drain_once(self) -> int:
        """Send what is pending; returns how many were acknowledged (raises on a cut)."""
        pending = self.queue.pending(self.batch)
        if not pending:
            return 0

        async def requests() -> AsyncIterator[billing_pb2.StreamStoreEventsRequest]:
            for event in pending:
                yield billing_pb2.StreamStoreEventsRequest(event=event)

        acknowledged = 0
        call = self._stub.StreamStoreEvents(requests(), timeout=self.deadline_s)
        async for ack in call:
            self.queue.ack(ack.event_id, duplicate=ack.duplicate, session_id=ack.session_id)
            acknowledged += 1
        return acknowledged

    async def run(self, stop: asyncio.Event, *, idle_s: float = 0.05, flush_s: float = 30.0) -> None:
        """Drain until `stop` is set and nothing is left to send; after `stop`, a link that
        stays down for `flush_s` leaves the rest queued on disk for the next start."""
        loop = asyncio.get_running_loop()
        flush_until: float | None = None
        while True:
            if stop.is_set() and flush_until is None:
                flush_until = loop.time() + flush_s
            try:
                done = await self.drain_once()
                self.online = True
            except grpc.aio.AioRpcError as exc:
                self.online = False
                self.failures += 1
                log.info("billing link down (%s); %d events kept", exc.code().name, self.queue.depth())
                if flush_until is not None and loop.time() > flush_until:
                    return
                await asyncio.sleep(self.retry_s)
                continue
            if done == 0:
                if stop.is_set():
                    return
                try:
                    await asyncio.wait_for(stop.wait(), idle_s)
                except asyncio.TimeoutError:
                    pass

    async def close(self) -> None:
        await self._channel.close()
