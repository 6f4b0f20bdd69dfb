"""Gait windows cut from a track as it grows: a fixed span of time, overlapping by half, so
the matcher's evidence accumulates while the shopper is still walking."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BODY = [5, 6, 11, 12, 13, 14, 15, 16]  # shoulders, hips, knees, ankles


@dataclass(frozen=True)
class WindowSpec:
    seconds: float = 2.0  # about two gait cycles
    overlap: float = 0.5
    min_quality: float = 0.5


@dataclass(frozen=True)
class CutWindow:
    sequence: int
    keypoints: np.ndarray  # float32 [T, 23, 3]
    first_frame: int
    last_frame: int
    quality: float
    # The walker's body measures over the window [shoulder, hip] in metres, where the camera
    # is calibrated (gait.body.measure); None otherwise.
    body: np.ndarray | None = None


def window_quality(keypoints: np.ndarray) -> float:
    """Mean confidence of the body joints gait is read from, in [0, 1]."""
    return float(np.clip(keypoints[:, BODY, 2].mean(), 0.0, 1.0))


@dataclass
class WindowCutter:
    fps: float
    spec: WindowSpec = field(default_factory=WindowSpec)
    _frames: list[int] = field(default_factory=list)
    _points: list[np.ndarray] = field(default_factory=list)
    _next_start: int = 0
    _sequence: int = 0

    @property
    def length(self) -> int:
        return max(8, round(self.spec.seconds * self.fps))

    def add(self, frame: int, keypoints: np.ndarray) -> list[CutWindow]:
        """Add one frame of a track; returns the windows it completes (those good enough)."""
        self._frames.append(frame)
        self._points.append(keypoints)
        out = []
        step = max(1, round(self.length * (1 - self.spec.overlap)))
        while len(self._points) - self._next_start >= self.length:
            chunk = np.stack(self._points[self._next_start:self._next_start + self.length]).astype(np.float32)
            quality = window_quality(chunk)
            if quality >= self.spec.min_quality:
                out.append(CutWindow(self._sequence, chunk, self._frames[self._next_start],
                                     self._frames[self._next_start + self.length - 1], quality))
                self._sequence += 1
            self._next_start += step
        return out
