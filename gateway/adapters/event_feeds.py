"""The billing and payment event feeds, read over the mesh (mTLS identity "gateway"), with
each object rendered as partner JSON by the same code as the partner API's responses, so a
webhook never carries a field the API hides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable

import grpc

from gaitpay.billing.v1 import billing_pb2
from gaitpay.payment.v1 import payment_pb2
from gateway.domain.webhooks import FeedEvent
from gateway.transcoding.transcode import partner_json


@dataclass(frozen=True)
class FeedSpec:
    name: str  # the cursor's name in gateway.feed_cursors
    service: str
    method: str
    request: Any
    response: Any
    object_field: str  # "session" or "payment"


SESSION_FEED = FeedSpec("billing.sessions", "billing", "/gaitpay.billing.v1.BillingService/ListSessionEvents",
                        billing_pb2.ListSessionEventsRequest, billing_pb2.ListSessionEventsResponse, "session")
PAYMENT_FEED = FeedSpec("payment.payments", "payment", "/gaitpay.payment.v1.PaymentService/ListPaymentEvents",
                        payment_pb2.ListPaymentEventsRequest, payment_pb2.ListPaymentEventsResponse, "payment")


class MeshEventFeed:
    def __init__(self, spec: FeedSpec, open_channel: Callable[[str], grpc.aio.Channel], deadline_s: float) -> None:
        self.name = spec.name
        self._spec, self._open, self._deadline = spec, open_channel, deadline_s
        self._call: grpc.aio.UnaryUnaryMultiCallable | None = None
        self._channel: grpc.aio.Channel | None = None

    async def read(self, cursor: str, limit: int) -> tuple[list[FeedEvent], str]:
        if self._call is None:  # in the serving loop, on first use
            self._channel = self._open(self._spec.service)
            self._call = self._channel.unary_unary(self._spec.method, request_serializer=lambda m: m.SerializeToString(),
                                                   response_deserializer=self._spec.response.FromString)
        reply = await self._call(self._spec.request(after=cursor, page_size=limit), timeout=self._deadline)
        events = [FeedEvent(e.event_id, e.type, e.store_id, e.occurred_at.ToDatetime(tzinfo=timezone.utc),
                            self._spec.object_field, partner_json(getattr(e, self._spec.object_field)))
                  for e in reply.events]
        return events, reply.next_cursor

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
