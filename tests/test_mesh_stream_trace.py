"""A bidirectional stream from the edge's matcher link into the matcher, over mTLS, with
tracing on: one trace spans both services, and malformed windows get per-track errors
while the stream stays up."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from opentelemetry import trace

from edge.adapters.matcher_link import MatcherLink, keypoint_window
from gaitpay.matcher.v1 import matcher_pb2
from mesh.errors import error_info
from mesh.telemetry import read_spans, setup_tracing


def walk(frames: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xyc = np.empty((frames, 17, 3), dtype=np.float32)
    xyc[..., 0] = rng.uniform(300, 500, (frames, 17))
    xyc[..., 1] = rng.uniform(100, 700, (frames, 17))
    xyc[..., 2] = 0.9
    return xyc


async def test_stream_through_edge_and_matcher_is_one_trace(settings, service_process) -> None:
    matcher_proc = service_process("matcher")
    setup_tracing(settings, "edge")  # this test process plays the edge
    link = MatcherLink(settings)
    try:
        link.open()
        bad_nan = walk(seed=1)
        bad_nan[3, 5, 0] = np.nan
        windows = [
            keypoint_window("s1", "cam-1", "t1", 1, walk(), 30.0),
            keypoint_window("s1", "cam-1", "t2", 1, bad_nan, 30.0),
            keypoint_window("s1", "cam-1", "t3", 1, walk(frames=4)[:, :12, :], 30.0),  # 12 joints
            keypoint_window("s1", "cam-1", "t1", 2, walk(seed=2), 30.0),
        ]
        for w in windows:
            await link.send(w)
        await link.finish()
        responses = [r async for r in link.responses()]
    finally:
        await link.close()
    matcher_proc.terminate()  # SIGTERM: the matcher drains and flushes its spans
    assert matcher_proc.wait(timeout=15) == 0

    assert [r.WhichOneof("result") for r in responses] == ["decision", "error", "error", "decision"]
    first, nan_error, joints_error, last = responses
    assert first.decision.state == matcher_pb2.DECISION_STATE_PENDING
    assert last.decision.windows_used == 2 and last.decision.track.track_id == "t1"
    assert nan_error.error.track.track_id == "t2"
    assert error_info(nan_error.error.status).reason == "MALFORMED_WINDOW"
    assert "non-finite" in nan_error.error.status.message
    assert joints_error.error.track.track_id == "t3"
    assert "joints" in joints_error.error.status.message

    trace.get_tracer_provider().force_flush()
    spans = read_spans(settings.trace_dir)
    client = [s for s in spans if s["name"] == "/gaitpay.matcher.v1.MatcherService/StreamIdentify"
              and s["kind"] == "SpanKind.CLIENT" and s["resource"]["attributes"]["service.name"] == "gaitpay-edge"][-1]
    same_trace = [s for s in spans if s["context"]["trace_id"] == client["context"]["trace_id"]]
    srv = next(s for s in same_trace if s["kind"] == "SpanKind.SERVER")
    assert srv["resource"]["attributes"]["service.name"] == "gaitpay-matcher"
    assert srv["parent_id"] == client["context"]["span_id"]
    assert srv["attributes"]["rpc.method"] == "StreamIdentify"
    assert srv["attributes"]["rpc.system"] == "grpc"

    # The operator's view of the same trace: a waterfall naming both services.
    shown = subprocess.run(
        [sys.executable, "-m", "gaitpay_cli", "trace", client["context"]["trace_id"].removeprefix("0x")],
        env={**os.environ, "GAITPAY_TRACE_DIR": str(settings.trace_dir), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "StreamIdentify" in shown.stdout
    assert "edge" in shown.stdout and "matcher" in shown.stdout
