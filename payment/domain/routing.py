"""Per-gateway circuit breakers, a retry budget and backoff: the parts of smart routing
that decide whether to try a gateway, try it again, or move to the next one."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class RoutingConfig:
    # Consecutive technical failures that open a gateway's circuit.
    failure_threshold: int = 5
    # How long an open circuit refuses calls before letting one probe through.
    open_for_s: float = 10.0
    # Retries on the same gateway before failing over (technical failures only).
    max_retries_per_gateway: int = 1
    # Retries may add at most this fraction of calls (plus a floor per second): a retry storm
    # during an outage would otherwise multiply the load on a struggling gateway.
    retry_ratio: float = 0.2
    retry_floor_per_s: float = 1.0
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 0.5


class CircuitBreaker:
    """closed -> (threshold consecutive failures) -> open -> (open_for_s) -> half-open:
    one probe; its success closes, its failure opens again."""

    def __init__(self, config: RoutingConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config, self._clock = config, clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self._config.open_for_s else "open"

    def allow(self) -> bool:
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self._config.failure_threshold:
                self._opened_at, self._probing = self._clock(), False


class RetryBudget:
    """Token bucket over a 10 s window: each call deposits retry_ratio tokens, each retry
    spends one; a floor lets a quiet service still retry."""

    WINDOW_S = 10.0

    def __init__(self, config: RoutingConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config, self._clock = config, clock
        self._lock = threading.Lock()
        self._cap = max(1.0, config.retry_floor_per_s * self.WINDOW_S)
        self._tokens = self._cap
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._cap, self._tokens + (now - self._at) * self._config.retry_floor_per_s)
        self._at = now

    def deposit(self) -> None:
        with self._lock:
            self._refill()
            self._tokens = min(self._cap, self._tokens + self._config.retry_ratio)

    def try_spend(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def backoff_s(config: RoutingConfig, retry: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff."""
    ceiling = min(config.backoff_cap_s, config.backoff_base_s * (2 ** retry))
    return (rng or random).uniform(0, ceiling)
