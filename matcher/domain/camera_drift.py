"""Whether a camera's embeddings still look like those the score model was measured on.

Why: the open-set policy's false-match estimate rests on an impostor score model measured
on synthetic walkers, whose embeddings point every way (the mean of a camera's walks has a
norm, here called its strength, of about 0.15). Real walkers seen by one real camera share a
direction: over the UCalgary walkers' 2 s windows the strength is 0.81, two strangers
score about 0.65 against each other instead of 0.14, and the policy, replayed over them,
charged 11 of 74 stranger visits at its 1e-4 bound (`gaitpay eval`, docs/gait.md "Fourth
round"). Until a camera's embeddings are normalised with its own statistics
(camera_statistics), a strong shared direction means the score model does not hold for that
camera, so the matcher must not charge on it.

The strength is the norm of the running mean of each track's first window, per camera: one
window a walker, so a shopper who lingers does not count as many people. It is judged only
after `min_tracks` walkers; past `window_tracks`, older walkers fade out (an exponential
mean), so a camera that is moved or re-lit is judged on what it sees now.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from matcher.domain.windows import TrackKey


@dataclass(frozen=True)
class DriftConfig:
    # Synthetic walkers: 0.14-0.18 (50-200 tracks), 0.35 through one fixed camera's geometry;
    # real walkers from one camera: 0.81. Between the two, nearer the synthetic side: cautious.
    max_strength: float = 0.5
    min_tracks: int = 30  # the mean of 30 unrelated unit vectors in 128-D has norm about 0.18
    window_tracks: int = 2000


@dataclass(frozen=True)
class DriftSnapshot:
    """One camera's running mean as it stood (tracks 0: judged afresh since its statistics
    changed): what a CameraStateStore keeps, so that a restarted matcher holds back a camera
    that the one before it held back."""

    store_id: str
    camera_id: str
    mean: np.ndarray  # [D]
    tracks: int
    # Whether the embeddings it was measured on were normalised with the camera's own
    # statistics (set by whoever keeps it: only a run that normalises them alike may take it).
    adapted: bool = False

    def problem(self) -> str | None:
        """Why this snapshot cannot be taken back (None: it can)."""
        mean = np.asarray(self.mean)
        if mean.ndim != 1 or not np.isfinite(mean).all():
            return "the mean is not one finite vector"
        if self.tracks < 0 or (self.tracks and np.linalg.norm(mean) > 1.0 + 1e-3):
            return f"{self.tracks} walkers, a mean of unit vectors longer than 1"
        return None


@dataclass
class _Camera:
    mean: np.ndarray
    tracks: int = 0  # 0: reset, judged afresh from the next walker


@dataclass
class CameraDrift:
    config: DriftConfig = field(default_factory=DriftConfig)
    max_remembered_tracks: int = 100_000  # bounded memory: tracks seen, to count each once
    _cameras: dict[tuple[str, str], _Camera] = field(default_factory=dict)
    _seen: OrderedDict[TrackKey, None] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, track: TrackKey, embedding: np.ndarray) -> None:
        """One window's embedding (L2-normalised, as the model gives it); only a track's
        first window counts."""
        with self._lock:
            if track in self._seen:
                return
            self._seen[track] = None
            while len(self._seen) > self.max_remembered_tracks:
                self._seen.popitem(last=False)
            vector = np.asarray(embedding, dtype=np.float64)
            camera = self._cameras.get((track.store_id, track.camera_id))
            if camera is None or camera.tracks == 0:
                self._cameras[(track.store_id, track.camera_id)] = _Camera(vector.copy(), 1)
                return
            camera.tracks += 1
            weight = 1.0 / min(camera.tracks, self.config.window_tracks)
            camera.mean += weight * (vector - camera.mean)

    def reset(self, store_id: str, camera_id: str) -> None:
        """Judge the camera afresh from its next walkers: its embeddings changed (they are now
        normalised with its own statistics, camera_statistics), so its mean so far describes
        embeddings it no longer produces. The camera stays, with no walkers, so that a kept
        snapshot of it says so too."""
        with self._lock:
            camera = self._cameras.get((store_id, camera_id))
            if camera is not None:
                self._cameras[(store_id, camera_id)] = _Camera(np.zeros_like(camera.mean), 0)

    def strength(self, store_id: str, camera_id: str) -> float | None:
        """The norm of the camera's mean embedding; None until min_tracks walkers were seen."""
        with self._lock:
            camera = self._cameras.get((store_id, camera_id))
            if camera is None or camera.tracks < self.config.min_tracks:
                return None
            return float(np.linalg.norm(camera.mean))

    def drifted(self, track: TrackKey) -> float | None:
        """The camera's strength where it is beyond the bound (identification must wait), else None."""
        return self.drifted_camera(track.store_id, track.camera_id)

    def drifted_camera(self, store_id: str, camera_id: str) -> float | None:
        """drifted, for a camera rather than one of its tracks."""
        strength = self.strength(store_id, camera_id)
        return strength if strength is not None and strength > self.config.max_strength else None

    def cameras(self) -> dict[tuple[str, str], tuple[int, float]]:
        """(store, camera) -> (walkers seen, strength), for metrics and operators."""
        with self._lock:
            return {key: (c.tracks, float(np.linalg.norm(c.mean))) for key, c in self._cameras.items()}

    def snapshots(self) -> list[DriftSnapshot]:
        """Every camera's running mean as it stands (copies)."""
        with self._lock:
            return [DriftSnapshot(store, camera, c.mean.copy(), c.tracks) for (store, camera), c in self._cameras.items()]

    def restore(self, snapshots: Sequence[DriftSnapshot], overwrite: bool = False) -> list[tuple[DriftSnapshot, str]]:
        """Cameras judged elsewhere: by an earlier run, taken where this one has not seen
        them (its own are newer); with overwrite, in place of its own. A camera with
        min_tracks walkers is judged at once. Returns the snapshots refused, each with why."""
        refused = []
        with self._lock:
            for snap in snapshots:
                if (why := snap.problem()) is not None:
                    refused.append((snap, why))
                elif overwrite or (snap.store_id, snap.camera_id) not in self._cameras:
                    self._cameras[(snap.store_id, snap.camera_id)] = _Camera(
                        np.asarray(snap.mean, dtype=np.float64).copy(), int(snap.tracks))
        return refused
