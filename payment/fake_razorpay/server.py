"""The fake Razorpay HTTP server (aiohttp): the endpoints GaitPay uses, with Razorpay's
documented behaviour, so the razorpay SDK runs unmodified against it.

Implemented: customers, tokens (saved cards and UPI mandates), orders (one successful payment
per order, as Razorpay enforces), S2S recurring payments on a token with auto-capture and the
documented `razorpay_signature` (HMAC-SHA256 of "order_id|payment_id" under the key secret),
payment and order-payment lookups, partial and full refunds (never beyond the captured amount),
and webhooks signed with `X-Razorpay-Signature` (HMAC-SHA256 hex of the raw body) carrying
`X-Razorpay-Event-Id`.

Not Razorpay, for tests and the demo (under /_fake, no auth): fault injection
(`unavailable`: every API call answers 503 SERVER_ERROR; `slow`: a call that moves money
(payments, refunds) is carried out, then answered late, so a client deadline expires after
the money moved), webhook configuration, and
raising a dispute. A token made from a card number ending 0341 or a VPA starting "fail" declines.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import aiohttp
from aiohttp import web


def _error(status: int, code: str, description: str, field: str | None = None,
           reason: str = "input_validation_failed") -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "description": description, "source": "business",
                                      "step": "payment_initiation", "reason": reason, "metadata": {}}}
    if field:
        body["error"]["field"] = field
    return web.json_response(body, status=status)


def _id(prefix: str) -> str:
    return f"{prefix}_" + secrets.token_urlsafe(10).replace("-", "").replace("_", "")[:14]


def signature(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class FakeRazorpay:
    def __init__(self, key_id: str, key_secret: str) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.customers: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.fault = "none"
        self.slow_s = 0.0
        self.webhook_url = ""
        self.webhook_secret = ""
        self._deliveries: set[asyncio.Task[None]] = set()

    # -- plumbing ------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            key_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(key_id, self.key_id) and hmac.compare_digest(secret, self.key_secret)

    @web.middleware
    async def gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/v1/health" or request.path.startswith("/_fake/"):
            return await handler(request)
        if not self._authorised(request):
            return _error(401, "BAD_REQUEST_ERROR", "Authentication failed")
        if self.fault == "unavailable":
            return _error(503, "SERVER_ERROR", "The server is temporarily unavailable", reason="server_error")
        response = await handler(request)
        if self.fault == "slow" and request.method == "POST" and request.path.startswith("/v1/payments/"):
            await asyncio.sleep(self.slow_s)
        return response

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        # The SDK posts JSON; forms are accepted too, as Razorpay does.
        try:
            if request.content_type == "application/json":
                body = await request.json()
            else:
                body = dict(await request.post())
        except ValueError:
            return _error(400, "BAD_REQUEST_ERROR", "The request body is not valid JSON")
        return body if isinstance(body, dict) else _error(400, "BAD_REQUEST_ERROR", "The request body is invalid")

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        if not self.webhook_url:
            return
        body = json.dumps({"entity": "event", "account_id": "acc_fake", "event": event,
                           "contains": sorted(payload), "payload": payload,
                           "created_at": int(time.time())}).encode()
        headers = {"Content-Type": "application/json", "X-Razorpay-Event-Id": _id("evt"),
                   "X-Razorpay-Signature": hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()}
        task = asyncio.get_running_loop().create_task(self._deliver(body, headers))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, body: bytes, headers: dict[str, str]) -> None:
        # Razorpay retries failed deliveries; three tries with a short pause stand in for that.
        for attempt in range(3):
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                    async with session.post(self.webhook_url, data=body, headers=headers) as response:
                        if response.status < 300:
                            return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.5 * (attempt + 1))

    # -- API -------------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def create_customer(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        customer = {"id": _id("cust"), "entity": "customer", "name": body.get("name", ""),
                    "email": body.get("email", ""), "contact": body.get("contact", ""),
                    "notes": body.get("notes") or [], "created_at": int(time.time())}
        self.customers[customer["id"]] = customer
        return web.json_response(customer)

    async def create_token(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if body.get("customer_id") not in self.customers:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist", field="customer_id")
        method = body.get("method")
        token: dict[str, Any] = {"id": _id("token"), "entity": "token", "method": method, "recurring": True,
                                 "customer_id": body["customer_id"], "created_at": int(time.time())}
        if method == "card":
            number = str((body.get("card") or {}).get("number", ""))
            if not number.isdigit() or not 12 <= len(number) <= 19:
                return _error(400, "BAD_REQUEST_ERROR", "The card number is invalid", field="card")
            token["card"] = {"last4": number[-4:], "network": "Visa", "type": "credit"}
            token["_declines"] = number.endswith("0341")
        elif method == "upi":
            vpa = str((body.get("vpa") or {}).get("username", "")) if isinstance(body.get("vpa"), dict) \
                else str(body.get("vpa", ""))
            if "@" not in vpa:
                return _error(400, "BAD_REQUEST_ERROR", "The VPA is invalid", field="vpa")
            token["vpa"] = {"username": vpa.split("@")[0][:2] + "***", "handle": vpa.split("@")[1]}
            token["_declines"] = vpa.startswith("fail")
        else:
            return _error(400, "BAD_REQUEST_ERROR", "The method is invalid", field="method")
        self.tokens[token["id"]] = token
        return web.json_response({k: v for k, v in token.items() if not k.startswith("_")})

    async def create_order(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        amount = body.get("amount")
        if not isinstance(amount, int) or amount < 100:
            return _error(400, "BAD_REQUEST_ERROR", "The amount must be atleast INR 1.00", field="amount")
        currency = body.get("currency", "INR")
        if not isinstance(currency, str) or len(currency) != 3:
            return _error(400, "BAD_REQUEST_ERROR", "The currency is invalid", field="currency")
        order = {
            "id": _id("order"), "entity": "order", "amount": amount, "amount_paid": 0, "amount_due": amount,
            "currency": currency, "receipt": body.get("receipt"), "offer_id": None, "status": "created",
            "attempts": 0, "notes": body.get("notes") or [], "created_at": int(time.time()),
            "payment_capture": bool(int(body.get("payment_capture", 1))),
        }
        self.orders[order["id"]] = order
        return web.json_response(order)

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        return web.json_response(order)

    async def order_payments(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        if order_id not in self.orders:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        items = [p for p in self.payments.values() if p["order_id"] == order_id]
        return web.json_response({"entity": "collection", "count": len(items), "items": items})

    async def create_recurring(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        order = self.orders.get(str(body.get("order_id", "")))
        if order is None:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist", field="order_id")
        token = self.tokens.get(str(body.get("token", "")))
        if token is None or token["customer_id"] != body.get("customer_id"):
            return _error(400, "BAD_REQUEST_ERROR", "The token provided does not belong to the customer",
                          field="token")
        if body.get("amount") != order["amount"]:
            return _error(400, "BAD_REQUEST_ERROR", "The amount must match the order amount", field="amount")
        if order["status"] == "paid":
            return _error(400, "BAD_REQUEST_ERROR", "Order has already been paid", field="order_id")
        order["attempts"] += 1
        order["status"] = "attempted"
        payment = {"id": _id("pay"), "entity": "payment", "amount": order["amount"], "currency": order["currency"],
                   "status": "failed", "order_id": order["id"], "method": token["method"], "captured": False,
                   "amount_refunded": 0, "refund_status": None, "customer_id": token["customer_id"],
                   "token_id": token["id"], "recurring": True, "error_code": None, "error_description": None,
                   "notes": body.get("notes") or [], "created_at": int(time.time())}
        self.payments[payment["id"]] = payment
        if token["_declines"]:
            payment.update(error_code="BAD_REQUEST_ERROR", error_description="Payment was declined by the bank",
                           error_reason="payment_failed")
            self._emit("payment.failed", {"payment": {"entity": payment}})
            return _error(400, "BAD_REQUEST_ERROR", "Payment was declined by the bank", reason="payment_failed")
        payment["status"] = "captured" if order["payment_capture"] else "authorized"
        payment["captured"] = order["payment_capture"]
        order.update(status="paid", amount_paid=order["amount"], amount_due=0)
        self._emit("payment.captured" if payment["captured"] else "payment.authorized", {"payment": {"entity": payment}})
        return web.json_response({"razorpay_payment_id": payment["id"], "razorpay_order_id": order["id"],
                                  "razorpay_signature": signature(self.key_secret, f"{order['id']}|{payment['id']}")})

    async def get_payment(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["payment_id"])
        if payment is None:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        return web.json_response(payment)

    async def refund(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        payment = self.payments.get(request.match_info["payment_id"])
        if payment is None:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        if payment["status"] not in ("captured", "refunded"):
            return _error(400, "BAD_REQUEST_ERROR", "The payment has not been captured")
        amount = int(body.get("amount", payment["amount"] - payment["amount_refunded"]))
        if amount <= 0:
            return _error(400, "BAD_REQUEST_ERROR", "The refund amount is invalid", field="amount")
        if amount > payment["amount"] - payment["amount_refunded"]:
            return _error(400, "BAD_REQUEST_ERROR", "The refund amount provided is greater than amount captured",
                          field="amount")
        refund = {"id": _id("rfnd"), "entity": "refund", "amount": amount, "currency": payment["currency"],
                  "payment_id": payment["id"], "notes": body.get("notes") or [], "status": "processed",
                  "speed_processed": "normal", "created_at": int(time.time())}
        self.refunds[refund["id"]] = refund
        payment["amount_refunded"] += amount
        payment["refund_status"] = "full" if payment["amount_refunded"] == payment["amount"] else "partial"
        if payment["refund_status"] == "full":
            payment["status"] = "refunded"
        self._emit("refund.processed", {"refund": {"entity": refund}, "payment": {"entity": payment}})
        return web.json_response(refund)

    # -- /_fake: tests and the demo --------------------------------------------------------------

    async def set_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        mode = body.get("mode", "none")
        if mode not in ("none", "unavailable", "slow"):
            return web.json_response({"error": "mode must be none, unavailable or slow"}, status=400)
        self.fault, self.slow_s = mode, float(body.get("seconds", 0))
        return web.json_response({"mode": self.fault, "seconds": self.slow_s})

    async def set_webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.webhook_url, self.webhook_secret = str(body["url"]), str(body["secret"])
        return web.json_response({"url": self.webhook_url})

    async def raise_dispute(self, request: web.Request) -> web.Response:
        body = await request.json()
        payment = self.payments.get(str(body.get("payment_id", "")))
        if payment is None or not payment["captured"]:
            return web.json_response({"error": "no captured payment with that id"}, status=404)
        dispute = {"id": _id("disp"), "entity": "dispute", "payment_id": payment["id"],
                   "amount": int(body.get("amount", payment["amount"])), "currency": payment["currency"],
                   "reason_code": "chargeback", "status": "open", "phase": "chargeback",
                   "created_at": int(time.time())}
        self._emit("payment.dispute.created", {"payment": {"entity": payment}, "dispute": {"entity": dispute}})
        return web.json_response(dispute)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.gate])
        app.router.add_get("/v1/health", self.health)
        app.router.add_post("/v1/customers", self.create_customer)
        app.router.add_post("/v1/tokens", self.create_token)
        app.router.add_post("/v1/orders", self.create_order)
        app.router.add_get("/v1/orders/{order_id}", self.get_order)
        app.router.add_get("/v1/orders/{order_id}/payments", self.order_payments)
        app.router.add_post("/v1/payments/create/recurring", self.create_recurring)
        app.router.add_get("/v1/payments/{payment_id}", self.get_payment)
        app.router.add_post("/v1/payments/{payment_id}/refund", self.refund)
        app.router.add_post("/_fake/faults", self.set_fault)
        app.router.add_post("/_fake/webhooks", self.set_webhook)
        app.router.add_post("/_fake/disputes", self.raise_dispute)
        return app
