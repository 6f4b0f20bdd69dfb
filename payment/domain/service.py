"""The payment core: at most one capture per idempotency key, routing with circuit breakers
and a retry budget, failover on technical failures only, UNKNOWN outcomes left to the
reconciler, a double-entry ledger posted in the same transaction as every state change,
refunds never beyond what was captured, and webhooks applied idempotently in any order.

It knows nothing of gRPC, HTTP or SQL; gateways and the database come in through ports."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Mapping

import grpc

from mesh.errors import AlreadyExists, FailedPrecondition, InvalidArgument, MeshError, NotFound, Unavailable
from mesh.idempotency import request_fingerprint
from payment.domain import ledger
from payment.domain.errors import GatewayDeclined, OutcomeUnknown, TechnicalFailure
from payment.domain.model import (CAPTURED_STATES, UNSETTLED_STATES, Attempt, GatewayEvent, LedgerBalance, Payment,
                                  ReconcileReport, Refund, Route, State)
from payment.domain.events import PublishedEvent, payment_events
from payment.domain.ports import Database, Gateway, Tx
from payment.domain.routing import CircuitBreaker, RetryBudget, RoutingConfig, backoff_s


class RefundExceedsCaptured(MeshError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "REFUND_EXCEEDS_CAPTURED"


class OutcomeStillUnknown(MeshError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "PAYMENT_OUTCOME_UNKNOWN"


@dataclass(frozen=True)
class ChargeCommand:
    idempotency_key: str
    session_id: str
    customer_id: str
    store_id: str
    amount_minor: int
    currency: str
    routes: tuple[Route, ...]
    preferred_gateway: str = ""


@dataclass(frozen=True)
class _Outcome:
    state: State
    gateway: str = ""
    payment_reference: str = ""
    failure_reason: str = ""
    attempts: tuple[Attempt, ...] = ()


def _update(tx: Tx, before: Payment, after: Payment) -> None:
    """Every change of a payment is saved through here, so its partner events are written in
    the same transaction."""
    tx.update_payment(after)
    for event_type in payment_events(before, after):
        tx.publish(event_type, after.payment_id)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class PaymentCore:
    def __init__(self, db: Database, gateways: Mapping[str, Gateway], routing: RoutingConfig = RoutingConfig(),
                 sleep: Callable[[float], None] = time.sleep, unknown_grace_s: float = 5.0) -> None:
        self._db = db
        self._gateways = dict(gateways)
        self._routing = routing
        self._breakers = {name: CircuitBreaker(routing) for name in self._gateways}
        self._budget = RetryBudget(routing)
        self._sleep = sleep
        # The reconciler leaves an UNKNOWN payment alone this long: a request still in flight
        # at the gateway must land (or not) before "not captured" is believed.
        self.unknown_grace_s = unknown_grace_s

    def breaker_states(self) -> dict[str, str]:
        return {name: b.state for name, b in self._breakers.items()}

    # -- charge ----------------------------------------------------------------------------------

    def charge(self, cmd: ChargeCommand) -> Payment:
        if cmd.amount_minor <= 0:
            raise InvalidArgument("amount must be positive", field_violations=[("amount", "must be > 0")])
        if cmd.currency != "INR":
            raise InvalidArgument("only INR is charged", field_violations=[("amount.currency_code", "must be INR")])
        fingerprint = request_fingerprint(cmd.session_id, cmd.customer_id, cmd.store_id, cmd.amount_minor, cmd.currency)
        claim = Payment(payment_id=str(uuid.uuid4()), idempotency_key=cmd.idempotency_key, fingerprint=fingerprint,
                        session_id=cmd.session_id, customer_id=cmd.customer_id, store_id=cmd.store_id,
                        amount_minor=cmd.amount_minor, currency=cmd.currency, state=State.PROCESSING)
        with self._db.transaction() as tx:
            payment, created = tx.claim_payment(claim)
            if not created:
                if payment.fingerprint != fingerprint:
                    raise AlreadyExists("idempotency_key was already used for a different charge",
                                        metadata={"idempotency_key": cmd.idempotency_key,
                                                  "payment_id": payment.payment_id})
                if payment.state != State.FAILED:
                    # Captured, declined, unknown or another caller processing: the first outcome
                    # stands. Nothing is retried blindly.
                    return payment
                before, payment = payment, replace(payment, state=State.PROCESSING, failure_reason="")
                _update(tx, before, payment)
        self._budget.deposit()
        outcome = self._route(payment, cmd)
        with self._db.transaction() as tx:
            current = before = tx.payment(payment.payment_id, lock=True)
            assert current is not None and before is not None
            attempts = current.attempts + outcome.attempts
            if current.state != State.PROCESSING:
                # A webhook settled it while we waited on the gateway; its word stands.
                current = replace(current, attempts=attempts)
            elif outcome.state == State.CAPTURED:
                current = self._captured(tx, replace(current, attempts=attempts), outcome.gateway,
                                         outcome.payment_reference)
            else:
                current = replace(current, state=outcome.state, gateway=outcome.gateway or current.gateway,
                                  gateway_reference=outcome.payment_reference or current.gateway_reference,
                                  failure_reason=outcome.failure_reason, attempts=attempts, updated_at=_now())
            _update(tx, before, current)
            return current

    def _ordered_routes(self, cmd: ChargeCommand) -> list[Route]:
        routes = list(cmd.routes)
        if cmd.preferred_gateway:
            routes.sort(key=lambda r: r.gateway != cmd.preferred_gateway)
        return routes

    def _route(self, payment: Payment, cmd: ChargeCommand) -> _Outcome:
        attempts: list[Attempt] = []
        for route in self._ordered_routes(cmd):
            gateway = self._gateways.get(route.gateway)
            if gateway is None:
                attempts.append(Attempt(route.gateway, "technical_failure", "gateway not configured"))
                continue
            breaker = self._breakers[route.gateway]
            if not breaker.allow():
                attempts.append(Attempt(route.gateway, "skipped_circuit_open"))
                continue
            retry = 0
            while True:
                try:
                    reference = self._prepared(payment, gateway, route)
                    result = gateway.execute(reference, payment.amount_minor, payment.currency, route,
                                             payment.idempotency_key)
                except TechnicalFailure as exc:
                    breaker.failure()
                    attempts.append(Attempt(route.gateway, "technical_failure", str(exc)[:200]))
                    if (retry < self._routing.max_retries_per_gateway and breaker.allow()
                            and self._budget.try_spend()):
                        self._sleep(backoff_s(self._routing, retry))
                        retry += 1
                        continue
                    break  # fail over: nothing can have been captured here
                except OutcomeUnknown as exc:
                    breaker.failure()
                    attempts.append(Attempt(route.gateway, "unknown", str(exc)[:200]))
                    # Money may have moved: never another gateway, never again here.
                    return _Outcome(State.UNKNOWN, route.gateway, "", "gateway gave no answer", tuple(attempts))
                breaker.success()
                attempts.append(Attempt(route.gateway, result.outcome, result.detail[:200]))
                state = {"captured": State.CAPTURED, "declined": State.DECLINED,
                         "requires_action": State.REQUIRES_ACTION}.get(result.outcome, State.DECLINED)
                # A decline is the bank's answer, not a fault: no failover (it would only
                # retry a refusal on another rail).
                return _Outcome(state, route.gateway, result.payment_reference,
                                "" if state == State.CAPTURED else (result.detail or result.outcome), tuple(attempts))
        return _Outcome(State.FAILED, "", "", "no gateway could be reached", tuple(attempts))

    def _prepared(self, payment: Payment, gateway: Gateway, route: Route) -> str:
        """The gateway object for this payment, created once and remembered before anything
        can capture, so the reconciler can always find it."""
        with self._db.transaction() as tx:
            reference = tx.gateway_refs(payment.payment_id).get(gateway.name)
        if reference:
            return reference
        reference = gateway.prepare(f"{payment.idempotency_key}:{gateway.name}", payment.amount_minor,
                                    payment.currency, route, f"GaitPay session {payment.session_id}")
        with self._db.transaction() as tx:
            tx.save_gateway_ref(payment.payment_id, gateway.name, reference)
        return reference

    def _captured(self, tx, payment: Payment, gateway: str, payment_reference: str) -> Payment:  # type: ignore[no-untyped-def]
        """The one place a payment becomes captured, with its ledger lines."""
        tx.post_ledger(f"capture:{payment.payment_id}", payment.payment_id,
                       ledger.capture(gateway, payment.store_id, payment.amount_minor))
        at = _now()
        return replace(payment, state=State.CAPTURED, gateway=gateway, gateway_reference=payment_reference,
                       failure_reason="", captured_at=at, updated_at=at)

    # -- reads -----------------------------------------------------------------------------------

    def get(self, payment_id: str, store_id: str = "") -> Payment:
        """A payment; with store_id, one of that store only (a partner never learns whether
        another store's payment id exists: both answer NOT_FOUND)."""
        with self._db.transaction() as tx:
            payment = tx.payment(payment_id)
        if payment is None or (store_id and payment.store_id != store_id):
            raise NotFound(f"no payment {payment_id}" + (f" in store {store_id}" if store_id else ""),
                           metadata={"payment_id": payment_id})
        return payment

    def ledger_balance(self) -> LedgerBalance:
        with self._db.transaction() as tx:
            return tx.ledger_balance()

    # -- refunds ---------------------------------------------------------------------------------

    def refund(self, request_id: str, payment_id: str, amount_minor: int, reason: str = "",
               store_id: str = "") -> tuple[Payment, Refund]:
        if amount_minor <= 0:
            raise InvalidArgument("refund amount must be positive", field_violations=[("amount", "must be > 0")])
        if store_id:
            self.get(payment_id, store_id)  # another store's payment is NOT_FOUND, replays included
        fingerprint = request_fingerprint("refund", payment_id, amount_minor)
        with self._db.transaction() as tx:
            earlier = tx.refund_for_request(request_id)
            if earlier is not None:
                refund, earlier_fingerprint = earlier
                if earlier_fingerprint != fingerprint:
                    raise AlreadyExists("request_id was already used for a different refund",
                                        metadata={"request_id": request_id})
                if refund.state == "pending":
                    raise OutcomeStillUnknown("the refund is still being processed by the gateway",
                                              metadata={"refund_id": refund.refund_id})
                payment = tx.payment(payment_id)
                assert payment is not None
                return payment, refund
            payment = tx.payment(payment_id, lock=True)
            if payment is None:
                raise NotFound(f"no payment {payment_id}", metadata={"payment_id": payment_id})
            if payment.state not in (State.CAPTURED, State.PARTIALLY_REFUNDED):
                raise FailedPrecondition(f"payment is {payment.state.value}; only captured payments are refunded",
                                         metadata={"payment_id": payment_id, "state": payment.state.value})
            available = payment.amount_minor - payment.refunded_minor - tx.pending_refunds_minor(payment_id)
            if amount_minor > available:
                raise RefundExceedsCaptured(
                    f"refund of {amount_minor} exceeds the {available} still refundable",
                    metadata={"payment_id": payment_id, "refundable_minor": str(available)},
                    field_violations=[("amount", f"at most {available}")])
            refund = Refund(str(uuid.uuid4()), payment_id, amount_minor, "", "pending")
            tx.insert_refund(refund, request_id, fingerprint)  # reserves the amount
        gateway = self._gateways[payment.gateway]
        try:
            gateway_reference = gateway.refund(payment.gateway_reference, amount_minor, f"refund:{refund.refund_id}")
        except (TechnicalFailure, GatewayDeclined) as exc:
            with self._db.transaction() as tx:
                tx.finish_refund(refund.refund_id, "failed", "")
            raise Unavailable(f"{payment.gateway} refused or could not take the refund: {exc}",
                              metadata={"payment_id": payment_id}) from None
        except OutcomeUnknown:
            raise OutcomeStillUnknown("the gateway gave no answer; the refund stays reserved",
                                      metadata={"refund_id": refund.refund_id}) from None
        with self._db.transaction() as tx:
            before = tx.payment(payment_id, lock=True)
            assert before is not None
            booked = tx.refund_by_id(refund.refund_id)
            if booked is not None and booked.state == "processed":
                # Its webhook came first and booked it (the payment row lock orders the two).
                return before, booked
            current = self._refunded(tx, before, refund.refund_id, amount_minor)
            tx.finish_refund(refund.refund_id, "processed", gateway_reference)
            _update(tx, before, current)
        return current, replace(refund, gateway_reference=gateway_reference, state="processed")

    def _refunded(self, tx, payment: Payment, refund_id: str, amount: int) -> Payment:  # type: ignore[no-untyped-def]
        tx.post_ledger(f"refund:{refund_id}", payment.payment_id, ledger.refund(payment.gateway, payment.store_id, amount))
        refunded = payment.refunded_minor + amount
        state = payment.state if payment.state == State.DISPUTED else (
            State.REFUNDED if refunded >= payment.amount_minor else State.PARTIALLY_REFUNDED)
        return replace(payment, refunded_minor=refunded, state=state, updated_at=_now())

    # -- reconciliation --------------------------------------------------------------------------

    def reconcile(self, older_than_s: float | None = None) -> ReconcileReport:
        older = self.unknown_grace_s if older_than_s is None else older_than_s
        with self._db.transaction() as tx:
            # PROCESSING rows this old belong to a caller that died mid-charge.
            candidates = tx.unsettled(older, processing_stale_s=max(older, 60.0))
        counts = {"captured": 0, "not_captured": 0, "still_unknown": 0}
        for payment in candidates:
            counts[self._reconcile_one(payment)] += 1
        return ReconcileReport(examined=len(candidates), **counts)

    def _reconcile_one(self, payment: Payment) -> str:
        with self._db.transaction() as tx:
            refs = tx.gateway_refs(payment.payment_id)
        answers: dict[str, str] = {}
        for name, reference in refs.items():
            gateway = self._gateways.get(name)
            if gateway is None:
                return "still_unknown"
            try:
                result = gateway.status(reference)
            except (TechnicalFailure, OutcomeUnknown):
                return "still_unknown"
            if result.outcome == "captured":
                with self._db.transaction() as tx:
                    current = tx.payment(payment.payment_id, lock=True)
                    if current is not None and current.state in UNSETTLED_STATES + (State.DECLINED,):
                        _update(tx, current, self._captured(tx, replace(current, attempts=current.attempts + (
                            Attempt(name, "captured", "found by the reconciler"),)), name, result.payment_reference))
                return "captured"
            answers[name] = result.outcome
        # Nothing captured anywhere: make sure nothing still can, then let Charge try again.
        for name, reference in refs.items():
            try:
                reusable = self._gateways[name].void(reference)
            except (TechnicalFailure, OutcomeUnknown):
                return "still_unknown"
            if not reusable:
                with self._db.transaction() as tx:
                    tx.drop_gateway_ref(payment.payment_id, name)
        declined = any(outcome == "declined" for outcome in answers.values())
        with self._db.transaction() as tx:
            current = tx.payment(payment.payment_id, lock=True)
            if current is not None and current.state in UNSETTLED_STATES:
                _update(tx, current, replace(current, state=State.DECLINED if declined else State.FAILED,
                                          failure_reason="reconciled: declined" if declined
                                          else "reconciled: not captured", updated_at=_now()))
        return "not_captured"

    # -- webhooks --------------------------------------------------------------------------------

    def apply_event(self, event: GatewayEvent) -> str:
        """Apply a verified gateway event once; events may arrive in any order and twice."""
        with self._db.transaction() as tx:
            if not tx.record_webhook(event.event_id, event.gateway, event.kind):
                return "duplicate"
            payment = before = tx.payment_by_reference(event.gateway, event.reference, lock=True)
            if payment is None or before is None:
                return "unknown_payment"
            if event.kind in ("captured", "refunded", "disputed") and payment.state not in CAPTURED_STATES:
                # The gateway says money moved (a refund or dispute implies a capture too).
                payment = self._captured(tx, payment, event.gateway, event.payment_reference or payment.gateway_reference)
            if event.kind == "declined" and payment.state in (State.PROCESSING, State.UNKNOWN):
                payment = replace(payment, state=State.DECLINED, failure_reason="declined (webhook)", updated_at=_now())
            elif event.kind == "refunded" and event.object_id and tx.refund_by_gateway_reference(event.object_id) is None:
                ours = tx.refund_by_id(event.our_refund_id) if _is_uuid(event.our_refund_id) else None
                if ours is not None and ours.payment_id == payment.payment_id:
                    if ours.state == "pending":
                        # Ours, its webhook faster than our own call's answer: booked here, once;
                        # the call's own booking then finds it processed.
                        payment = self._refunded(tx, payment, ours.refund_id, ours.amount_minor)
                        tx.finish_refund(ours.refund_id, "processed", event.object_id)
                else:
                    # A refund we did not ask for (the gateway's dashboard): recorded, capped by
                    # what is neither refunded nor reserved for a refund of ours in flight.
                    amount = min(event.amount_minor, payment.amount_minor - payment.refunded_minor
                                 - tx.pending_refunds_minor(payment.payment_id))
                    if amount > 0:
                        refund = Refund(str(uuid.uuid4()), payment.payment_id, amount, event.object_id, "processed")
                        tx.insert_refund(refund, f"webhook:{event.event_id}", "")
                        payment = self._refunded(tx, payment, refund.refund_id, amount)
            elif event.kind == "disputed" and payment.state != State.DISPUTED:
                amount = min(event.amount_minor or payment.amount_minor, payment.amount_minor - payment.refunded_minor)
                tx.post_ledger(f"dispute:{event.object_id or event.event_id}", payment.payment_id,
                               ledger.dispute(payment.gateway, payment.store_id, amount))
                payment = replace(payment, state=State.DISPUTED, updated_at=_now())
            _update(tx, before, payment)
            return "applied"

    # -- erasure ---------------------------------------------------------------------------------

    def partner_events(self, after: str, limit: int) -> tuple[list[PublishedEvent], str]:
        """The feed from `after` on, and the cursor to go on from."""
        with self._db.transaction() as tx:
            return tx.events_after(after, limit)

    def anonymise_customer(self, customer_id: str) -> int:
        with self._db.transaction() as tx:
            return tx.anonymise_customer(customer_id)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
