"""The changes of a payment that partners hear of (the gateway turns them into webhooks),
written in the transaction of the change (a transactional outbox). The steps on the way
(processing, unknown, a failure Charge may retry) are internal, not events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payment.domain.model import Payment, State

PARTNER_STATES = (State.CAPTURED, State.DECLINED, State.REQUIRES_ACTION, State.PARTIALLY_REFUNDED, State.REFUNDED,
                  State.DISPUTED)
EVENT_TYPES = tuple(f"payment.{state.value}" for state in PARTNER_STATES)


@dataclass(frozen=True)
class PublishedEvent:
    """One entry of the feed, with the payment as it was right after the change."""

    event_id: str
    event_type: str
    store_id: str
    occurred_at: datetime
    cursor: str
    payment: Payment


def payment_events(before: Payment, after: Payment) -> list[str]:
    """The event types an update from `before` to `after` announces: a new partner-visible
    state, or another partial refund in the same state."""
    if after.state not in PARTNER_STATES:
        return []
    if after.state != before.state or after.refunded_minor != before.refunded_minor:
        return [f"payment.{after.state.value}"]
    return []
