"""`gaitpay bench stack`: how long `up` takes and how much memory the running stack holds."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import psutil

from gaitpay_cli import stack
from mesh import config


@dataclass(frozen=True)
class StackSample:
    up_seconds: float
    rss_mib: dict[str, float]
    pss_mib: dict[str, float]


def memory_by_part(state: stack.StackState) -> tuple[dict[str, float], dict[str, float]]:
    """RSS and PSS (shared pages split between sharers) of each part's process group."""
    groups = {r.pgid: r.name for r in state.records if r.pgid}
    rss: dict[str, float] = {name: 0.0 for name in groups.values()}
    pss: dict[str, float] = dict(rss)
    for proc in psutil.process_iter():
        try:
            name = groups.get(proc.pid) or groups.get(os.getpgid(proc.pid))
            if name is None:
                continue
            info = proc.memory_full_info()
        except (psutil.Error, ProcessLookupError):
            continue
        rss[name] += info.rss / 2**20
        pss[name] += getattr(info, "pss", info.rss) / 2**20
    return rss, pss


def measure(settings: config.Settings, runs: int) -> list[StackSample]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        state = stack.up(settings)
        elapsed = time.perf_counter() - t0
        time.sleep(1.0)  # let start-up allocations settle
        rss, pss = memory_by_part(state)
        stack.down(settings)
        samples.append(StackSample(elapsed, rss, pss))
    return samples


def summary(samples: list[StackSample]) -> dict[str, float]:
    return {
        "up_seconds_median": statistics.median(s.up_seconds for s in samples),
        "up_seconds_min": min(s.up_seconds for s in samples),
        "up_seconds_max": max(s.up_seconds for s in samples),
        "rss_mib_median": statistics.median(sum(s.rss_mib.values()) for s in samples),
        "pss_mib_median": statistics.median(sum(s.pss_mib.values()) for s in samples),
    }
