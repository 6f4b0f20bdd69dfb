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
from gateway.domain.webhooks import FeedCursorExpired, FeedEvent
from gateway.transcoding.transcode import partner_json
from mesh.errors import error_info, status_from_rpc_error


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


Unary = Callable[[str, str, Any], grpc.aio.UnaryUnaryMultiCallable]  # (service, method path, response class)


class MeshEventFeed:
    """One feed, read through the gateway's shared channels (http_api.Backends.unary)."""

    def __init__(self, spec: FeedSpec, unary: Unary, deadline_s: float) -> None:
        self.name = spec.name
        self._spec, self._unary, self._deadline = spec, unary, deadline_s

    async def read(self, cursor: str, limit: int) -> tuple[list[FeedEvent], str]:
        call = self._unary(self._spec.service, self._spec.method, self._spec.response)
        try:
            reply = await call(self._spec.request(after=cursor, page_size=limit), timeout=self._deadline)
        except grpc.aio.AioRpcError as exc:
            info = error_info(status_from_rpc_error(exc))
            if info is not None and info.reason == "FEED_CURSOR_EXPIRED":
                raise FeedCursorExpired(exc.details() or "") from None
            raise
        events = [FeedEvent(e.event_id, e.type, e.store_id, e.occurred_at.ToDatetime(tzinfo=timezone.utc),
                            self._spec.object_field, partner_json(getattr(e, self._spec.object_field)))
                  for e in reply.events]
        return events, reply.next_cursor
