"""Billing's business figures for Prometheus (mesh.figures): visits (sessions ever opened)
and sessions by state."""

from __future__ import annotations

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mesh.figures import DatabaseFigures


class BillingFigures(DatabaseFigures):
    PREFIX = "gaitpay_billing"

    def read(self, conn: psycopg.Connection) -> list[Metric]:
        states = conn.execute("SELECT state, count(*) FROM billing.sessions GROUP BY state").fetchall()
        visits = CounterMetricFamily("gaitpay_billing_visits", "Store sessions ever opened (one per tracked "
                                     "shopper and visit).", value=sum(n for _, n in states))
        by_state = GaugeMetricFamily("gaitpay_billing_sessions", "Store sessions by state.", labels=["state"])
        for state, n in states:
            by_state.add_metric([state], n)
        return [visits, by_state]
