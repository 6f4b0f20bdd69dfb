"""The billing tables in PostgreSQL (schema billing) through psycopg 3."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from billing.domain.bill import Item, Line
from billing.domain.events import PublishedEvent
from billing.domain.model import Session, StoreEvent
from billing.domain.notifications import Notification
from mesh import postgres

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_COLUMNS = ("session_id::text, store_id, track_id, customer_id::text, false_match_probability, state, "
            "decision_reason, lines, entered_at, exited_at, payment_id, confirmation_deadline, active_elsewhere")


_FEED = postgres.EventFeed("billing.partner_events", "billing.sessions", _COLUMNS)


def _session(row: dict[str, Any]) -> Session:
    lines = tuple(Line(Item(**l["item"]), l["quantity"]) for l in row.pop("lines"))
    return Session(**row, lines=lines)


class PostgresTx(postgres.Rows):
    REQUESTS_TABLE = "billing.requests"

    def record_event(self, event: StoreEvent) -> str | None:
        row = self._one("INSERT INTO billing.events (event_id, kind, store_id, occurred_at) VALUES (%s,%s,%s,%s) "
                        "ON CONFLICT DO NOTHING RETURNING event_id",
                        (event.event_id, event.kind, event.store_id, event.occurred_at))
        return "new" if row else None

    def event_session(self, event_id: str) -> str:
        row = self._one("SELECT session_id::text FROM billing.events WHERE event_id = %s", (event_id,))
        return (row or {}).get("session_id") or ""

    def link_event(self, event_id: str, session_id: str) -> None:
        self._c.execute("UPDATE billing.events SET session_id = %s WHERE event_id = %s", (session_id, event_id))

    def session_for_track(self, store_id: str, track_id: str, lock: bool = True) -> Session | None:
        row = self._one(f"SELECT {_COLUMNS} FROM billing.sessions WHERE store_id = %s AND track_id = %s"
                        f"{' FOR UPDATE' if lock else ''}", (store_id, track_id))
        return _session(row) if row else None

    def session(self, session_id: str, lock: bool = False) -> Session | None:
        row = self._one(f"SELECT {_COLUMNS} FROM billing.sessions WHERE session_id = %s{' FOR UPDATE' if lock else ''}",
                        (session_id,))
        return _session(row) if row else None

    def insert_session(self, session: Session) -> None:
        # Two first events of one track racing: the loser's insert waits, then conflicts.
        self._c.execute("INSERT INTO billing.sessions (session_id, store_id, track_id, state) VALUES (%s,%s,%s,%s) "
                        "ON CONFLICT (store_id, track_id) DO NOTHING",
                        (session.session_id, session.store_id, session.track_id, session.state))

    def save_session(self, s: Session) -> None:
        lines = json.dumps([{"item": l.item.__dict__, "quantity": l.quantity} for l in s.lines])
        self._c.execute(
            "UPDATE billing.sessions SET customer_id = %s, false_match_probability = %s, state = %s, "
            "decision_reason = %s, lines = %s, total_minor = %s, entered_at = %s, exited_at = %s, payment_id = %s, "
            "confirmation_deadline = %s, active_elsewhere = %s, updated_at = now() "
            "WHERE store_id = %s AND track_id = %s",
            (s.customer_id, s.false_match_probability, s.state, s.decision_reason, lines, s.bill.total, s.entered_at,
             s.exited_at, s.payment_id, s.confirmation_deadline, s.active_elsewhere, s.store_id, s.track_id))

    def active_elsewhere(self, customer_id: str, store_id: str) -> bool:
        row = self._one("SELECT 1 AS x FROM billing.sessions WHERE customer_id = %s AND store_id <> %s "
                        "AND exited_at IS NULL AND state = 'open' LIMIT 1", (customer_id, store_id))
        return row is not None

    def spent_today_minor(self, customer_id: str) -> int:
        row = self._one("SELECT COALESCE(sum(total_minor), 0) AS s FROM billing.sessions WHERE customer_id = %s "
                        "AND state IN ('paid', 'charging') AND exited_at >= date_trunc('day', now())", (customer_id,))
        return int(row["s"]) if row else 0

    def items(self, store_id: str, skus: Sequence[str]) -> dict[str, Item]:
        rows = self._all("SELECT sku, name, unit_price_minor, gst_rate_bp, discount_bp FROM billing.catalogue "
                         "WHERE store_id = %s AND sku = ANY(%s)", (store_id, list(skus)))
        return {r["sku"]: Item(**r) for r in rows}

    def upsert_items(self, store_id: str, items: Sequence[Item]) -> int:
        with self._c.cursor() as cur:
            cur.executemany(
                "INSERT INTO billing.catalogue (store_id, sku, name, unit_price_minor, gst_rate_bp, discount_bp) "
                "VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (store_id, sku) DO UPDATE SET name = EXCLUDED.name, "
                "unit_price_minor = EXCLUDED.unit_price_minor, gst_rate_bp = EXCLUDED.gst_rate_bp, "
                "discount_bp = EXCLUDED.discount_bp",
                [(store_id, i.sku, i.name, i.unit_price_minor, i.gst_rate_bp, i.discount_bp) for i in items])
        return len(items)

    def sessions(self, store_id: str, after: str, limit: int) -> list[Session]:
        rows = self._all(f"SELECT {_COLUMNS} FROM billing.sessions WHERE store_id = %s AND session_id::text > %s "
                         "ORDER BY session_id LIMIT %s", (store_id, after, limit))
        return [_session(r) for r in rows]

    def due(self, now: datetime) -> tuple[list[Session], list[Session]]:
        expired = self._all(f"SELECT {_COLUMNS} FROM billing.sessions WHERE state = 'awaiting_confirmation' "
                            "AND confirmation_deadline < %s FOR UPDATE SKIP LOCKED", (now,))
        unsettled = self._all(f"SELECT {_COLUMNS} FROM billing.sessions WHERE (state = 'charging' OR "
                              "(state = 'open' AND exited_at IS NOT NULL)) AND updated_at < %s - interval '2 seconds' "
                              "LIMIT 200", (now,))
        return [_session(r) for r in expired], [_session(r) for r in unsettled]

    def save_receipt(self, session_id: str, media_type: str, document: bytes) -> None:
        self._c.execute("INSERT INTO billing.receipts (session_id, media_type, document) VALUES (%s,%s,%s) "
                        "ON CONFLICT DO NOTHING", (session_id, media_type, document))

    def receipt(self, session_id: str) -> tuple[str, bytes] | None:
        row = self._one("SELECT media_type, document FROM billing.receipts WHERE session_id = %s", (session_id,))
        return (row["media_type"], bytes(row["document"])) if row else None

    def enqueue_notification(self, session_id: str, customer_id: str | None, channel: str, subject: str,
                             body: str) -> None:
        self._c.execute("INSERT INTO billing.outbox (session_id, customer_id, channel, subject, body) "
                        "VALUES (%s,%s,%s,%s,%s)", (session_id, customer_id, channel, subject, body))

    def claim_notification(self, channels: Sequence[str], now: datetime) -> Notification | None:
        row = self._one("SELECT notification_id, session_id::text, customer_id::text, channel, subject, body, attempts "
                        "FROM billing.outbox WHERE channel = ANY(%s) AND sent_at IS NULL AND failed_at IS NULL "
                        "AND next_attempt_at <= %s ORDER BY next_attempt_at, notification_id LIMIT 1 "
                        "FOR UPDATE SKIP LOCKED", (list(channels), now))
        return Notification(**row) if row else None

    def notification_sent(self, notification_id: int, attempts: int, now: datetime) -> None:
        self._c.execute("UPDATE billing.outbox SET sent_at = %s, attempts = %s, last_error = NULL "
                        "WHERE notification_id = %s", (now, attempts, notification_id))

    def notification_retry(self, notification_id: int, attempts: int, error: str, at: datetime) -> None:
        self._c.execute("UPDATE billing.outbox SET attempts = %s, last_error = %s, next_attempt_at = %s "
                        "WHERE notification_id = %s", (attempts, error, at, notification_id))

    def notification_failed(self, notification_id: int, attempts: int, error: str, now: datetime) -> None:
        self._c.execute("UPDATE billing.outbox SET attempts = %s, last_error = %s, failed_at = %s "
                        "WHERE notification_id = %s", (attempts, error, now, notification_id))

    def publish(self, event_type: str, session_id: str) -> None:
        _FEED.append(self, event_type, "session_id", session_id)

    def events_after(self, cursor: str, limit: int) -> tuple[list[PublishedEvent], str]:
        rows, next_cursor = _FEED.page(self, cursor, limit)
        events = [PublishedEvent(r.pop("feed_event_id"), r.pop("feed_type"), r["store_id"], r.pop("feed_at"),
                                 r.pop("feed_cursor"), _session(r)) for r in rows]
        return events, next_cursor

    def anonymise_customer(self, customer_id: str) -> int:
        n = self._c.execute("UPDATE billing.sessions SET customer_id = NULL WHERE customer_id = %s",
                            (customer_id,)).rowcount
        self._c.execute("UPDATE billing.outbox SET customer_id = NULL WHERE customer_id = %s", (customer_id,))
        _FEED.forget_customer(self, customer_id)
        return n


class PostgresDatabase(postgres.PooledDatabase[PostgresTx]):
    def __init__(self, dsn: str, max_size: int = 8, timeout_s: float = 5.0) -> None:
        super().__init__(dsn, "billing", MIGRATIONS, PostgresTx, max_size, timeout_s)

    def prune(self, days: float) -> dict[str, int]:
        """Housekeeping: notifications done with (sent, or given up), idempotency records and
        partner feed events older than `days` (the gateway, reading the feed, is told when its
        cursor fell behind the cut). Unsent notifications stay whatever their age; store events
        stay too, since they are what keeps an edge's late replay from opening a second session."""
        return {
            "notifications": self.delete_older("billing.outbox", ("sent_at", "failed_at"), days),
            "requests": self.delete_older("billing.requests", ("created_at",), days),
            "partner_events": _FEED.prune(self, days),
        }

