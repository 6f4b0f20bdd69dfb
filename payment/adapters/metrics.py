"""The payment service's business figures for Prometheus, read from PostgreSQL at scrape
time (mesh.figures):

- gaitpay_payment_attempts_total{gateway,outcome}: every try at a gateway (approval rate);
- gaitpay_payment_unknown / gaitpay_payment_unknown_oldest_age_seconds: the UNKNOWN backlog;
- gaitpay_payment_webhook_last_received_timestamp_seconds{gateway}: webhook lag;
- gaitpay_payment_ledger_imbalance_minor and gaitpay_payment_ledger_unbalanced_transactions:
  both must stay 0;
- gaitpay_payment_payments{state}, gaitpay_payment_captured_minor_total: the business view.
"""

from __future__ import annotations

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mesh.figures import DatabaseFigures
from payment.adapters.postgres_store import PostgresTx


class PaymentFigures(DatabaseFigures):
    PREFIX = "gaitpay_payment"

    def read(self, conn: psycopg.Connection) -> list[Metric]:
        attempts = conn.execute(
            "SELECT a->>'gateway', a->>'outcome', count(*) FROM payment.payments, "
            "jsonb_array_elements(attempts) a GROUP BY 1, 2").fetchall()
        states = conn.execute("SELECT state, count(*) FROM payment.payments GROUP BY state").fetchall()
        unknown = conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(updated_at)), 0) "
            "FROM payment.payments WHERE state = 'unknown'").fetchone()
        webhooks = conn.execute("SELECT gateway, extract(epoch FROM max(received_at)) "
                                "FROM payment.webhook_events GROUP BY gateway").fetchall()
        ledger = PostgresTx(conn).ledger_balance()  # the same check GetLedgerBalance answers with
        captured = conn.execute("SELECT gateway, coalesce(sum(amount_minor), 0) FROM payment.payments "
                                "WHERE captured_at IS NOT NULL GROUP BY gateway").fetchall()
        assert unknown is not None
        tries = CounterMetricFamily("gaitpay_payment_attempts", "Tries at a payment gateway, by outcome (captured, "
                                    "declined, requires_action, technical_failure, unknown, skipped_circuit_open).",
                                    labels=["gateway", "outcome"])
        for gateway, outcome, n in attempts:
            tries.add_metric([gateway or "", outcome or ""], n)
        by_state = GaugeMetricFamily("gaitpay_payment_payments", "Payments by state.", labels=["state"])
        for state, n in states:
            by_state.add_metric([state], n)
        last = GaugeMetricFamily("gaitpay_payment_webhook_last_received_timestamp_seconds",
                                 "When the last webhook of each gateway arrived (Unix time).", labels=["gateway"])
        for gateway, at in webhooks:
            last.add_metric([gateway], float(at))
        money = CounterMetricFamily("gaitpay_payment_captured_minor", "Money captured, in minor units, by gateway.",
                                    labels=["gateway"])
        for gateway, amount in captured:
            money.add_metric([gateway], int(amount))
        return [
            tries, by_state, last, money,
            GaugeMetricFamily("gaitpay_payment_unknown", "Payments whose outcome is UNKNOWN (the reconciler's "
                              "backlog).", value=unknown[0]),
            GaugeMetricFamily("gaitpay_payment_unknown_oldest_age_seconds", "Age of the oldest UNKNOWN payment.",
                              value=float(unknown[1])),
            GaugeMetricFamily("gaitpay_payment_ledger_imbalance_minor", "Total debits minus total credits of the "
                              "ledger, in minor units: must be 0.", value=ledger.total_debit - ledger.total_credit),
            GaugeMetricFamily("gaitpay_payment_ledger_unbalanced_transactions", "Ledger transactions whose own "
                              "entries do not balance: must be 0.", value=ledger.unbalanced_transactions),
        ]
