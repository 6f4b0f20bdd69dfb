"""The identity tables in PostgreSQL through psycopg 3 with a connection pool; versioned
migrations (identity/migrations/NNNN_*.sql) applied at start under an advisory lock, so
several replicas starting at once migrate exactly once."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

from psycopg.rows import dict_row

from identity.domain.ports import (AuditRow, ConsentRow, CustomerRow, PaymentMethodRow, TemplateRow)
from identity.domain import audit
from mesh import postgres

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_AUDIT_LOCK = 0x6761_6974_6175  # serialises appends to the chain


class PostgresTx(postgres.Rows):
    REQUESTS_TABLE = "identity.idempotency"

    def insert_customer(self, row: CustomerRow) -> None:
        self._c.execute(
            "INSERT INTO identity.customers (customer_id, status, display_name_ct, phone_ct, phone_hint, "
            "phone_lookup, email_ct, email_lookup, home_region) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (row.customer_id, row.status, row.display_name_ct, row.phone_ct, row.phone_hint, row.phone_lookup,
             row.email_ct, row.email_lookup, row.home_region))

    def replace_fields(self, customer_id: str, display_name_ct: str, phone_ct: str, email_ct: str) -> None:
        self._c.execute("UPDATE identity.customers SET display_name_ct = %s, phone_ct = %s, email_ct = %s "
                        "WHERE customer_id = %s", (display_name_ct, phone_ct, email_ct, customer_id))

    def customer(self, customer_id: str, lock: bool = False) -> CustomerRow | None:
        row = self._one("SELECT customer_id::text, status, display_name_ct, phone_ct, phone_hint, phone_lookup, "
                        "email_ct, email_lookup, home_region, created_at FROM identity.customers "
                        f"WHERE customer_id = %s{' FOR UPDATE' if lock else ''}", (customer_id,))
        return CustomerRow(**row) if row else None

    def lookup_taken(self, phone_lookup: str | None, email_lookup: str | None) -> bool:
        row = self._one("SELECT 1 AS taken FROM identity.customers WHERE phone_lookup = %s OR email_lookup = %s",
                        (phone_lookup, email_lookup))
        return row is not None

    def insert_consent(self, row: ConsentRow) -> None:
        self._c.execute("INSERT INTO identity.consents (customer_id, policy_version, purposes, retention_days, "
                        "jurisdiction, given_at) VALUES (%s,%s,%s,%s,%s,%s)",
                        (row.customer_id, row.policy_version, list(row.purposes), row.retention_days,
                         row.jurisdiction, row.given_at))

    def active_consent(self, customer_id: str) -> ConsentRow | None:
        row = self._one("SELECT customer_id::text, policy_version, purposes, retention_days, jurisdiction, given_at "
                        "FROM identity.consents WHERE customer_id = %s AND withdrawn_at IS NULL "
                        "ORDER BY consent_id DESC LIMIT 1", (customer_id,))
        return ConsentRow(**{**row, "purposes": tuple(row["purposes"])}) if row else None

    def withdraw_consent(self, customer_id: str, at: datetime) -> None:
        self._c.execute("UPDATE identity.consents SET withdrawn_at = %s WHERE customer_id = %s "
                        "AND withdrawn_at IS NULL", (at, customer_id))

    def insert_templates(self, rows: Sequence[TemplateRow]) -> None:
        with self._c.cursor() as cur:
            cur.executemany(
                "INSERT INTO identity.templates (template_id, customer_id, model_version, transform, quality, "
                "wrapped_key, nonce, ciphertext, source, payload) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [(r.template_id, r.customer_id, r.model_version, r.transform, r.quality, r.wrapped_key, r.nonce,
                  r.ciphertext, r.source, r.payload) for r in rows])

    def templates(self, customer_id: str) -> list[TemplateRow]:
        rows = self._all("SELECT template_id, customer_id::text, model_version, transform, quality, wrapped_key, "
                         "nonce, ciphertext, source, payload FROM identity.templates WHERE customer_id = %s "
                         "ORDER BY created_at, template_id", (customer_id,))
        return [TemplateRow(**{**r, "nonce": bytes(r["nonce"]), "ciphertext": bytes(r["ciphertext"])}) for r in rows]

    def customers_not_protected_with(self, transform: str, limit: int) -> list[str]:
        rows = self._all("SELECT DISTINCT t.customer_id::text AS customer_id FROM identity.templates t "
                         "JOIN identity.customers c USING (customer_id) WHERE c.status = 'active' "
                         "AND t.transform <> %s ORDER BY 1 LIMIT %s", (transform, limit))
        return [r["customer_id"] for r in rows]

    def relabel_templates(self, customer_id: str, transform: str) -> None:
        self._c.execute("UPDATE identity.templates SET transform = %s WHERE customer_id = %s", (transform, customer_id))

    def rewrap_templates(self, wrapped: dict[str, str]) -> None:
        with self._c.cursor() as cur:
            cur.executemany("UPDATE identity.templates SET wrapped_key = %s WHERE template_id = %s",
                            [(w, t) for t, w in wrapped.items()])

    def delete_templates(self, customer_id: str) -> int:
        return self._c.execute("DELETE FROM identity.templates WHERE customer_id = %s", (customer_id,)).rowcount

    def insert_payment_method(self, row: PaymentMethodRow) -> None:
        self._c.execute("UPDATE identity.payment_methods SET is_default = false WHERE customer_id = %s",
                        (row.customer_id,))
        self._c.execute(
            "INSERT INTO identity.payment_methods (payment_method_id, customer_id, kind, gateway, gateway_token, "
            "last4, brand, upi_handle_masked, per_visit_limit_paise, daily_limit_paise, gateway_customer) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (row.payment_method_id, row.customer_id, row.kind, row.gateway, row.gateway_token, row.last4, row.brand,
             row.upi_handle_masked, row.per_visit_limit_paise, row.daily_limit_paise, row.gateway_customer))

    def active_payment_methods(self, customer_id: str) -> list[PaymentMethodRow]:
        rows = self._all("SELECT payment_method_id::text, customer_id::text, kind, gateway, gateway_token, last4, "
                         "brand, upi_handle_masked, per_visit_limit_paise, daily_limit_paise, gateway_customer "
                         "FROM identity.payment_methods WHERE customer_id = %s AND removed_at IS NULL "
                         "ORDER BY is_default DESC, created_at DESC", (customer_id,))
        return [PaymentMethodRow(**r) for r in rows]

    def erase_customer(self, customer_id: str, at: datetime) -> int:
        """Personal columns wiped, lookups freed, tokens dropped, consent closed; returns the
        rows anonymised."""
        n = self._c.execute(
            "UPDATE identity.customers SET status = 'erased', display_name_ct = '', phone_ct = '', phone_hint = '', "
            "phone_lookup = NULL, email_ct = '', email_lookup = NULL, erased_at = %s "
            "WHERE customer_id = %s AND status <> 'erased'", (at, customer_id)).rowcount
        n += self._c.execute(
            "UPDATE identity.payment_methods SET gateway_token = '', gateway_customer = '', last4 = '', brand = '', "
            "upi_handle_masked = '', "
            "is_default = false, removed_at = COALESCE(removed_at, %s) WHERE customer_id = %s AND gateway_token <> ''",
            (at, customer_id)).rowcount
        self.withdraw_consent(customer_id, at)
        return n

    def last_audit(self) -> tuple[int, str]:
        self._c.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
        row = self._one("SELECT sequence, mac FROM identity.audit_log ORDER BY sequence DESC LIMIT 1")
        return (row["sequence"], row["mac"]) if row else (0, audit.GENESIS)

    def insert_audit(self, row: AuditRow) -> None:
        self._c.execute("INSERT INTO identity.audit_log (sequence, at, action, customer_id, actor, attributes, "
                        "prev_mac, mac) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                        (row.sequence, row.at, row.action, row.customer_id, row.actor, json.dumps(row.attributes),
                         row.prev_mac, row.mac))


class PostgresDatabase(postgres.PooledDatabase[PostgresTx]):
    def __init__(self, dsn: str, max_size: int = 8, timeout_s: float = 5.0) -> None:
        super().__init__(dsn, "identity", MIGRATIONS, PostgresTx, max_size, timeout_s)

    def prune(self, days: float) -> dict[str, int]:
        """Housekeeping: answered idempotency records older than `days`. Customers, consent,
        templates and the audit trail are never pruned here (erasure and the audit policy own
        them)."""
        return {"requests": self.delete_older("identity.idempotency", ("created_at",), days)}

    def audit_rows(self, batch: int = 1000) -> Iterator[list[AuditRow]]:
        last = 0
        while True:
            with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute("SELECT sequence, at, action, customer_id, actor, attributes, prev_mac, mac "
                                   "FROM identity.audit_log WHERE sequence > %s ORDER BY sequence LIMIT %s",
                                   (last, batch)).fetchall()
            if not rows:
                return
            yield [AuditRow(**r) for r in rows]
            last = rows[-1]["sequence"]
