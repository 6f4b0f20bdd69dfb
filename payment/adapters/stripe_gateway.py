"""Stripe through the stripe SDK: an off-session PaymentIntent on the customer's saved
PaymentMethod. prepare() creates it unconfirmed (no money can move), execute() confirms it
(Stripe confirms an intent at most once). Locally the same code talks to localstripe."""

from __future__ import annotations

import stripe

from payment.adapters.http_failures import never_sent
from payment.domain.errors import GatewayDeclined, OutcomeUnknown, TechnicalFailure
from payment.domain.model import GatewayResult, Route


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, api_base: str = "", timeout_s: float = 3.0) -> None:
        options: dict = {"http_client": stripe.RequestsClient(timeout=timeout_s), "max_network_retries": 0}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(api_key, **options)

    def prepare(self, idempotency_key: str, amount_minor: int, currency: str, route: Route, description: str) -> str:
        try:
            intent = self._client.v1.payment_intents.create(
                params={"amount": amount_minor, "currency": currency.lower(), "customer": route.customer_reference,
                        "payment_method": route.token,
                        # metadata, not description: localstripe refuses description on intents
                        "metadata": {"idempotency_key": idempotency_key, "description": description}},
                options={"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            # Nothing is confirmed yet, whatever went wrong: safe to fail over.
            raise TechnicalFailure(f"stripe create intent: {type(exc).__name__}: {exc.user_message or exc}") from exc
        return str(intent.id)

    def execute(self, reference: str, amount_minor: int, currency: str, route: Route,
                idempotency_key: str) -> GatewayResult:
        try:
            intent = self._client.v1.payment_intents.confirm(reference, options={"idempotency_key": f"{idempotency_key}:confirm"})
        except stripe.CardError as exc:
            return GatewayResult("declined", reference, exc.code or "card_declined")
        except stripe.APIConnectionError as exc:
            if never_sent(exc.__cause__):
                raise TechnicalFailure(f"stripe unreachable: {exc.__cause__}") from exc
            raise OutcomeUnknown(f"stripe confirm: {type(exc.__cause__).__name__}") from exc
        except stripe.RateLimitError as exc:
            raise TechnicalFailure("stripe rate limited the confirm") from exc
        except stripe.InvalidRequestError as exc:
            # Not confirmable any more: an earlier confirm may have gone through.
            raise OutcomeUnknown(f"stripe refused the confirm: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise OutcomeUnknown(f"stripe confirm: {type(exc).__name__}") from exc
        return self._result(intent)

    def _result(self, intent: stripe.PaymentIntent) -> GatewayResult:
        status = str(intent.status)
        if status == "succeeded":
            return GatewayResult("captured", str(intent.id))
        if status == "requires_action":
            return GatewayResult("requires_action", str(intent.id), "authentication required")
        if status == "requires_payment_method":
            return GatewayResult("declined", str(intent.id), "card_declined")
        if status in ("requires_confirmation", "canceled"):
            return GatewayResult("not_captured", str(intent.id))
        raise OutcomeUnknown(f"stripe intent is {status}")

    def status(self, reference: str) -> GatewayResult:
        try:
            intent = self._client.v1.payment_intents.retrieve(reference)
        except stripe.StripeError as exc:
            raise TechnicalFailure(f"stripe retrieve: {type(exc).__name__}") from exc
        return self._result(intent)

    def void(self, reference: str) -> bool:
        try:
            self._client.v1.payment_intents.cancel(reference)
        except stripe.InvalidRequestError:
            pass  # already cancelled or never confirmable
        except stripe.StripeError as exc:
            raise TechnicalFailure(f"stripe cancel: {type(exc).__name__}") from exc
        return False  # a cancelled intent cannot be confirmed: the next attempt prepares anew

    def refund(self, payment_reference: str, amount_minor: int, idempotency_key: str) -> str:
        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": payment_reference, "amount": amount_minor,
                        "metadata": {"gaitpay_refund_id": idempotency_key.removeprefix("refund:")}},
                options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as exc:
            raise GatewayDeclined(exc.user_message or str(exc)) from exc
        except stripe.APIConnectionError as exc:
            if never_sent(exc.__cause__):
                raise TechnicalFailure("stripe unreachable") from exc
            raise OutcomeUnknown("stripe refund gave no answer") from exc
        except stripe.StripeError as exc:
            raise TechnicalFailure(f"stripe refund: {type(exc).__name__}") from exc
        return str(refund.id)
