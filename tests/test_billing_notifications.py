"""The notification relay: receipts leave the outbox by email through a real SMTP server
(aiosmtpd, in this process), once each; failures wait and are tried again, and what cannot
ever be delivered is marked failed with the reason. Real PostgreSQL; identity's contacts are
a stand-in (this is the billing core's test)."""

from __future__ import annotations

import mailbox
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

from billing.adapters.notify_providers import SmtpMailer
from billing.adapters.postgres_store import PostgresDatabase
from billing.domain import model
from billing.domain.model import ChargeProfile, PaymentOutcome, Route
from billing.domain.notifications import Contact, DeliveryFailed, NotificationRelay
from billing.domain.service import BillingCore
from conftest import free_port

pytestmark = pytest.mark.stack


class Contacts:
    def __init__(self) -> None:
        self.unreachable = False
        self.asked: list[tuple[str, str]] = []
        self.no_email: set[str] = set()

    def contact(self, customer_id: str, purpose: str) -> Contact:
        self.asked.append((customer_id, purpose))
        if self.unreachable:
            raise DeliveryFailed("identity unavailable: UNAVAILABLE")
        email = "" if customer_id in self.no_email else f"{customer_id[:8]}@shoppers.example"
        return Contact("Asha Rao", email, "+919800000001")


class Paid:
    def charge(self, session, amount_minor, profile) -> PaymentOutcome:  # type: ignore[no-untyped-def]
        return PaymentOutcome(f"pay-{session.session_id[:8]}", "captured")


class Profiles:
    def charge_profile(self, customer_id: str) -> ChargeProfile:
        return ChargeProfile((Route("stripe", "cus_x", "pm_x"),), 0, 0, "pm-1")


@pytest.fixture(scope="module")
def db(backing_services):
    database = PostgresDatabase(backing_services["postgres_dsn"])
    yield database
    database.close()


@pytest.fixture
def smtp(tmp_path: Path):
    port = free_port()
    controller = Controller(Mailbox(tmp_path / "mail"), hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, tmp_path / "mail"
    controller.stop()


def paid_visit(core: BillingCore) -> tuple[str, str]:
    from billing.domain.bill import Item
    from billing.domain.model import StoreEvent

    track, customer, now = str(uuid.uuid4()), str(uuid.uuid4()), datetime.now(timezone.utc)
    for kind in ("entry", "identified"):
        result = core.record_event(StoreEvent(str(uuid.uuid4()), kind, "store-mail", "door", track, now, customer, 1e-6))
    core.upsert_catalogue(str(uuid.uuid4()), "store-mail", [Item("TEA", "Assam tea", 12_345, 500)])
    core.update_cart(str(uuid.uuid4()), "store-mail", result.session_id, [("TEA", 2)])
    exited = core.record_event(StoreEvent(str(uuid.uuid4()), "exit", "store-mail", "door", track, now))
    session = core.settle(exited.session_id)
    assert session.state == model.PAID
    return session.session_id, customer


def mails_to(folder: Path, customer: str) -> list:
    if not folder.exists():
        return []
    return [m for m in mailbox.Maildir(folder, factory=None) if customer[:8] in m["To"]]


def outbox_row(db: PostgresDatabase, session_id: str) -> dict:
    with db.transaction() as tx:
        return tx._one("SELECT attempts, sent_at, failed_at, last_error, next_attempt_at FROM billing.outbox "
                       "WHERE session_id = %s AND channel = 'email'", (session_id,))


def test_a_receipt_is_emailed_once_with_the_bill_and_a_stable_message_id(db, smtp) -> None:
    controller, folder = smtp
    contacts = Contacts()
    core = BillingCore(db, Paid(), Profiles())
    session_id, customer = paid_visit(core)
    relay = NotificationRelay(db, contacts, {"email": SmtpMailer(f"smtp://127.0.0.1:{controller.port}",
                                                                 "GaitPay <r@gaitpay.example>", 5.0)})
    counts = relay.relay()
    assert counts["sent"] >= 1
    (mail,) = mails_to(folder, customer)
    assert mail["Subject"].startswith("Your GaitPay receipt: Rs ") and "Asha Rao" in mail["To"]
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "Assam tea" in html and session_id in html
    assert (customer, "receipt") in contacts.asked
    row = outbox_row(db, session_id)
    assert row["sent_at"] is not None and row["attempts"] == 1
    relay.relay()  # nothing is sent twice
    assert len(mails_to(folder, customer)) == 1
    # The Message-ID is the notification's own, so a resend after a crash reads as one mail.
    again = SmtpMailer("smtp://127.0.0.1:1", "x@y.example").message
    from billing.domain.notifications import Notification

    n = Notification(42, session_id, customer, "email", "s", "<p>b</p>", 0)
    assert again(n, Contact("", "a@b.example", ""))["Message-ID"].startswith("<")
    assert again(n, Contact("", "a@b.example", ""))["Message-ID"] != again(
        Notification(43, session_id, customer, "email", "s", "<p>b</p>", 0), Contact("", "a@b.example", ""))["Message-ID"]


def test_failures_wait_and_are_tried_again_and_the_hopeless_are_marked_failed(db, smtp) -> None:
    controller, folder = smtp
    contacts = Contacts()
    core = BillingCore(db, Paid(), Profiles())
    session_id, customer = paid_visit(core)
    down = NotificationRelay(db, contacts, {"email": SmtpMailer(f"smtp://127.0.0.1:{free_port()}", "r@g.example",
                                                                2.0)}, retry_base_s=30)
    now = datetime.now(timezone.utc)
    down.relay(now=now)
    row = outbox_row(db, session_id)
    assert row["sent_at"] is None and row["attempts"] == 1 and "unreachable" in row["last_error"]
    assert row["next_attempt_at"] >= now + timedelta(seconds=29)
    up = NotificationRelay(db, contacts, {"email": SmtpMailer(f"smtp://127.0.0.1:{controller.port}", "r@g.example",
                                                              2.0)}, retry_base_s=30)
    up.relay(now=now + timedelta(seconds=5))  # not due yet
    assert not mails_to(folder, customer)
    up.relay(now=now + timedelta(seconds=31))
    assert len(mails_to(folder, customer)) == 1 and outbox_row(db, session_id)["attempts"] == 2

    # Identity unreachable: tried again, up to the limit, then failed with the reason.
    session_id, customer = paid_visit(core)
    contacts.unreachable = True
    stubborn = NotificationRelay(db, contacts, up.senders, retry_base_s=1, max_attempts=3)
    for minute in range(4):
        stubborn.relay(now=now + timedelta(minutes=minute + 1))
    row = outbox_row(db, session_id)
    assert row["attempts"] == 3 and row["failed_at"] is not None and "identity unavailable" in row["last_error"]
    assert not mails_to(folder, customer)

    # A customer without an email address: failed at once, no retry.
    contacts.unreachable = False
    session_id, customer = paid_visit(core)
    contacts.no_email.add(customer)
    up.relay(now=now + timedelta(minutes=10))
    row = outbox_row(db, session_id)
    assert row["attempts"] == 1 and row["failed_at"] is not None and "no email address" in row["last_error"]


def test_channels_without_a_provider_stay_in_the_outbox(db) -> None:
    core = BillingCore(db, Paid(), Profiles())
    paid_visit(core)
    relay = NotificationRelay(db, Contacts(), {})
    assert relay.relay() == {"sent": 0, "retrying": 0, "failed": 0}
    with db.transaction() as tx:  # no attempt was recorded on any of them
        touched = tx._one("SELECT count(*) AS n FROM billing.outbox WHERE channel <> 'email' AND attempts > 0", ())
    assert touched["n"] == 0


def test_retention_deletes_what_is_done_with_and_keeps_what_is_pending(db) -> None:
    core = BillingCore(db, Paid(), Profiles())
    session_id, customer = paid_visit(core)
    with db.transaction() as tx:
        for channel in ("sms", "push"):
            tx.enqueue_notification(session_id, customer, channel, "Your GaitPay bill", "body")
        rows = tx._all("SELECT notification_id, channel FROM billing.outbox WHERE session_id = %s ORDER BY channel",
                       (session_id,))
        assert [r["channel"] for r in rows] == ["email", "push", "sms"]
        old_sent, old_failed, old_pending = (r["notification_id"] for r in rows)
        tx._c.execute("UPDATE billing.outbox SET sent_at = now() - interval '40 days' WHERE notification_id = %s",
                      (old_sent,))
        tx._c.execute("UPDATE billing.outbox SET failed_at = now() - interval '31 days' WHERE notification_id = %s",
                      (old_failed,))
        # An unsent notification, however old, waits for its provider.
        tx._c.execute("UPDATE billing.outbox SET created_at = now() - interval '90 days' WHERE notification_id = %s",
                      (old_pending,))
        request_old, request_new = f"req-{uuid.uuid4()}", f"req-{uuid.uuid4()}"
        tx._c.execute("INSERT INTO billing.requests (request_id, operation, fingerprint, created_at) VALUES "
                      "(%s, 'x', 'f', now() - interval '45 days'), (%s, 'x', 'f', now() - interval '29 days')",
                      (request_old, request_new))
    counts = db.prune(30)
    assert counts["notifications"] >= 2 and counts["requests"] >= 1
    with db.transaction() as tx:
        left = {r["notification_id"] for r in tx._all("SELECT notification_id FROM billing.outbox "
                                                      "WHERE session_id = %s", (session_id,))}
        requests = {r["request_id"] for r in tx._all("SELECT request_id FROM billing.requests "
                                                     "WHERE request_id IN (%s, %s)", (request_old, request_new))}
    assert old_sent not in left and old_failed not in left
    assert old_pending in left
    assert requests == {request_new}
    assert db.prune(0) == {"notifications": 0, "requests": 0, "partner_events": 0}  # 0 keeps everything
