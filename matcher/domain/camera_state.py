"""What the matcher has learnt of each camera, kept across restarts: its head-norm statistics
(camera_statistics) and its drift (camera_drift).

Why: both are measured from a camera's walkers and both start from nothing in a new process.
Without them kept, every restart or rollout put each camera back on the shipped statistics
and left its strength unjudged for its next 30 walkers: a camera whose walkers share one
direction (a real camera without statistics of its own: strength 0.81) was not held back in
that time, and the policy, replayed over such a camera, charges strangers (docs/gait.md,
"Fourth round"). The keeper restores what a store holds at start and saves the cameras that
changed since the last save (every minute while the matcher serves, and as it stops).

The matcher also sends each store's cameras with its hot cache (ExportHotCache), and the
edge, deciding offline, takes them in place of its own (`adopt(..., overwrite=True)`): the
matcher saw every window while the link was up. The edge keeps the cache on disk, so an edge
restarted during an outage has them too.

A store that is down costs nothing but the keeping: the matcher starts with no cameras
measured (as before there was a store), and a failed save is tried again the next round,
since the cameras it missed are still changed. Several replicas save the cameras they each
serve; where two serve one camera, the last save stands, and either's describes that camera.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from matcher.domain.camera_drift import CameraDrift, DriftSnapshot
from matcher.domain.camera_statistics import CameraSnapshot, CameraStatistics

log = structlog.get_logger("gaitpay.matcher.camera_state")


@dataclass(frozen=True)
class CameraState:
    statistics: list[CameraSnapshot] = field(default_factory=list)
    drift: list[DriftSnapshot] = field(default_factory=list)


class CameraStateStoreError(RuntimeError):
    """The store could not load or save (down, refused); the message says which."""


class CameraStateStore(Protocol):
    """Where cameras' state outlives a matcher, for one embedding model (another model's
    projections and embeddings are another space, so a store is opened for one version)."""

    def load(self) -> CameraState:
        """This model's cameras as last saved; CameraStateStoreError when it cannot tell."""
        ...

    def save(self, state: CameraState) -> None:
        """Keeps these cameras' rows (replacing what was kept of them); CameraStateStoreError."""
        ...


def _adapted(statistics: CameraStatistics | None, store_id: str, camera_id: str) -> bool:
    return statistics is not None and statistics.adapted(store_id, camera_id)


def current(drift: CameraDrift, statistics: CameraStatistics | None, store_id: str | None = None) -> CameraState:
    """Every camera's state as it stands (one store's, where given), each drift marked with
    whether its camera's windows are normalised with the camera's own statistics."""
    drifts = [d for d in drift.snapshots() if store_id is None or d.store_id == store_id]
    # The drift first, the flags after: a camera adapted in between has its last raw drift
    # marked adapted, which holds it back a while longer, never the other way round.
    adapted = [replace(d, adapted=_adapted(statistics, d.store_id, d.camera_id)) for d in drifts]
    stats = [] if statistics is None else [s for s in statistics.snapshots()
                                           if store_id is None or s.store_id == store_id]
    return CameraState(stats, adapted)


def adopt(state: CameraState, drift: CameraDrift, statistics: CameraStatistics | None, *,
          overwrite: bool) -> tuple[CameraState, list[tuple[CameraSnapshot | DriftSnapshot, str]]]:
    """Takes in cameras measured elsewhere (an earlier run: not over this run's own; the
    matcher's, at an edge: overwrite). Returns what was offered and fits this run, and the
    snapshots refused with why."""
    refused: list[tuple[CameraSnapshot | DriftSnapshot, str]] = []
    taken = state.statistics if statistics is not None else []  # cameras not adapted here: none
    if statistics is not None:
        refused += statistics.restore(taken, overwrite=overwrite)
    # A camera's drift describes the embeddings it was measured on: it is taken only where
    # this run normalises that camera's windows alike from its next one on. One measured on
    # adapted embeddings would otherwise let a strong raw camera through.
    drifts = [d for d in state.drift if d.adapted == _adapted(statistics, d.store_id, d.camera_id)]
    refused += drift.restore(drifts, overwrite=overwrite)
    return CameraState(taken, drifts), refused


def held_back(drift: CameraDrift) -> int:
    """Cameras whose strength is over the bound now."""
    return sum(drift.drifted_camera(store, camera) is not None for store, camera in drift.cameras())


class CameraStateKeeper:
    def __init__(self, drift: CameraDrift, statistics: CameraStatistics | None, store: CameraStateStore) -> None:
        self._drift, self._statistics, self._store = drift, statistics, store
        # camera -> its count (windows; walkers for drift) when last saved or restored
        self._saved: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()  # a periodic round and the save at stop never overlap

    def restore(self) -> dict[str, int]:
        """Counts of cameras restored (statistics, drift), of those adapted or held back at
        once, and of snapshots refused."""
        try:
            kept = self._store.load()
        except CameraStateStoreError as exc:
            log.warning("camera_state.not_restored", why=str(exc))
            return {"statistics": 0, "drift": 0, "adapted": 0, "held_back": 0, "refused": 0}
        taken, refused = adopt(kept, self._drift, self._statistics, overwrite=False)
        for snap, why in refused:
            log.warning("camera_state.refused", store_id=snap.store_id, camera_id=snap.camera_id, why=why)
        with self._lock:
            self._saved.update(self._counts(taken))
        adapted = sum(ready for _, ready in self._statistics.cameras().values()) if self._statistics else 0
        counts = {"statistics": len(taken.statistics), "drift": len(taken.drift), "adapted": adapted,
                  "held_back": held_back(self._drift), "refused": len(refused)}
        log.info("camera_state.restored", **counts)
        return counts

    @staticmethod
    def _counts(state: CameraState) -> dict[tuple[str, str, str], int]:
        return {**{("statistics", s.store_id, s.camera_id): s.windows for s in state.statistics},
                **{("drift", d.store_id, d.camera_id): d.tracks for d in state.drift}}

    def save_changed(self) -> dict[str, int]:
        """Saves every camera whose statistics or drift moved since last saved or restored;
        counts of cameras saved and, where the store failed, not saved."""
        with self._lock:
            now = current(self._drift, self._statistics)
            counts = self._counts(now)
            changed = CameraState(
                [s for s in now.statistics if self._saved.get(("statistics", s.store_id, s.camera_id)) != s.windows],
                [d for d in now.drift if self._saved.get(("drift", d.store_id, d.camera_id)) != d.tracks])
            rows = len(changed.statistics) + len(changed.drift)
            if not rows:
                return {"saved": 0, "failed": 0}
            try:
                self._store.save(changed)
            except CameraStateStoreError as exc:
                log.warning("camera_state.not_saved", rows=rows, why=str(exc))
                return {"saved": 0, "failed": rows}
            self._saved.update({key: counts[key] for key in self._counts(changed)})
            return {"saved": rows, "failed": 0}
