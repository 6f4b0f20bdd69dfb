"""Lines on a camera's floor that mean something to the store: crossing the entry line
inwards opens a visit, crossing the exit line outwards closes it.

Lines are given in normalised image coordinates (0..1), so one configuration fits any
resolution of the same camera. A line runs from `a` to `b`; it fires when a track's foot
point moves from the right-hand side of a->b (as drawn on the image, y down) to the left."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANKLES = (15, 16)
HIPS = (11, 12)


@dataclass(frozen=True)
class Line:
    name: str  # "entry" or "exit" (or an aisle's name)
    a: tuple[float, float]
    b: tuple[float, float]

    @classmethod
    def parse(cls, name: str, text: str) -> "Line":
        """`x0,y0,x1,y1` in 0..1, e.g. `0.75,1,0.75,0`."""
        try:
            x0, y0, x1, y1 = (float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"{name} line must be four numbers x0,y0,x1,y1 in 0..1, got {text!r}") from None
        if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)) or (x0, y0) == (x1, y1):
            raise ValueError(f"{name} line must join two different points inside the image (0..1), got {text!r}")
        return cls(name, (x0, y0), (x1, y1))

    def side(self, point: np.ndarray) -> float:
        ax, ay = self.a
        bx, by = self.b
        return (bx - ax) * (point[1] - ay) - (by - ay) * (point[0] - ax)

    def _within_span(self, point: np.ndarray) -> bool:
        """The crossing happens between the line's ends (a segment, not an infinite line)."""
        a, b = np.array(self.a), np.array(self.b)
        t = float(np.dot(point - a, b - a) / max(np.dot(b - a, b - a), 1e-12))
        return -0.05 <= t <= 1.05

    def crossed(self, before: np.ndarray, after: np.ndarray) -> bool:
        # side() > 0 is the right-hand side of a->b as drawn on the image (y grows downwards).
        if not (self.side(before) > 0 >= self.side(after)):
            return False
        s0, s1 = self.side(before), self.side(after)
        crossing = before + (after - before) * (s0 / (s0 - s1))
        return self._within_span(crossing)


def foot_point(keypoints: np.ndarray, width: int, height: int, min_confidence: float = 0.3) -> np.ndarray | None:
    """Where the person stands, normalised: between the ankles, or the hips when the feet are hidden."""
    for joints in (ANKLES, HIPS):
        seen = keypoints[list(joints)]
        seen = seen[seen[:, 2] >= min_confidence]
        if len(seen):
            x, y = seen[:, :2].mean(axis=0)
            return np.array([x / width, y / height])
    return None
