"""What the identity core needs from the outside world; adapters implement these."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Protocol, Sequence

import numpy as np

from gait.versions import ModelNames


@dataclass(frozen=True)
class CustomerRow:
    customer_id: str
    status: str
    display_name_ct: str
    phone_ct: str
    phone_hint: str
    phone_lookup: str | None
    email_ct: str
    email_lookup: str | None
    home_region: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class ConsentRow:
    customer_id: str
    policy_version: str
    purposes: tuple[str, ...]
    retention_days: int
    jurisdiction: str
    given_at: datetime


@dataclass(frozen=True)
class TemplateRow:
    template_id: str
    customer_id: str
    model_version: str
    transform: str
    quality: float
    wrapped_key: str
    nonce: bytes
    ciphertext: bytes
    source: str
    # What the sealed plaintext holds (migration 0003): 1 the embedding; 2 the embedding, then
    # the walk's body measures (see service.TEMPLATE_PAYLOAD).
    payload: int = 1


@dataclass(frozen=True)
class PaymentMethodRow:
    payment_method_id: str
    customer_id: str
    kind: str
    gateway: str
    gateway_token: str
    last4: str
    brand: str
    upi_handle_masked: str
    per_visit_limit_paise: int
    daily_limit_paise: int
    gateway_customer: str = ""


@dataclass(frozen=True)
class Envelope:
    """A template sealed with a data key that the customer's Vault key wraps."""

    wrapped_key: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class AuditRow:
    sequence: int
    at: datetime
    action: str
    customer_id: str
    actor: str
    attributes: dict[str, str]
    prev_mac: str
    mac: str


class Tx(Protocol):
    """One database transaction: everything in it commits together or not at all."""

    def claim_request(self, request_id: str, operation: str, fingerprint: str) -> bytes | None: ...
    def save_response(self, request_id: str, response: bytes) -> None: ...
    def insert_customer(self, row: CustomerRow) -> None: ...
    def customer(self, customer_id: str, lock: bool = False) -> CustomerRow | None: ...
    def lookup_taken(self, phone_lookup: str | None, email_lookup: str | None) -> bool: ...
    def replace_fields(self, customer_id: str, display_name_ct: str, phone_ct: str, email_ct: str) -> None: ...
    def insert_consent(self, row: ConsentRow) -> None: ...
    def active_consent(self, customer_id: str) -> ConsentRow | None: ...
    def withdraw_consent(self, customer_id: str, at: datetime) -> None: ...
    def insert_templates(self, rows: Sequence[TemplateRow]) -> None: ...
    def templates(self, customer_id: str) -> list[TemplateRow]: ...
    def rewrap_templates(self, wrapped: dict[str, str]) -> None: ...
    def customers_not_protected_with(self, transform: str, limit: int) -> list[str]: ...
    def relabel_templates(self, customer_id: str, transform: str) -> None: ...
    def delete_templates(self, customer_id: str) -> int: ...
    def insert_payment_method(self, row: PaymentMethodRow) -> None: ...
    def active_payment_methods(self, customer_id: str) -> list[PaymentMethodRow]: ...
    def erase_customer(self, customer_id: str, at: datetime) -> int: ...
    def last_audit(self) -> tuple[int, str]: ...
    def insert_audit(self, row: AuditRow) -> None: ...


class Database(Protocol):
    def transaction(self) -> AbstractContextManager[Tx]: ...
    def audit_rows(self, batch: int = 1000) -> Iterator[list[AuditRow]]: ...


class Keys(Protocol):
    """Per-customer keys and shared MACs (Vault Transit)."""

    def create_customer_key(self, customer_id: str) -> None: ...
    def rotate(self, customer_id: str) -> int: ...
    def rewrap(self, customer_id: str, ciphertexts: list[str]) -> list[str]: ...
    def destroy(self, customer_id: str) -> None: ...
    def seal(self, customer_id: str, plaintext: bytes, context: bytes) -> Envelope: ...
    def open(self, customer_id: str, envelope: Envelope, context: bytes) -> bytes: ...
    def encrypt_field(self, customer_id: str, value: str) -> str: ...
    def decrypt_field(self, customer_id: str, ciphertext: str) -> str: ...
    def lookup_hash(self, value: str) -> str: ...
    def audit_macs(self, payloads: list[bytes]) -> list[str]: ...
    def anchor_audit(self, sequence: int, mac: str) -> None: ...
    def audit_anchor(self) -> tuple[int, str] | None: ...


@dataclass(frozen=True)
class WalkEmbedding:
    vector: np.ndarray
    quality: float
    # The model head's projection before its batch norm, kept so the template can be
    # normalised again with an enrolment source's statistics; None: the model exports none.
    projection: np.ndarray | None = None


class WalkEmbedder(Protocol):
    model_version: str
    names: ModelNames  # the version and former names of the same weights: templates of these are its own

    def embed(self, keypoints: np.ndarray, fps: float) -> WalkEmbedding: ...  # raises UnusableWalk


class TransactionRecords(Protocol):
    """Billing's sessions and payment's payments: kept for tax law, unlinked at erasure."""

    def anonymise(self, request_id: str, customer_id: str) -> int: ...


@dataclass(frozen=True)
class IndexTemplate:
    """A template as the matcher's index receives it: protected, never the raw embedding."""

    template_id: str
    vector: np.ndarray
    quality: float
    model_version: str
    body: np.ndarray | None  # the customer's enrolment body measures [shoulder, hip] m; None: not measured


class TemplateIndex(Protocol):
    """The matcher's search index (protected vectors only)."""

    def upsert(self, request_id: str, customer_id: str, templates: list[IndexTemplate],
               store_ids: Sequence[str], keep_store_scopes: bool = False) -> int: ...
    def remove(self, request_id: str, customer_id: str) -> int: ...


class EnrolmentStatistics(Protocol):
    """The enrolment source's head-norm statistics (gait.adaptation): templates are
    normalised with them, as the matcher normalises each store camera's windows with its own."""

    label: str  # names the statistics; part of the index label, so a change re-indexes everyone

    def embed(self, projections: np.ndarray) -> np.ndarray: ...  # [N, D] -> L2-normalised [N, D]


class Protector(Protocol):
    label: str
    version: int

    def apply(self, embeddings: np.ndarray) -> np.ndarray: ...
