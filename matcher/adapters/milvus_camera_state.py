"""What the matcher learnt of each camera (matcher.domain.camera_state: its head-norm
statistics and its drift), kept in Milvus beside the templates: the matcher's one datastore,
so it is as durable as the templates are and every replica reads what the others saved, on
milvus-lite and on a Milvus cluster alike, with no volume of the matcher's own to mount.

One row per (model version, kind, store, camera): statistics and drift live in a model's
projection and embedding spaces, so a store object is opened for one version and never reads
another's rows. Milvus keeps vectors, not arrays, so a row's numbers travel as one vector of
twice the embedding's dimension (statistics: mean then variance; drift: the mean, then
zeros), float32 (a statistic needs no more), with a FLAT index that nothing searches (Milvus
loads no collection without one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import structlog
from pymilvus import DataType, MilvusClient, MilvusException

from matcher.domain.camera_drift import DriftSnapshot
from matcher.domain.camera_state import CameraState, CameraStateStoreError
from matcher.domain.camera_statistics import CameraSnapshot
from mesh.dependencies import MILVUS_GRPC_OPTIONS
from matcher.adapters.milvus_index import sized_name

log = structlog.get_logger("gaitpay.matcher.milvus")
SCHEMA_VERSION = 1
LOAD_BATCH = 2_000  # rows a load reads at a time (Milvus answers one query with at most 16,384)
MAX_VERSION = 64  # as the templates' model_version field
MAX_ID = 1024  # a store's or a camera's id, in bytes (the mesh does not bound them; a longer one is not kept)
STATISTICS, DRIFT = "statistics", "drift"


class CameraStateError(CameraStateStoreError):
    """Milvus refused or failed; the message names the operation."""


@dataclass(frozen=True)
class MilvusCameraStateConfig:
    uri: str
    templates_collection: str  # the cameras' collection is named after it
    model_version: str
    dim: int
    timeout_s: float = 5.0


class MilvusCameraState:
    def __init__(self, config: MilvusCameraStateConfig, client: MilvusClient | None = None) -> None:
        if not 0 < len(config.model_version) <= MAX_VERSION:
            raise ValueError(f"model version {config.model_version!r} must be 1-{MAX_VERSION} characters")
        self.config = config
        try:
            self._client = client or MilvusClient(uri=config.uri, timeout=config.timeout_s,
                                                  grpc_options=MILVUS_GRPC_OPTIONS)
        except MilvusException as exc:
            raise CameraStateError(f"connecting to Milvus at {config.uri}: {exc}") from exc
        self._ensure_collection()

    @property
    def collection(self) -> str:
        # Sized as the templates' collection is (milvus_index: one embedding size per collection).
        return f"{sized_name(self.config.templates_collection, self.config.dim)}_cameras_v{SCHEMA_VERSION}"

    def _ensure_collection(self) -> None:
        c = self.config
        try:
            if not self._client.has_collection(self.collection, timeout=c.timeout_s):
                schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
                schema.add_field("model_version", DataType.VARCHAR, max_length=MAX_VERSION)
                schema.add_field("kind", DataType.VARCHAR, max_length=16)
                schema.add_field("store_id", DataType.VARCHAR, max_length=MAX_ID)
                schema.add_field("camera_id", DataType.VARCHAR, max_length=MAX_ID)
                schema.add_field("windows", DataType.INT64)  # drift: 0
                schema.add_field("tracks", DataType.INT64)
                schema.add_field("adapted", DataType.BOOL)  # drift: measured on adapted embeddings
                schema.add_field("numbers", DataType.FLOAT_VECTOR, dim=2 * c.dim)
                index = self._client.prepare_index_params()
                index.add_index(field_name="numbers", index_type="FLAT", metric_type="L2")
                self._client.create_collection(self.collection, schema=schema, index_params=index,
                                               consistency_level="Strong", timeout=max(c.timeout_s, 30))
            self._client.load_collection(self.collection, timeout=max(c.timeout_s, 30))
        except MilvusException as exc:
            raise CameraStateError(f"opening {self.collection}: {exc}") from exc

    def _key(self, kind: str, store_id: str, camera_id: str) -> str:
        # Hashed from a JSON list, so that no two (version, kind, store, camera) share a key
        # whatever characters the ids hold.
        return hashlib.sha256(json.dumps([self.config.model_version, kind, store_id, camera_id]).encode()).hexdigest()

    def load(self) -> CameraState:
        """This model version's cameras, as last saved by any replica (a Strong read)."""
        c = self.config
        rows = []
        try:
            # An iterator, not one query: a chain's cameras may outnumber one query's answer.
            pages = self._client.query_iterator(
                self.collection, batch_size=LOAD_BATCH, filter=f"model_version == {json.dumps(c.model_version)}",
                output_fields=["kind", "store_id", "camera_id", "windows", "tracks", "adapted", "numbers"],
                timeout=max(c.timeout_s, 30))
            try:
                while page := pages.next():
                    rows.extend(page)
            finally:
                pages.close()
        except MilvusException as exc:
            raise CameraStateError(f"reading {self.collection}: {exc}") from exc
        state = CameraState()
        for row in rows:
            numbers = np.asarray(row["numbers"], dtype=np.float64)
            if row["kind"] == STATISTICS:
                state.statistics.append(CameraSnapshot(row["store_id"], row["camera_id"], numbers[:c.dim],
                                                       numbers[c.dim:], int(row["windows"]), int(row["tracks"])))
            elif row["kind"] == DRIFT:
                state.drift.append(DriftSnapshot(row["store_id"], row["camera_id"], numbers[:c.dim],
                                                 int(row["tracks"]), bool(row["adapted"])))
        return state

    def save(self, state: CameraState) -> None:
        """Upserts the cameras given (the others' rows stay as they are)."""
        c = self.config
        zeros = np.zeros(c.dim)
        items = [(STATISTICS, s.store_id, s.camera_id, s.mean, s.var, s.windows, s.tracks, False)
                 for s in state.statistics]
        items += [(DRIFT, d.store_id, d.camera_id, d.mean, zeros, 0, d.tracks, d.adapted) for d in state.drift]
        rows = []
        for kind, store_id, camera_id, first, second, windows, tracks, adapted in items:
            if max(len(store_id.encode()), len(camera_id.encode())) > MAX_ID:
                log.warning("camera_state.id_too_long", store_id=store_id[:80], camera_id=camera_id[:80])
                continue
            if np.shape(first) != (c.dim,) or np.shape(second) != (c.dim,):
                raise ValueError(f"a {kind} of dimension {np.shape(first)} for a model of dimension {c.dim}")
            rows.append({"key": self._key(kind, store_id, camera_id), "model_version": c.model_version,
                         "kind": kind, "store_id": store_id, "camera_id": camera_id, "windows": int(windows),
                         "tracks": int(tracks), "adapted": bool(adapted),
                         "numbers": np.concatenate([first, second]).astype(np.float32).tolist()})
        if not rows:
            return
        try:
            self._client.upsert(self.collection, rows, timeout=c.timeout_s)
        except MilvusException as exc:
            raise CameraStateError(f"saving {len(rows)} cameras' rows to {self.collection}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
