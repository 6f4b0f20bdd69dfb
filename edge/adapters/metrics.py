"""The edge's figures for Prometheus, read from the running pipeline at scrape time: what
became of the gait windows (to the matcher, decided offline, dropped), the event queue's
backlog, the hot cache, and each camera. An edge process that runs no cameras reports zero
windows and an empty queue, so the alerts read the same series everywhere."""

from __future__ import annotations

import time
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.runtime import EdgeRuntime


class EdgeFigures(Collector):
    def __init__(self, runtime: EdgeRuntime | None) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime
        report = runtime.report if runtime is not None else None
        windows = CounterMetricFamily("gaitpay_edge_windows", "Gait windows cut from tracks, by what became of "
                                      "them: sent (to the matcher), offline (decided against the hot cache), "
                                      "dropped (matcher unreachable and no usable hot cache).", labels=["outcome"])
        for outcome, value in (("sent", report.windows_sent if report else 0),
                               ("offline", report.windows_identified_offline if report else 0),
                               ("dropped", report.windows_dropped_offline if report else 0)):
            windows.add_metric([outcome], value)
        yield windows
        depth = GaugeMetricFamily("gaitpay_edge_queued_events", "Store events waiting for billing's acknowledgement.")
        age = GaugeMetricFamily("gaitpay_edge_queue_oldest_age_seconds", "How long the oldest event waiting for "
                                "billing has waited (0 when none waits).")
        oldest = runtime.queue.oldest_queued_at() if runtime is not None else None
        depth.add_metric([], runtime.queue.depth() if runtime is not None else 0)
        age.add_metric([], max(0.0, time.time() - oldest) if oldest is not None else 0.0)
        yield depth
        yield age
        cache = runtime.hot_cache if runtime is not None else None
        customers = GaugeMetricFamily("gaitpay_edge_hot_cache_customers", "Customers in the hot cache in use.")
        customers.add_metric([], cache.customers if cache is not None else 0)
        yield customers
        if cache is not None:
            expires = GaugeMetricFamily("gaitpay_edge_hot_cache_expires_timestamp_seconds",
                                        "When the hot cache in use expires (unix seconds).")
            expires.add_metric([], cache.expires_at)
            yield expires
        frames = CounterMetricFamily("gaitpay_edge_camera_frames", "Frames processed per camera.", labels=["camera"])
        up = GaugeMetricFamily("gaitpay_edge_camera_up", "1 while a camera's source delivers frames.",
                               labels=["camera"])
        for camera in list(report.cameras) if report else []:
            frames.add_metric([camera.camera_id], camera.frames)
            up.add_metric([camera.camera_id], 0 if camera.stopped else 1)
        yield frames
        yield up
