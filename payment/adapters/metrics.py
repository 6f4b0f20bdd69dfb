"""The payment service's business figures for Prometheus, read from PostgreSQL at scrape
time, so they survive restarts and agree across replicas (each replica reports the same
totals; alert rules aggregate with max, not sum):

- gaitpay_payment_attempts_total{gateway,outcome}: every try at a gateway (approval rate);
- gaitpay_payment_unknown / gaitpay_payment_unknown_oldest_age_seconds: the UNKNOWN backlog;
- gaitpay_payment_webhook_last_received_timestamp_seconds{gateway}: webhook lag;
- gaitpay_payment_ledger_imbalance_minor and gaitpay_payment_ledger_unbalanced_transactions:
  both must stay 0;
- gaitpay_payment_payments{state}, gaitpay_payment_captured_minor_total: the business view.
A failed read sets gaitpay_payment_metrics_up to 0 instead of failing the scrape.
"""

from __future__ import annotations

from typing import Iterator

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mesh.postgres import open_pool

log = structlog.get_logger("payment.metrics")


class PaymentFigures(Collector):
    def __init__(self, dsn: str) -> None:
        # A pool of its own, small, with a short statement timeout: a scrape never queues
        # behind charges, and a slow database shows as metrics_up 0, not a hung scrape.
        self._pool = open_pool(dsn, min_size=0, max_size=1, timeout_s=2.0, statement_timeout_ms=2000)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("gaitpay_payment_metrics_up", "1 when the payment figures below could be read.")
        try:
            with self._pool.connection() as conn:
                attempts = conn.execute(
                    "SELECT a->>'gateway', a->>'outcome', count(*) FROM payment.payments, "
                    "jsonb_array_elements(attempts) a GROUP BY 1, 2").fetchall()
                states = conn.execute("SELECT state, count(*) FROM payment.payments GROUP BY state").fetchall()
                unknown = conn.execute(
                    "SELECT count(*), coalesce(extract(epoch FROM now() - min(updated_at)), 0) "
                    "FROM payment.payments WHERE state = 'unknown'").fetchone()
                webhooks = conn.execute("SELECT gateway, extract(epoch FROM max(received_at)) "
                                        "FROM payment.webhook_events GROUP BY gateway").fetchall()
                ledger = conn.execute("SELECT coalesce(sum(debit_minor) - sum(credit_minor), 0) "
                                      "FROM payment.ledger_entries").fetchone()
                unbalanced = conn.execute(
                    "SELECT count(*) FROM (SELECT txn_id FROM payment.ledger_entries GROUP BY txn_id "
                    "HAVING sum(debit_minor) <> sum(credit_minor)) t").fetchone()
                captured = conn.execute(
                    "SELECT gateway, coalesce(sum(amount_minor), 0) FROM payment.payments "
                    "WHERE captured_at IS NOT NULL GROUP BY gateway").fetchall()
        except Exception as exc:  # noqa: BLE001 - reported as a figure, never a failed scrape
            log.warning("payment.metrics_unreadable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        tries = CounterMetricFamily("gaitpay_payment_attempts", "Tries at a payment gateway, by outcome (captured, "
                                    "declined, requires_action, technical_failure, unknown, skipped_circuit_open).",
                                    labels=["gateway", "outcome"])
        for gateway, outcome, n in attempts:
            tries.add_metric([gateway or "", outcome or ""], n)
        yield tries
        by_state = GaugeMetricFamily("gaitpay_payment_payments", "Payments by state.", labels=["state"])
        for state, n in states:
            by_state.add_metric([state], n)
        yield by_state
        assert unknown is not None and ledger is not None and unbalanced is not None
        yield GaugeMetricFamily("gaitpay_payment_unknown", "Payments whose outcome is UNKNOWN (the reconciler's "
                                "backlog).", value=unknown[0])
        yield GaugeMetricFamily("gaitpay_payment_unknown_oldest_age_seconds", "Age of the oldest UNKNOWN payment.",
                                value=float(unknown[1]))
        last = GaugeMetricFamily("gaitpay_payment_webhook_last_received_timestamp_seconds",
                                 "When the last webhook of each gateway arrived (Unix time).", labels=["gateway"])
        for gateway, at in webhooks:
            last.add_metric([gateway], float(at))
        yield last
        yield GaugeMetricFamily("gaitpay_payment_ledger_imbalance_minor", "Total debits minus total credits of the "
                                "ledger, in minor units: must be 0.", value=ledger[0])
        yield GaugeMetricFamily("gaitpay_payment_ledger_unbalanced_transactions", "Ledger transactions whose own "
                                "entries do not balance: must be 0.", value=unbalanced[0])
        money = CounterMetricFamily("gaitpay_payment_captured_minor", "Money captured, in minor units, by gateway.",
                                    labels=["gateway"])
        for gateway, amount in captured:
            money.add_metric([gateway], int(amount))
        yield money

    def close(self) -> None:
        self._pool.close()
