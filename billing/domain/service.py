"""The billing core: store sessions from edge events (each event once, in any order),
carts priced from the store's catalogue, the risk decision at exit, the charge through the
payment service with one idempotency key per session, shopper confirmations with a timeout
and a payment-link fallback, receipts through the notification outbox.

It knows nothing of gRPC or SQL; the database, identity and payment come in through ports."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Sequence

from billing.domain import model
from billing.domain.bill import Item, Line, rupees
from billing.domain.events import PublishedEvent, session_events
from billing.domain.model import ChargeProfile, Session, StoreEvent
from billing.domain.ports import Database, Payments, Profiles, Tx
from billing.domain.receipt import render_receipt
from billing.domain.risk import ExitFacts, RiskPolicy, decide
from mesh.errors import FailedPrecondition, InvalidArgument, MeshError, NotFound
from mesh.idempotency import request_fingerprint


def _now() -> datetime:
    return datetime.now(timezone.utc)


def payment_key(session_id: str) -> str:
    """The one idempotency key of a session's charge: however often billing retries, the
    payment service captures at most once for it."""
    return f"session:{session_id}"


@dataclass(frozen=True)
class EventResult:
    session_id: str
    duplicate: bool
    settle: bool  # the session reached its exit and awaits its charge decision


def _save(tx: Tx, before: Session | None, after: Session) -> None:
    """Every change of a session is saved through here, so its partner events are written in
    the same transaction."""
    tx.save_session(after)
    for event_type in session_events(before, after):
        tx.publish(event_type, after.session_id)


def _edge_identification(event: StoreEvent) -> dict[str, str]:
    return {"store_id": event.store_id, "camera_id": event.camera_id, "track_id": event.track_id,
            "false_match_probability": f"{event.false_match_probability:.3g}", "decided_at": "edge (offline)",
            "event_id": event.event_id}


def _notify_staff(tx: Tx, session: Session, reason: str) -> None:
    tx.enqueue_notification(session.session_id, None, "staff", f"Assisted checkout: {reason.replace('_', ' ')}",
                            f"Session {session.session_id} at {session.store_id}: {rupees(session.bill.total)}.")


class BillingCore:
    def __init__(self, db: Database, payments: Payments, profiles: Profiles, policy: RiskPolicy = RiskPolicy(),
                 confirmation_timeout_s: float = 300.0) -> None:
        self._db, self._payments, self._profiles = db, payments, profiles
        self._policy = policy
        self._confirmation_timeout = timedelta(seconds=confirmation_timeout_s)

    # -- events ----------------------------------------------------------------------------------

    def record_event(self, event: StoreEvent) -> EventResult:
        with self._db.transaction() as tx:
            if tx.record_event(event) is None:
                return EventResult(tx.event_session(event.event_id), True, False)
            session = before = tx.session_for_track(event.store_id, event.track_id, lock=True)
            if session is None:
                # Whatever arrives first for a track opens its session: an exit replayed before
                # its entry still lands in the one session of that track.
                tx.insert_session(Session(str(uuid.uuid4()), event.store_id, event.track_id, model.OPEN))
                session = tx.session_for_track(event.store_id, event.track_id, lock=True)
                assert session is not None
            session, settle = self._apply(tx, session, event)
            _save(tx, before, session)
            tx.link_event(event.event_id, session.session_id)
            if event.kind == "identified" and event.identified_at_edge and event.customer_id:
                # The matcher audits its own identifications; one made at the edge offline
                # reaches the audit trail through the outbox, in this same transaction.
                tx.enqueue_notification(session.session_id, event.customer_id, "audit", "identification",
                                        json.dumps(_edge_identification(event)))
            return EventResult(session.session_id, False, settle)

    def _apply(self, tx, session: Session, event: StoreEvent) -> tuple[Session, bool]:  # type: ignore[no-untyped-def]
        if event.kind == "entry":
            return replace(session, entered_at=session.entered_at or event.occurred_at), False
        if event.kind == "identified":
            if session.state != model.OPEN or session.exited_at is not None or not event.customer_id:
                return session, False  # decided already: a late identification changes nothing
            elsewhere = tx.active_elsewhere(event.customer_id, event.store_id)
            return replace(session, customer_id=event.customer_id,
                           false_match_probability=event.false_match_probability,
                           active_elsewhere=session.active_elsewhere or elsewhere), False
        if event.kind == "exit":
            if session.exited_at is not None:
                return session, False
            return replace(session, exited_at=event.occurred_at), session.state == model.OPEN
        return session, False

    # -- the decision at exit and the charge --------------------------------------------------

    def settle(self, session_id: str) -> Session:
        """Decide and, where the policy allows, charge. Safe to call again at any time."""
        session, profile = self.get_session(session_id), None
        if session.state == model.OPEN and session.exited_at is not None:
            session, profile = self._decide(session)
        if session.state == model.CHARGING:
            session = self._charge(session, profile)
        return session

    def _decide(self, session: Session) -> tuple[Session, ChargeProfile | None]:
        """The risk decision, with the charge profile it read (the charge right after reuses
        it rather than asking identity, and writing its data-access audit entry, twice)."""
        profile, spent, facts_reason = None, 0, ""
        if session.customer_id and not session.active_elsewhere:
            try:
                profile = self._profiles.charge_profile(session.customer_id)
            except FailedPrecondition:
                facts_reason = "no_payment_method"
        with self._db.transaction() as tx:
            current = tx.session(session.session_id, lock=True)
            assert current is not None
            if current.state != model.OPEN:
                return current, profile
            before = current
            if current.customer_id:
                spent = tx.spent_today_minor(current.customer_id)
            decision = decide(self._policy, ExitFacts(
                customer_id=current.customer_id, false_match_probability=current.false_match_probability,
                total_minor=current.bill.total, active_elsewhere=current.active_elsewhere,
                per_visit_limit_minor=profile.per_visit_limit_minor if profile else 0,
                daily_limit_minor=profile.daily_limit_minor if profile else 0, spent_today_minor=spent))
            if facts_reason and decision.action in ("charge", "confirm"):
                decision = replace(decision, action="staff", reason=facts_reason)
            if decision.action == "charge":
                current = replace(current, state=model.CHARGING, decision_reason=decision.reason)
            elif decision.action == "confirm":
                current = replace(current, state=model.AWAITING, decision_reason=decision.reason,
                                  confirmation_deadline=_now() + self._confirmation_timeout)
                tx.enqueue_notification(current.session_id, current.customer_id, "push",
                                        "Confirm your GaitPay bill",
                                        f"{rupees(current.bill.total)} at {current.store_id}: approve in the app "
                                        f"({decision.reason.replace('_', ' ')}).")
            elif decision.action == "nothing":
                current = replace(current, state=model.PAID, decision_reason=decision.reason)
            else:
                current = replace(current, state=model.STAFF, decision_reason=decision.reason)
                _notify_staff(tx, current, decision.reason)
            _save(tx, before, current)
            return current, profile

    def _charge(self, session: Session, profile: ChargeProfile | None = None) -> Session:
        assert session.customer_id
        if profile is None:
            try:
                profile = self._profiles.charge_profile(session.customer_id)
            except FailedPrecondition:
                return self._finish(session.session_id, model.STAFF, "no_payment_method", "")
            except MeshError:
                return session  # identity unreachable: the sweeper tries again
        outcome = self._payments.charge(session, session.bill.total, profile)
        if outcome.state == "captured":
            return self._finish(session.session_id, model.PAID, session.decision_reason, outcome.payment_id)
        if outcome.state in ("declined", "requires_action"):
            return self._finish(session.session_id, model.STAFF, "payment_declined", outcome.payment_id)
        if outcome.state == "rejected":  # payment refused the request itself: asking again won't help
            return self._finish(session.session_id, model.STAFF, "payment_rejected", outcome.payment_id)
        # unknown, pending or failed: the same key is asked again later; never a second charge.
        with self._db.transaction() as tx:
            current = tx.session(session.session_id, lock=True)
            assert current is not None
            if outcome.payment_id and not current.payment_id:
                before, current = current, replace(current, payment_id=outcome.payment_id)
                _save(tx, before, current)
            return current

    def _finish(self, session_id: str, state: str, reason: str, payment_id: str) -> Session:
        with self._db.transaction() as tx:
            current = tx.session(session_id, lock=True)
            assert current is not None
            if current.state != model.CHARGING:
                return current
            before, current = current, replace(current, state=state, decision_reason=reason, payment_id=payment_id)
            _save(tx, before, current)
            if state == model.PAID:
                document = render_receipt(current)
                tx.save_receipt(current.session_id, "text/html", document)
                tx.enqueue_notification(current.session_id, current.customer_id, "email",
                                        f"Your GaitPay receipt: {rupees(current.bill.total)}", document.decode())
            elif state == model.STAFF:
                _notify_staff(tx, current, reason)
            return current

    # -- confirmations and the sweeper ----------------------------------------------------------

    def confirm(self, request_id: str, session_id: str, customer_id: str, approve: bool) -> Session:
        fingerprint = request_fingerprint("confirm", session_id, customer_id, approve)
        with self._db.transaction() as tx:
            replayed = tx.claim_request(request_id, "confirm", fingerprint)
            current = tx.session(session_id, lock=True)
            if current is None or current.customer_id != customer_id:
                # Another customer's session is "not found", not "forbidden": nothing leaks.
                raise NotFound(f"no session {session_id} for this customer", metadata={"session_id": session_id})
            if replayed is None:
                if current.state != model.AWAITING:
                    raise FailedPrecondition(f"session is {current.state}, not awaiting confirmation",
                                             metadata={"session_id": session_id, "state": current.state})
                if current.confirmation_deadline and _now() > current.confirmation_deadline:
                    raise FailedPrecondition("the confirmation window has closed; a payment link was sent",
                                             metadata={"session_id": session_id})
                before, current = current, replace(
                    current, state=model.CHARGING if approve else model.STAFF,
                    decision_reason=current.decision_reason if approve else "declined_by_shopper")
                _save(tx, before, current)
                tx.save_response(request_id, b"")
        return self._charge(current) if current.state == model.CHARGING else current

    def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Confirmations past their deadline fall back to a payment link; sessions left
        undecided or charging (a crash, an UNKNOWN payment) are settled again."""
        now = now or _now()
        with self._db.transaction() as tx:
            expired, unsettled = tx.due(now)
            for session in expired:
                _save(tx, session, replace(session, state=model.PAYMENT_LINK, decision_reason="confirmation_timeout"))
                tx.enqueue_notification(session.session_id, session.customer_id, "sms", "Pay your GaitPay bill",
                                        f"{rupees(session.bill.total)} at {session.store_id}: "
                                        f"https://pay.gaitpay.example/s/{session.session_id}")
        settled = sum(1 for s in unsettled if self.settle(s.session_id).state in model.SETTLED)
        return {"payment_links": len(expired), "retried": len(unsettled), "settled": settled}

    # -- carts and catalogue ---------------------------------------------------------------------

    def update_cart(self, request_id: str, store_id: str, session_id: str,
                    changes: Sequence[tuple[str, int]]) -> Session:
        fingerprint = request_fingerprint("cart", store_id, session_id, list(changes))
        with self._db.transaction() as tx:
            replayed = tx.claim_request(request_id, "cart", fingerprint)
            session = tx.session(session_id, lock=True)
            if session is None or session.store_id != store_id:
                raise NotFound(f"no session {session_id} in store {store_id}", metadata={"session_id": session_id})
            if replayed is not None:
                return session
            if session.state != model.OPEN or session.exited_at is not None:
                raise FailedPrecondition(f"the cart of a {session.state} session is closed",
                                         metadata={"session_id": session_id, "state": session.state})
            items = tx.items(store_id, [sku for sku, _ in changes])
            quantities = {l.item.sku: l.quantity for l in session.lines}
            known = {l.item.sku: l.item for l in session.lines}
            for i, (sku, delta) in enumerate(changes):
                if sku not in items and sku not in known:
                    raise InvalidArgument(f"sku {sku!r} is not in the catalogue of {store_id}",
                                          field_violations=[(f"changes[{i}].sku", "unknown sku")])
                quantities[sku] = quantities.get(sku, 0) + delta
                if quantities[sku] < 0:
                    raise InvalidArgument(f"removing more {sku} than the cart holds",
                                          field_violations=[(f"changes[{i}].quantity_delta", "below zero")])
                known.setdefault(sku, items.get(sku))  # type: ignore[arg-type]
            # The price a shopper picked an item up at is the price they pay.
            lines = tuple(Line(known[sku], q) for sku, q in quantities.items() if q > 0)
            before, session = session, replace(session, lines=lines)
            _save(tx, before, session)
            tx.save_response(request_id, b"")
            return session

    def upsert_catalogue(self, request_id: str, store_id: str, items: Sequence[Item]) -> int:
        with self._db.transaction() as tx:
            fingerprint = request_fingerprint("catalogue", store_id, [i.__dict__ for i in items])
            if tx.claim_request(request_id, "catalogue", fingerprint) is not None:
                return len(items)
            n = tx.upsert_items(store_id, items)
            tx.save_response(request_id, b"")
            return n

    # -- reads and erasure -----------------------------------------------------------------------

    def get_session(self, session_id: str, store_id: str | None = None) -> Session:
        with self._db.transaction() as tx:
            session = tx.session(session_id)
        if session is None or (store_id is not None and session.store_id != store_id):
            raise NotFound(f"no session {session_id}", metadata={"session_id": session_id})
        return session

    def list_sessions(self, store_id: str, after: str, limit: int) -> list[Session]:
        with self._db.transaction() as tx:
            return tx.sessions(store_id, after, limit)

    def receipt(self, store_id: str, session_id: str) -> tuple[str, bytes]:
        self.get_session(session_id, store_id)
        with self._db.transaction() as tx:
            found = tx.receipt(session_id)
        if found is None:
            raise FailedPrecondition("the session has no receipt (not paid)", metadata={"session_id": session_id})
        return found

    def partner_events(self, after: str, limit: int) -> tuple[list[PublishedEvent], str]:
        """The feed from `after` on, and the cursor to go on from."""
        with self._db.transaction() as tx:
            return tx.events_after(after, limit)

    def anonymise_customer(self, customer_id: str) -> int:
        with self._db.transaction() as tx:
            return tx.anonymise_customer(customer_id)
