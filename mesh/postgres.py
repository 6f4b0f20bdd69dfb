"""What every service's PostgreSQL adapter shares: a psycopg 3 pool with deadlines, and
versioned migrations (<service>/migrations/NNNN_*.sql) applied at start in the service's own
schema under an advisory lock, so several replicas starting at once migrate exactly once."""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

import grpc
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from mesh.errors import AlreadyExists, InvalidArgument, MeshError, Unavailable

TxT = TypeVar("TxT")


def migrate(conn: psycopg.Connection, schema: str, folder: Path) -> list[str]:
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(f"gaitpay-migrate-{schema}".encode()),))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations "
                     "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r[0] for r in conn.execute(f"SELECT version FROM {schema}.schema_migrations")}
        for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
            version = int(path.name[:4])
            if version in done:
                continue
            conn.execute(path.read_text())
            conn.execute(f"INSERT INTO {schema}.schema_migrations (version, name) VALUES (%s, %s)",
                         (version, path.stem))
            applied.append(path.stem)
    return applied


def open_pool(dsn: str, min_size: int = 1, max_size: int = 8, timeout_s: float = 5.0,
              statement_timeout_ms: int = 10_000) -> ConnectionPool:
    pool = ConnectionPool(dsn, min_size=min_size, max_size=max_size, timeout=timeout_s, open=False,
                          kwargs={"connect_timeout": int(max(1, timeout_s)),
                                  "options": f"-c statement_timeout={statement_timeout_ms}"})
    try:
        pool.open(wait=True, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - a clear message, not a pool traceback
        raise Unavailable("postgres unreachable") from exc
    return pool


class Rows:
    """Row helpers over one connection, for the transaction objects of each adapter, and
    request-id idempotency over the service's table of (request_id, operation, fingerprint,
    response)."""

    REQUESTS_TABLE = ""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._c = conn

    def claim_request(self, request_id: str, operation: str, fingerprint: str) -> bytes | None:
        """None: this request is new. Otherwise the first outcome to replay (the same id with
        another request is refused). A concurrent duplicate blocks on the primary key until
        the first commits, then sees its row."""
        table = self.REQUESTS_TABLE
        inserted = self._one(f"INSERT INTO {table} (request_id, operation, fingerprint) VALUES (%s, %s, %s) "
                             "ON CONFLICT DO NOTHING RETURNING request_id", (request_id, operation, fingerprint))
        if inserted is not None:
            return None
        row = self._one(f"SELECT operation, fingerprint, response FROM {table} WHERE request_id = %s", (request_id,))
        assert row is not None
        if row["operation"] != operation or row["fingerprint"] != fingerprint:
            raise AlreadyExists("request_id was already used for a different request",
                                metadata={"request_id": request_id})
        return bytes(row["response"] or b"")

    def save_response(self, request_id: str, response: bytes) -> None:
        self._c.execute(f"UPDATE {self.REQUESTS_TABLE} SET response = %s WHERE request_id = %s",
                        (response, request_id))

    def _one(self, sql: str, args: tuple = ()) -> dict | None:  # type: ignore[type-arg]
        with self._c.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[dict]:  # type: ignore[type-arg]
        with self._c.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, args).fetchall()


def parse_feed_cursor(cursor: str) -> tuple[int, int]:
    """A feed cursor is "<transaction id>.<sequence>" of the last event read; empty: the start."""
    if not cursor:
        return 0, 0
    xid, dot, sequence = cursor.partition(".")
    if not (dot and xid.isdigit() and sequence.isdigit()):
        raise InvalidArgument(f"{cursor!r} is not a cursor this feed gave out", field_violations=[("after", "bad cursor")])
    return int(xid), int(sequence)


class EventFeed:
    """A transactional outbox read in commit order: rows are appended in the transaction of
    the change they announce, with that transaction's id, and read ordered by (transaction id,
    sequence) but only below the oldest transaction still running. Sequences alone are not
    enough: a transaction that took sequence 11 may commit after one that took 12 was read,
    and a cursor past 12 would skip it for good. Every transaction that could still add a row
    has an id at or above that horizon, so it lands after any cursor handed out.

    The table (schema.partner_events) holds sequence, event_id, txid, event_type, store_id,
    occurred_at and a jsonb snapshot of the changed row (of table `record`)."""

    def __init__(self, table: str, record: str, columns: str) -> None:
        self._table, self._record, self._columns = table, record, columns

    def append(self, rows: "Rows", event_type: str, key_column: str, key: str) -> None:
        """Snapshot the row of `record` whose key_column is key, as the transaction sees it now."""
        rows._c.execute(f"INSERT INTO {self._table} (event_type, store_id, snapshot) "
                        f"SELECT %s, r.store_id, to_jsonb(r) FROM {self._record} r WHERE r.{key_column} = %s",
                        (event_type, key))

    def page(self, rows: "Rows", cursor: str, limit: int) -> tuple[list[dict], str]:  # type: ignore[type-arg]
        """Rows with the snapshot's columns (as `columns` selects them) and feed_event_id,
        feed_type, feed_at, feed_cursor; and the cursor to go on from. A cursor whose event
        was deleted by retention is refused (FEED_CURSOR_EXPIRED): reading on from it would
        skip the deleted events without a word."""
        xid, sequence = parse_feed_cursor(cursor)
        if cursor and rows._one(f"SELECT 1 AS kept FROM {self._table} WHERE txid = %s::text::xid8 AND sequence = %s",
                                (str(xid), sequence)) is None:
            raise MeshError(f"feed cursor {cursor} is older than the events kept; read again from the start "
                            "(events in between were deleted by retention)", reason="FEED_CURSOR_EXPIRED",
                            code=grpc.StatusCode.OUT_OF_RANGE, metadata={"cursor": cursor})
        found = rows._all(
            f"SELECT {self._columns}, feed_event_id, feed_type, feed_at, feed_txid || '.' || feed_seq AS feed_cursor "
            f"FROM (SELECT e.event_id::text AS feed_event_id, e.event_type AS feed_type, e.occurred_at AS feed_at, "
            f"e.txid AS feed_txid, e.sequence AS feed_seq, r.* FROM {self._table} e "
            f"CROSS JOIN LATERAL jsonb_populate_record(NULL::{self._record}, e.snapshot) r "
            f"WHERE (e.txid, e.sequence) > (%s::text::xid8, %s) AND e.txid < pg_snapshot_xmin(pg_current_snapshot()) "
            f"ORDER BY e.txid, e.sequence LIMIT %s) page ORDER BY feed_txid, feed_seq",
            (str(xid), sequence, limit))
        return found, (found[-1]["feed_cursor"] if found else cursor)

    def prune(self, db: "PooledDatabase[Any]", days: float) -> int:
        """Delete the feed's events older than `days` as a prefix in feed order: up to the last
        (transaction id, sequence) of an old event, so every cursor before the cut is a cursor
        whose own event is gone, which `page` can tell. days <= 0: keep all."""
        if days <= 0:
            return 0
        with db.connection() as conn:
            last = conn.execute(f"SELECT txid::text, sequence FROM {self._table} "
                                "WHERE occurred_at < now() - make_interval(secs => %s) "
                                "ORDER BY txid DESC, sequence DESC LIMIT 1", (days * 86400.0,)).fetchone()
        if last is None:
            return 0
        return db.delete_where(self._table, "(txid, sequence) <= (%s::text::xid8, %s)", tuple(last))

    def forget_customer(self, rows: "Rows", customer_id: str) -> None:
        """Erasure reaches the snapshots too."""
        rows._c.execute(f"UPDATE {self._table} SET snapshot = jsonb_set(snapshot, '{{customer_id}}', 'null') "
                        "WHERE snapshot->>'customer_id' = %s", (customer_id,))


class PooledDatabase(Generic[TxT]):
    """A service's database: a pool, its schema migrated at start, transactions that hand
    out the adapter's transaction object."""

    def __init__(self, dsn: str, schema: str, migrations: Path, tx: Callable[[psycopg.Connection], TxT],
                 max_size: int = 8, timeout_s: float = 5.0) -> None:
        self._tx = tx
        self._pool = open_pool(dsn, max_size=max_size, timeout_s=timeout_s)
        with self._pool.connection() as conn:
            self.applied = migrate(conn, schema, migrations)

    @contextmanager
    def transaction(self) -> Iterator[TxT]:
        with self._pool.connection() as conn:
            with conn.transaction():
                yield self._tx(conn)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection outside any transaction of the adapter (housekeeping reads)."""
        with self._pool.connection() as conn:
            yield conn

    def delete_older(self, table: str, timestamp_columns: Sequence[str], days: float, batch: int = 5000) -> int:
        """Rows of `table` where any of the timestamp columns is over `days` old, deleted a
        batch per transaction (a big backlog never holds long locks). days <= 0: keep all."""
        if days <= 0:
            return 0
        old = " OR ".join(f"{c} < now() - make_interval(secs => %s)" for c in timestamp_columns)
        return self.delete_where(table, old, tuple(days * 86400.0 for _ in timestamp_columns), batch)

    def delete_where(self, table: str, condition: str, args: tuple[Any, ...], batch: int = 5000) -> int:
        """Delete the rows of `table` meeting `condition`, a batch per transaction."""
        deleted = 0
        while True:
            with self._pool.connection() as conn, conn.transaction():
                n = conn.execute(f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {condition} "
                                 f"LIMIT {int(batch)} FOR UPDATE SKIP LOCKED)", args).rowcount
            deleted += n
            if n < batch:
                return deleted

    def close(self) -> None:
        self._pool.close()
