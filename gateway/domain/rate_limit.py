"""Token buckets per API key: `rate` tokens a second up to `burst`; a request takes one.

Buckets live in the gateway process, so with N replicas a key's effective limit is up to N
times its rate; the HPA keeps N small and the backends have their own limits. A shared
limiter (Redis, Envoy's rate limit service) is the step up if that ever matters.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._max = max_buckets

    def retry_after(self, key: str, rate: float, burst: float) -> int:
        """0 when the request may pass, else whole seconds to wait (for Retry-After)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            if len(self._buckets) >= self._max:
                self._buckets.clear()  # bounded memory; a reset only forgives
            bucket = self._buckets[key] = TokenBucket(rate, burst, burst, now)
        wait = bucket.take(now)
        return 0 if wait == 0 else max(1, math.ceil(wait))
