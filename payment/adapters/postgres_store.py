"""The payment tables in PostgreSQL (schema payment) through psycopg 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


from mesh import postgres
from payment.domain.events import PublishedEvent
from payment.domain.model import Attempt, LedgerBalance, LedgerLine, Payment, Refund, State

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

_PAYMENT_COLUMNS = ("payment_id::text, idempotency_key, fingerprint, session_id::text, customer_id::text, store_id, "
                    "amount_minor, currency, state, gateway, gateway_reference, refunded_minor, failure_reason, "
                    "attempts, created_at, captured_at, updated_at")


_FEED = postgres.EventFeed("payment.partner_events", "payment.payments", _PAYMENT_COLUMNS)


def _payment(row: dict[str, Any]) -> Payment:
    return Payment(**{**row, "state": State(row["state"]),
                      "attempts": tuple(Attempt(**a) for a in row["attempts"])})


class PostgresTx(postgres.Rows):
    def claim_payment(self, payment: Payment) -> tuple[Payment, bool]:
        # A concurrent claim of the same key waits on the unique index until the first
        # commits, then finds its row: exactly one caller ever talks to the gateways.
        inserted = self._one(
            "INSERT INTO payment.payments (payment_id, idempotency_key, fingerprint, session_id, customer_id, "
            "store_id, amount_minor, currency, state) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING payment_id",
            (payment.payment_id, payment.idempotency_key, payment.fingerprint, payment.session_id,
             payment.customer_id, payment.store_id, payment.amount_minor, payment.currency, payment.state.value))
        row = self._one(f"SELECT {_PAYMENT_COLUMNS} FROM payment.payments WHERE idempotency_key = %s FOR UPDATE",
                        (payment.idempotency_key,))
        assert row is not None
        return _payment(row), inserted is not None

    def payment(self, payment_id: str, lock: bool = False) -> Payment | None:
        row = self._one(f"SELECT {_PAYMENT_COLUMNS} FROM payment.payments WHERE payment_id = %s"
                        f"{' FOR UPDATE' if lock else ''}", (payment_id,))
        return _payment(row) if row else None

    def payment_by_reference(self, gateway: str, reference: str, lock: bool = False) -> Payment | None:
        row = self._one(f"SELECT {', '.join('p.' + c for c in _PAYMENT_COLUMNS.split(', '))} "
                        "FROM payment.payments p LEFT JOIN payment.gateway_refs r ON r.payment_id = p.payment_id "
                        "AND r.gateway = %s WHERE r.reference = %s OR (p.gateway = %s AND p.gateway_reference = %s) "
                        f"LIMIT 1{' FOR UPDATE OF p' if lock else ''}", (gateway, reference, gateway, reference))
        return _payment(row) if row else None

    def update_payment(self, payment: Payment) -> None:
        self._c.execute(
            "UPDATE payment.payments SET state = %s, gateway = %s, gateway_reference = %s, refunded_minor = %s, "
            "failure_reason = %s, attempts = %s, captured_at = %s, updated_at = now() WHERE payment_id = %s",
            (payment.state.value, payment.gateway, payment.gateway_reference, payment.refunded_minor,
             payment.failure_reason, json.dumps([a.__dict__ for a in payment.attempts]), payment.captured_at,
             payment.payment_id))

    def gateway_refs(self, payment_id: str) -> dict[str, str]:
        rows = self._all("SELECT gateway, reference FROM payment.gateway_refs WHERE payment_id = %s "
                         "ORDER BY created_at", (payment_id,))
        return {r["gateway"]: r["reference"] for r in rows}

    def save_gateway_ref(self, payment_id: str, gateway: str, reference: str) -> None:
        self._c.execute("INSERT INTO payment.gateway_refs (payment_id, gateway, reference) VALUES (%s,%s,%s) "
                        "ON CONFLICT (payment_id, gateway) DO UPDATE SET reference = EXCLUDED.reference",
                        (payment_id, gateway, reference))

    def drop_gateway_ref(self, payment_id: str, gateway: str) -> None:
        self._c.execute("DELETE FROM payment.gateway_refs WHERE payment_id = %s AND gateway = %s", (payment_id, gateway))

    def post_ledger(self, txn_id: str, payment_id: str, lines: Sequence[LedgerLine]) -> bool:
        inserted = self._one("INSERT INTO payment.ledger_transactions (txn_id, payment_id) VALUES (%s, %s) "
                             "ON CONFLICT DO NOTHING RETURNING txn_id", (txn_id, payment_id))
        if inserted is None:
            return False  # posted before: a state change is never booked twice
        with self._c.cursor() as cur:
            cur.executemany("INSERT INTO payment.ledger_entries (txn_id, account, debit_minor, credit_minor) "
                            "VALUES (%s,%s,%s,%s)", [(txn_id, l.account, l.debit_minor, l.credit_minor) for l in lines])
        return True

    def record_webhook(self, event_id: str, gateway: str, kind: str) -> bool:
        row = self._one("INSERT INTO payment.webhook_events (event_id, gateway, kind) VALUES (%s,%s,%s) "
                        "ON CONFLICT DO NOTHING RETURNING event_id", (event_id, gateway, kind))
        return row is not None

    def refund_for_request(self, request_id: str) -> tuple[Refund, str] | None:
        row = self._one("SELECT refund_id::text, payment_id::text, amount_minor, gateway_reference, state, fingerprint "
                        "FROM payment.refunds WHERE request_id = %s", (request_id,))
        if row is None:
            return None
        fingerprint = row.pop("fingerprint")
        return Refund(**row), fingerprint

    def refund_by_gateway_reference(self, gateway_reference: str) -> Refund | None:
        row = self._one("SELECT refund_id::text, payment_id::text, amount_minor, gateway_reference, state "
                        "FROM payment.refunds WHERE gateway_reference = %s", (gateway_reference,))
        return Refund(**row) if row else None

    def refund_by_id(self, refund_id: str) -> Refund | None:
        row = self._one("SELECT refund_id::text, payment_id::text, amount_minor, gateway_reference, state "
                        "FROM payment.refunds WHERE refund_id = %s", (refund_id,))
        return Refund(**row) if row else None

    def insert_refund(self, refund: Refund, request_id: str, fingerprint: str) -> None:
        self._c.execute("INSERT INTO payment.refunds (refund_id, payment_id, request_id, fingerprint, amount_minor, "
                        "gateway_reference, state) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                        (refund.refund_id, refund.payment_id, request_id, fingerprint, refund.amount_minor,
                         refund.gateway_reference, refund.state))

    def finish_refund(self, refund_id: str, state: str, gateway_reference: str) -> None:
        self._c.execute("UPDATE payment.refunds SET state = %s, gateway_reference = %s WHERE refund_id = %s",
                        (state, gateway_reference, refund_id))

    def pending_refunds_minor(self, payment_id: str) -> int:
        row = self._one("SELECT COALESCE(sum(amount_minor), 0) AS s FROM payment.refunds "
                        "WHERE payment_id = %s AND state = 'pending'", (payment_id,))
        return int(row["s"]) if row else 0

    def unsettled(self, older_than_s: float, processing_stale_s: float) -> list[Payment]:
        rows = self._all(f"SELECT {_PAYMENT_COLUMNS} FROM payment.payments WHERE "
                         "(state = 'unknown' AND updated_at <= now() - make_interval(secs => %s)) OR "
                         "(state = 'processing' AND updated_at <= now() - make_interval(secs => %s)) "
                         "ORDER BY updated_at LIMIT 500", (older_than_s, processing_stale_s))
        return [_payment(r) for r in rows]

    def ledger_balance(self) -> LedgerBalance:
        rows = self._all("SELECT account, sum(debit_minor)::bigint AS d, sum(credit_minor)::bigint AS c "
                         "FROM payment.ledger_entries GROUP BY account ORDER BY account")
        unbalanced = self._one("SELECT count(*) AS n FROM (SELECT txn_id FROM payment.ledger_entries GROUP BY txn_id "
                               "HAVING sum(debit_minor) <> sum(credit_minor)) t")
        accounts = {r["account"]: (int(r["d"]), int(r["c"])) for r in rows}
        return LedgerBalance(accounts=accounts, total_debit=sum(d for d, _ in accounts.values()),
                             total_credit=sum(c for _, c in accounts.values()),
                             unbalanced_transactions=int(unbalanced["n"]) if unbalanced else 0)

    def publish(self, event_type: str, payment_id: str) -> None:
        _FEED.append(self, event_type, "payment_id", payment_id)

    def events_after(self, cursor: str, limit: int) -> tuple[list[PublishedEvent], str]:
        rows, next_cursor = _FEED.page(self, cursor, limit)
        events = [PublishedEvent(r.pop("feed_event_id"), r.pop("feed_type"), r["store_id"], r.pop("feed_at"),
                                 r.pop("feed_cursor"), _payment(r)) for r in rows]
        return events, next_cursor

    def anonymise_customer(self, customer_id: str) -> int:
        n = self._c.execute("UPDATE payment.payments SET customer_id = NULL WHERE customer_id = %s",
                            (customer_id,)).rowcount
        _FEED.forget_customer(self, customer_id)
        return n


class PostgresDatabase(postgres.PooledDatabase[PostgresTx]):
    def __init__(self, dsn: str, max_size: int = 8, timeout_s: float = 5.0) -> None:
        super().__init__(dsn, "payment", MIGRATIONS, PostgresTx, max_size, timeout_s)

    def prune(self, days: float) -> dict[str, int]:
        """Housekeeping: ids of processed webhooks older than `days` (their de-duplication is
        only needed while a gateway may still redeliver: Stripe retries for up to 3 days), and
        partner feed events older than `days`."""
        return {"webhook_ids": self.delete_older("payment.webhook_events", ("received_at",), days),
                "partner_events": _FEED.prune(self, days)}
