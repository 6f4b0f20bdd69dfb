"""What the mesh server does around every RPC: validation, errors, deadlines, health,
reflection, metrics, drain."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry import trace

from gaitpay.edge.v1 import edge_pb2, edge_pb2_grpc
from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher import bootstrap as matcher_bootstrap
from mesh import pki, server
from mesh.client import channel_credentials, open_channel
from mesh.errors import error_info, status_from_rpc_error

PAN = "4242424242424242"


class _TestEdge(edge_pb2_grpc.EdgeServiceServicer):
    """A servicer whose behaviour the test chooses (the guard around it is what's tested)."""

    def __init__(self) -> None:
        self.mode = "slow"

    async def GetEdgeStatus(self, request, context):
        if self.mode == "slow":
            await asyncio.sleep(5)
        if self.mode == "crash":
            raise RuntimeError(f"card {PAN} exploded")
        return edge_pb2.GetEdgeStatusResponse(store_id="s")


def raw_channel(settings, identity: str, service: str) -> grpc.aio.Channel:
    """A channel without the mesh client's default deadline, to test the server's own."""
    creds = pki.credentials(settings.pki_dir, identity)
    return grpc.aio.secure_channel(settings.address_of(service), channel_credentials(creds),
                                   options=[("grpc.ssl_target_name_override", f"{service}.gaitpay.svc")])


async def test_invalid_request_gets_field_violations(settings) -> None:
    running = await server.start(matcher_bootstrap.build(settings), settings)
    try:
        async with open_channel(settings, identity="identity", service="matcher") as channel:
            bad = matcher_pb2.UpsertTemplatesRequest(request_id="not-a-uuid")
            bad.templates.add(template_id="", values=[0.1] * 3)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await matcher_pb2_grpc.MatcherServiceStub(channel).UpsertTemplates(bad)
    finally:
        await running.stop(grace=0)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_from_rpc_error(caught.value)
    assert error_info(status).reason == "VALIDATION_FAILED"
    bad_request = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad_request) for d in status.details if d.Is(bad_request.DESCRIPTOR))
    fields = {v.field for v in bad_request.field_violations}
    assert {"request_id", "customer_id", "templates[0].template_id", "templates[0].values"} <= fields


@pytest.fixture
async def test_edge(settings):
    servicer = _TestEdge()
    spec = server.ServiceSpec(
        name="edge", register=lambda s: edge_pb2_grpc.add_EdgeServiceServicer_to_server(servicer, s),
        grpc_services=["gaitpay.edge.v1.EdgeService"],
    )
    fast = dataclasses.replace(settings, default_deadline_s=0.3)
    running = await server.start(spec, fast)
    yield fast, servicer, running
    await running.stop(grace=0)


async def test_a_call_without_deadline_gets_the_server_default(test_edge) -> None:
    settings, servicer, _ = test_edge
    async with raw_channel(settings, "operator", "edge") as channel:
        started = asyncio.get_running_loop().time()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await edge_pb2_grpc.EdgeServiceStub(channel).GetEdgeStatus(edge_pb2.GetEdgeStatusRequest())
        elapsed = asyncio.get_running_loop().time() - started
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_info(status_from_rpc_error(caught.value)).reason == "DEADLINE_EXCEEDED"
    assert elapsed < 4  # cut at the default deadline, not after the handler's 5 s


async def test_unexpected_exceptions_disclose_nothing(test_edge, capfd) -> None:
    settings, servicer, _ = test_edge
    servicer.mode = "crash"  # the handler raises an exception whose message holds a card number
    async with raw_channel(settings, "operator", "edge") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await edge_pb2_grpc.EdgeServiceStub(channel).GetEdgeStatus(edge_pb2.GetEdgeStatusRequest(), timeout=3)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert PAN not in (caught.value.details() or "")
    assert error_info(status_from_rpc_error(caught.value)).reason == "INTERNAL"
    # Not in the logs, not in the spans (tracing records exception chains).
    trace.get_tracer_provider().force_flush()
    logged = capfd.readouterr()
    assert "rpc.unhandled_exception" in logged.out + logged.err
    assert PAN not in logged.out + logged.err
    spans = "".join(p.read_text() for p in settings.trace_dir.glob("*.jsonl"))
    assert "GetEdgeStatus" in spans
    assert PAN not in spans


async def test_red_metrics_count_calls_by_method_and_code(test_edge) -> None:
    settings, servicer, running = test_edge
    servicer.mode = "ok"
    async with raw_channel(settings, "operator", "edge") as channel:
        for _ in range(3):
            await edge_pb2_grpc.EdgeServiceStub(channel).GetEdgeStatus(edge_pb2.GetEdgeStatusRequest(), timeout=3)
    value = running.registry.get_sample_value(
        "gaitpay_rpc_requests_total",
        {"service": "edge", "method": "gaitpay.edge.v1.EdgeService/GetEdgeStatus", "code": "OK"},
    )
    assert value == 3
    label_names = {name for metric in running.registry.collect() for s in metric.samples for name in s.labels}
    assert label_names <= {"service", "method", "code", "le"}


async def test_reflection_lists_the_services(test_edge) -> None:
    settings, _, _ = test_edge
    async with raw_channel(settings, "operator", "edge") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                              timeout=3)
        names = {s.name async for r in responses for s in r.list_services_response.service}
    assert {"gaitpay.edge.v1.EdgeService", "grpc.health.v1.Health"} <= names


async def test_health_watch_sees_not_serving_on_drain(test_edge) -> None:
    settings, servicer, running = test_edge
    async with raw_channel(settings, "operator", "edge") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.ensure_future(running.stop(grace=1))
        second = await watch.read()
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        await stopping
