"""The fake Razorpay HTTP server (aiohttp)."""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from typing import Any

from aiohttp import web


def _error(status: int, code: str, description: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "description": description, "source": "business",
                                      "step": "payment_initiation", "reason": "input_validation_failed"}}
    if field:
        body["error"]["field"] = field
    return web.json_response(body, status=status)


class FakeRazorpay:
    def __init__(self, key_id: str, key_secret: str) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.orders: dict[str, dict[str, Any]] = {}

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
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/v1/health":
            return await handler(request)
        if not self._authorised(request):
            return _error(401, "BAD_REQUEST_ERROR", "Authentication failed")
        return await handler(request)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def create_order(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "BAD_REQUEST_ERROR", "The request body is not valid JSON")
        amount = body.get("amount")
        if not isinstance(amount, int) or amount < 100:
            return _error(400, "BAD_REQUEST_ERROR", "The amount must be atleast INR 1.00", field="amount")
        currency = body.get("currency", "INR")
        if not isinstance(currency, str) or len(currency) != 3:
            return _error(400, "BAD_REQUEST_ERROR", "The currency is invalid", field="currency")
        order_id = "order_" + secrets.token_hex(7)
        order = {
            "id": order_id, "entity": "order", "amount": amount, "amount_paid": 0, "amount_due": amount,
            "currency": currency, "receipt": body.get("receipt"), "offer_id": None, "status": "created",
            "attempts": 0, "notes": body.get("notes") or [], "created_at": int(time.time()),
        }
        self.orders[order_id] = order
        return web.json_response(order)

    async def get_order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        return web.json_response(order)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        app.router.add_get("/v1/health", self.health)
        app.router.add_post("/v1/orders", self.create_order)
        app.router.add_get("/v1/orders/{order_id}", self.get_order)
        return app
