"""Composition root of the payment service: PostgreSQL, Stripe and Razorpay wired to the
payment core; the core to the gRPC layer, the webhook listener and the reconciler loop."""

from __future__ import annotations

import asyncio

import grpc
import structlog

from gaitpay.payment.v1 import payment_pb2, payment_pb2_grpc
from mesh import config, dependencies
from mesh.errors import Unavailable
from mesh.server import Periodic, ServiceSpec, retention_job, serve_forever

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name
log = structlog.get_logger("payment")


def gateways(settings: config.Settings) -> dict:  # type: ignore[type-arg]
    from payment.adapters.razorpay_gateway import RazorpayGateway
    from payment.adapters.stripe_gateway import StripeGateway

    found: dict = {}  # type: ignore[type-arg]
    if settings.stripe_api_key:
        found["stripe"] = StripeGateway(settings.stripe_api_key, settings.stripe_api_base, settings.gateway_timeout_s)
    if settings.razorpay_key_id and settings.razorpay_key_secret:
        found["razorpay"] = RazorpayGateway(settings.razorpay_key_id, settings.razorpay_key_secret,
                                            settings.razorpay_base_url, settings.gateway_timeout_s)
    return found


def build(settings: config.Settings) -> ServiceSpec:
    from prometheus_client import CollectorRegistry

    from payment.adapters.metrics import PaymentFigures
    from payment.adapters.postgres_store import PostgresDatabase
    from payment.adapters.webhooks_http import WebhookServer
    from payment.domain.service import PaymentCore
    from payment.grpc_api import PaymentServicer

    if not settings.postgres_dsn:
        raise Unavailable("payment needs PostgreSQL (GAITPAY_POSTGRES_DSN)")
    found = gateways(settings)
    if not found:
        raise Unavailable("payment needs at least one gateway: set GAITPAY_STRIPE_API_KEY or GAITPAY_RAZORPAY_KEY_ID")
    db = PostgresDatabase(settings.postgres_dsn)
    core = PaymentCore(db, found, unknown_grace_s=settings.reconcile_interval_s)
    webhooks = WebhookServer(core.apply_event, settings.stripe_webhook_secret, settings.razorpay_webhook_secret)
    reconciler = Periodic("reconcile", settings.reconcile_interval_s, core.reconcile,
                          lambda report: report.__dict__ if report.examined else None)
    retention = retention_job(db.prune, settings.retention_days)

    async def on_start() -> None:
        host, _, port = settings.payment_webhook_addr.rpartition(":")
        await webhooks.start(host, int(port))
        await reconciler.start()
        await retention.start()
        log.info("payment.ready", gateways=sorted(found), webhooks=settings.payment_webhook_addr)

    registry = CollectorRegistry()
    figures = PaymentFigures(settings.postgres_dsn)
    registry.register(figures)

    async def on_stop() -> None:
        await reconciler.stop()
        await retention.stop()
        await webhooks.stop()
        figures.close()

    def register(server: grpc.aio.Server) -> None:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(PaymentServicer(core), server)

    return ServiceSpec(name="payment", register=register, grpc_services=[SERVICE_NAME],
                       on_start=[on_start], on_stop=[on_stop], registry=registry)


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    probes: dict[str, dependencies.Probe] = {}
    if settings.postgres_dsn:
        probes["postgres"] = dependencies.postgres(settings.postgres_dsn)
    if settings.stripe_api_base:
        probes["stripe"] = dependencies.http(settings.stripe_api_base.rstrip("/") + "/v1/balance")
    if settings.razorpay_base_url:
        probes["razorpay"] = dependencies.http(settings.razorpay_base_url.rstrip("/") + "/v1/health")
    return probes


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("payment", lambda: build(settings), settings, readiness(settings)))
