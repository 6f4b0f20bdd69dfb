"""Razorpay through the razorpay SDK: an order (payment_capture on) prepared first, then an
S2S recurring payment on the customer's saved token (card or UPI mandate). Razorpay accepts
one successful payment per order, so an order re-used by a retry cannot capture twice. The
response signature (HMAC-SHA256 of "order_id|payment_id" under the key secret) is checked
before a capture is believed. Locally the same code talks to payment.fake_razorpay."""

from __future__ import annotations

import razorpay
import requests
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError

from payment.adapters.http_failures import never_sent
from payment.domain.errors import GatewayDeclined, OutcomeUnknown, TechnicalFailure
from payment.domain.model import GatewayResult, Route


class RazorpayGateway:
    name = "razorpay"

    def __init__(self, key_id: str, key_secret: str, base_url: str = "", timeout_s: float = 3.0) -> None:
        self._client = razorpay.Client(auth=(key_id, key_secret), **({"base_url": base_url} if base_url else {}))
        self._timeout = timeout_s

    def prepare(self, idempotency_key: str, amount_minor: int, currency: str, route: Route, description: str) -> str:
        try:
            order = self._client.order.create({"amount": amount_minor, "currency": currency, "payment_capture": 1,
                                               "receipt": idempotency_key[:40],
                                               "notes": {"idempotency_key": idempotency_key}},
                                              timeout=self._timeout)
        except (BadRequestError, GatewayError, ServerError, requests.RequestException) as exc:
            raise TechnicalFailure(f"razorpay create order: {type(exc).__name__}: {exc}") from exc
        return str(order["id"])

    def execute(self, reference: str, amount_minor: int, currency: str, route: Route,
                idempotency_key: str) -> GatewayResult:
        try:
            answer = self._client.payment.createRecurring(
                {"order_id": reference, "amount": amount_minor, "currency": currency,
                 "customer_id": route.customer_reference, "token": route.token, "recurring": "1",
                 "email": "shopper@gaitpay.invalid", "contact": "9000000000",
                 "notes": {"idempotency_key": idempotency_key}}, timeout=self._timeout)
        except BadRequestError as exc:
            if "already been paid" in str(exc):
                return self.status(reference)
            return GatewayResult("declined", "", str(exc)[:120])
        except requests.RequestException as exc:
            if never_sent(exc):
                raise TechnicalFailure(f"razorpay unreachable: {type(exc).__name__}") from exc
            raise OutcomeUnknown(f"razorpay payment: {type(exc).__name__}") from exc
        except (GatewayError, ServerError) as exc:
            raise OutcomeUnknown(f"razorpay payment: {type(exc).__name__}: {exc}") from exc
        try:
            self._client.utility.verify_payment_signature(answer)
        except SignatureVerificationError as exc:
            # Not believed; the reconciler asks Razorpay what really happened to the order.
            raise OutcomeUnknown("razorpay response signature did not verify") from exc
        return GatewayResult("captured", str(answer["razorpay_payment_id"]))

    def status(self, reference: str) -> GatewayResult:
        try:
            payments = self._client.order.payments(reference, timeout=self._timeout)
        except (BadRequestError, GatewayError, ServerError, requests.RequestException) as exc:
            raise TechnicalFailure(f"razorpay order payments: {type(exc).__name__}") from exc
        items = payments.get("items", [])
        for item in items:
            if item.get("status") in ("captured", "refunded"):
                return GatewayResult("captured", str(item["id"]))
        for item in items:
            if item.get("status") == "authorized":
                raise OutcomeUnknown("razorpay payment authorised, capture pending")
        if any(item.get("status") == "failed" for item in items):
            return GatewayResult("declined", "", "payment failed")
        return GatewayResult("not_captured")

    def void(self, reference: str) -> bool:
        # Razorpay has no order cancel; an unpaid order is harmless and re-used by the next
        # attempt, and Razorpay refuses a second payment on a paid order.
        return True

    def refund(self, payment_reference: str, amount_minor: int, idempotency_key: str) -> str:
        try:
            refund = self._client.payment.refund(payment_reference, {"amount": amount_minor,
                                                                     "notes": {"idempotency_key": idempotency_key}},
                                                 timeout=self._timeout)
        except BadRequestError as exc:
            raise GatewayDeclined(str(exc)) from exc
        except requests.RequestException as exc:
            if never_sent(exc):
                raise TechnicalFailure("razorpay unreachable") from exc
            raise OutcomeUnknown("razorpay refund gave no answer") from exc
        except (GatewayError, ServerError) as exc:
            raise TechnicalFailure(f"razorpay refund: {exc}") from exc
        return str(refund["id"])
