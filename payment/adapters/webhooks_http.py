"""Gateway webhooks over HTTP (aiohttp): the signature is verified on the raw body before
anything is parsed, then the event is reduced to a GatewayEvent for the core.

Stripe: `Stripe-Signature: t=<unix>,v1=<hex>` over "<t>.<body>" (stripe.Webhook, 300 s
tolerance, so a captured request cannot be replayed later). Razorpay: `X-Razorpay-Signature`
is the HMAC-SHA256 hex of the raw body; `X-Razorpay-Event-Id` is the dedupe key.
Answers: 200 once applied (or already seen, or not ours); 400 for a bad signature or body,
so the gateway shows the failure; 503 when the database is down, so the gateway retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Callable

import stripe
import structlog
from aiohttp import web

from mesh.errors import MeshError
from payment.domain.model import GatewayEvent

log = structlog.get_logger("payment.webhooks")

_STRIPE_KINDS = {"payment_intent.succeeded": "captured", "payment_intent.payment_failed": "declined",
                 "refund.created": "refunded", "refund.updated": "refunded", "charge.dispute.created": "disputed"}
_RAZORPAY_KINDS = {"payment.captured": "captured", "payment.failed": "declined", "refund.processed": "refunded",
                   "payment.dispute.created": "disputed"}


def stripe_event(body: bytes, signature: str, secret: str, tolerance_s: int = 300) -> GatewayEvent | None:
    """The event, or None when it is not one we act on; raises ValueError when the
    signature or body is bad."""
    try:
        event = stripe.Webhook.construct_event(body.decode(), signature, secret, tolerance=tolerance_s)
    except stripe.SignatureVerificationError as exc:
        raise ValueError(f"bad Stripe-Signature: {exc.user_message or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("body is not JSON") from exc
    kind = _STRIPE_KINDS.get(str(event.type))
    if kind is None:
        return None
    obj = event.data.object
    if kind in ("captured", "declined"):
        return GatewayEvent("stripe", str(event.id), kind, str(obj.id), payment_reference=str(obj.id),
                            amount_minor=int(obj.amount))
    fields = obj.to_dict()  # a StripeObject has no dict .get (a refund or dispute event failed on it)
    reference = str(fields.get("payment_intent") or "")
    metadata = fields.get("metadata") or {}
    return GatewayEvent("stripe", str(event.id), kind, reference, payment_reference=reference,
                        amount_minor=int(fields["amount"]), object_id=str(fields["id"]),
                        our_refund_id=str(metadata.get("gaitpay_refund_id") or "") if kind == "refunded" else "")


def razorpay_event(body: bytes, signature: str, event_id: str, secret: str) -> GatewayEvent | None:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(expected, signature):
        raise ValueError("bad X-Razorpay-Signature")
    try:
        event = json.loads(body)
        kind = _RAZORPAY_KINDS.get(event["event"])
        if kind is None:
            return None
        payment = event["payload"]["payment"]["entity"]
        if not event_id:
            raise ValueError("X-Razorpay-Event-Id is missing")
        if kind == "refunded":
            refund = event["payload"]["refund"]["entity"]
            key = str((refund.get("notes") or {}).get("idempotency_key") or "")
            return GatewayEvent("razorpay", event_id, kind, str(payment["order_id"]), str(payment["id"]),
                                int(refund["amount"]), str(refund["id"]), our_refund_id=key.removeprefix("refund:"))
        if kind == "disputed":
            dispute = event["payload"]["dispute"]["entity"]
            return GatewayEvent("razorpay", event_id, kind, str(payment["order_id"]), str(payment["id"]),
                                int(dispute["amount"]), str(dispute["id"]))
        return GatewayEvent("razorpay", event_id, kind, str(payment["order_id"]), str(payment["id"]),
                            int(payment["amount"]))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unexpected Razorpay event body: {exc}") from None


class WebhookServer:
    def __init__(self, apply: Callable[[GatewayEvent], str], stripe_secret: str, razorpay_secret: str) -> None:
        self._apply, self._stripe_secret, self._razorpay_secret = apply, stripe_secret, razorpay_secret
        self._runner: web.AppRunner | None = None
        self.received: dict[str, int] = {}

    async def _handle(self, request: web.Request, parse: Callable[[bytes], GatewayEvent | None]) -> web.Response:
        body = await request.read()
        try:
            event = parse(body)
        except ValueError as exc:
            log.warning("webhook.rejected", path=request.path, why=str(exc))
            self.received["rejected"] = self.received.get("rejected", 0) + 1
            return web.json_response({"error": str(exc)}, status=400)
        if event is None:
            return web.json_response({"result": "ignored"})
        try:
            result = await asyncio.to_thread(self._apply, event)
        except MeshError as exc:
            log.warning("webhook.failed", event_id=event.event_id, why=exc.message)
            return web.json_response({"error": exc.message}, status=503)
        self.received[result] = self.received.get(result, 0) + 1
        log.info("webhook.applied", gateway=event.gateway, event_id=event.event_id, kind=event.kind, result=result)
        return web.json_response({"result": result})

    async def stripe(self, request: web.Request) -> web.Response:
        signature = request.headers.get("Stripe-Signature", "")
        return await self._handle(request, lambda body: stripe_event(body, signature, self._stripe_secret))

    async def razorpay(self, request: web.Request) -> web.Response:
        signature = request.headers.get("X-Razorpay-Signature", "")
        event_id = request.headers.get("X-Razorpay-Event-Id", "")
        return await self._handle(request, lambda body: razorpay_event(body, signature, event_id,
                                                                          self._razorpay_secret))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024)
        if self._stripe_secret:
            app.router.add_post("/webhooks/stripe", self.stripe)
        if self._razorpay_secret:
            app.router.add_post("/webhooks/razorpay", self.razorpay)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
