"""Each camera's own statistics for the embedding head's batch norm, measured live.

Why: the embedding model ends in a projection, a batch norm and L2 normalisation, and the
norm's statistics are the synthetic walkers' it was trained on. A real camera's windows reach
the norm offset from them, so they all leave it pointing one way (camera_drift's strength:
0.81 on the UCalgary walkers) and two strangers score like one person. Normalised with the
mean and variance of the camera's own walkers instead (AdaBN; gait.adaptation), they score as
the policy's score model expects: the real walkers' replay in `gaitpay eval` identifies 1 / 4 /
7 of 11 genuine visits and charges 0 / 0 / 1 of 74 strangers at the 1e-4 / 1e-3 / 1e-2 bounds,
where the shipped statistics charge 11 / 23 / 24 (docs/gait.md, "Fifth round"). That needs the
templates normalised with their own source's statistics as well (identity's enrolment
statistics); the camera's side is measured here, from the windows the matcher embeds anyway.

No labels are used and nothing is stored per person: per camera, a running mean and variance
of the projections of the windows its decisions see (at most `windows_per_track` a walker, so a
shopper who lingers does not outweigh the others). They replace the shipped statistics once
`min_tracks` walkers were seen; past `window_windows` windows, older ones fade (an
exponential mean), so a camera that is moved or re-lit is normalised for what it sees now.

They outlive the process (matcher.domain.camera_state keeps them, with each camera's drift):
without that, every restart or rollout put each camera back on the shipped statistics until
30 more walkers had passed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from matcher.domain.windows import TrackKey

# (projection [D], mean [D], variance [D]) -> the L2-normalised embedding under those statistics
Renormalise = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StatisticsConfig:
    # Statistics of 8 walkers already beat the shipped ones on the real camera
    # (gait.adaptation.MIN_CAMERA_WALKS); a live camera waits for as many as camera_drift
    # judges its strength on, so one odd group at the door does not set them.
    min_tracks: int = 30
    windows_per_track: int = 12  # the policy's window budget: the windows a decision sees
    window_windows: int = 20_000  # about 2,000 walkers of up to 12 windows, as camera_drift's window


@dataclass(frozen=True)
class CameraSnapshot:
    """One camera's statistics as they stood: what a CameraStateStore keeps."""

    store_id: str
    camera_id: str
    mean: np.ndarray  # [D]
    var: np.ndarray  # [D]
    windows: int
    tracks: int

    def problem(self) -> str | None:
        """Why this snapshot cannot be taken back (None: it can)."""
        mean, var = np.asarray(self.mean), np.asarray(self.var)
        if mean.ndim != 1 or mean.shape != var.shape:
            return f"mean {mean.shape} and variance {var.shape} are not two vectors of one length"
        if not (np.isfinite(mean).all() and np.isfinite(var).all()) or (var < 0).any():
            return "not finite, or a negative variance"
        if self.windows < 1 or self.tracks < 1 or self.tracks > self.windows:
            return f"{self.tracks} walkers over {self.windows} windows"
        return None


@dataclass
class _Running:
    mean: np.ndarray
    var: np.ndarray
    windows: int = 1
    tracks: int = 1


@dataclass
class CameraStatistics:
    renormalise: Renormalise
    config: StatisticsConfig = field(default_factory=StatisticsConfig)
    max_remembered_tracks: int = 100_000  # bounded memory: windows counted per live track
    _cameras: dict[tuple[str, str], _Running] = field(default_factory=dict)
    _counted: OrderedDict[TrackKey, int] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, track: TrackKey, projection: np.ndarray) -> bool:
        """One window's projection into its camera's statistics (up to windows_per_track a
        track). True when this window made the camera's statistics usable: embeddings from
        then on are normalised with them, so what was judged of the camera before (its
        strength) no longer describes them."""
        value = np.asarray(projection, dtype=np.float64)
        key = (track.store_id, track.camera_id)
        with self._lock:
            counted = self._counted.pop(track, 0)
            self._counted[track] = counted + 1
            while len(self._counted) > self.max_remembered_tracks:
                self._counted.popitem(last=False)
            if counted >= self.config.windows_per_track:
                return False
            camera = self._cameras.get(key)
            if camera is None:
                self._cameras[key] = _Running(value.copy(), np.zeros_like(value))
                return self.config.min_tracks <= 1
            was_ready = camera.tracks >= self.config.min_tracks
            camera.windows += 1
            camera.tracks += counted == 0
            # West's weighted update: with weight 1/n it is the exact mean and population
            # variance of the n windows; past window_windows the weight stays fixed (fading).
            weight = 1.0 / min(camera.windows, self.config.window_windows)
            delta = value - camera.mean
            camera.mean += weight * delta
            camera.var = (1.0 - weight) * (camera.var + weight * delta * delta)
            return not was_ready and camera.tracks >= self.config.min_tracks

    def _ready(self, store_id: str, camera_id: str) -> _Running | None:
        camera = self._cameras.get((store_id, camera_id))
        return camera if camera is not None and camera.tracks >= self.config.min_tracks else None

    def adapted(self, store_id: str, camera_id: str) -> bool:
        """Whether the camera's windows are normalised with its own statistics (for metrics:
        no copy of them)."""
        with self._lock:
            return self._ready(store_id, camera_id) is not None

    def statistics(self, store_id: str, camera_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The camera's (mean, variance), or None until min_tracks walkers were seen."""
        with self._lock:
            camera = self._ready(store_id, camera_id)
            return None if camera is None else (camera.mean.astype(np.float32), camera.var.astype(np.float32))

    def embedding(self, track: TrackKey, projection: np.ndarray) -> np.ndarray | None:
        """The window's embedding normalised with its camera's statistics; None while the
        camera has none yet (the model's own embedding stands)."""
        stats = self.statistics(track.store_id, track.camera_id)
        return None if stats is None else self.renormalise(projection, *stats)

    def cameras(self) -> dict[tuple[str, str], tuple[int, bool]]:
        """(store, camera) -> (walkers counted, whether its statistics are in use), for metrics."""
        with self._lock:
            return {key: (c.tracks, c.tracks >= self.config.min_tracks) for key, c in self._cameras.items()}

    def snapshots(self) -> list[CameraSnapshot]:
        """Every camera's statistics as they stand (copies)."""
        with self._lock:
            return [CameraSnapshot(store, camera, c.mean.copy(), c.var.copy(), c.windows, c.tracks)
                    for (store, camera), c in self._cameras.items()]

    def restore(self, snapshots: Sequence[CameraSnapshot], overwrite: bool = False) -> list[tuple[CameraSnapshot, str]]:
        """Cameras measured elsewhere: by an earlier run, taken where this one has not
        measured them itself (its own are newer); with overwrite, in place of its own (the
        matcher's, which an edge receives with each hot cache, are newer than the edge's).
        A camera with min_tracks walkers is adapted at once. Returns the snapshots refused,
        each with why (the rest were taken or superseded)."""
        refused = []
        with self._lock:
            for snap in snapshots:
                if (why := snap.problem()) is not None:
                    refused.append((snap, why))
                    continue
                key = (snap.store_id, snap.camera_id)
                if overwrite or key not in self._cameras:
                    self._cameras[key] = _Running(np.asarray(snap.mean, dtype=np.float64).copy(),
                                                  np.asarray(snap.var, dtype=np.float64).copy(),
                                                  int(snap.windows), int(snap.tracks))
        return refused
