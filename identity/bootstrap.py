"""Composition root of the identity service: PostgreSQL, Vault, the gait engine and the
matcher wired to the identity core, the core to the gRPC layer."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from mesh import config, dependencies
from mesh.errors import Unavailable
from mesh.server import ServiceSpec, retention_job, serve_forever

SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name


def build(settings: config.Settings) -> ServiceSpec:
    from identity.adapters.matcher_templates import MatcherTemplates
    from identity.adapters.postgres_store import PostgresDatabase
    from identity.adapters.transaction_records import MeshTransactionRecords
    from identity.adapters.vault_keys import VaultKeys
    from identity.adapters.walk_embedder import GaitWalkEmbedder
    from identity.domain.service import IdentityCore
    from identity.grpc_api import IdentityServicer
    from mesh.client import open_sync_channel
    from mesh.vault_provision import RefreshingTransform

    if not settings.postgres_dsn or not settings.vault_addr:
        raise Unavailable("identity needs PostgreSQL (GAITPAY_POSTGRES_DSN) and Vault (VAULT_ADDR)")
    db = PostgresDatabase(settings.postgres_dsn)
    keys = VaultKeys(settings.vault_addr, settings.vault_token)
    embedder = GaitWalkEmbedder()
    matcher = MatcherTemplates(open_sync_channel(settings, identity="identity", service="matcher"),
                               timeout_s=settings.default_deadline_s)
    records = MeshTransactionRecords(open_sync_channel(settings, identity="identity", service="billing"),
                                     open_sync_channel(settings, identity="identity", service="payment"),
                                     timeout_s=settings.default_deadline_s)
    transform = RefreshingTransform(lambda: keys.transform(embedder.dim), settings.transform_refresh_s)
    core = IdentityCore(db=db, keys=keys, index=matcher, embedder=embedder, protector=transform.current,
                        transactions=records, fresh_protector=transform.fresh,
                        enrolment_statistics=_enrolment_statistics(settings, embedder))

    retention = retention_job(db.prune, settings.retention_days)

    def register(server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(core), server)

    async def stop_refreshing() -> None:
        transform.close()

    return ServiceSpec(name="identity", register=register, grpc_services=[SERVICE_NAME],
                       on_start=[retention.start], on_stop=[retention.stop, stop_refreshing])


def _enrolment_statistics(settings: config.Settings, embedder):  # type: ignore[no-untyped-def]
    """The enrolment source's statistics (GAITPAY_ENROLMENT_STATISTICS), or None where unset; a
    file that does not fit the model stops identity with a message naming the setting."""
    if not settings.enrolment_statistics:
        return None
    from pathlib import Path

    import structlog

    from gait.adaptation import AdaptationError
    from identity.adapters.walk_embedder import FileEnrolmentStatistics

    try:
        stats = FileEnrolmentStatistics(Path(settings.enrolment_statistics), embedder.engine)
    except AdaptationError as exc:
        raise config.ConfigError(f"GAITPAY_ENROLMENT_STATISTICS: {exc}") from None
    structlog.get_logger("gaitpay.identity").info("enrolment statistics loaded", label=stats.label, walks=stats.walks,
                                                  file=settings.enrolment_statistics)
    return stats


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    probes: dict[str, dependencies.Probe] = {}
    if settings.postgres_dsn:
        probes["postgres"] = dependencies.postgres(settings.postgres_dsn)
    if settings.vault_addr:
        probes["vault"] = dependencies.vault(settings.vault_addr, settings.vault_token)
    return probes


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("identity", lambda: build(settings), settings, readiness(settings)))
