"""Composition root of the gateway: API keys in PostgreSQL, channels to billing and payment
as the mesh identity "gateway", routes from the annotated services, the partner HTTP
listener, and the operators' PartnerAdminService on the gRPC port (with health, for probes)."""

from __future__ import annotations

import asyncio
from typing import Sequence

import grpc
from aiohttp import web
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry

from gaitpay.billing.v1 import billing_pb2
from gaitpay.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from gaitpay.payment.v1 import payment_pb2
from mesh import config, dependencies
from mesh.errors import Unavailable
from mesh.server import ServiceSpec, serve_forever

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["PartnerAdminService"].full_name


def partner_services() -> Sequence[ServiceDescriptor]:
    """The services whose google.api.http annotations become partner routes."""
    return (billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
            payment_pb2.DESCRIPTOR.services_by_name["PaymentService"])


def build(settings: config.Settings) -> ServiceSpec:
    from gateway.adapters.postgres_keys import PostgresKeyStore
    from gateway.domain.keys import PartnerKeys
    from gateway.domain.rate_limit import RateLimiter
    from gateway.grpc_api import PartnerAdminServicer
    from gateway.http_api import Backends, HttpMetrics, KeyCache, PartnerHttpApi
    from gateway.transcoding.routes import routes_of
    from mesh.client import open_channel

    if not settings.postgres_dsn:
        raise Unavailable("the gateway needs PostgreSQL (GAITPAY_POSTGRES_DSN) for partner API keys")
    store = PostgresKeyStore(settings.postgres_dsn)
    keys = PartnerKeys(store, default_rate_per_s=settings.gateway_default_rate_per_s)

    routes = routes_of(partner_services())
    registry = CollectorRegistry()
    backends = Backends(lambda service: open_channel(settings, identity="gateway", service=service))
    api = PartnerHttpApi(routes, KeyCache(keys), RateLimiter(), backends.call, HttpMetrics(registry),
                         deadline_s=settings.default_deadline_s)
    runner: list[web.AppRunner] = []

    async def start_http() -> None:
        app_runner = web.AppRunner(api.app(), access_log=None)
        await app_runner.setup()
        host, _, port = settings.gateway_http_addr.rpartition(":")
        await web.TCPSite(app_runner, host, int(port), shutdown_timeout=settings.drain_grace_s).start()
        runner.append(app_runner)

    async def stop_http() -> None:
        for app_runner in runner:
            await app_runner.cleanup()
        await backends.close()
        await asyncio.to_thread(store.close)

    def register(server: grpc.aio.Server) -> None:
        gateway_pb2_grpc.add_PartnerAdminServiceServicer_to_server(PartnerAdminServicer(keys), server)

    return ServiceSpec(name="gateway", register=register, grpc_services=[SERVICE_NAME],
                       on_start=[start_http], on_stop=[stop_http], registry=registry)


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    return {"postgres": dependencies.postgres(settings.postgres_dsn)} if settings.postgres_dsn else {}


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("gateway", lambda: build(settings), settings, readiness(settings)))
