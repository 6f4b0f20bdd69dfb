"""Composition root of the matcher: wires the domain core to its adapters and the server."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import grpc

from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from gait.versions import ModelNames
from matcher.adapters import gait_model
from matcher.adapters.identity_audit import AuditMetrics, IdentityAuditSink
from matcher.domain.audit import IdentificationAudit
from matcher.domain.camera_state import CameraStateKeeper
from matcher.domain.identification import Identifier
from matcher.grpc_api import MatcherServicer, WindowMetrics
from mesh import config, dependencies
from mesh.client import open_channel
from mesh.server import Periodic, ServiceSpec, serve_forever

log = structlog.get_logger("gaitpay.matcher")
SERVICE_NAME = matcher_pb2.DESCRIPTOR.services_by_name["MatcherService"].full_name


def _query_transform(settings: config.Settings, dim: int):  # type: ignore[no-untyped-def]
    """With Vault configured, the index holds protected templates (identity transforms them),
    so every query embedding goes through the same secret transform before the search (and a
    hot cache is re-based out of it for the edge)."""
    if not settings.vault_addr:
        return None
    import hvac

    from mesh.vault_provision import RefreshingTransform, load_transform

    vault = hvac.Client(url=settings.vault_addr, token=settings.vault_token, timeout=5)
    transform = RefreshingTransform(lambda: load_transform(vault, dim), settings.transform_refresh_s)
    log.info("template transform loaded", version=transform.current().version)
    return transform


def _milvus_config(settings: config.Settings, dim: int, model: ModelNames):  # type: ignore[no-untyped-def]
    from matcher.adapters.milvus_index import MilvusConfig

    return MilvusConfig(uri=settings.milvus_uri, collection=settings.milvus_collection, dim=dim,
                        nprobe=settings.milvus_nprobe, index_type=settings.milvus_index,
                        search_consistency=settings.milvus_search_consistency, model_versions=model.all)


def build(settings: config.Settings) -> ServiceSpec:
    # One ONNX Runtime thread per call: windows are embedded side by side, and the runtime's
    # own pool only spins against them (single-threaded: the same walks/s at half the CPU).
    model = gait_model.gait_model(threads=1)
    embed, dim, version = model.embed, model.dim, model.version
    store = None
    if settings.milvus_uri:
        from matcher.adapters.milvus_index import MilvusTemplateIndex

        store = MilvusTemplateIndex(_milvus_config(settings, dim, model.names))
    index = None
    if store is not None:
        from matcher.adapters.batching import BatchingIndex

        index = BatchingIndex(store)
    transform = _query_transform(settings, dim)
    identifier = Identifier(index=index, embed=embed, scores=gait_model.score_model(version),
                            protect=transform.apply if transform else None,
                            bodies=gait_model.body_model() if settings.body_measures else None,
                            project=model.project,
                            adaptation=model.camera_statistics() if settings.adapts_cameras else None)
    registry = CollectorRegistry()
    keeping = _camera_keeping(settings, identifier, version, dim, registry)
    stale = _stale_templates(store, version, registry) if store is not None else []
    metrics = WindowMetrics(registry)
    sink = IdentityAuditSink(lambda: open_channel(settings, identity="matcher", service="identity"),
                             AuditMetrics(registry), deadline_s=settings.default_deadline_s)
    audit = IdentificationAudit(sink)

    servicer = MatcherServicer(identifier, store, dim, metrics, audit, model=model.names,
                               transform=transform.current if transform else None)

    def register(server: grpc.aio.Server) -> None:
        matcher_pb2_grpc.add_MatcherServiceServicer_to_server(servicer, server)

    async def stop_identifying() -> None:
        servicer.close()
        if transform is not None:
            transform.close()

    return ServiceSpec(name="matcher", register=register, grpc_services=[SERVICE_NAME], registry=registry,
                       on_start=[sink.start, *keeping[:1], *stale[:1]],
                       on_stop=[sink.stop, stop_identifying, *keeping[1:], *stale[1:]])


def _camera_keeping(settings: config.Settings, identifier: Identifier, version: str, dim: int,
                    registry: CollectorRegistry | None = None) -> list[Callable[[], Awaitable[None]]]:
    """Each camera's drift (and statistics, where cameras adapt) restored from Milvus now,
    and the (on_start, on_stop) hooks that save them while the matcher serves and as it
    stops; none without a Milvus, or with GAITPAY_CAMERA_STATE_SAVE_S 0."""
    if not settings.milvus_uri or settings.camera_state_save_s <= 0:
        return []
    from matcher.adapters.milvus_camera_state import CameraStateError, MilvusCameraState, MilvusCameraStateConfig

    try:
        store = MilvusCameraState(MilvusCameraStateConfig(
            uri=settings.milvus_uri, templates_collection=settings.milvus_collection, model_version=version, dim=dim,
            timeout_s=settings.default_deadline_s))
    except CameraStateError as exc:  # the templates opened: identify, only without keeping the cameras
        log.error("camera_state.unavailable", why=str(exc))
        return []
    keeper = CameraStateKeeper(identifier.drift, identifier.adaptation, store)
    rows = Counter("gaitpay_matcher_camera_state_rows", "Cameras' drift and statistics rows the matcher kept in "
                   "Milvus, by outcome: restored at start, refused at start (not finite, or counts that do not add "
                   "up), saved, failed (Milvus refused or was unreachable; tried again next round).",
                   ["outcome"], registry=registry)
    for outcome in ("restored", "refused", "saved", "failed"):
        rows.labels(outcome)  # every series from the start, so a rate over them is never empty
    restored = keeper.restore()
    rows.labels("restored").inc(restored["statistics"] + restored["drift"] - restored["refused"])
    rows.labels("refused").inc(restored["refused"])

    def save_round() -> dict[str, int]:
        counts = keeper.save_changed()
        rows.labels("saved").inc(counts["saved"])
        rows.labels("failed").inc(counts["failed"])
        return counts

    rounds = Periodic("camera_state", settings.camera_state_save_s, save_round, _saved_any)

    async def last_save() -> None:
        await rounds.stop()
        counts = await asyncio.to_thread(save_round)
        log.info("camera_state.saved_at_stop", **counts)
        store.close()

    return [rounds.start, last_save]


STALE_TEMPLATES_COUNT_S = 300.0


def _stale_templates(store, version: str, registry: CollectorRegistry) -> list[Callable[[], Awaitable[None]]]:  # type: ignore[no-untyped-def]
    """Templates of another gait model (milvus_index: no search returns them) counted now, as
    a gauge and, where there are any, a warning; then every few minutes, so that re-enrolment
    after a model change shows as the gauge going down. The (on_start, on_stop) hooks."""
    from matcher.adapters.milvus_index import TemplateIndexError

    gauge = Gauge("gaitpay_matcher_templates_of_other_models", "Template rows in Milvus of another gait model "
                  "than the matcher's (enrolled before a model change): no search returns them, so their customers "
                  "are not recognised until they enrol again. -1 until first counted.", registry=registry)
    gauge.set(-1)

    def count() -> int | None:
        try:
            rows = store.count_of_other_models()
        except TemplateIndexError as exc:  # the next round counts again
            log.warning("milvus.templates_not_counted", why=str(exc))
            return None
        gauge.set(rows)
        return rows

    rows = count()
    if rows:
        log.warning("milvus.templates_of_other_models", rows=rows, model=version)
    try:
        elsewhere = store.collections_of_another_size()
    except TemplateIndexError as exc:
        log.warning("milvus.collections_not_listed", why=str(exc))
        elsewhere = []
    if elsewhere:  # a model of another embedding size came before: its templates are not searched here
        log.warning("milvus.collections_of_another_size", collections=elsewhere, model=version,
                    collection=store.collection)
    rounds = Periodic("templates_of_other_models", STALE_TEMPLATES_COUNT_S, count)
    return [rounds.start, rounds.stop]


def _saved_any(counts: dict[str, int]) -> dict[str, int] | None:
    return counts if counts["saved"] or counts["failed"] else None


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    return {"milvus": dependencies.milvus(settings.milvus_uri)} if settings.milvus_uri else {}


def main() -> None:
    settings = config.load()
    # build() opens the Milvus index, so it runs once Milvus answers.
    asyncio.run(serve_forever("matcher", lambda: build(settings), settings, readiness(settings)))


def migrate(settings: config.Settings) -> None:
    """The template collection brought to this version's schema, and nothing else: what a
    matcher does at start before it serves (copy an older schema's rows across, drop the old
    collection), as a step of its own. Kubernetes runs it as the matcher's init container, where
    no startup probe cuts a long copy short; a matcher then starts on the current schema at once."""
    from mesh.telemetry import setup_logging

    setup_logging(settings, "matcher")
    if not settings.milvus_uri:
        raise config.ConfigError("GAITPAY_MILVUS_URI is empty: there is no Milvus to migrate (the local stack's "
                                 "matcher migrates its embedded Milvus when it starts)")
    asyncio.run(dependencies.wait_ready(readiness(settings)))
    from matcher.adapters.milvus_index import MilvusTemplateIndex

    model = gait_model.gait_model(threads=1)
    index = MilvusTemplateIndex(_milvus_config(settings, model.dim, model.names))
    log.info("milvus.schema_current", collection=index.collection, rows=index.count(),
             rows_of_other_models=index.count_of_other_models(),
             collections_of_another_size=index.collections_of_another_size())
