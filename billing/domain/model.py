"""Store sessions as the billing core sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.bill import Bill, Line

OPEN, AWAITING, CHARGING, PAID, STAFF, CANCELLED, PAYMENT_LINK = (
    "open", "awaiting_confirmation", "charging", "paid", "staff_checkout", "cancelled", "payment_link")
SETTLED = (PAID, STAFF, CANCELLED, PAYMENT_LINK)


@dataclass(frozen=True)
class StoreEvent:
    event_id: str
    kind: str  # entry, exit, zone, identified
    store_id: str
    camera_id: str
    track_id: str
    occurred_at: datetime
    customer_id: str | None = None
    false_match_probability: float = 1.0
    identified_at_edge: bool = False  # decided offline at the edge: billing audits it


@dataclass(frozen=True)
class Session:
    session_id: str
    store_id: str
    track_id: str
    state: str
    customer_id: str | None = None
    false_match_probability: float = 1.0
    lines: tuple[Line, ...] = ()
    decision_reason: str = ""
    entered_at: datetime | None = None
    exited_at: datetime | None = None
    payment_id: str = ""
    confirmation_deadline: datetime | None = None
    active_elsewhere: bool = False

    @property
    def bill(self) -> Bill:
        return Bill(self.lines)


@dataclass(frozen=True)
class Route:
    gateway: str
    customer_reference: str
    token: str


@dataclass(frozen=True)
class ChargeProfile:
    routes: tuple[Route, ...]
    per_visit_limit_minor: int
    daily_limit_minor: int
    payment_method_id: str = ""


@dataclass(frozen=True)
class PaymentOutcome:
    payment_id: str
    state: str  # captured, declined, unknown, pending, failed, requires_action
    reason: str = ""
