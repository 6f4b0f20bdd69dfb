"""API keys in PostgreSQL (schema gateway) through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.domain.keys import ApiKey
from mesh import postgres

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_COLUMNS = ("key_id, retailer_id, store_ids, secret_hash, created_at, expires_at, revoked, rate_per_s, burst, "
            "replaced_by, coalesce(request_id::text, '') AS request_id")


def _key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(**{**row, "store_ids": frozenset(row["store_ids"])})


class KeyTx(postgres.Rows):
    def get(self, key_id: str, lock: bool) -> ApiKey | None:
        row = self._one(f"SELECT {_COLUMNS} FROM gateway.api_keys WHERE key_id = %s{' FOR UPDATE' if lock else ''}",
                        (key_id,))
        return _key(row) if row else None

    def key_for_request(self, request_id: str) -> ApiKey | None:
        row = self._one(f"SELECT {_COLUMNS} FROM gateway.api_keys WHERE request_id = %s", (request_id,))
        return _key(row) if row else None

    def insert(self, key: ApiKey) -> None:
        self._c.execute(
            "INSERT INTO gateway.api_keys (key_id, retailer_id, store_ids, secret_hash, created_at, expires_at, "
            "revoked, rate_per_s, burst, replaced_by, request_id) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (key.key_id, key.retailer_id, sorted(key.store_ids), key.secret_hash, key.created_at, key.expires_at,
             key.revoked, key.rate_per_s, key.burst, key.replaced_by, key.request_id or None))

    def update(self, key: ApiKey) -> None:
        self._c.execute("UPDATE gateway.api_keys SET expires_at = %s, revoked = %s, replaced_by = %s WHERE key_id = %s",
                        (key.expires_at, key.revoked, key.replaced_by, key.key_id))

    def list(self, retailer_id: str) -> list[ApiKey]:
        if retailer_id:
            rows = self._all(f"SELECT {_COLUMNS} FROM gateway.api_keys WHERE retailer_id = %s ORDER BY created_at",
                             (retailer_id,))
        else:
            rows = self._all(f"SELECT {_COLUMNS} FROM gateway.api_keys ORDER BY retailer_id, created_at")
        return [_key(r) for r in rows]


class PostgresKeyStore(postgres.PooledDatabase[KeyTx]):
    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, "gateway", MIGRATIONS, KeyTx, max_size=4)
