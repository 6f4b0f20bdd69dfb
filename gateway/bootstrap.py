"""Composition root of the gateway: API keys and webhook endpoints in PostgreSQL, channels to
billing and payment (and to itself) as the mesh identity "gateway", routes from the annotated
services, the partner HTTP listener, the webhook relay, and on the gRPC port the operators'
PartnerAdminService and the PartnerWebhookService the HTTP layer serves to partners."""

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

SERVICE_NAMES = [gateway_pb2.DESCRIPTOR.services_by_name[name].full_name
                 for name in ("PartnerAdminService", "PartnerWebhookService")]


def partner_services() -> Sequence[ServiceDescriptor]:
    """The services whose google.api.http annotations become partner routes."""
    return (billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
            payment_pb2.DESCRIPTOR.services_by_name["PaymentService"],
            gateway_pb2.DESCRIPTOR.services_by_name["PartnerWebhookService"])


def build(settings: config.Settings) -> ServiceSpec:
    from gateway.adapters.event_feeds import PAYMENT_FEED, SESSION_FEED, MeshEventFeed
    from gateway.adapters.postgres_keys import PostgresKeyStore
    from gateway.adapters.postgres_webhooks import PostgresWebhookStore
    from gateway.adapters.webhook_http import HttpWebhookSender, resolve_host
    from gateway.domain.keys import PartnerKeys
    from gateway.domain.rate_limit import RateLimiter
    from gateway.domain.webhooks import PartnerWebhooks, RetryPolicy, UrlPolicy
    from gateway.grpc_api import PartnerAdminServicer, PartnerWebhookServicer
    from gateway.http_api import Backends, HttpMetrics, KeyCache, PartnerHttpApi
    from gateway.transcoding.routes import routes_of
    from gateway.webhook_relay import RelayMetrics, WebhookRelay
    from mesh.client import open_channel

    if not settings.postgres_dsn:
        raise Unavailable("the gateway needs PostgreSQL (GAITPAY_POSTGRES_DSN) for partner API keys")
    store = PostgresKeyStore(settings.postgres_dsn)
    keys = PartnerKeys(store, default_rate_per_s=settings.gateway_default_rate_per_s)
    try:
        policy = UrlPolicy(UrlPolicy.parse_networks(settings.webhook_allowed_networks))
        master_key = bytes.fromhex(settings.webhook_master_key)
    except ValueError as exc:
        raise config.ConfigError(f"partner webhooks: {exc} (GAITPAY_WEBHOOK_MASTER_KEY is hex)") from None
    if master_key and len(master_key) < 32:
        raise config.ConfigError("GAITPAY_WEBHOOK_MASTER_KEY must be at least 32 bytes (64 hex digits)")
    webhook_store = PostgresWebhookStore(settings.postgres_dsn)
    webhooks = PartnerWebhooks(webhook_store, resolve_host, policy, master_key,
                               RetryPolicy(base_s=settings.webhook_retry_base_s,
                                           max_attempts=max(1, settings.webhook_max_attempts)))

    routes = routes_of(partner_services())
    registry = CollectorRegistry()

    backends = Backends(lambda service: open_channel(settings, identity="gateway", service=service))
    sender = HttpWebhookSender(policy)
    feeds = [MeshEventFeed(spec, backends.unary, settings.default_deadline_s) for spec in (SESSION_FEED, PAYMENT_FEED)]
    relay = WebhookRelay(webhooks, feeds, sender, RelayMetrics(registry),
                         poll_interval_s=settings.webhook_poll_interval_s)
    api = PartnerHttpApi(routes, KeyCache(keys), RateLimiter(), backends.call, HttpMetrics(registry),
                         deadline_s=settings.default_deadline_s)
    runner: list[web.AppRunner] = []

    async def start_http() -> None:
        app_runner = web.AppRunner(api.app(), access_log=None)
        await app_runner.setup()
        host, _, port = settings.gateway_http_addr.rpartition(":")
        await web.TCPSite(app_runner, host, int(port), shutdown_timeout=settings.drain_grace_s).start()
        runner.append(app_runner)
        await relay.start()

    async def stop_http() -> None:
        await relay.stop()
        for app_runner in runner:
            await app_runner.cleanup()
        await backends.close()
        await sender.close()
        await asyncio.to_thread(store.close)
        await asyncio.to_thread(webhook_store.close)

    def register(server: grpc.aio.Server) -> None:
        gateway_pb2_grpc.add_PartnerAdminServiceServicer_to_server(PartnerAdminServicer(keys), server)
        gateway_pb2_grpc.add_PartnerWebhookServiceServicer_to_server(PartnerWebhookServicer(webhooks), server)

    return ServiceSpec(name="gateway", register=register, grpc_services=SERVICE_NAMES,
                       on_start=[start_http], on_stop=[stop_http], registry=registry)


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    return {"postgres": dependencies.postgres(settings.postgres_dsn)} if settings.postgres_dsn else {}


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("gateway", lambda: build(settings), settings, readiness(settings)))
