"""Delivery of the notification outbox: receipts by email, identifications made at the edge
to identity's audit trail (and any other channel that has a provider), sent after the
transaction that wrote them, at least once.

One notification at a time is claimed in its own transaction, with its row locked while the
provider is called, so two billing replicas never send the same one. The customer's address
is asked of identity at sending time (billing stores none). A provider that fails is tried
again later, waits doubling from `retry_base_s` up to an hour, and after `max_attempts` the
notification is marked failed with the reason. A crash between the provider's acceptance and
the commit sends it again: the message id is stable, so mail clients show it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol, Sequence

from billing.domain.ports import Database


@dataclass(frozen=True)
class Notification:
    notification_id: int
    session_id: str
    customer_id: str | None
    channel: str
    subject: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Contact:
    display_name: str
    email: str
    phone_e164: str


class DeliveryFailed(Exception):
    """A provider refused or could not be reached; `permanent`: trying again cannot help."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Contacts(Protocol):
    """Port: where to reach a customer (identity). DeliveryFailed(permanent) for an erased or
    unknown customer; DeliveryFailed for identity unreachable."""

    def contact(self, customer_id: str, purpose: str) -> Contact: ...


class Sender(Protocol):
    """Port: one channel's provider (SMTP for email, identity's audit trail for audit).
    Raises DeliveryFailed. `needs_contact`: the customer's address is asked for first."""

    needs_contact: bool

    def send(self, notification: Notification, contact: Contact | None) -> None: ...


PURPOSE = {"email": "receipt", "sms": "payment_link", "push": "confirmation"}


@dataclass
class NotificationRelay:
    db: Database
    contacts: Contacts
    senders: dict[str, Sender]  # channel -> provider; channels without one stay in the outbox
    retry_base_s: float = 30.0
    max_attempts: int = 8

    def relay(self, limit: int = 50, now: datetime | None = None) -> dict[str, int]:
        """Sends what is due, up to `limit`; the counts of what became of them."""
        counts = {"sent": 0, "retrying": 0, "failed": 0}
        channels: Sequence[str] = sorted(self.senders)
        for _ in range(limit if channels else 0):
            outcome = self._one(channels, now or datetime.now(timezone.utc))
            if outcome is None:
                break
            counts[outcome] += 1
        return counts

    def _one(self, channels: Sequence[str], now: datetime) -> str | None:
        with self.db.transaction() as tx:
            notification = tx.claim_notification(channels, now)
            if notification is None:
                return None
            try:
                self._deliver(notification)
            except DeliveryFailed as exc:
                attempts = notification.attempts + 1
                if exc.permanent or attempts >= self.max_attempts:
                    tx.notification_failed(notification.notification_id, attempts, str(exc)[:500], now)
                    return "failed"
                wait = min(3600.0, self.retry_base_s * 2 ** (attempts - 1))
                tx.notification_retry(notification.notification_id, attempts, str(exc)[:500],
                                      now + timedelta(seconds=wait))
                return "retrying"
            tx.notification_sent(notification.notification_id, notification.attempts + 1, now)
            return "sent"

    def _deliver(self, notification: Notification) -> None:
        sender = self.senders[notification.channel]
        if not sender.needs_contact:
            sender.send(notification, None)
            return
        if not notification.customer_id:
            raise DeliveryFailed("no customer to send it to", permanent=True)
        contact = self.contacts.contact(notification.customer_id, PURPOSE.get(notification.channel, "notification"))
        sender.send(notification, contact)
