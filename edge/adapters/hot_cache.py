"""The hot cache's journey to the edge: fetched from the matcher (ExportHotCache, sealed for
this device's X25519 key), kept on disk as it came, still sealed, so an edge that restarts
while the link is down identifies with what it had, and opened only in memory.

The device key sits beside the cache, readable by the edge's user alone (0600). On a box with
a TPM or secure element the key belongs there; the file is the portable default."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import grpc
import numpy as np
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge.domain.offline import HotCache
from gait.protection import CancelableTransform
from matcher.domain.camera_drift import DriftSnapshot
from matcher.domain.camera_state import CameraState
from matcher.domain.camera_statistics import CameraSnapshot
from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from mesh import body_measures, sealing

log = structlog.get_logger("gaitpay.edge.hot_cache")


def device_key(path: Path) -> X25519PrivateKey:
    """This edge's X25519 key, made on first use and kept in `path` (mode 0600)."""
    if path.exists():
        return X25519PrivateKey.from_private_bytes(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(raw)
    return key


def open_cache(reply: matcher_pb2.ExportHotCacheResponse, key: X25519PrivateKey, store_id: str,
               fetched_at: float) -> HotCache:
    """Opens a sealed export; sealing.SealError if it was not made for this device and store."""
    plain = sealing.open_sealed(sealing.Sealed(reply.sealed_templates, reply.ephemeral_public_key), key,
                                store_id.encode(), sealing.HOT_CACHE_INFO)
    cache = matcher_pb2.HotCache.FromString(plain)
    ids, rows, bodies = [], [], []
    for customer in cache.customers:
        for template in customer.templates:
            ids.append(customer.customer_id)
            rows.append(np.asarray(template.values, dtype=np.float32))
            bodies.append(body_measures.from_proto(template))
    dim = len(rows[0]) if rows else 128
    vectors = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    return HotCache(store_id=cache.store_id, model_version=cache.model_version, customer_ids=tuple(ids),
                    vectors=vectors, bodies=tuple(bodies), transform=CancelableTransform(cache.query_transform_secret, 0, dim),
                    fetched_at=fetched_at, expires_at=cache.expires_at.ToNanoseconds() / 1e9,
                    cameras=cameras_from_proto(cache))


def cameras_from_proto(cache: matcher_pb2.HotCache) -> CameraState:
    """The matcher's view of the store's cameras, as the hot cache carries it."""
    state = CameraState()
    for camera in cache.cameras:
        if camera.drift_mean:
            state.drift.append(DriftSnapshot(cache.store_id, camera.camera_id, np.asarray(camera.drift_mean, np.float64),
                                             int(camera.drift_walkers), camera.drift_adapted))
        if camera.statistics_mean:
            state.statistics.append(CameraSnapshot(
                cache.store_id, camera.camera_id, np.asarray(camera.statistics_mean, np.float64),
                np.asarray(camera.statistics_variance, np.float64), int(camera.statistics_windows),
                int(camera.statistics_walkers)))
    return state


class HotCacheKeeper:
    """Keeps the newest hot cache: on disk (sealed) and opened for the offline identifier."""

    def __init__(self, folder: Path, store_id: str, *, max_customers: int = 0) -> None:
        self._path = folder / "hot-cache.sealed"
        self._key = device_key(folder / "device-key.x25519")
        self._store_id = store_id
        self._max_customers = max_customers

    def load_saved(self) -> HotCache | None:
        """The cache kept from an earlier run, if it opens and has not expired."""
        if not self._path.exists():
            return None
        try:
            reply = matcher_pb2.ExportHotCacheResponse.FromString(self._path.read_bytes())
            cache = open_cache(reply, self._key, self._store_id, self._path.stat().st_mtime)
        except Exception as exc:  # noqa: BLE001 - a damaged file is refetched, never fatal
            log.warning("hot_cache.saved_unusable", path=str(self._path), error=str(exc))
            return None
        return None if cache.expired() else cache

    async def fetch(self, channel: grpc.aio.Channel, deadline_s: float) -> HotCache:
        """A fresh export from the matcher, saved (atomically) before it is used."""
        request = matcher_pb2.ExportHotCacheRequest(store_id=self._store_id, max_customers=self._max_customers,
                                                    recipient_public_key=sealing.public_key_bytes(self._key))
        reply = await matcher_pb2_grpc.MatcherServiceStub(channel).ExportHotCache(request, timeout=deadline_s)
        cache = open_cache(reply, self._key, self._store_id, time.time())
        await asyncio.to_thread(self._save, reply.SerializeToString())
        return cache

    def _save(self, data: bytes) -> None:
        partial = self._path.with_suffix(".partial")
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self._path)
