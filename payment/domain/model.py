"""Payments as the payment core sees them: states, routes, what a gateway answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class State(str, Enum):
    # Claimed by one caller who is talking to the gateways right now.
    PROCESSING = "processing"
    CAPTURED = "captured"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"
    # A gateway call may have moved money but gave no answer: only the reconciler moves it on.
    UNKNOWN = "unknown"
    # Every gateway failed technically and none can have captured: Charge may try again.
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


CAPTURED_STATES = (State.CAPTURED, State.PARTIALLY_REFUNDED, State.REFUNDED, State.DISPUTED)
UNSETTLED_STATES = (State.PROCESSING, State.UNKNOWN, State.FAILED)


@dataclass(frozen=True)
class Route:
    """A saved token at one gateway, with the gateway's customer it belongs to."""

    gateway: str
    customer_reference: str
    token: str


@dataclass(frozen=True)
class Attempt:
    gateway: str
    outcome: str  # captured, declined, requires_action, technical_failure, unknown, skipped_circuit_open
    detail: str = ""


@dataclass(frozen=True)
class Payment:
    payment_id: str
    idempotency_key: str
    fingerprint: str
    session_id: str
    customer_id: str | None
    store_id: str
    amount_minor: int
    currency: str
    state: State
    gateway: str = ""
    gateway_reference: str = ""
    refunded_minor: int = 0
    failure_reason: str = ""
    attempts: tuple[Attempt, ...] = ()
    created_at: datetime | None = None
    captured_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class GatewayResult:
    """What a gateway says happened to a prepared charge."""

    outcome: str  # captured, declined, requires_action, not_captured
    payment_reference: str = ""  # the gateway's id of the money movement (pi_..., pay_...)
    detail: str = ""


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook, reduced to what the core acts on."""

    gateway: str
    event_id: str
    kind: str  # captured, declined, refunded, disputed, ignored
    reference: str  # the prepared object's id (pi_..., order_...)
    payment_reference: str = ""
    amount_minor: int = 0
    object_id: str = ""  # refund or dispute id
    # For a refund we asked for: our refund id, as we gave it to the gateway (Razorpay notes,
    # Stripe metadata), so its webhook is matched even before our own call has returned.
    our_refund_id: str = ""


@dataclass(frozen=True)
class Refund:
    refund_id: str
    payment_id: str
    amount_minor: int
    gateway_reference: str
    state: str


@dataclass(frozen=True)
class LedgerLine:
    account: str
    debit_minor: int = 0
    credit_minor: int = 0


@dataclass(frozen=True)
class LedgerBalance:
    accounts: dict[str, tuple[int, int]] = field(default_factory=dict)
    total_debit: int = 0
    total_credit: int = 0
    unbalanced_transactions: int = 0

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit and self.unbalanced_transactions == 0


@dataclass(frozen=True)
class ReconcileReport:
    examined: int = 0
    captured: int = 0
    not_captured: int = 0
    still_unknown: int = 0
