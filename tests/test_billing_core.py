"""The billing core on a real PostgreSQL with stand-ins for identity and payment (unit
scope): the confirmation timeout and its payment-link fallback, and the sweeper's retry of
a charge whose outcome was unknown, with the same idempotency key."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from billing.adapters.postgres_store import PostgresDatabase
from billing.domain import model
from billing.domain.bill import Item
from billing.domain.model import ChargeProfile, PaymentOutcome, Route, StoreEvent
from billing.domain.service import BillingCore, payment_key
from mesh.errors import FailedPrecondition

pytestmark = pytest.mark.stack


class Profiles:
    def charge_profile(self, customer_id: str) -> ChargeProfile:
        return ChargeProfile((Route("stripe", "cus_x", "pm_x"),), 1_000_000, 2_500_000, "pm-1")


class Payments:
    """Answers 'unknown' until told otherwise, remembering every key it was asked for."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.answer = "unknown"

    def charge(self, session, amount_minor, profile) -> PaymentOutcome:  # type: ignore[no-untyped-def]
        self.keys.append(payment_key(session.session_id))
        return PaymentOutcome("pay-1" if self.answer == "captured" else "", self.answer)


@pytest.fixture(scope="module")
def db(backing_services):
    database = PostgresDatabase(backing_services["postgres_dsn"])
    yield database
    database.close()


def visit(core: BillingCore, fmp: float) -> str:
    track, customer, now = str(uuid.uuid4()), str(uuid.uuid4()), datetime.now(timezone.utc)
    for kind in ("entry", "identified"):
        result = core.record_event(StoreEvent(str(uuid.uuid4()), kind, "store-core", "door", track, now, customer, fmp))
    core.upsert_catalogue(str(uuid.uuid4()), "store-core", [Item("TEA", "Tea", 10_000, 500)])
    core.update_cart(str(uuid.uuid4()), "store-core", result.session_id, [("TEA", 1)])
    exited = core.record_event(StoreEvent(str(uuid.uuid4()), "exit", "store-core", "door", track, now))
    assert exited.settle
    return exited.session_id


def test_an_unanswered_confirmation_falls_back_to_a_payment_link(db):
    core = BillingCore(db, Payments(), Profiles(), confirmation_timeout_s=300)
    session_id = visit(core, fmp=0.05)
    held = core.settle(session_id)
    assert held.state == model.AWAITING and held.confirmation_deadline is not None
    assert core.sweep(datetime.now(timezone.utc))["payment_links"] == 0  # not yet
    swept = core.sweep(held.confirmation_deadline + timedelta(seconds=1))
    assert swept["payment_links"] >= 1
    after = core.get_session(session_id)
    assert after.state == model.PAYMENT_LINK and after.decision_reason == "confirmation_timeout"
    with db.transaction() as tx:
        channels = [r["channel"] for r in tx._all("SELECT channel FROM billing.outbox WHERE session_id = %s "
                                                  "ORDER BY notification_id", (session_id,))]
    assert channels == ["push", "sms"]
    with pytest.raises(FailedPrecondition):
        core.confirm(str(uuid.uuid4()), session_id, after.customer_id or "", True)


def test_an_unknown_charge_is_asked_again_with_the_same_key_until_it_settles(db):
    payments = Payments()
    core = BillingCore(db, payments, Profiles())
    session_id = visit(core, fmp=1e-6)
    assert core.settle(session_id).state == model.CHARGING  # the payment's outcome is unknown
    assert core.settle(session_id).state == model.CHARGING
    payments.answer = "captured"
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    core.sweep(later)
    assert core.get_session(session_id).state == model.PAID
    assert set(payments.keys) == {payment_key(session_id)} and len(payments.keys) >= 3


def _feed(core: BillingCore, cursor: str = "") -> tuple[list, str]:
    events, after = [], cursor
    while True:
        page, next_cursor = core.partner_events(after, 100)
        events += page
        if not page:
            return events, next_cursor
        after = next_cursor


def test_the_partner_feed_tells_a_visit_in_order_with_the_session_as_it_was(db):
    payments = Payments()
    payments.answer = "captured"
    core = BillingCore(db, payments, Profiles())
    _, start = _feed(core)
    session_id = visit(core, fmp=1e-6)
    assert core.settle(session_id).state == model.PAID
    events, _ = _feed(core, start)
    mine = [e for e in events if e.session.session_id == session_id]
    assert [e.event_type for e in mine] == ["session.opened", "session.cart_updated", "session.exited", "session.paid"]
    # Each event carries the session right after its change, not as it is now.
    assert [e.session.state for e in mine] == ["open", "open", "open", "paid"]
    assert mine[0].session.lines == () and mine[1].session.bill.total > 0 and mine[2].session.exited_at is not None
    assert len({e.event_id for e in mine}) == 4 and all(e.store_id == "store-core" for e in mine)
    # Erasure reaches the snapshots.
    customer = mine[-1].session.customer_id
    assert customer
    core.anonymise_customer(customer)
    again, _ = _feed(core, start)
    assert all(e.session.customer_id is None for e in again if e.session.session_id == session_id)


def test_the_feed_never_skips_an_event_whose_transaction_commits_late(db):
    """A transaction that wrote its event first but commits last must still be read: the
    feed stops below the oldest transaction still running."""
    core = BillingCore(db, Payments(), Profiles())
    _, start = _feed(core)
    slow_track = str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    slow = db.transaction()
    tx = slow.__enter__()
    try:
        tx.insert_session(model.Session(str(uuid.uuid4()), "store-core", slow_track, model.OPEN))
        opened = tx.session_for_track("store-core", slow_track)
        assert opened is not None
        tx.publish("session.opened", opened.session_id)  # this transaction's id is the older one
        fast = core.record_event(StoreEvent(str(uuid.uuid4()), "entry", "store-core", "door", str(uuid.uuid4()), now))
        seen, cursor = _feed(core, start)
        assert fast.session_id not in {e.session.session_id for e in seen}, "read past a running transaction"
        assert cursor == start
    finally:
        slow.__exit__(None, None, None)
    seen, _ = _feed(core, start)
    order = [e.session.session_id for e in seen]
    assert order.index(opened.session_id) < order.index(fast.session_id)


def test_a_cursor_the_feed_did_not_give_out_is_refused(db):
    from mesh.errors import InvalidArgument

    core = BillingCore(db, Payments(), Profiles())
    with pytest.raises(InvalidArgument):
        core.partner_events("nonsense", 10)


def test_retention_cuts_the_feed_as_a_prefix_and_a_cursor_behind_the_cut_is_refused(db):
    from mesh.errors import MeshError

    core = BillingCore(db, Payments(), Profiles())
    _, start = _feed(core)
    now = datetime.now(timezone.utc)
    old = core.record_event(StoreEvent(str(uuid.uuid4()), "entry", "store-core", "door", str(uuid.uuid4()), now))
    _, behind = _feed(core, start)  # a reader that stopped right after the old visit's event
    new = core.record_event(StoreEvent(str(uuid.uuid4()), "entry", "store-core", "door", str(uuid.uuid4()), now))
    with db.transaction() as tx:
        tx._c.execute("UPDATE billing.partner_events SET occurred_at = now() - interval '40 days' "
                      "WHERE snapshot->>'session_id' = %s", (old.session_id,))
    assert db.prune(30)["partner_events"] >= 1
    with pytest.raises(MeshError) as refused:
        core.partner_events(behind, 10)
    assert refused.value.reason == "FEED_CURSOR_EXPIRED" and refused.value.code.name == "OUT_OF_RANGE"
    kept = {e.session.session_id for e in _feed(core)[0]}  # from the start: the oldest event kept
    assert new.session_id in kept and old.session_id not in kept
