"""The gateway's HTTP layer (aiohttp): match a route, authenticate the partner's API key,
rate-limit it, scope it to its stores, transcode, call the mesh over mTLS, answer JSON.

Every partner route must bind {store_id} in its path: the gateway refuses to start with a
route it cannot scope to a tenant. The store is checked here against the key; that the
session or payment named in the path belongs to that store is checked by the owning service
(another store's object is NOT_FOUND), so a partner can never reach another retailer's data
by guessing ids (OWASP API1).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Mapping

import grpc
import structlog
from aiohttp import web
from google.rpc import code_pb2, status_pb2
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.domain.keys import ApiKey, PartnerKeys, key_id_of
from gateway.domain.rate_limit import RateLimiter
from gateway.transcoding import openapi
from gateway.transcoding.routes import Route
from gateway.transcoding.status import error_body, grpc_code, http_status
from gateway.transcoding.transcode import BadRequest, build_request, render_response
from mesh.errors import MeshError, status_from_rpc_error

log = structlog.get_logger("gateway.http")
tracer = trace.get_tracer("gaitpay.gateway")

TENANT_VARIABLE = "store_id"
MAX_BODY_BYTES = 1024 * 1024
Call = Callable[[Route, Any, list[tuple[str, str]], float], Awaitable[Any]]


class TenantScopeError(ValueError):
    """A partner route whose path does not name the store it acts on."""


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("gaitpay_gateway_http_requests", "Partner HTTP requests, by route template, "
                                "method and HTTP status.", ["route", "method", "status"], registry=registry)
        self.duration = Histogram("gaitpay_gateway_http_duration_seconds", "Time to answer a partner HTTP request, "
                                  "by route template and method.", ["route", "method"], registry=registry,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.rate_limited = Counter("gaitpay_gateway_rate_limited", "Requests refused with 429, by retailer.",
                                    ["retailer"], registry=registry)


class KeyCache:
    """Keys looked up in the store at most every ttl_s per key: a revocation or rotation end
    takes effect within ttl_s on every replica, and an unknown key costs one lookup per try."""

    def __init__(self, keys: PartnerKeys, ttl_s: float = 5.0) -> None:
        self._keys = keys
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def authenticate(self, token: str) -> ApiKey:
        key_id = key_id_of(token)
        found: ApiKey | None = None
        if key_id is not None:
            cached = self._cache.get(key_id)
            if cached is not None and time.monotonic() - cached[0] < self._ttl:
                found = cached[1]
            else:
                found = await asyncio.to_thread(self._keys.find, key_id)
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key_id] = (time.monotonic(), found)
        return self._keys.authenticate(token, lookup=lambda _: found)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str]


def _error(code: int, message: str, reason: str, *, metadata: Mapping[str, str] | None = None,
           violations: Iterable[tuple[str, str]] = (), http: int | None = None,
           headers: Mapping[str, str] | None = None) -> _Answer:
    """An answer carrying the same google.rpc.Status a mesh service would send (mesh.errors)."""
    status = MeshError(message, reason=reason, code=grpc_code(code), metadata=metadata,
                       field_violations=violations).to_status()
    return _Answer(http or http_status(code), error_body(status), headers or {})


def _unauthenticated(exc: MeshError) -> _Answer:
    return _Answer(http_status(exc.code.value[0]), error_body(exc.to_status()),
                   {"WWW-Authenticate": 'Bearer realm="gaitpay"'})


def _bearer(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer` header, or None when there is none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _from_status(status: status_pb2.Status) -> _Answer:
    if not status.details:  # a bare status (the channel itself failed): say which kind
        reason = {code_pb2.UNAVAILABLE: "DEPENDENCY_UNAVAILABLE", code_pb2.DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED"}.get(
            status.code, "INTERNAL")
        message = status.message if reason != "INTERNAL" else "internal error"
        return _error(status.code, message, reason)
    return _Answer(http_status(status.code), error_body(status), {})


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) \
        -> web.StreamResponse:
    """What aiohttp itself refuses (a malformed request, a path no route can hold) still
    answers with a google.rpc.Status body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: code_pb2.NOT_FOUND, 405: code_pb2.UNIMPLEMENTED, 413: code_pb2.INVALID_ARGUMENT}.get(
            exc.status, code_pb2.INVALID_ARGUMENT if exc.status < 500 else code_pb2.INTERNAL)
        reason = "NOT_FOUND" if exc.status == 404 else ("INTERNAL" if exc.status >= 500 else "VALIDATION_FAILED")
        answer = _error(code, exc.reason, reason, http=exc.status)
        return web.json_response(answer.body, status=answer.status)


class PartnerHttpApi:
    def __init__(self, routes: list[Route], keys: KeyCache, limiter: RateLimiter, call: Call,
                 metrics: HttpMetrics, *, deadline_s: float, title: str = "GaitPay partner API",
                 version: str = "v1") -> None:
        for route in routes:
            if TENANT_VARIABLE not in route.template.variables:
                raise TenantScopeError(f"{route.method.full_name}: {route.http_method} {route.template.text} does not "
                                       f"bind {{{TENANT_VARIABLE}}}; every partner route must name its store")
        self.routes = routes
        self._keys = keys
        self._limiter = limiter
        self._call = call
        self._metrics = metrics
        self._deadline_s = deadline_s
        self.openapi = openapi.document(
            routes, title=title, version=version,
            description="Generated from the google.api.http annotations of GaitPay's protos. Authenticate with "
                        "`Authorization: Bearer gpk_...`; a key sees only its retailer's stores.")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_json_errors])
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._dispatch)
        return app

    async def _openapi(self, request: web.Request) -> web.Response:
        """The document; asked with a valid key, its store parameters list that key's stores."""
        token = _bearer(request)
        if token is None:
            return web.json_response(self.openapi)
        try:
            key = await self._keys.authenticate(token)
        except MeshError as exc:
            answer = _unauthenticated(exc)
            return web.json_response(answer.body, status=answer.status, headers=dict(answer.headers))
        return web.json_response(openapi.scoped_to_stores(self.openapi, TENANT_VARIABLE, sorted(key.store_ids)))

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        allowed: list[str] = []
        for route in self.routes:
            values = route.match(path)
            if values is None:
                continue
            if route.http_method == method:
                return route, values, allowed
            allowed.append(route.http_method)
        return None, {}, allowed

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        route, values, allowed = self._match(request.method, request.path)
        label = route.template.text if route else "(unmatched)"
        with tracer.start_as_current_span(f"{request.method} {label}", kind=SpanKind.SERVER,
                                          context=propagate.extract(dict(request.headers))) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("http.route", label)
            if route is None:
                answer = (_error(code_pb2.UNIMPLEMENTED, f"{request.method} is not allowed here", "NOT_FOUND",
                                 http=405, headers={"Allow": ", ".join(sorted(set(allowed)))})
                          if allowed else _error(code_pb2.NOT_FOUND, f"no route {request.path}", "NOT_FOUND"))
            else:
                try:
                    answer = await self._serve(request, route, values, span)
                except Exception:  # noqa: BLE001 - logged here; the partner learns nothing of it
                    log.exception("gateway.unexpected", route=label)
                    answer = _error(code_pb2.INTERNAL, "internal error", "INTERNAL")
            span.set_attribute("http.response.status_code", answer.status)
            if answer.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        self._metrics.requests.labels(label, request.method, str(answer.status)).inc()
        self._metrics.duration.labels(label, request.method).observe(time.perf_counter() - started)
        return web.json_response(answer.body, status=answer.status, headers=dict(answer.headers),
                                 dumps=lambda obj: json.dumps(obj, separators=(",", ":")))

    async def _serve(self, request: web.Request, route: Route, values: dict[str, str], span: trace.Span) -> _Answer:
        try:
            key = await self._keys.authenticate(_bearer(request) or "")
        except MeshError as exc:
            return _unauthenticated(exc)
        span.set_attribute("gaitpay.retailer_id", key.retailer_id)
        span.set_attribute("gaitpay.api_key_id", key.key_id)
        wait = self._limiter.retry_after(key.key_id, key.rate_per_s, key.burst)
        if wait:
            self._metrics.rate_limited.labels(key.retailer_id).inc()
            return _error(code_pb2.RESOURCE_EXHAUSTED, f"rate limit of {key.rate_per_s}/s reached", "RATE_LIMITED",
                          metadata={"retry_after_s": str(wait)}, headers={"Retry-After": str(wait)})
        store_id = values[TENANT_VARIABLE]
        if not key.may_use_store(store_id):
            return _error(code_pb2.PERMISSION_DENIED, f"this API key is not bound to store {store_id}",
                          "STORE_NOT_ALLOWED", metadata={"store_id": store_id})
        if route.body and request.content_type != "application/json":
            return _error(code_pb2.INVALID_ARGUMENT, "the body must be application/json", "VALIDATION_FAILED", http=415)
        try:
            body = await request.read()
            message = build_request(route, values, request.query.items(), body,
                                    idempotency_key=request.headers.get("Idempotency-Key", ""))
        except BadRequest as exc:
            return _error(code_pb2.INVALID_ARGUMENT, str(exc), "VALIDATION_FAILED",
                          violations=[(exc.field, str(exc))] if exc.field else ())
        except web.HTTPRequestEntityTooLarge:
            return _error(code_pb2.INVALID_ARGUMENT, f"the body is over {MAX_BODY_BYTES} bytes", "VALIDATION_FAILED",
                          http=413)
        metadata = [("x-gaitpay-partner", key.retailer_id), ("x-gaitpay-api-key-id", key.key_id)]
        try:
            response = await self._call(route, message, metadata, self._deadline_s)
        except grpc.aio.AioRpcError as exc:
            answer = _from_status(status_from_rpc_error(exc))
            if answer.status >= 500:
                log.warning("gateway.backend_failed", route=route.template.text, code=exc.code().name)
            return answer
        return _Answer(200, render_response(route, response), {})


class Backends:
    """One aio channel per backing service, opened on first use (in the serving event loop),
    shared by the partner routes and the webhook relay's feeds; calls are made by method path
    with the messages' classes, so no stub is written per RPC."""

    def __init__(self, open_channel: Callable[[str], grpc.aio.Channel]) -> None:
        self._open = open_channel
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._methods: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}

    @staticmethod
    def service_of(route: Route) -> str:
        """gaitpay.billing.v1.BillingService -> billing."""
        return route.method.containing_service.full_name.split(".")[1]

    def unary(self, service: str, full_method: str, response_class: Any) -> grpc.aio.UnaryUnaryMultiCallable:
        """The callable of one RPC (/package.Service/Method) of a service, made once."""
        method = self._methods.get(full_method)
        if method is None:
            channel = self._channels.get(service)
            if channel is None:
                channel = self._channels[service] = self._open(service)
            method = self._methods[full_method] = channel.unary_unary(
                full_method, request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response_class.FromString)
        return method

    async def call(self, route: Route, message: Any, metadata: list[tuple[str, str]], timeout: float) -> Any:
        method = self.unary(self.service_of(route), route.full_method, route.response_class)
        return await method(message, timeout=timeout, metadata=metadata)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
