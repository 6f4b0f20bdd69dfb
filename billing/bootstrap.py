"""Composition root of the billing service: PostgreSQL, identity and payment wired to the
billing core; the core to the gRPC layer and the sweeper loop (confirmation timeouts,
sessions left charging)."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.billing.v1 import billing_pb2, billing_pb2_grpc
from mesh import config, dependencies
from mesh.errors import Unavailable
from mesh.server import Periodic, ServiceSpec, nonzero_counts, retention_job, serve_forever

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name


def build(settings: config.Settings) -> ServiceSpec:
    from prometheus_client import CollectorRegistry

    from billing.adapters.mesh_clients import IdentityAudit, IdentityContacts, IdentityProfiles, PaymentClient
    from billing.adapters.metrics import BillingFigures
    from billing.adapters.notify_providers import SmtpMailer
    from billing.adapters.postgres_store import PostgresDatabase
    from billing.domain.notifications import NotificationRelay
    from billing.domain.risk import RiskPolicy
    from billing.domain.service import BillingCore
    from billing.grpc_api import BillingServicer
    from mesh.client import open_sync_channel

    if not settings.postgres_dsn:
        raise Unavailable("billing needs PostgreSQL (GAITPAY_POSTGRES_DSN)")
    identity_channel = open_sync_channel(settings, identity="billing", service="identity")
    identity = IdentityProfiles(identity_channel, settings.default_deadline_s)
    # A charge may walk two gateways with a retry each: its deadline covers that walk.
    payments = PaymentClient(open_sync_channel(settings, identity="billing", service="payment"),
                             max(settings.default_deadline_s, 4 * settings.gateway_timeout_s + 2))
    db = PostgresDatabase(settings.postgres_dsn)
    core = BillingCore(db, payments, identity,
                       RiskPolicy(confirm_above_minor=settings.confirm_above_minor),
                       confirmation_timeout_s=settings.confirmation_timeout_s)
    # Confirmations past their deadline fall back to payment links; sessions left charging
    # (an UNKNOWN payment, a crash) are settled again.
    sweeper = Periodic("sweep", 2.0, core.sweep,
                       lambda counts: counts if counts["payment_links"] or counts["retried"] else None)
    # The outbox's relay: edge identifications to identity's audit trail always; receipts by
    # email when an SMTP server is configured (other channels wait in the outbox).
    senders: dict = {"audit": IdentityAudit(identity_channel, settings.default_deadline_s)}
    if settings.smtp_url:
        senders["email"] = SmtpMailer(settings.smtp_url, settings.mail_from, settings.default_deadline_s)
    relay = NotificationRelay(db, IdentityContacts(identity_channel, settings.default_deadline_s), senders,
                              retry_base_s=settings.notify_retry_base_s)
    jobs = [sweeper, Periodic("notify", 1.0, relay.relay, nonzero_counts),
            retention_job(db.prune, settings.retention_days)]

    registry = CollectorRegistry()
    figures = BillingFigures(settings.postgres_dsn)
    registry.register(figures)

    async def stop_figures() -> None:
        figures.close()

    def register(server: grpc.aio.Server) -> None:
        billing_pb2_grpc.add_BillingServiceServicer_to_server(BillingServicer(core), server)

    return ServiceSpec(name="billing", register=register, grpc_services=[SERVICE_NAME],
                       on_start=[j.start for j in jobs], on_stop=[*(j.stop for j in jobs), stop_figures],
                       registry=registry)


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    return {"postgres": dependencies.postgres(settings.postgres_dsn)} if settings.postgres_dsn else {}


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("billing", lambda: build(settings), settings, readiness(settings)))
