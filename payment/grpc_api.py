"""The payment service's gRPC layer: proto <-> the payment core, nothing more. The core is
synchronous (psycopg pool, the gateway SDKs) and runs on worker threads."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import grpc

from gaitpay.common.v1 import types_pb2
from gaitpay.payment.v1 import payment_pb2, payment_pb2_grpc
from payment.domain.model import Payment, Route, State
from payment.domain.service import ChargeCommand, PaymentCore

_STATES = {State.PROCESSING: payment_pb2.PAYMENT_STATE_PENDING, State.CAPTURED: payment_pb2.PAYMENT_STATE_CAPTURED,
           State.DECLINED: payment_pb2.PAYMENT_STATE_DECLINED, State.UNKNOWN: payment_pb2.PAYMENT_STATE_UNKNOWN,
           State.REFUNDED: payment_pb2.PAYMENT_STATE_REFUNDED,
           State.PARTIALLY_REFUNDED: payment_pb2.PAYMENT_STATE_PARTIALLY_REFUNDED,
           State.REQUIRES_ACTION: payment_pb2.PAYMENT_STATE_REQUIRES_ACTION,
           State.DISPUTED: payment_pb2.PAYMENT_STATE_DISPUTED, State.FAILED: payment_pb2.PAYMENT_STATE_FAILED}


def payment_message(p: Payment) -> payment_pb2.Payment:
    msg = payment_pb2.Payment(
        payment_id=p.payment_id, session_id=p.session_id, state=_STATES[p.state],
        amount=types_pb2.Money(currency_code=p.currency, minor_units=p.amount_minor),
        refunded=types_pb2.Money(currency_code=p.currency, minor_units=p.refunded_minor),
        gateway=p.gateway, gateway_reference=p.gateway_reference, failure_reason=p.failure_reason,
        store_id=p.store_id,
        attempts=[payment_pb2.PaymentAttempt(gateway=a.gateway, outcome=a.outcome, detail=a.detail)
                  for a in p.attempts])
    if p.created_at:
        msg.created_at.FromDatetime(p.created_at)
    if p.captured_at:
        msg.captured_at.FromDatetime(p.captured_at)
    return msg


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, core: PaymentCore) -> None:
        self._core = core

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def Charge(self, request: payment_pb2.ChargeRequest, context: grpc.aio.ServicerContext) \
            -> payment_pb2.ChargeResponse:
        command = ChargeCommand(
            idempotency_key=request.idempotency_key, session_id=request.session_id, customer_id=request.customer_id,
            store_id=request.store_id, amount_minor=request.amount.minor_units, currency=request.amount.currency_code,
            routes=tuple(Route(r.gateway, r.customer_reference, r.token) for r in request.routes),
            preferred_gateway=request.gateway)
        return payment_pb2.ChargeResponse(payment=payment_message(await self._run(self._core.charge, command)))

    async def GetPayment(self, request: payment_pb2.GetPaymentRequest, context: grpc.aio.ServicerContext) \
            -> payment_pb2.GetPaymentResponse:
        payment = await self._run(self._core.get, request.payment_id, request.store_id)
        return payment_pb2.GetPaymentResponse(payment=payment_message(payment))

    async def RefundPayment(self, request: payment_pb2.RefundPaymentRequest, context: grpc.aio.ServicerContext) \
            -> payment_pb2.RefundPaymentResponse:
        payment, refund = await self._run(self._core.refund, request.request_id, request.payment_id,
                                          request.amount.minor_units, request.reason, request.store_id)
        return payment_pb2.RefundPaymentResponse(payment=payment_message(payment), refund_id=refund.refund_id)

    async def ReconcilePayments(self, request: payment_pb2.ReconcilePaymentsRequest,
                                context: grpc.aio.ServicerContext) -> payment_pb2.ReconcilePaymentsResponse:
        report = await self._run(self._core.reconcile, float(request.older_than_s))
        return payment_pb2.ReconcilePaymentsResponse(examined=report.examined, captured=report.captured,
                                                     not_captured=report.not_captured,
                                                     still_unknown=report.still_unknown)

    async def GetLedgerBalance(self, request: payment_pb2.GetLedgerBalanceRequest,
                               context: grpc.aio.ServicerContext) -> payment_pb2.GetLedgerBalanceResponse:
        balance = await self._run(self._core.ledger_balance)
        return payment_pb2.GetLedgerBalanceResponse(
            accounts=[payment_pb2.LedgerAccount(account=a, debit_minor=d, credit_minor=c)
                      for a, (d, c) in balance.accounts.items()],
            total_debit_minor=balance.total_debit, total_credit_minor=balance.total_credit,
            balanced=balance.balanced, unbalanced_transactions=balance.unbalanced_transactions)

    async def AnonymiseCustomer(self, request: payment_pb2.AnonymiseCustomerRequest,
                                context: grpc.aio.ServicerContext) -> payment_pb2.AnonymiseCustomerResponse:
        n = await self._run(self._core.anonymise_customer, request.customer_id)
        return payment_pb2.AnonymiseCustomerResponse(payments_anonymised=n)

    async def ListPaymentEvents(self, request: payment_pb2.ListPaymentEventsRequest,
                                context: grpc.aio.ServicerContext) -> payment_pb2.ListPaymentEventsResponse:
        events, cursor = await self._run(self._core.partner_events, request.after, request.page_size or 100)
        reply = payment_pb2.ListPaymentEventsResponse(next_cursor=cursor)
        for e in events:
            message = reply.events.add(event_id=e.event_id, type=e.event_type, store_id=e.store_id, cursor=e.cursor,
                                       payment=payment_message(e.payment))
            message.occurred_at.FromDatetime(e.occurred_at)
        return reply
