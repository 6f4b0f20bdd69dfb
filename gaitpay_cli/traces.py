"""Read local trace files and draw a trace as a waterfall in the terminal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from mesh.telemetry import read_spans


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start: float
    end: float
    status: str

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000


def _seconds(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def load(trace_dir: Path) -> list[Span]:
    spans = []
    for raw in read_spans(trace_dir):
        try:
            ctx = raw["context"]
            spans.append(Span(
                trace_id=ctx["trace_id"].removeprefix("0x"),
                span_id=ctx["span_id"].removeprefix("0x"),
                parent_id=(raw.get("parent_id") or "").removeprefix("0x") or None,
                name=raw["name"],
                kind=str(raw.get("kind", "")).removeprefix("SpanKind."),
                service=raw.get("resource", {}).get("attributes", {}).get("service.name", "?"),
                start=_seconds(raw["start_time"]),
                end=_seconds(raw["end_time"]),
                status=raw.get("status", {}).get("status_code", "UNSET"),
            ))
        except (KeyError, TypeError, ValueError):
            continue
    return spans


def summaries(spans: list[Span], limit: int) -> Table:
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    rows = sorted(by_trace.items(), key=lambda kv: min(s.start for s in kv[1]), reverse=True)[:limit]
    table = Table(title=f"latest {len(rows)} traces (gaitpay trace ID for one)")
    for column in ("trace id", "started", "root", "services", "spans", "ms"):
        table.add_column(column)
    for trace_id, members in rows:
        root = min(members, key=lambda s: (s.parent_id is not None, s.start))
        start, end = min(s.start for s in members), max(s.end for s in members)
        table.add_row(trace_id, dt.datetime.fromtimestamp(start).strftime("%H:%M:%S"), root.name,
                      ", ".join(sorted({s.service.removeprefix("gaitpay-") for s in members})),
                      str(len(members)), f"{(end - start) * 1000:.1f}")
    return table


def waterfall(spans: list[Span], trace_id: str, width: int = 40) -> Table:
    members = [s for s in spans if s.trace_id == trace_id or s.trace_id.startswith(trace_id)]
    if not members:
        raise LookupError(f"no trace {trace_id!r} in the local trace files")
    ids = {s.span_id for s in members}
    children: dict[str | None, list[Span]] = {}
    for span in members:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    t0 = min(s.start for s in members)
    total = max(max(s.end for s in members) - t0, 1e-9)
    table = Table(title=f"trace {members[0].trace_id}  ({total * 1000:.1f} ms, {len(members)} spans)")
    for column in ("span", "service", "kind", "ms", "timeline"):
        table.add_column(column, no_wrap=True)

    def visit(span: Span, depth: int) -> None:
        lead = int((span.start - t0) / total * width)
        length = max(1, int(span.duration_ms / 1000 / total * width))
        bar = Text(" " * lead)
        bar.append("█" * min(length, width - lead), style="red" if span.status == "ERROR" else "cyan")
        table.add_row("  " * depth + span.name, span.service.removeprefix("gaitpay-"), span.kind,
                      f"{span.duration_ms:.2f}", bar)
        for child in sorted(children.get(span.span_id, []), key=lambda s: s.start):
            visit(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s.start):
        visit(root, 0)
    return table
