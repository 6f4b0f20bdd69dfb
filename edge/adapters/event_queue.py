"""The edge's durable event queue: SQLite in WAL mode, fsync on every commit.

Every store event is written here before anything tries to send it, and leaves only when
billing acknowledged it. Billing stores events once per event id, so a replay after a cut
(or after a restart of the edge) delivers each event exactly once, in the order queued."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from gaitpay.billing.v1 import billing_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    payload     BLOB NOT NULL,
    queued_at   REAL NOT NULL,
    acked_at    REAL,
    duplicate   INTEGER,
    session_id  TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE acked_at IS NULL;
"""


class EventQueue:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def put(self, event: billing_pb2.StoreEvent) -> bool:
        """Store an event; False when that event id was queued before (nothing changes)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO events (event_id, payload, queued_at) VALUES (?, ?, ?)",
                (event.event_id, event.SerializeToString(), time.time()))
            return cursor.rowcount == 1

    def pending(self, limit: int = 100) -> list[billing_pb2.StoreEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT payload FROM events WHERE acked_at IS NULL ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [billing_pb2.StoreEvent.FromString(row[0]) for row in rows]

    def ack(self, event_id: str, *, duplicate: bool, session_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE events SET acked_at = ?, duplicate = ?, session_id = ? WHERE event_id = ? AND acked_at IS NULL",
                (time.time(), int(duplicate), session_id, event_id))

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM events WHERE acked_at IS NULL").fetchone()[0])

    def oldest_queued_at(self) -> float | None:
        """When the oldest event still waiting for billing was queued (unix seconds), or None."""
        with self._lock:
            row = self._db.execute("SELECT min(queued_at) FROM events WHERE acked_at IS NULL").fetchone()
        return None if row[0] is None else float(row[0])

    def history(self) -> list[tuple[str, int, bool, str]]:
        """(event id, kind, duplicate, session id) of every acknowledged event, in queue order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, payload, duplicate, session_id FROM events WHERE acked_at IS NOT NULL ORDER BY seq"
            ).fetchall()
        return [(r[0], billing_pb2.StoreEvent.FromString(r[1]).kind, bool(r[2]), r[3] or "") for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
