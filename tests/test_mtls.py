"""Service-to-service mTLS: each identity may call only the services it has business with."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher import bootstrap as matcher_bootstrap
from mesh import pki, server
from mesh.client import channel_credentials, open_channel
from mesh.errors import error_info, status_from_rpc_error


def remove_request(n: int = 1) -> matcher_pb2.RemoveTemplatesRequest:
    return matcher_pb2.RemoveTemplatesRequest(
        request_id=f"00000000-0000-4000-8000-00000000000{n}", customer_id="11111111-1111-4111-8111-111111111111"
    )


@pytest.fixture
async def matcher(settings):
    running = await server.start(matcher_bootstrap.build(settings), settings)
    yield settings
    await running.stop(grace=0)


async def test_an_allowed_identity_reaches_the_matcher(matcher) -> None:
    async with open_channel(matcher, identity="identity", service="matcher") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await matcher_pb2_grpc.MatcherServiceStub(channel).RemoveTemplates(remove_request())
    # Authorised and validated, then refused only because this matcher has no template store.
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(status_from_rpc_error(caught.value)).reason == "DEPENDENCY_UNAVAILABLE"


async def test_a_service_without_business_here_is_refused(matcher) -> None:
    # payment has a valid certificate from the mesh CA, but no reason to call the matcher.
    async with open_channel(matcher, identity="payment", service="matcher") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await matcher_pb2_grpc.MatcherServiceStub(channel).RemoveTemplates(remove_request())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info(status_from_rpc_error(caught.value))
    assert info.reason == "CALLER_NOT_ALLOWED" and info.metadata["caller"] == "payment"


async def test_health_is_open_to_every_mesh_identity(matcher) -> None:
    async with open_channel(matcher, identity="payment", service="matcher") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_certificate_from_another_ca_is_refused(matcher, tmp_path: Path) -> None:
    foreign = pki.foreign_credentials(tmp_path / "rogue-ca", "edge")
    mesh_ca = pki.credentials(matcher.pki_dir, "operator").ca_cert
    creds = grpc.ssl_channel_credentials(root_certificates=mesh_ca, private_key=foreign.key,
                                         certificate_chain=foreign.cert)
    async with grpc.aio.secure_channel(matcher.matcher_addr, creds,
                                       options=[("grpc.ssl_target_name_override", "matcher.gaitpay.svc")]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_without_certificate_is_refused(matcher) -> None:
    mesh_ca = pki.credentials(matcher.pki_dir, "operator").ca_cert
    creds = grpc.ssl_channel_credentials(root_certificates=mesh_ca)
    async with grpc.aio.secure_channel(matcher.matcher_addr, creds,
                                       options=[("grpc.ssl_target_name_override", "matcher.gaitpay.svc")]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_is_refused(matcher) -> None:
    async with grpc.aio.insecure_channel(matcher.matcher_addr) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_client_checks_it_reached_the_service_it_meant(matcher) -> None:
    # The matcher's certificate does not name billing: a client sent to "billing" at the
    # matcher's address must not talk to it.
    creds = pki.credentials(matcher.pki_dir, "edge")
    async with grpc.aio.secure_channel(matcher.matcher_addr, channel_credentials(creds),
                                       options=[("grpc.ssl_target_name_override", "billing.gaitpay.svc")]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_probe_port_answers_health_in_plaintext_and_nothing_else(settings) -> None:
    import dataclasses

    from conftest import free_port

    port = free_port()
    probing = dataclasses.replace(settings, matcher_addr=f"127.0.0.1:{port}", probe_port_offset=free_port() - port)
    running = await server.start(matcher_bootstrap.build(probing), probing)
    try:
        probe = f"127.0.0.1:{port + probing.probe_port_offset}"
        async with grpc.aio.insecure_channel(probe) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await matcher_pb2_grpc.MatcherServiceStub(channel).RemoveTemplates(remove_request(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(status_from_rpc_error(caught.value)).reason == "CALLER_UNAUTHENTICATED"
        # The mTLS port still wants a certificate even for health.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    finally:
        await running.stop(grace=0)
