"""Identity's housekeeping on a real PostgreSQL: answered idempotency records older than the
retention are deleted, younger ones stay, and 0 keeps everything."""

from __future__ import annotations

import uuid

import pytest

from identity.adapters.postgres_store import PostgresDatabase

pytestmark = pytest.mark.stack


def test_old_idempotency_records_are_deleted_and_recent_ones_kept(backing_services) -> None:
    db = PostgresDatabase(backing_services["postgres_dsn"])
    try:
        old, recent = str(uuid.uuid4()), str(uuid.uuid4())
        with db.transaction() as tx:
            tx._c.execute("INSERT INTO identity.idempotency (request_id, operation, fingerprint, created_at) VALUES "
                          "(%s, 'enrol', 'f', now() - interval '31 days'), (%s, 'enrol', 'f', now() - interval '2 days')",
                          (old, recent))
        assert db.prune(0) == {"requests": 0}
        assert db.prune(30)["requests"] >= 1
        with db.transaction() as tx:
            left = {str(r["request_id"]) for r in tx._all("SELECT request_id FROM identity.idempotency "
                                                          "WHERE request_id IN (%s, %s)", (old, recent))}
        assert left == {recent}
    finally:
        db.close()
