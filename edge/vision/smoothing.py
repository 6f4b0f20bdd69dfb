"""The One Euro filter (Casiry, Roussel, Vogel, CHI 2012) over keypoint coordinates: strong
smoothing while a joint is still, little lag while it moves fast, which is what gait needs
(pose jitter at rest, no lag at the heel strike)."""

from __future__ import annotations

import math

import numpy as np


class OneEuro:
    def __init__(self, min_cutoff_hz: float = 1.5, beta: float = 0.02, derivative_cutoff_hz: float = 1.0) -> None:
        self.min_cutoff = min_cutoff_hz
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff_hz
        self._time: float | None = None
        self._value: np.ndarray | None = None
        self._derivative: np.ndarray | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, t: float, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self._time is None or self._value is None or t <= self._time:
            self._time, self._value, self._derivative = t, value, np.zeros_like(value)
            return value.astype(np.float32)
        dt = t - self._time
        derivative = (value - self._value) / dt
        a_d = self._alpha(self.derivative_cutoff, dt)
        self._derivative = a_d * derivative + (1 - a_d) * self._derivative
        cutoff = self.min_cutoff + self.beta * np.abs(self._derivative)
        a = self._alpha(cutoff, dt)
        self._value = a * value + (1 - a) * self._value
        self._time = t
        return self._value.astype(np.float32)
