"""The billing service's gRPC layer: proto <-> the billing core, nothing more."""

from __future__ import annotations

import asyncio
import base64
from datetime import timezone
from typing import Any, AsyncIterator, Callable

import grpc
import structlog

from billing.domain import model
from billing.domain.bill import Item
from billing.domain.model import Session, StoreEvent
from billing.domain.service import BillingCore
from gaitpay.billing.v1 import billing_pb2, billing_pb2_grpc
from gaitpay.common.v1 import types_pb2
from mesh.errors import InvalidArgument, MeshError

log = structlog.get_logger("billing")

_KINDS = {billing_pb2.STORE_EVENT_KIND_ENTRY: "entry", billing_pb2.STORE_EVENT_KIND_EXIT: "exit",
          billing_pb2.STORE_EVENT_KIND_ZONE: "zone", billing_pb2.STORE_EVENT_KIND_IDENTIFIED: "identified"}
_STATES = {model.OPEN: billing_pb2.SESSION_STATE_OPEN, model.AWAITING: billing_pb2.SESSION_STATE_AWAITING_CONFIRMATION,
           model.CHARGING: billing_pb2.SESSION_STATE_CHARGING, model.PAID: billing_pb2.SESSION_STATE_PAID,
           model.STAFF: billing_pb2.SESSION_STATE_STAFF_CHECKOUT, model.CANCELLED: billing_pb2.SESSION_STATE_CANCELLED,
           model.PAYMENT_LINK: billing_pb2.SESSION_STATE_PAYMENT_LINK}


def _money(minor: int) -> types_pb2.Money:
    return types_pb2.Money(currency_code="INR", minor_units=minor)


def session_message(s: Session) -> billing_pb2.Session:
    bill = s.bill
    msg = billing_pb2.Session(
        session_id=s.session_id, store_id=s.store_id, customer_id=s.customer_id or "", state=_STATES[s.state],
        payment_id=s.payment_id, decision_reason=s.decision_reason, false_match_probability=s.false_match_probability,
        bill=billing_pb2.Bill(
            lines=[billing_pb2.CartLine(sku=l.item.sku, name=l.item.name, quantity=l.quantity,
                                        unit_price=_money(l.item.unit_price_minor), line_total=_money(l.total))
                   for l in bill.lines],
            subtotal=_money(bill.subtotal), discount=_money(bill.discount), tax=_money(bill.tax),
            total=_money(bill.total)))
    for field, value in (("entered_at", s.entered_at), ("exited_at", s.exited_at),
                         ("confirmation_deadline", s.confirmation_deadline)):
        if value is not None:
            getattr(msg, field).FromDatetime(value)
    return msg


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, core: BillingCore) -> None:
        self._core = core
        self._settling: set[asyncio.Task[Any]] = set()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def _settle_soon(self, session_id: str) -> None:
        # The exit is acknowledged once stored; the charge runs beside the stream, so one
        # slow gateway never holds up the store's other events.
        async def settle() -> None:
            try:
                await self._run(self._core.settle, session_id)
            except MeshError as exc:
                log.warning("settle.deferred", session_id=session_id, why=exc.message)

        task = asyncio.get_running_loop().create_task(settle())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def StreamStoreEvents(self, request_iterator: AsyncIterator[billing_pb2.StreamStoreEventsRequest],
                                context: grpc.aio.ServicerContext) -> AsyncIterator[billing_pb2.StreamStoreEventsResponse]:
        async for request in request_iterator:
            e = request.event
            if not e.event_id or e.kind not in _KINDS or not e.store_id or not e.track_id \
                    or not e.HasField("occurred_at"):
                raise InvalidArgument("event needs event_id, kind, store_id, track_id and occurred_at",
                                      field_violations=[("event", "incomplete")])
            event = StoreEvent(e.event_id, _KINDS[e.kind], e.store_id, e.camera_id, e.track_id,
                               e.occurred_at.ToDatetime(tzinfo=timezone.utc), e.customer_id or None,
                               e.false_match_probability if e.customer_id else 1.0,
                               identified_at_edge=e.identified_at_edge and bool(e.customer_id))
            result = await self._run(self._core.record_event, event)
            if result.settle:
                self._settle_soon(result.session_id)
            yield billing_pb2.StreamStoreEventsResponse(event_id=e.event_id, duplicate=result.duplicate,
                                                        session_id=result.session_id)

    async def GetSession(self, request: billing_pb2.GetSessionRequest, context: grpc.aio.ServicerContext) \
            -> billing_pb2.GetSessionResponse:
        session = await self._run(self._core.get_session, request.session_id, request.store_id)
        return billing_pb2.GetSessionResponse(session=session_message(session))

    async def ListSessions(self, request: billing_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext) \
            -> billing_pb2.ListSessionsResponse:
        size = request.page_size or 100
        try:
            after = base64.urlsafe_b64decode(request.page_token.encode()).decode() if request.page_token else ""
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument("page_token is not one this service issued",
                                  field_violations=[("page_token", "invalid")]) from None
        sessions = await self._run(self._core.list_sessions, request.store_id, after, size)
        token = base64.urlsafe_b64encode(sessions[-1].session_id.encode()).decode() if len(sessions) == size else ""
        return billing_pb2.ListSessionsResponse(sessions=[session_message(s) for s in sessions], next_page_token=token)

    async def UpdateCart(self, request: billing_pb2.UpdateCartRequest, context: grpc.aio.ServicerContext) \
            -> billing_pb2.UpdateCartResponse:
        session = await self._run(self._core.update_cart, request.request_id, request.store_id, request.session_id,
                                  [(c.sku, c.quantity_delta) for c in request.changes])
        return billing_pb2.UpdateCartResponse(bill=session_message(session).bill)

    async def GetReceipt(self, request: billing_pb2.GetReceiptRequest, context: grpc.aio.ServicerContext) \
            -> billing_pb2.GetReceiptResponse:
        media_type, document = await self._run(self._core.receipt, request.store_id, request.session_id)
        return billing_pb2.GetReceiptResponse(media_type=media_type, document=document)

    async def ConfirmCharge(self, request: billing_pb2.ConfirmChargeRequest, context: grpc.aio.ServicerContext) \
            -> billing_pb2.ConfirmChargeResponse:
        session = await self._run(self._core.confirm, request.request_id, request.session_id, request.customer_id,
                                  request.approve)
        return billing_pb2.ConfirmChargeResponse(session=session_message(session))

    async def UpsertCatalogue(self, request: billing_pb2.UpsertCatalogueRequest,
                              context: grpc.aio.ServicerContext) -> billing_pb2.UpsertCatalogueResponse:
        for i, item in enumerate(request.items):
            if item.unit_price.currency_code != "INR" or item.unit_price.minor_units < 0:
                raise InvalidArgument("unit prices are non-negative INR",
                                      field_violations=[(f"items[{i}].unit_price", "INR, >= 0")])
        items = [Item(i.sku, i.name, i.unit_price.minor_units, i.gst_rate_bp, i.discount_bp) for i in request.items]
        n = await self._run(self._core.upsert_catalogue, request.request_id, request.store_id, items)
        return billing_pb2.UpsertCatalogueResponse(items=n)

    async def AnonymiseCustomer(self, request: billing_pb2.AnonymiseCustomerRequest,
                                context: grpc.aio.ServicerContext) -> billing_pb2.AnonymiseCustomerResponse:
        n = await self._run(self._core.anonymise_customer, request.customer_id)
        return billing_pb2.AnonymiseCustomerResponse(sessions_anonymised=n)

    async def ListSessionEvents(self, request: billing_pb2.ListSessionEventsRequest,
                                context: grpc.aio.ServicerContext) -> billing_pb2.ListSessionEventsResponse:
        events, cursor = await self._run(self._core.partner_events, request.after, request.page_size or 100)
        reply = billing_pb2.ListSessionEventsResponse(next_cursor=cursor)
        for e in events:
            message = reply.events.add(event_id=e.event_id, type=e.event_type, store_id=e.store_id, cursor=e.cursor,
                                       session=session_message(e.session))
            message.occurred_at.FromDatetime(e.occurred_at)
        return reply
