"""Partner webhook endpoints, deliveries and feed cursors in PostgreSQL (schema gateway)."""

from __future__ import annotations

from typing import Any, Sequence

from psycopg.rows import dict_row

from gateway.adapters.postgres_keys import MIGRATIONS
from gateway.domain.webhooks import Delivery, DueDelivery, Endpoint, FeedEvent
from mesh import postgres
from mesh.errors import AlreadyExists

_ENDPOINT = "endpoint_id::text, store_id, retailer_id, url, event_types, created_at, generation"
_DELIVERY = ("delivery_id::text, endpoint_id::text, d.event_id::text, v.event_type, state, attempts, last_status, "
             "last_error, d.created_at, CASE WHEN state = 'pending' THEN next_attempt_at END AS next_attempt_at, "
             "delivered_at")


def _endpoint(row: dict[str, Any]) -> Endpoint:
    return Endpoint(**{**row, "event_types": tuple(row["event_types"])})


class WebhookTx(postgres.Rows):
    def create_endpoint(self, request_id: str, fingerprint: str, endpoint: Endpoint) -> tuple[Endpoint, bool]:
        inserted = self._one(
            "INSERT INTO gateway.webhook_endpoints (endpoint_id, store_id, retailer_id, url, event_types, "
            "request_id, fingerprint) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (request_id) DO NOTHING "
            "RETURNING endpoint_id",
            (endpoint.endpoint_id, endpoint.store_id, endpoint.retailer_id, endpoint.url,
             list(endpoint.event_types), request_id, fingerprint))
        row = self._one(f"SELECT {_ENDPOINT}, fingerprint FROM gateway.webhook_endpoints WHERE request_id = %s",
                        (request_id,))
        assert row is not None
        if row.pop("fingerprint") != fingerprint:
            raise AlreadyExists("request_id was already used for a different request",
                                metadata={"request_id": request_id})
        return _endpoint(row), inserted is not None

    def endpoints(self, store_id: str) -> list[Endpoint]:
        rows = self._all(f"SELECT {_ENDPOINT} FROM gateway.webhook_endpoints WHERE store_id = %s "
                         "AND deleted_at IS NULL ORDER BY created_at", (store_id,))
        return [_endpoint(r) for r in rows]

    def delete_endpoint(self, store_id: str, endpoint_id: str) -> bool:
        row = self._one("UPDATE gateway.webhook_endpoints SET deleted_at = now() WHERE endpoint_id = %s "
                        "AND store_id = %s AND deleted_at IS NULL RETURNING endpoint_id", (endpoint_id, store_id))
        if row is not None:
            self._c.execute("UPDATE gateway.webhook_deliveries SET state = 'failed', last_error = "
                            "'endpoint deleted' WHERE endpoint_id = %s AND state = 'pending'", (endpoint_id,))
        return row is not None

    def deliveries(self, endpoint_id: str, limit: int) -> list[Delivery]:
        rows = self._all(f"SELECT {_DELIVERY} FROM gateway.webhook_deliveries d JOIN gateway.webhook_events v "
                         "USING (event_id) WHERE endpoint_id = %s ORDER BY d.created_at DESC, delivery_id LIMIT %s",
                         (endpoint_id, limit))
        return [Delivery(**r) for r in rows]

    def cursor(self, feed: str) -> str:
        row = self._one("SELECT cursor FROM gateway.feed_cursors WHERE feed = %s", (feed,))
        return row["cursor"] if row else ""

    def fan_out(self, feed: str, read_from: str, next_cursor: str, events: Sequence[FeedEvent]) -> int | None:
        made = 0
        self._c.execute("INSERT INTO gateway.feed_cursors (feed, cursor) VALUES (%s, '') ON CONFLICT DO NOTHING",
                        (feed,))
        row = self._one("SELECT cursor FROM gateway.feed_cursors WHERE feed = %s FOR UPDATE", (feed,))
        if row is None or row["cursor"] != read_from:
            return None  # another replica fanned these out while we read them
        for event in events:
            wanted = self._all("SELECT endpoint_id FROM gateway.webhook_endpoints WHERE store_id = %s "
                               "AND deleted_at IS NULL AND (event_types = '{}' OR %s = ANY(event_types))",
                               (event.store_id, event.event_type))
            if not wanted:
                continue
            self._c.execute("INSERT INTO gateway.webhook_events (event_id, event_type, store_id, payload) "
                            "VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                            (event.event_id, event.event_type, event.store_id, event.payload()))
            with self._c.cursor() as cur:
                cur.executemany("INSERT INTO gateway.webhook_deliveries (endpoint_id, event_id, state, "
                                "next_attempt_at) VALUES (%s, %s, 'pending', now()) ON CONFLICT DO NOTHING",
                                [(w["endpoint_id"], event.event_id) for w in wanted])
            made += len(wanted)
        self._c.execute("UPDATE gateway.feed_cursors SET cursor = %s WHERE feed = %s", (next_cursor, feed))
        return made

    def claim_due(self, limit: int, lease_s: float) -> list[DueDelivery]:
        """Due deliveries, leased for lease_s: SKIP LOCKED lets replicas share the work, and the
        lease keeps an attempt in flight from being sent twice at once."""
        with self._c.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "UPDATE gateway.webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => %s) "
                "FROM gateway.webhook_endpoints e, gateway.webhook_events v "
                "WHERE d.delivery_id IN (SELECT delivery_id FROM gateway.webhook_deliveries WHERE state = 'pending' "
                "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) "
                "AND e.endpoint_id = d.endpoint_id AND v.event_id = d.event_id "
                "RETURNING d.delivery_id::text, d.endpoint_id::text, e.url, d.event_id::text, v.payload, "
                "d.attempts, e.generation", (lease_s, limit)).fetchall()
        return [DueDelivery(**{**r, "payload": bytes(r["payload"])}) for r in rows]

    def finish(self, delivery_id: str, state: str, attempts: int, status: int, error: str,
               retry_in_s: float | None) -> None:
        # Only a pending delivery moves: one whose endpoint was deleted meanwhile stays failed.
        self._c.execute(
            "UPDATE gateway.webhook_deliveries SET state = %s, attempts = %s, last_status = %s, last_error = %s, "
            "next_attempt_at = CASE WHEN %s::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => %s) END, "
            "delivered_at = CASE WHEN %s = 'delivered' THEN now() END WHERE delivery_id = %s AND state = 'pending'",
            (state, attempts, status, error[:500], retry_in_s, retry_in_s, state, delivery_id))


class PostgresWebhookStore(postgres.PooledDatabase[WebhookTx]):
    """The domain's WebhookStore: each call one transaction."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, "gateway", MIGRATIONS, WebhookTx, max_size=4)

    def create_endpoint(self, request_id: str, fingerprint: str, endpoint: Endpoint) -> tuple[Endpoint, bool]:
        with self.transaction() as tx:
            return tx.create_endpoint(request_id, fingerprint, endpoint)

    def endpoints(self, store_id: str) -> list[Endpoint]:
        with self.transaction() as tx:
            return tx.endpoints(store_id)

    def delete_endpoint(self, store_id: str, endpoint_id: str) -> bool:
        with self.transaction() as tx:
            return tx.delete_endpoint(store_id, endpoint_id)

    def deliveries(self, endpoint_id: str, limit: int) -> list[Delivery]:
        with self.transaction() as tx:
            return tx.deliveries(endpoint_id, limit)

    def cursor(self, feed: str) -> str:
        with self.transaction() as tx:
            return tx.cursor(feed)

    def fan_out(self, feed: str, read_from: str, next_cursor: str, events: Sequence[FeedEvent]) -> int | None:
        with self.transaction() as tx:
            return tx.fan_out(feed, read_from, next_cursor, events)

    def claim_due(self, limit: int, lease_s: float) -> list[DueDelivery]:
        with self.transaction() as tx:
            return tx.claim_due(limit, lease_s)

    def finish(self, delivery_id: str, state: str, attempts: int, status: int, error: str,
               retry_in_s: float | None) -> None:
        with self.transaction() as tx:
            return tx.finish(delivery_id, state, attempts, status, error, retry_in_s)
