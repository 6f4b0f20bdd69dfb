"""The matcher's gRPC layer: proto <-> domain, nothing more."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable, Protocol, Sequence

import grpc
import numpy as np

from gait.protection import CancelableTransform
from gait.versions import ModelNames
from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher.domain import camera_state, hot_cache
from matcher.domain.audit import IdentificationAudit
from matcher.domain.camera_statistics import CameraSnapshot
from matcher.domain.identification import TOP_K, Decision, Identifier, State, scope_of
from matcher.domain.templates import Template
from matcher.domain.windows import MalformedWindow, TrackKey, Window
from mesh import body_measures, sealing, validation
from mesh.errors import InvalidArgument, MeshError

_STATES = {
    State.PENDING: matcher_pb2.DECISION_STATE_PENDING,
    State.IDENTIFIED: matcher_pb2.DECISION_STATE_IDENTIFIED,
    State.STRANGER: matcher_pb2.DECISION_STATE_STRANGER,
}


def cameras_to_proto(state: camera_state.CameraState, cache: matcher_pb2.HotCache) -> None:
    """One store's cameras into its hot cache (CameraState: drift, and statistics where the
    matcher adapts cameras)."""
    statistics = {s.camera_id: s for s in state.statistics}
    for drift in state.drift:
        sent = cache.cameras.add(camera_id=drift.camera_id, drift_mean=drift.mean.tolist(),
                                 drift_walkers=drift.tracks, drift_adapted=drift.adapted)
        if (stats := statistics.pop(drift.camera_id, None)) is not None:
            _statistics_to_proto(stats, sent)
    for stats in statistics.values():  # statistics but no drift: none yet
        _statistics_to_proto(stats, cache.cameras.add(camera_id=stats.camera_id))


def _statistics_to_proto(stats: CameraSnapshot, sent: matcher_pb2.CameraState) -> None:
    sent.statistics_mean.extend(stats.mean.tolist())
    sent.statistics_variance.extend(stats.var.tolist())
    sent.statistics_windows, sent.statistics_walkers = stats.windows, stats.tracks


def window_from_proto(msg: matcher_pb2.KeypointWindow, model: ModelNames | None = None) -> Window:
    """The domain's window. Features computed by another gait model than the matcher's
    (model: its own; None: not checked) are refused: their scores against these templates
    would mean nothing."""
    track = TrackKey(msg.track.store_id, msg.track.camera_id, msg.track.track_id)
    keypoints = features = None
    fps = 0.0
    if msg.HasField("keypoints"):
        kp = msg.keypoints
        keypoints = np.asarray(kp.xyc, dtype=np.float32).reshape(kp.frames, kp.joints, 3)
        fps = kp.fps
    else:
        sent = msg.features.model_version
        if model is not None and sent and not model.accepts(sent):
            raise MalformedWindow(f"features of gait model {sent!r}; this matcher's templates are of model "
                                  f"{model.version!r}: send keypoints, or update the edge's model")
        features = np.asarray(msg.features.values, dtype=np.float32)
    return Window(track, msg.sequence, keypoints, fps, features, msg.quality, body_measures.from_proto(msg))


def decision_to_proto(decision: Decision) -> matcher_pb2.TrackDecision:
    t = decision.track
    return matcher_pb2.TrackDecision(
        track=matcher_pb2.TrackRef(store_id=t.store_id, camera_id=t.camera_id, track_id=t.track_id),
        window_sequence=decision.window_sequence,
        state=_STATES[decision.state],
        customer_id=decision.customer_id,
        confidence=decision.confidence,
        false_match_probability=decision.false_match_probability,
        alternatives=[matcher_pb2.Candidate(customer_id=c, similarity=s) for c, s in decision.alternatives],
        windows_used=decision.windows_used,
        reason=decision.reason,
        probable_customer_id=decision.probable_customer_id,
    )


def _track_error(msg: matcher_pb2.KeypointWindow, error: MeshError) -> matcher_pb2.StreamIdentifyResponse:
    return matcher_pb2.StreamIdentifyResponse(
        error=matcher_pb2.TrackError(track=msg.track, window_sequence=msg.sequence, status=error.to_status())
    )


class TemplateStore(Protocol):
    """Port: where enrolled templates live (the Milvus adapter)."""

    def upsert(self, customer_id: str, templates: Sequence[Template], store_ids: Sequence[str],
               keep_scopes: bool = False) -> int: ...

    def remove(self, customer_id: str) -> int: ...

    def customers_for_store(self, store_id: str, limit: int) -> list[str]: ...

    def templates_of(self, customer_ids: Sequence[str]) -> dict[str, list[Template]]: ...


HOT_CACHE_TTL = timedelta(hours=24)
# Threads that embed keypoint windows. One: the embedding holds the interpreter lock for most
# of its millisecond, so a second thread only takes turns with it (keypoint windows at 10k,
# `gaitpay bench matcher --payload keypoints`: 388 windows/s with one, 319 with two, 299 with
# four, 264-287 with the identification pool of 64). More windows/s take more matcher replicas.
EMBED_THREADS = 1
# Threads for blocking calls off the event loop: gallery counts, and whole identifications
# when the index offers no awaitable search (each then waits on its search, so there are many:
# with asyncio's default pool, 6 threads on two cores, the seventh and eighth busy tracks
# queued for a thread before their search could join a batch). Threads start only as needed.
IDENTIFY_THREADS = 64


class WindowMetrics:
    """Per-window figures of the identification SLO: outcome (the decision's state, or
    malformed / error) and the time from a window's arrival to its decision."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.windows = Counter("gaitpay_matcher_windows", "Keypoint windows identified, by outcome (the track "
                               "state decided, malformed, or error).", ["outcome"], registry=registry)
        self.duration = Histogram("gaitpay_matcher_window_duration_seconds", "Time from a window's arrival to "
                                  "its decision.", registry=registry,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.camera_strength = Gauge(
            "gaitpay_matcher_camera_strength", "Norm of the mean embedding of a camera's walkers (one window "
            "each); above the bound (0.5) its identifications are held back (matcher.domain.camera_drift).",
            ["store", "camera"], registry=registry)
        self.camera_adapted = Gauge(
            "gaitpay_matcher_camera_adapted", "1 once a camera's keypoint windows are normalised with the "
            "statistics of its own walkers (matcher.domain.camera_statistics); no series while it has too few.",
            ["store", "camera"], registry=registry)


class MatcherServicer(matcher_pb2_grpc.MatcherServiceServicer):
    def __init__(self, identifier: Identifier, store: TemplateStore | None = None, dim: int = 128,
                 metrics: WindowMetrics | None = None, audit: IdentificationAudit | None = None, *,
                 model: ModelNames | None = None,
                 transform: Callable[[], CancelableTransform] | None = None) -> None:
        self._identifier = identifier
        self._store = store
        self._dim = dim
        # The embedding model's names (None: windows and templates are not checked) and the
        # deployment's template transform (None without Vault): a hot cache is re-based out of
        # that transform into one of its own.
        self._model = model
        self._transform = transform
        self._metrics = metrics
        self._audit = audit
        self._identify_pool = ThreadPoolExecutor(IDENTIFY_THREADS, thread_name_prefix="identify")
        self._embed_pool = ThreadPoolExecutor(EMBED_THREADS, thread_name_prefix="embed")

    def close(self) -> None:
        """After the server stopped: windows still queued for a thread are dropped."""
        self._identify_pool.shutdown(wait=False, cancel_futures=True)
        self._embed_pool.shutdown(wait=False, cancel_futures=True)

    async def _observe(self, window: Window, all_stores: bool = False) -> Decision:
        decision = await self._decide(window, all_stores)
        self._gauge_camera(window)
        return decision

    async def _decide(self, window: Window, all_stores: bool) -> Decision:
        loop = asyncio.get_running_loop()
        index = self._identifier.index
        if not hasattr(index, "search_async"):
            return await loop.run_in_executor(self._identify_pool, self._identifier.observe, window, all_stores)
        # The search is awaited here, so no worker thread sits waiting for the batch it joins
        # (features at 100k: 1.13x the windows/s, `gaitpay bench matcher`). Keypoints are
        # embedded on a small pool of their own: the embedding holds the interpreter lock for
        # most of its millisecond, and more threads at it only take turns slower. The query
        # transform never blocks (Vault is read in the background); counting the gallery
        # does, so it stays off the event loop.
        if window.features is None:
            query = await loop.run_in_executor(self._embed_pool, self._identifier.query_of, window)
        else:
            query = self._identifier.query_of(window)
        candidates = await index.search_async(query, window.track.store_id, TOP_K, all_stores,
                                              with_bodies=self._identifier.wants_bodies(window))
        scope = scope_of(window, all_stores)
        if self._identifier.gallery_stale(scope):
            gallery = await loop.run_in_executor(self._identify_pool, self._identifier.gallery_size, scope)
        else:
            gallery = self._identifier.gallery_size(scope, refresh=False)
        return self._identifier.conclude(window, candidates, gallery)

    def _gauge_camera(self, window: Window) -> None:
        track = window.track
        strength = self._identifier.drift.strength(track.store_id, track.camera_id)
        if self._metrics is not None and strength is not None:
            self._metrics.camera_strength.labels(track.store_id, track.camera_id).set(strength)
        adaptation = self._identifier.adaptation
        # Like the strength, a camera gets its series only once judged: no label for every
        # camera that passes by a matcher.
        if (self._metrics is not None and adaptation is not None
                and adaptation.adapted(track.store_id, track.camera_id)):
            self._metrics.camera_adapted.labels(track.store_id, track.camera_id).set(1.0)

    def _count(self, outcome: str, started: float | None = None) -> None:
        if self._metrics is not None:
            self._metrics.windows.labels(outcome).inc()
            if started is not None:
                self._metrics.duration.observe(time.perf_counter() - started)

    def _templates(self) -> TemplateStore:
        if self._store is None:
            raise MeshError("this matcher has no template store configured (GAITPAY_MILVUS_URI)",
                            reason="DEPENDENCY_UNAVAILABLE", code=grpc.StatusCode.UNAVAILABLE)
        return self._store

    async def UpsertTemplates(
        self, request: matcher_pb2.UpsertTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.UpsertTemplatesResponse:
        # Idempotent by construction: the customer's templates are replaced as a whole, so a
        # retry with the same request_id (or the same content) leaves the same rows.
        templates = []
        for i, t in enumerate(request.templates):
            vector = np.asarray(t.values, dtype=np.float32)
            if vector.shape[0] != self._dim:
                raise InvalidArgument(f"templates[{i}] has {vector.shape[0]} values; this matcher stores {self._dim}",
                                      field_violations=[(f"templates[{i}].values", f"must hold {self._dim} values")])
            norm = float(np.linalg.norm(vector))
            if not np.isfinite(vector).all() or not 0.99 <= norm <= 1.01:
                raise InvalidArgument(f"templates[{i}] must be finite and L2-normalised (norm {norm:.3f})",
                                      field_violations=[(f"templates[{i}].values", "must be L2-normalised")])
            template = Template(t.template_id, vector, t.quality, t.model_version, body_measures.from_proto(t))
            if self._model is not None and not self._model.accepts(template.model):
                # Stored, it would never be searched (matcher.adapters.milvus_index: one model's
                # templates); refused, the caller learns now that the customer is not enrolled.
                raise MeshError(f"templates[{i}] comes from gait model {template.model!r}; this matcher runs "
                                f"{self._model.version!r}: enrol the customer again with its model",
                                reason="MODEL_MISMATCH", code=grpc.StatusCode.FAILED_PRECONDITION,
                                metadata={"template_model": template.model[:64], "matcher_model": self._model.version})
            templates.append(template)
        if request.keep_store_scopes and request.store_ids:
            raise InvalidArgument("keep_store_scopes keeps the stores the templates serve; store_ids must be empty",
                                  field_violations=[("store_ids", "must be empty with keep_store_scopes")])
        stored = await asyncio.to_thread(self._templates().upsert, request.customer_id, templates,
                                         list(request.store_ids), request.keep_store_scopes)
        return matcher_pb2.UpsertTemplatesResponse(stored=stored)

    async def RemoveTemplates(
        self, request: matcher_pb2.RemoveTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.RemoveTemplatesResponse:
        removed = await asyncio.to_thread(self._templates().remove, request.customer_id)
        self._identifier.visits.forget_customer(request.customer_id)
        return matcher_pb2.RemoveTemplatesResponse(removed=removed)

    async def ExportHotCache(
        self, request: matcher_pb2.ExportHotCacheRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.ExportHotCacheResponse:
        store = self._templates()
        limit = request.max_customers or hot_cache.DEFAULT_CUSTOMERS
        frequent = self._identifier.visits.most_frequent(request.store_id, limit)
        scoped = await asyncio.to_thread(store.customers_for_store, request.store_id, limit)
        chosen = hot_cache.choose(frequent, scoped, limit)
        stored = await asyncio.to_thread(store.templates_of, [c for c, _ in chosen])
        export = CancelableTransform(os.urandom(32), version=0, dim=self._dim)
        templates = hot_cache.rebase(stored, self._transform() if self._transform else None, export,
                                     self._model or ModelNames(""))
        expires = datetime.now(timezone.utc) + HOT_CACHE_TTL
        cache = matcher_pb2.HotCache(store_id=request.store_id, query_transform_secret=export.secret,
                                     model_version=self._model.version if self._model else "")
        cache.expires_at.FromDatetime(expires)
        for customer, count in chosen:
            if customer not in templates:  # removed between the two reads, or nothing usable: leave out
                continue
            entry = cache.customers.add(customer_id=customer, identifications=count)
            for t in templates[customer]:
                sent = entry.templates.add(template_id=t.template_id, values=t.vector.tolist(),
                                           model_version=t.model_version, quality=t.quality)
                body_measures.to_proto(t.body, sent)
        cameras_to_proto(camera_state.current(self._identifier.drift, self._identifier.adaptation, request.store_id),
                         cache)
        sealed = sealing.seal(cache.SerializeToString(), request.recipient_public_key,
                              associated=request.store_id.encode(), info=sealing.HOT_CACHE_INFO)
        response = matcher_pb2.ExportHotCacheResponse(
            sealed_templates=sealed.box, customers=len(cache.customers),
            ephemeral_public_key=sealed.ephemeral_public_key)
        response.expires_at.FromDatetime(expires)
        return response

    async def StreamIdentify(
        self, request_iterator: AsyncIterator[matcher_pb2.StreamIdentifyRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[matcher_pb2.StreamIdentifyResponse]:
        # One message at a time: while a window is processed nothing more is read, so gRPC
        # flow control pushes back on a fast or misbehaving edge instead of memory growing.
        async for request in request_iterator:
            window = request.window
            started = time.perf_counter()
            broken = validation.violations(window)
            if broken:
                self._count("malformed")
                summary = "; ".join(f"{path}: {what}" for path, what in broken[:5])
                yield _track_error(
                    window,
                    MeshError(f"malformed window: {summary}", reason="MALFORMED_WINDOW",
                              code=grpc.StatusCode.INVALID_ARGUMENT, field_violations=broken),
                )
                continue
            try:
                decision = await self._observe(window_from_proto(window, self._model))
            except MalformedWindow as exc:
                self._count("malformed")
                yield _track_error(
                    window, MeshError(f"malformed window: {exc}", reason="MALFORMED_WINDOW",
                                      code=grpc.StatusCode.INVALID_ARGUMENT)
                )
                continue
            except Exception:
                self._count("error")
                raise
            if self._audit is not None:
                self._audit.observe(decision)
            message = decision_to_proto(decision)
            self._count(matcher_pb2.DecisionState.Name(message.state).removeprefix("DECISION_STATE_").lower(), started)
            yield matcher_pb2.StreamIdentifyResponse(decision=message)

    async def Identify(
        self, request: matcher_pb2.IdentifyRequest, context: grpc.aio.ServicerContext
    ) -> matcher_pb2.IdentifyResponse:
        try:
            decision = await self._observe(window_from_proto(request.window, self._model),
                                           request.all_stores)
        except MalformedWindow as exc:
            raise MeshError(f"malformed window: {exc}", reason="MALFORMED_WINDOW",
                            code=grpc.StatusCode.INVALID_ARGUMENT) from None
        finally:
            self._identifier.forget(TrackKey(request.window.track.store_id, request.window.track.camera_id,
                                             request.window.track.track_id))
        if self._audit is not None:
            self._audit.observe(decision)
        return matcher_pb2.IdentifyResponse(decision=decision_to_proto(decision))
