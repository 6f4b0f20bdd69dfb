"""The payment core against real parts: PostgreSQL, localstripe and the fake Razorpay
through the stripe and razorpay SDKs. Fault injection is the fake Razorpay's own (503s, late
answers) or a wrapper that drops a gateway's answer after the request was sent."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from mesh.errors import AlreadyExists, FailedPrecondition
from payment import sandbox
from payment.adapters.postgres_store import PostgresDatabase
from payment.adapters.razorpay_gateway import RazorpayGateway
from payment.adapters.stripe_gateway import StripeGateway
from payment.adapters.webhooks_http import razorpay_event, stripe_event
from payment.domain.errors import OutcomeUnknown
from payment.domain.model import GatewayEvent, Route, State
from payment.domain.routing import RoutingConfig
from payment.domain.service import ChargeCommand, PaymentCore, RefundExceedsCaptured

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def db(backing_services):
    database = PostgresDatabase(backing_services["postgres_dsn"])
    yield database
    database.close()


@pytest.fixture(scope="module")
def stripe_gw(local_gateways):
    return StripeGateway(local_gateways.stripe_key, local_gateways.stripe_base, timeout_s=2.0)


@pytest.fixture(scope="module")
def razorpay_gw(local_gateways):
    return RazorpayGateway(local_gateways.key_id, local_gateways.key_secret, local_gateways.razorpay_base,
                           timeout_s=0.5)


@pytest.fixture(scope="module")
def good_routes(local_gateways):
    g = local_gateways
    s = sandbox.stripe_token(g.stripe_key, g.stripe_base, "good@example.com")
    r = sandbox.razorpay_token(g.key_id, g.key_secret, g.razorpay_base, "good@example.com")
    return {"stripe": Route(s.gateway, s.customer_reference, s.token),
            "razorpay": Route(r.gateway, r.customer_reference, r.token)}


@pytest.fixture(autouse=True)
def healthy_razorpay(local_gateways):
    local_gateways.razorpay_fault("none")
    yield
    local_gateways.razorpay_fault("none")


def core_with(db, gateways, **routing) -> PaymentCore:
    return PaymentCore(db, {g.name: g for g in gateways}, RoutingConfig(**routing), sleep=lambda s: None,
                       unknown_grace_s=0)


def command(routes, amount=12_345, key=None, gateway="") -> ChargeCommand:
    return ChargeCommand(idempotency_key=key or f"session-{uuid.uuid4()}", session_id=str(uuid.uuid4()),
                         customer_id=str(uuid.uuid4()), store_id="store-test", amount_minor=amount, currency="INR",
                         routes=tuple(routes), preferred_gateway=gateway)


def ledger_lines(db, payment_id):
    with db.transaction() as tx:
        rows = tx._all("SELECT e.txn_id, e.account, e.debit_minor, e.credit_minor FROM payment.ledger_entries e "
                       "JOIN payment.ledger_transactions t USING (txn_id) WHERE t.payment_id = %s ORDER BY entry_id",
                       (payment_id,))
    return rows


def test_one_capture_per_key_under_concurrent_duplicates(db, stripe_gw, razorpay_gw, good_routes):
    core = core_with(db, [stripe_gw, razorpay_gw])
    cmd = command([good_routes["stripe"], good_routes["razorpay"]])
    results, errors = [], []

    def charge() -> None:
        try:
            results.append(core.charge(cmd))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=charge) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({p.payment_id for p in results}) == 1
    final = core.get(results[0].payment_id)
    assert final.state == State.CAPTURED and final.gateway == "stripe", final.attempts
    # Exactly one gateway object, one capture booked; the losers saw the winner's row.
    with db.transaction() as tx:
        assert list(tx.gateway_refs(final.payment_id)) == ["stripe"]
    assert [r["txn_id"] for r in ledger_lines(db, final.payment_id)] == [f"capture:{final.payment_id}"] * 2
    assert stripe_gw.status(final.gateway_reference).outcome == "captured"
    # A later retry replays; the same key with another amount is refused.
    assert core.charge(cmd).payment_id == final.payment_id
    with pytest.raises(AlreadyExists):
        core.charge(ChargeCommand(**{**cmd.__dict__, "amount_minor": 99_999}))


def test_decline_is_final_and_never_fails_over(db, stripe_gw, razorpay_gw, local_gateways, good_routes):
    g = local_gateways
    bad = sandbox.stripe_token(g.stripe_key, g.stripe_base, "bad@example.com", card=sandbox.DECLINING_CARD)
    core = core_with(db, [stripe_gw, razorpay_gw])
    payment = core.charge(command([Route("stripe", bad.customer_reference, bad.token), good_routes["razorpay"]]))
    assert payment.state == State.DECLINED
    assert [(a.gateway, a.outcome) for a in payment.attempts] == [("stripe", "declined")]
    assert ledger_lines(db, payment.payment_id) == []


def test_outage_fails_over_and_opens_the_circuit(db, stripe_gw, razorpay_gw, local_gateways, good_routes):
    local_gateways.razorpay_fault("unavailable")
    core = core_with(db, [stripe_gw, razorpay_gw], failure_threshold=3, max_retries_per_gateway=1)
    routes = [good_routes["razorpay"], good_routes["stripe"]]
    first = core.charge(command(routes))
    assert first.state == State.CAPTURED and first.gateway == "stripe"
    assert [(a.gateway, a.outcome) for a in first.attempts] == [
        ("razorpay", "technical_failure"), ("razorpay", "technical_failure"), ("stripe", "captured")]
    second = core.charge(command(routes))
    assert second.gateway == "stripe"
    assert core.breaker_states()["razorpay"] == "open"
    third = core.charge(command(routes))
    assert [(a.gateway, a.outcome) for a in third.attempts] == [
        ("razorpay", "skipped_circuit_open"), ("stripe", "captured")]


def test_timeout_is_unknown_no_failover_and_the_reconciler_finds_the_capture(db, stripe_gw, razorpay_gw,
                                                                            local_gateways, good_routes):
    local_gateways.razorpay_fault("slow", 1.5)  # the fake captures, then answers after our deadline
    core = core_with(db, [stripe_gw, razorpay_gw])
    cmd = command([good_routes["razorpay"], good_routes["stripe"]])
    payment = core.charge(cmd)
    assert payment.state == State.UNKNOWN
    assert [(a.gateway, a.outcome) for a in payment.attempts][-1] == ("razorpay", "unknown")
    assert "stripe" not in {a.gateway for a in payment.attempts}
    again = core.charge(cmd)  # no blind retry: the same UNKNOWN, no new attempt
    assert again.state == State.UNKNOWN and len(again.attempts) == len(payment.attempts)
    local_gateways.razorpay_fault("none")
    time.sleep(1.6)
    report = core.reconcile(older_than_s=0)
    assert report.captured >= 1
    settled = core.get(payment.payment_id)
    assert settled.state == State.CAPTURED and settled.gateway == "razorpay"
    assert settled.gateway_reference.startswith("pay_")
    assert len(ledger_lines(db, payment.payment_id)) == 2


class DropsAnswer:
    """Sends the request to the real gateway's prepare, then loses the confirm entirely:
    the case where the reconciler must prove nothing was captured before a retry."""

    def __init__(self, inner: StripeGateway) -> None:
        self.inner, self.name = inner, inner.name

    def prepare(self, *args):  # type: ignore[no-untyped-def]
        return self.inner.prepare(*args)

    def execute(self, *args):  # type: ignore[no-untyped-def]
        raise OutcomeUnknown("connection reset before the answer")

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_reconciler_proves_not_captured_then_charge_may_try_again(db, stripe_gw, good_routes):
    cmd = command([good_routes["stripe"]])
    lossy = core_with(db, [DropsAnswer(stripe_gw)])
    unknown = lossy.charge(cmd)
    assert unknown.state == State.UNKNOWN
    report = lossy.reconcile(older_than_s=0)
    assert report.not_captured >= 1
    failed = lossy.get(unknown.payment_id)
    assert failed.state == State.FAILED
    # The first intent was cancelled, so it can never capture late; the retry makes a new one.
    healthy = core_with(db, [stripe_gw])
    retried = healthy.charge(cmd)
    assert retried.state == State.CAPTURED and retried.payment_id == failed.payment_id
    assert len([r for r in ledger_lines(db, retried.payment_id) if r["debit_minor"]]) == 1


def _feed_after(core: PaymentCore, cursor: str) -> list:
    events: list = []
    while True:
        page, cursor = core.partner_events(cursor, 100)
        if not page:
            return events
        events += page


def test_refunds_partial_full_and_never_beyond_captured(db, stripe_gw, razorpay_gw, good_routes):
    core = core_with(db, [stripe_gw, razorpay_gw])
    start = core.partner_events("", 1_000_000)[1]
    charged = []
    for route in (good_routes["stripe"], good_routes["razorpay"]):
        payment = core.charge(command([route], amount=10_000))
        assert payment.state == State.CAPTURED
        charged.append(payment.payment_id)
        request = str(uuid.uuid4())
        partial, refund = core.refund(request, payment.payment_id, 2_500)
        assert partial.state == State.PARTIALLY_REFUNDED and partial.refunded_minor == 2_500
        assert core.refund(request, payment.payment_id, 2_500)[1].refund_id == refund.refund_id  # replay
        with pytest.raises(RefundExceedsCaptured) as exceeded:
            core.refund(str(uuid.uuid4()), payment.payment_id, 7_501)
        assert exceeded.value.metadata["refundable_minor"] == "7500"
        full, _ = core.refund(str(uuid.uuid4()), payment.payment_id, 7_500)
        assert full.state == State.REFUNDED and full.refunded_minor == 10_000
        with pytest.raises(FailedPrecondition):
            core.refund(str(uuid.uuid4()), payment.payment_id, 1)
        lines = ledger_lines(db, payment.payment_id)
        payable = sum(r["debit_minor"] - r["credit_minor"] for r in lines if r["account"] == "payable:store-test")
        assert payable == 0  # sold 10,000, refunded 10,000
    assert core.ledger_balance().balanced
    # Partners hear of each change once, in order, with the amounts as they were then (a
    # replayed or refused refund announces nothing).
    told = [(e.event_type, e.payment.refunded_minor) for e in _feed_after(core, start)
            if e.payment.payment_id == charged[0]]
    assert told == [("payment.captured", 0), ("payment.partially_refunded", 2_500), ("payment.refunded", 10_000)]


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(100, 500_000), refunds=st.lists(st.integers(1, 600_000), max_size=5))
def test_ledger_balances_after_any_charge_and_refunds(db, stripe_gw, good_routes, amount, refunds):
    core = core_with(db, [stripe_gw])
    payment = core.charge(command([good_routes["stripe"]], amount=amount))
    refunded = 0
    for value in refunds:
        try:
            payment, _ = core.refund(str(uuid.uuid4()), payment.payment_id, value)
            refunded += value
        except (RefundExceedsCaptured, FailedPrecondition):
            assert refunded + value > amount
    assert payment.refunded_minor == refunded <= amount
    balance = core.ledger_balance()
    assert balance.balanced and balance.unbalanced_transactions == 0


def test_the_database_refuses_an_unbalanced_or_edited_ledger(db, backing_services, stripe_gw, good_routes):
    payment = core_with(db, [stripe_gw]).charge(command([good_routes["stripe"]]))
    with psycopg.connect(backing_services["postgres_dsn"]) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            with conn.transaction():
                conn.execute("INSERT INTO payment.ledger_transactions (txn_id, payment_id) VALUES (%s, %s)",
                             (f"forged:{uuid.uuid4()}", payment.payment_id))
                conn.execute("INSERT INTO payment.ledger_entries (txn_id, account, debit_minor) "
                             "SELECT txn_id, 'clearing:stripe', 500 FROM payment.ledger_transactions "
                             "WHERE txn_id LIKE 'forged:%%'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.transaction():
                conn.execute("UPDATE payment.ledger_entries SET debit_minor = 1 WHERE txn_id = %s",
                             (f"capture:{payment.payment_id}",))


def _stripe_signed(body: str, secret: str, at: int) -> str:
    import hashlib
    import hmac

    return f"t={at},v1=" + hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()


def test_webhook_signatures_are_checked():
    import hashlib
    import hmac
    import json

    body = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
                       "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 500}}})
    secret = "whsec_test"
    event = stripe_event(body.encode(), _stripe_signed(body, secret, int(time.time())), secret)
    assert event == GatewayEvent("stripe", "evt_1", "captured", "pi_1", "pi_1", 500)
    with pytest.raises(ValueError, match="Stripe-Signature"):
        stripe_event(body.encode(), _stripe_signed(body, "whsec_other", int(time.time())), secret)
    with pytest.raises(ValueError, match="Stripe-Signature"):  # a replay outside the 300 s tolerance
        stripe_event(body.encode(), _stripe_signed(body, secret, int(time.time()) - 301), secret)
    with pytest.raises(ValueError, match="Stripe-Signature"):  # body altered after signing
        stripe_event(body.replace("500", "5").encode(), _stripe_signed(body, secret, int(time.time())), secret)
    rz = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_1", "order_id": "order_1", "amount": 700}}}}).encode()
    good = hmac.new(b"rzsecret", rz, hashlib.sha256).hexdigest()
    assert razorpay_event(rz, good, "evt_r1", "rzsecret").reference == "order_1"
    with pytest.raises(ValueError, match="X-Razorpay-Signature"):
        razorpay_event(rz, good[:-1] + ("0" if good[-1] != "0" else "1"), "evt_r1", "rzsecret")
    with pytest.raises(ValueError, match="X-Razorpay-Signature"):
        razorpay_event(rz + b" ", good, "evt_r1", "rzsecret")


def test_webhooks_apply_once_in_any_order(db, stripe_gw, razorpay_gw, local_gateways, good_routes):
    local_gateways.razorpay_fault("slow", 1.0)
    core = core_with(db, [stripe_gw, razorpay_gw])
    payment = core.charge(command([good_routes["razorpay"]], amount=40_000))
    assert payment.state == State.UNKNOWN
    with db.transaction() as tx:
        order = tx.gateway_refs(payment.payment_id)["razorpay"]
    # The refund's event arrives before the capture's: the refund proves the capture.
    refund_first = GatewayEvent("razorpay", f"evt_{uuid.uuid4().hex}", "refunded", order, "pay_x", 1_000, "rfnd_x")
    assert core.apply_event(refund_first) == "applied"
    after = core.get(payment.payment_id)
    assert after.state == State.PARTIALLY_REFUNDED and after.refunded_minor == 1_000
    captured = GatewayEvent("razorpay", f"evt_{uuid.uuid4().hex}", "captured", order, "pay_x", 40_000)
    assert core.apply_event(captured) == "applied"
    assert core.apply_event(captured) == "duplicate"
    assert core.apply_event(refund_first) == "duplicate"
    final = core.get(payment.payment_id)
    assert final.state == State.PARTIALLY_REFUNDED and final.refunded_minor == 1_000
    debits = [r for r in ledger_lines(db, payment.payment_id) if r["debit_minor"]]
    assert sorted(r["txn_id"].split(":")[0] for r in debits) == ["capture", "refund"]
    declined_late = GatewayEvent("razorpay", f"evt_{uuid.uuid4().hex}", "declined", order)
    core.apply_event(declined_late)
    assert core.get(payment.payment_id).state == State.PARTIALLY_REFUNDED  # never moves back


def test_a_dispute_moves_the_money_to_the_disputed_account_once(db, stripe_gw, good_routes):
    core = core_with(db, [stripe_gw])
    payment = core.charge(command([good_routes["stripe"]], amount=30_000))
    core.refund(str(uuid.uuid4()), payment.payment_id, 5_000)
    dispute = GatewayEvent("stripe", f"evt_{uuid.uuid4().hex}", "disputed", payment.gateway_reference,
                           payment.gateway_reference, 30_000, f"dp_{uuid.uuid4().hex[:8]}")
    assert core.apply_event(dispute) == "applied"
    assert core.apply_event(dispute) == "duplicate"
    assert core.get(payment.payment_id).state == State.DISPUTED
    lines = ledger_lines(db, payment.payment_id)
    disputed = [r for r in lines if r["account"] == "disputed:store-test"]
    # Only what was still captured (30,000 - 5,000 refunded) can be clawed back.
    assert [r["debit_minor"] for r in disputed] == [25_000]
    with pytest.raises(FailedPrecondition):  # a disputed payment is not refunded on top
        core.refund(str(uuid.uuid4()), payment.payment_id, 100)
    assert core.ledger_balance().balanced


class WebhookFirst:
    """The real gateway, whose refund webhook is delivered (and applied by the core) before
    the refund call itself returns: the race a loaded box showed, where one refund was booked
    twice, once by its webhook as if made on the dashboard and once by its own call."""

    def __init__(self, inner, event_for) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.name, self.event_for, self.core = inner, inner.name, event_for, None

    def refund(self, payment_reference: str, amount_minor: int, idempotency_key: str) -> str:
        reference = self.inner.refund(payment_reference, amount_minor, idempotency_key)
        self.applied = self.core.apply_event(self.event_for(reference, amount_minor, idempotency_key))
        return reference

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_a_refund_whose_webhook_beats_its_own_answer_is_booked_once(db, stripe_gw, razorpay_gw, good_routes):
    for inner, route in ((razorpay_gw, good_routes["razorpay"]), (stripe_gw, good_routes["stripe"])):
        payment = core_with(db, [inner]).charge(command([route], amount=20_000))
        assert payment.state == State.CAPTURED
        with db.transaction() as tx:
            order = tx.gateway_refs(payment.payment_id)[inner.name]

        def event_for(reference, amount, key, inner=inner, order=order):  # type: ignore[no-untyped-def]
            # As the adapters parse them: Razorpay carries our key in the refund's notes,
            # Stripe in its metadata.
            return GatewayEvent(inner.name, f"evt_{uuid.uuid4().hex}", "refunded", order, payment.gateway_reference,
                                amount, reference, our_refund_id=key.removeprefix("refund:"))

        racing = WebhookFirst(inner, event_for)
        core = core_with(db, [racing])
        racing.core = core
        after, refund = core.refund(str(uuid.uuid4()), payment.payment_id, 5_000)
        assert racing.applied == "applied"
        assert after.refunded_minor == 5_000 and core.get(payment.payment_id).refunded_minor == 5_000, inner.name
        refunds = [r for r in ledger_lines(db, payment.payment_id) if r["txn_id"].startswith("refund:")]
        assert len({r["txn_id"] for r in refunds}) == 1, f"{inner.name}: one refund booked once"
        # A refund made on the gateway's dashboard meanwhile is still booked, capped by what
        # is neither refunded nor reserved.
        dashboard = GatewayEvent(inner.name, f"evt_{uuid.uuid4().hex}", "refunded", order, payment.gateway_reference,
                                 99_999, f"rf_dash_{uuid.uuid4().hex[:6]}")
        assert core.apply_event(dashboard) == "applied"
        assert core.get(payment.payment_id).refunded_minor == 20_000 and core.ledger_balance().balanced


def test_the_adapters_read_our_refund_id_from_the_gateways_webhooks():
    import hashlib
    import hmac
    import json

    refund_id = str(uuid.uuid4())
    body = json.dumps({"event": "refund.processed", "payload": {
        "refund": {"entity": {"id": "rfnd_1", "amount": 500, "notes": {"idempotency_key": f"refund:{refund_id}"}}},
        "payment": {"entity": {"id": "pay_1", "order_id": "order_1", "amount": 900}}}}).encode()
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert razorpay_event(body, signature, "evt_1", "s3cret").our_refund_id == refund_id
    no_notes = body.replace(f'"notes": {{"idempotency_key": "refund:{refund_id}"}}'.encode(), b'"notes": []')
    signature = hmac.new(b"s3cret", no_notes, hashlib.sha256).hexdigest()
    assert razorpay_event(no_notes, signature, "evt_2", "s3cret").our_refund_id == ""
    at = int(time.time())
    stripe_body = json.dumps({"id": "evt_s", "object": "event", "type": "refund.created", "data": {"object": {
        "id": "re_1", "object": "refund", "amount": 500, "payment_intent": "pi_1",
        "metadata": {"gaitpay_refund_id": refund_id}}}})
    assert stripe_event(stripe_body.encode(), _stripe_signed(stripe_body, "whsec_x", at), "whsec_x").our_refund_id \
        == refund_id
    dispute_body = json.dumps({"id": "evt_d", "object": "event", "type": "charge.dispute.created", "data": {"object": {
        "id": "dp_1", "object": "dispute", "amount": 900, "payment_intent": "pi_1"}}})
    dispute = stripe_event(dispute_body.encode(), _stripe_signed(dispute_body, "whsec_x", at), "whsec_x")
    assert (dispute.kind, dispute.reference, dispute.amount_minor, dispute.object_id) == ("disputed", "pi_1", 900, "dp_1")


def test_retention_forgets_old_webhook_ids_only(db) -> None:
    old, recent = f"evt_{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    with db.transaction() as tx:
        assert tx.record_webhook(old, "stripe", "charge.succeeded")
        assert tx.record_webhook(recent, "stripe", "charge.succeeded")
        tx._c.execute("UPDATE payment.webhook_events SET received_at = now() - interval '31 days' "
                      "WHERE event_id = %s", (old,))
    assert db.prune(30)["webhook_ids"] >= 1
    with db.transaction() as tx:
        assert tx.record_webhook(old, "stripe", "charge.succeeded")  # forgotten: would be processed again
        assert not tx.record_webhook(recent, "stripe", "charge.succeeded")  # still de-duplicated
