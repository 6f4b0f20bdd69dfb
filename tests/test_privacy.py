"""No biometric or card data in any log, metric or span: real service processes handle
keypoints and a card number, then every log line, metric sample and span is searched."""

from __future__ import annotations

import dataclasses
import json
import urllib.request

import grpc
import numpy as np
import pytest
from opentelemetry import trace

from edge.adapters.matcher_link import MatcherLink, keypoint_window
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from mesh.client import open_channel
from mesh.telemetry import setup_tracing

PAN = "4242424242424242"
MARKER_X = 1234.5678  # an x coordinate no log line has any business holding


_TAKEN: set[int] = set()


def two_free_ports() -> int:
    """A port p with p + 1 also free (gRPC on p, metrics on p + 1), shared with no earlier call."""
    from gaitpay_cli.stack import _free_service_port

    return _free_service_port(None, [1], _TAKEN)


async def test_no_biometric_or_card_data_leaves_the_services(settings, service_process, backing_services) -> None:
    custom = dataclasses.replace(settings, metrics_port_offset=1, log_level="debug",
                                 postgres_dsn=backing_services["postgres_dsn"],
                                 vault_addr=backing_services["vault_addr"],
                                 vault_token=backing_services["identity_token"],
                                 matcher_addr=f"127.0.0.1:{two_free_ports()}",
                                 identity_addr=f"127.0.0.1:{two_free_ports()}")
    matcher = service_process("matcher", custom)
    identity = service_process("identity", custom)
    setup_tracing(custom, "edge")

    xyc = np.full((20, 17, 3), 0.8, dtype=np.float32)
    xyc[..., 0] = MARKER_X
    xyc[..., 1] = np.linspace(100, 600, 17)
    broken = xyc.copy()
    broken[2, 2, 1] = np.nan
    link = MatcherLink(custom)
    link.open()
    for seq, window in enumerate([xyc, broken, xyc], start=1):
        await link.send(keypoint_window("store-9", "cam-9", "track-9", seq, window, 25.0))
    await link.finish()
    replies = [r async for r in link.responses()]
    await link.close()
    assert [r.WhichOneof("result") for r in replies] == ["decision", "error", "decision"]

    async with open_channel(custom, identity="operator", service="identity") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await identity_pb2_grpc.IdentityServiceStub(channel).AddPaymentMethod(identity_pb2.AddPaymentMethodRequest(
                request_id="00000000-0000-4000-8000-000000000001", customer_id="11111111-1111-4111-8111-111111111111",
                kind=identity_pb2.PAYMENT_METHOD_KIND_CARD, gateway="stripe", gateway_token="pm_card_visa",
                last4=PAN, brand="visa"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert PAN not in (caught.value.details() or "")

    metrics_text = ""
    for addr in (custom.matcher_addr, custom.identity_addr):
        port = int(addr.rsplit(":", 1)[1]) + 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics_text += response.read().decode()
    assert "gaitpay_rpc_requests_total" in metrics_text and "StreamIdentify" in metrics_text

    for proc in (matcher, identity):
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    trace.get_tracer_provider().force_flush()
    logs = "".join(p.read_text() for p in custom.home.glob("*.log"))
    spans = "".join(p.read_text() for p in custom.trace_dir.glob("*.jsonl"))
    assert "rpc.error" in logs and "StreamIdentify" in spans  # the places searched are not empty
    records = [json.loads(line) for line in logs.splitlines() if line.strip()]  # every line is JSON
    refusal = next(r for r in records if r["event"] == "rpc.error" and r["service"] == "identity")
    assert refusal["reason"] == "VALIDATION_FAILED" and len(refusal["trace_id"]) == 32

    forbidden = [PAN, "1234.5678", "1234.567", "store-9/cam-9/track-9"]
    for place, text in (("logs", logs), ("metrics", metrics_text), ("spans", spans)):
        for needle in forbidden:
            assert needle not in text, f"{needle!r} leaked into {place}"
    # Track and store ids are not biometric, but they must not become metric labels either.
    assert "track-9" not in metrics_text and "store-9" not in metrics_text
