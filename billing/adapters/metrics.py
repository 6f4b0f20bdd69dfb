"""Billing's business figures for Prometheus, read from PostgreSQL at scrape time (the same
on every replica; dashboards take max): visits (sessions ever opened) and sessions by state.
A failed read sets gaitpay_billing_metrics_up to 0 instead of failing the scrape."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mesh.postgres import open_pool


class BillingFigures(Collector):
    def __init__(self, dsn: str) -> None:
        self._pool = open_pool(dsn, min_size=0, max_size=1, timeout_s=2.0, statement_timeout_ms=2000)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("gaitpay_billing_metrics_up", "1 when the billing figures below could be read.")
        try:
            with self._pool.connection() as conn:
                states = conn.execute("SELECT state, count(*) FROM billing.sessions GROUP BY state").fetchall()
        except Exception:  # noqa: BLE001 - reported as a figure, never a failed scrape
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield CounterMetricFamily("gaitpay_billing_visits", "Store sessions ever opened (one per tracked shopper "
                                  "and visit).", value=sum(n for _, n in states))
        by_state = GaugeMetricFamily("gaitpay_billing_sessions", "Store sessions by state.", labels=["state"])
        for state, n in states:
            by_state.add_metric([state], n)
        yield by_state

    def close(self) -> None:
        self._pool.close()
