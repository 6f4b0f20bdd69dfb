"""The grpc.aio server every service runs: one place for what all of them must do.

Around each RPC, from the outside in:
1. OpenTelemetry server span (W3C traceparent from metadata).
2. The guard: caller authorisation by mTLS identity, refusal while draining, request
   validation (protovalidate rules; unary requests here, stream messages by the handler so
   one bad window does not end a stream), the server-side deadline, metrics, and the mapping
   of exceptions to google.rpc.Status with an ErrorInfo reason.
Plus: health (Check and Watch; NOT_SERVING on shutdown), reflection (switchable), and a
graceful drain on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from prometheus_client import CollectorRegistry, start_http_server

from mesh import authz, dependencies, pki, validation
from mesh.config import Settings
from mesh.errors import MeshError, status_of
from mesh.telemetry import RpcMetrics, setup_logging, setup_tracing

log = structlog.get_logger("mesh.server")
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

Register = Callable[[grpc.aio.Server], None]


@dataclass(frozen=True)
class ServiceSpec:
    """What a service contributes: its name, how to add its servicers, and the full names
    of the gRPC services it serves (for health and reflection)."""

    name: str
    register: Register
    grpc_services: Sequence[str]
    on_stop: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)
    # Run once the gRPC server is serving (background loops, an HTTP listener for webhooks).
    on_start: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)
    # Where the service's own metrics live (served with the RPC metrics); None: a fresh one.
    registry: CollectorRegistry | None = None


class Periodic:
    """A blocking job run on a worker thread every interval while the service serves (the
    reconciler, the sweeper). A MeshError is logged and the next round tries again; `report`
    turns a result into fields worth logging, or None when the round found nothing.
    `start` and `stop` are the service's on_start / on_stop hooks."""

    def __init__(self, name: str, interval_s: float, job: Callable[[], Any],
                 report: Callable[[Any], dict[str, Any] | None] = lambda result: None) -> None:
        self._name, self._interval, self._job, self._report = name, interval_s, job, report
        self._task: asyncio.Task[None] | None = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                result = await asyncio.to_thread(self._job)
            except MeshError as exc:
                log.warning(f"{self._name}.failed", why=exc.message)
                continue
            fields = self._report(result)
            if fields:
                log.info(f"{self._name}.done", **fields)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)


def nonzero_counts(counts: dict[str, int]) -> dict[str, int] | None:
    """A Periodic report for jobs that count what they did: an idle round logs nothing."""
    return counts if any(counts.values()) else None


def retention_job(prune: Callable[[float], dict[str, int]], days: float) -> Periodic:
    """A service's hourly housekeeping: `prune` deletes what is over `days` old
    (GAITPAY_RETENTION_DAYS) and counts it per kind."""
    return Periodic("retention", 3600.0, lambda: prune(days), nonzero_counts)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Stop a background task of a service (a loop of its own) and wait until it has."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def caller_identity(context: grpc.aio.ServicerContext) -> str | None:
    """The mesh identity in the peer's client certificate (SPIFFE URI SAN, else CN)."""
    auth = context.auth_context() or {}
    prefix = f"spiffe://{pki.TRUST_DOMAIN}/"
    for san in auth.get("x509_subject_alternative_name", []):
        text = san.decode() if isinstance(san, bytes) else str(san)
        if text.startswith(prefix):
            return text[len(prefix):]
    for cn in auth.get("x509_common_name", []):
        return cn.decode() if isinstance(cn, bytes) else str(cn)
    return None


class Draining:
    """Set once shutdown starts; the guard refuses new calls from then on."""

    def __init__(self) -> None:
        self.active = False


class GuardInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, settings: Settings, metrics: RpcMetrics, draining: Draining) -> None:
        self._service = service
        self._settings = settings
        self._metrics = metrics
        self._draining = draining

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        full_method = details.method  # "/pkg.Service/Method"
        rpc_service, _, method = full_method.lstrip("/").partition("/")
        labels = (self._service, f"{rpc_service}/{method}")

        if not handler.request_streaming and not handler.response_streaming:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, rpc_service, labels),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        behaviour = {
            (False, True): (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
            (True, False): (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
            (True, True): (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
        }[(handler.request_streaming, handler.response_streaming)]
        inner, make = behaviour
        if handler.response_streaming:
            wrapped = self._streaming(inner, rpc_service, labels, handler.request_streaming)
        else:
            wrapped = self._client_streaming(inner, rpc_service, labels)
        return make(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    # -- checks shared by every kind of RPC --------------------------------------------

    def _admit(self, context: grpc.aio.ServicerContext, rpc_service: str, rpc_method: str) -> None:
        if self._settings.tls:
            caller = caller_identity(context)
            if caller is None and rpc_service == HEALTH_SERVICE:
                return  # the probe port: health answers anyone, and nothing else does
            if caller is None:
                raise MeshError(
                    "a client certificate is required",
                    reason="CALLER_UNAUTHENTICATED",
                    code=grpc.StatusCode.UNAUTHENTICATED,
                )
            if not authz.is_allowed(self._service, caller, rpc_service, rpc_method):
                raise MeshError(
                    f"{caller} may not call {rpc_method}",
                    reason="CALLER_NOT_ALLOWED",
                    code=grpc.StatusCode.PERMISSION_DENIED,
                    metadata={"caller": caller, "service": self._service, "method": rpc_method},
                )
        if self._draining.active and rpc_service not in authz.OPEN_SERVICES:
            raise MeshError("service is shutting down", reason="SHUTTING_DOWN", code=grpc.StatusCode.UNAVAILABLE)

    def _deadline(self, context: grpc.aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        if remaining is None:
            return self._settings.default_deadline_s
        return min(remaining, self._settings.max_deadline_s)

    async def _fail(self, context: grpc.aio.ServicerContext, exc: BaseException | None, method: str) -> None:
        if isinstance(exc, NotImplementedError):
            exc = MeshError(
                f"{method} is not served by this build", reason="NOT_IMPLEMENTED", code=grpc.StatusCode.UNIMPLEMENTED
            )
        elif isinstance(exc, TimeoutError):
            exc = MeshError("deadline exceeded", reason="DEADLINE_EXCEEDED", code=grpc.StatusCode.DEADLINE_EXCEEDED)
        elif not isinstance(exc, MeshError):
            # Never the exception's text, to the caller or to the log: it may hold customer data.
            # Where it happened (file, line, function) is enough to find it.
            frames = traceback.extract_tb(exc.__traceback__)[-4:] if exc is not None else []
            log.error("rpc.unhandled_exception", method=method, error_type=type(exc).__name__,
                      where=[f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames])
        status = status_of(exc)
        code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
        if code is not grpc.StatusCode.INTERNAL:
            log.info("rpc.error", method=method, code=code.name, reason=_reason_of(exc))
        await context.abort_with_status(rpc_status.to_status(status))

    # -- wrappers ----------------------------------------------------------------------
    # Each wrapper records metrics and turns failures into a precise status. The abort for a
    # failure happens after the except block on purpose: raised inside it, the abort would
    # carry the original exception as its __context__, and the tracing interceptor records
    # whole exception chains (messages included) into spans.

    def _triage(self, exc: Exception, context: grpc.aio.ServicerContext) -> tuple[grpc.StatusCode, Exception | None]:
        """(status code, failure to report) for an exception; an abort passes through."""
        if _is_abort(exc):
            return context.code() or grpc.StatusCode.UNKNOWN, None
        return _code_of(exc, context), exc

    def _unary(self, inner: Callable[..., Any], rpc_service: str, labels: tuple[str, str]) -> Callable[..., Any]:
        async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started, code, failure = time.perf_counter(), grpc.StatusCode.OK, None
            try:
                self._admit(context, rpc_service, labels[1])
                validation.check(request)
                async with asyncio.timeout(self._deadline(context)):
                    result = inner(request, context)
                    return await result if inspect.isawaitable(result) else result
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a precise status
                code, failure = self._triage(exc, context)
                if failure is None:
                    raise
            finally:
                self._record(labels, code, started)
            await self._fail(context, failure, labels[1])

        return behaviour

    def _client_streaming(self, inner: Callable[..., Any], rpc_service: str, labels: tuple[str, str]) -> Callable[..., Any]:
        async def behaviour(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            started, code, failure = time.perf_counter(), grpc.StatusCode.OK, None
            try:
                self._admit(context, rpc_service, labels[1])
                result = inner(self._count(requests, labels), context)
                return await result if inspect.isawaitable(result) else result
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001
                code, failure = self._triage(exc, context)
                if failure is None:
                    raise
            finally:
                self._record(labels, code, started)
            await self._fail(context, failure, labels[1])

        return behaviour

    def _streaming(
        self, inner: Callable[..., Any], rpc_service: str, labels: tuple[str, str], request_streaming: bool
    ) -> Callable[..., Any]:
        async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started, code, failure = time.perf_counter(), grpc.StatusCode.OK, None
            try:
                self._admit(context, rpc_service, labels[1])
                if request_streaming:
                    request = self._count(request, labels)
                else:
                    validation.check(request)
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                elif inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001
                code, failure = self._triage(exc, context)
                if failure is None:
                    raise
            finally:
                self._record(labels, code, started)
            if failure is not None:
                await self._fail(context, failure, labels[1])

        return behaviour

    async def _count(self, requests: AsyncIterator[Any], labels: tuple[str, str]) -> AsyncIterator[Any]:
        counter = self._metrics.stream_messages.labels(*labels)
        async for message in requests:
            counter.inc()
            yield message

    def _record(self, labels: tuple[str, str], code: grpc.StatusCode, started: float) -> None:
        self._metrics.requests.labels(labels[0], labels[1], code.name).inc()
        self._metrics.duration.labels(*labels).observe(time.perf_counter() - started)


def _is_abort(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AbortError)


def _code_of(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    if _is_abort(exc):
        return context.code() or grpc.StatusCode.UNKNOWN
    if isinstance(exc, MeshError):
        return exc.code
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL


def _reason_of(exc: BaseException) -> str:
    return exc.reason if isinstance(exc, MeshError) else type(exc).__name__


def server_credentials(settings: Settings, identity: str) -> grpc.ServerCredentials:
    creds = pki.credentials(settings.pki_dir, identity)
    return grpc.ssl_server_credentials(
        [(creds.key, creds.cert)], root_certificates=creds.ca_cert, require_client_auth=True
    )


@dataclass
class RunningService:
    """A started server and the handles needed to stop it well."""

    spec: ServiceSpec
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    draining: Draining
    port: int
    registry: CollectorRegistry
    settings: Settings
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: health NOT_SERVING first (so balancers move away), refuse new calls, let
        calls in flight finish within the grace period, then stop."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.draining.active = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.drain_grace_s if grace is None else grace)
        for hook in self.spec.on_stop:
            await hook()
        log.info("service.stopped", port=self.port)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def start(spec: ServiceSpec, settings: Settings, *, address: str | None = None) -> RunningService:
    """Start the service's server (telemetry, credentials, health, reflection)."""
    setup_tracing(settings, spec.name)
    registry = spec.registry or CollectorRegistry()
    metrics = RpcMetrics(registry)
    draining = Draining()
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), GuardInterceptor(spec.name, settings, metrics, draining)],
        options=[
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
            ("grpc.max_concurrent_streams", 256),
            ("grpc.so_reuseport", 0),
        ],
    )
    spec.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    served = list(spec.grpc_services)
    if settings.reflection:
        reflection.enable_server_reflection([*served, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                                             reflection.SERVICE_NAME], server)
    address = address or settings.address_of(spec.name)
    if settings.tls:
        port = server.add_secure_port(address, server_credentials(settings, spec.name))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"{spec.name}: cannot bind {address}")
    if settings.probe_port_offset and settings.tls:
        probe_address = f"{address.rpartition(':')[0]}:{port + settings.probe_port_offset}"
        if server.add_insecure_port(probe_address) == 0:
            raise OSError(f"{spec.name}: cannot bind the probe port {probe_address}")
    # Metrics are bound before the server starts: a service whose metrics port is taken fails
    # before it ever reports SERVING, with the port in its last words.
    metrics_port = settings.metrics_port_of(spec.name) if address == settings.address_of(spec.name) else None
    if metrics_port:
        try:
            start_http_server(metrics_port, addr=settings.listen_host, registry=registry)
        except OSError as exc:
            await server.stop(None)  # else its finaliser runs after the event loop closed, and says so
            raise OSError(exc.errno, f"{spec.name}: cannot bind the metrics port "
                                     f"{settings.listen_host}:{metrics_port}: {exc.strerror}") from None
    await server.start()
    for hook in spec.on_start:
        await hook()
    for name in ["", *served]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("service.started", address=address, port=port, tls=settings.tls, metrics_port=metrics_port)
    return RunningService(spec, server, health_servicer, draining, port, registry, settings)


async def serve_forever(
    name: str, build: Callable[[], ServiceSpec], settings: Settings,
    ready: dict[str, dependencies.Probe] | None = None,
) -> None:
    """The body of every service's main(): wait for dependencies, build the service (its
    adapters may connect to them), start, wait for SIGTERM/SIGINT, drain."""
    setup_logging(settings, name)
    if ready:
        await dependencies.wait_ready(ready)
    running = await start(build(), settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(running.wait())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("service.draining", grace_s=settings.drain_grace_s)
    await running.stop()
    stopper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()

