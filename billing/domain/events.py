"""The changes of a session that partners hear of (the gateway turns them into webhooks).

Events are written in the transaction that makes the change (a transactional outbox), so a
change is never announced without happening, nor happens unannounced. Which changes count is
decided here; internal steps (an identification, the charging in between) are not events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain import model
from billing.domain.model import Session

# The states a partner's systems act on (the shopper may leave; staff must settle the bill).
PARTNER_STATES = (model.AWAITING, model.PAID, model.STAFF, model.PAYMENT_LINK, model.CANCELLED)
EVENT_TYPES = ("session.opened", "session.cart_updated", "session.exited",
               *(f"session.{state}" for state in PARTNER_STATES))


@dataclass(frozen=True)
class PublishedEvent:
    """One entry of the feed, with the session as it was right after the change."""

    event_id: str
    event_type: str
    store_id: str
    occurred_at: datetime
    cursor: str
    session: Session


def session_events(before: Session | None, after: Session) -> list[str]:
    """The event types a save from `before` (None: the session is new) to `after` announces."""
    types: list[str] = []
    if before is None:
        types.append("session.opened")
    if after.lines != (before.lines if before else ()):
        types.append("session.cart_updated")
    if after.exited_at is not None and (before is None or before.exited_at is None):
        types.append("session.exited")
    if after.state in PARTNER_STATES and (before is None or before.state != after.state):
        types.append(f"session.{after.state}")
    return types
