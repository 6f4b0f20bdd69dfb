"""Traces, metrics and logs for one service process.

- Traces: OpenTelemetry with W3C traceparent propagation in gRPC metadata. Exported by OTLP
  when an endpoint is configured, otherwise appended as JSON lines to
  HOME/traces/<service>.jsonl (one file per process, so writers never interleave), which
  `gaitpay trace` reads.
- Metrics: Prometheus RED metrics per RPC. Labels are service, method and code only:
  never a customer, track or payment id.
- Logs: structlog JSON lines on stderr carrying trace_id and span_id.

Nothing biometric or card-related is ever put in a span, label or log line: the gRPC
instrumentation records method names and status codes, never message bodies.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Sequence

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry, Counter, Histogram

from mesh.config import Settings


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(span.to_json(indent=None) + "\n" for span in spans)
        with self._lock, open(self._path, "a", encoding="utf-8") as f:
            f.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:  # nothing held open between exports
        pass


def setup_tracing(settings: Settings, service: str) -> TracerProvider:
    """Install a tracer provider for this process (idempotent per process)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    resource = Resource.create({"service.name": f"gaitpay-{service}", "service.namespace": "gaitpay"})
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, timeout=5)
    else:
        exporter = JsonLinesSpanExporter(settings.trace_dir / f"{service}-{os.getpid()}.jsonl")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    return provider


def _add_trace_ids(_: object, __: str, event: dict[str, object]) -> dict[str, object]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event["trace_id"] = format(ctx.trace_id, "032x")
        event["span_id"] = format(ctx.span_id, "016x")
    return event


def setup_logging(settings: Settings, service: str) -> None:
    level = getattr(logging, settings.log_level.upper(), None)
    if not isinstance(level, int):
        raise ValueError(f"GAITPAY_LOG_LEVEL={settings.log_level!r}: expected debug, info, warning or error")
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    # Libraries log through the standard library: render their lines as JSON too.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(),
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("grpc").setLevel(max(level, logging.INFO))  # per-call chatter at debug
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


class RpcMetrics:
    """RED metrics: rate and errors (requests by code), duration (histogram)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gaitpay_rpc_requests",
            "RPCs handled, by service, method and gRPC status code.",
            ["service", "method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "gaitpay_rpc_duration_seconds",
            "Time from an RPC's arrival to its last response, by service and method.",
            ["service", "method"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.stream_messages = Counter(
            "gaitpay_stream_messages",
            "Messages received on streaming RPCs, by service and method.",
            ["service", "method"],
            registry=registry,
        )


def read_spans(trace_dir: Path) -> list[dict[str, object]]:
    """Every span in the local trace files."""
    spans: list[dict[str, object]] = []
    if not trace_dir.exists():
        return spans
    for path in sorted(trace_dir.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        spans.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # a line cut short by a killed process
    return spans
