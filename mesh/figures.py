"""Business figures read from a service's PostgreSQL schema at scrape time, for Prometheus.

Read from the database, they survive restarts and every replica reports the same totals
(rules and dashboards aggregate them with max, not sum). Each collector has a pool of one
connection with a short statement timeout, so a scrape never queues behind the service's
own work, and a failed read shows as `<prefix>_metrics_up 0` instead of a failed scrape."""

from __future__ import annotations

from typing import Iterator

import psycopg
import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mesh.postgres import open_pool

log = structlog.get_logger("mesh.figures")


class DatabaseFigures(Collector):
    PREFIX = ""  # gaitpay_<service>

    def __init__(self, dsn: str) -> None:
        self._pool = open_pool(dsn, min_size=0, max_size=1, timeout_s=2.0, statement_timeout_ms=2000)

    def read(self, conn: psycopg.Connection) -> list[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{self.PREFIX}_metrics_up", "1 when the figures below could be read.")
        try:
            with self._pool.connection() as conn:
                figures = self.read(conn)
        except Exception as exc:  # noqa: BLE001 - reported as a figure, never a failed scrape
            log.warning("figures.unreadable", prefix=self.PREFIX, error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures

    def close(self) -> None:
        self._pool.close()
