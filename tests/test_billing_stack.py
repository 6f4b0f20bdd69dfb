"""Store sessions, the risk policy, confirmations and charges inside the stack `gaitpay up`
starts: identity, billing, payment, localstripe and the fake Razorpay, all real."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import pytest

from gaitpay.billing.v1 import billing_pb2 as B, billing_pb2_grpc
from gaitpay.common.v1 import types_pb2
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from gaitpay.payment.v1 import payment_pb2, payment_pb2_grpc
from payment import sandbox
from test_identity_stack import consent, reason

pytestmark = pytest.mark.stack
STORE, OTHER_STORE = "store-bill-1", "store-bill-2"


def rid() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="module")
def shop(local_stack):
    env = json.loads((local_stack.home / "stack.json").read_text())["env"]
    identity_ch, billing_ch = local_stack.channel("identity"), local_stack.channel("billing")
    edge_ch, payment_ch = local_stack.channel("billing", "edge"), local_stack.channel("payment")
    billing = billing_pb2_grpc.BillingServiceStub(billing_ch)
    for store in (STORE, OTHER_STORE):
        billing.UpsertCatalogue(B.UpsertCatalogueRequest(request_id=rid(), store_id=store, items=[
            B.CatalogueItem(sku="TEA", name="Tea", unit_price=types_pb2.Money(currency_code="INR", minor_units=28_500),
                            gst_rate_bp=500, discount_bp=1_500),
            B.CatalogueItem(sku="TV", name="Television", unit_price=types_pb2.Money(currency_code="INR",
                                                                                    minor_units=549_900),
                            gst_rate_bp=1_800)]), timeout=10)

    class Shop:
        identity = identity_pb2_grpc.IdentityServiceStub(identity_ch)
        edge = billing_pb2_grpc.BillingServiceStub(edge_ch)
        payment = payment_pb2_grpc.PaymentServiceStub(payment_ch)

        def __init__(self) -> None:
            self.billing = billing

        def customer(self, gateways=("stripe", "razorpay"), email: str = "") -> str:
            c = self.identity.CreateCustomer(identity_pb2.CreateCustomerRequest(
                request_id=rid(), display_name="Shopper", email=email, consent=consent()), timeout=30).customer
            for gateway in gateways:
                email = f"{c.customer_id}@example.com"
                token = sandbox.token_from_stack(env, gateway, email)
                self.identity.AddPaymentMethod(identity_pb2.AddPaymentMethodRequest(
                    request_id=rid(), customer_id=c.customer_id, kind=identity_pb2.PAYMENT_METHOD_KIND_CARD,
                    gateway=gateway, gateway_token=token.token, gateway_customer=token.customer_reference,
                    last4=token.last4), timeout=10)
            return c.customer_id

        def events(self, *events: B.StoreEvent) -> list[B.StreamStoreEventsResponse]:
            return list(self.edge.StreamStoreEvents(iter([B.StreamStoreEventsRequest(event=e) for e in events]),
                                                    timeout=30))

        def session(self, session_id: str, store: str = STORE, until=(B.SESSION_STATE_OPEN,
                                                                       B.SESSION_STATE_CHARGING)) -> B.Session:
            deadline = time.monotonic() + 20
            while True:
                s = self.billing.GetSession(B.GetSessionRequest(store_id=store, session_id=session_id),
                                            timeout=10).session
                if s.state not in until or time.monotonic() > deadline:
                    return s
                time.sleep(0.05)

        def cart(self, session_id: str, store: str = STORE, **changes: int) -> B.Bill:
            return self.billing.UpdateCart(B.UpdateCartRequest(
                request_id=rid(), store_id=store, session_id=session_id,
                changes=[B.CartChange(sku=k, quantity_delta=v) for k, v in changes.items()]), timeout=10).bill

    yield Shop()
    for ch in (identity_ch, billing_ch, edge_ch, payment_ch):
        ch.close()


def event(kind, track, store=STORE, **kw) -> B.StoreEvent:
    e = B.StoreEvent(event_id=rid(), kind=kind, store_id=store, camera_id="door", track_id=track, **kw)
    e.occurred_at.GetCurrentTime()
    return e


def test_walk_in_shop_walk_out_charged_once_with_a_receipt(shop, local_stack):
    address = f"shopper.{rid()[:8]}@example.com"
    customer, track = shop.customer(email=address), rid()
    entry, identified = event(B.STORE_EVENT_KIND_ENTRY, track), event(
        B.STORE_EVENT_KIND_IDENTIFIED, track, customer_id=customer, false_match_probability=1e-6)
    acks = shop.events(entry, identified)
    session_id = acks[0].session_id
    assert acks[1].session_id == session_id and not any(a.duplicate for a in acks)
    bill = shop.cart(session_id, TEA=3)
    # 3 x 285.00 = 855.00, 15 % off = 128.25, GST 5 % of 726.75 = 36.34 (half-up): 763.09
    assert (bill.subtotal.minor_units, bill.discount.minor_units, bill.tax.minor_units, bill.total.minor_units) == \
        (85_500, 12_825, 3_634, 76_309)
    exit_ = event(B.STORE_EVENT_KIND_EXIT, track)
    shop.events(exit_)
    session = shop.session(session_id)
    assert session.state == B.SESSION_STATE_PAID and session.decision_reason == "auto_charge", session
    payment = shop.payment.GetPayment(payment_pb2.GetPaymentRequest(payment_id=session.payment_id), timeout=10).payment
    assert payment.state == payment_pb2.PAYMENT_STATE_CAPTURED and payment.amount.minor_units == 76_309
    # The edge replays everything after an outage, and sends a second exit of its own: no new
    # session, no second charge.
    replayed = shop.events(entry, identified, exit_, event(B.STORE_EVENT_KIND_EXIT, track))
    assert [a.duplicate for a in replayed] == [True, True, True, False]
    assert {a.session_id for a in replayed} == {session_id}
    again = shop.session(session_id)
    assert again.state == B.SESSION_STATE_PAID and again.payment_id == session.payment_id
    receipt = shop.billing.GetReceipt(B.GetReceiptRequest(store_id=STORE, session_id=session_id), timeout=10)
    assert receipt.media_type == "text/html" and b"Rs 763.09" in receipt.document
    # The receipt left the outbox by email: the stack's SMTP server received it, once.
    import mailbox

    deadline, mails = time.monotonic() + 20, []
    while not mails and time.monotonic() < deadline:
        time.sleep(0.2)
        mails = [m for m in mailbox.Maildir(local_stack.home / "mail", factory=None) if address in m["To"]]
    assert len(mails) == 1 and mails[0]["Subject"] == "Your GaitPay receipt: Rs 763.09"
    html = next(p for p in mails[0].walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert html.replace(b"\r\n", b"\n") == receipt.document.replace(b"\r\n", b"\n")
    with pytest.raises(grpc.RpcError) as closed:
        shop.cart(session_id, TEA=1)
    assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_strangers_go_to_staff_and_out_of_order_events_make_one_session(shop):
    track = rid()
    exit_first = shop.events(event(B.STORE_EVENT_KIND_EXIT, track))[0]
    entry_late = shop.events(event(B.STORE_EVENT_KIND_ENTRY, track))[0]
    assert exit_first.session_id == entry_late.session_id
    session = shop.session(exit_first.session_id)
    assert session.state == B.SESSION_STATE_STAFF_CHECKOUT and session.decision_reason == "stranger"
    assert not session.payment_id


def test_unsure_identification_is_confirmed_in_the_app_by_that_customer_only(shop):
    customer, someone_else, track = shop.customer(("razorpay",)), shop.customer(("stripe",)), rid()
    session_id = shop.events(event(B.STORE_EVENT_KIND_ENTRY, track), event(
        B.STORE_EVENT_KIND_IDENTIFIED, track, customer_id=customer, false_match_probability=0.03))[0].session_id
    shop.cart(session_id, TEA=1)
    shop.events(event(B.STORE_EVENT_KIND_EXIT, track))
    session = shop.session(session_id)
    assert session.state == B.SESSION_STATE_AWAITING_CONFIRMATION
    assert session.decision_reason == "identification_unsure" and session.HasField("confirmation_deadline")
    with pytest.raises(grpc.RpcError) as wrong:
        shop.billing.ConfirmCharge(B.ConfirmChargeRequest(request_id=rid(), session_id=session_id,
                                                          customer_id=someone_else, approve=True), timeout=10)
    assert wrong.value.code() == grpc.StatusCode.NOT_FOUND
    request = B.ConfirmChargeRequest(request_id=rid(), session_id=session_id, customer_id=customer, approve=True)
    confirmed = shop.billing.ConfirmCharge(request, timeout=30).session
    assert confirmed.state == B.SESSION_STATE_PAID
    assert shop.billing.ConfirmCharge(request, timeout=30).session.payment_id == confirmed.payment_id  # replay
    payment = shop.payment.GetPayment(payment_pb2.GetPaymentRequest(payment_id=confirmed.payment_id),
                                      timeout=10).payment
    assert payment.gateway == "razorpay" and payment.state == payment_pb2.PAYMENT_STATE_CAPTURED


def test_big_bills_are_confirmed_and_a_decline_goes_to_staff(shop):
    customer, track = shop.customer(), rid()
    session_id = shop.events(event(B.STORE_EVENT_KIND_ENTRY, track), event(
        B.STORE_EVENT_KIND_IDENTIFIED, track, customer_id=customer, false_match_probability=1e-7))[0].session_id
    assert shop.cart(session_id, TV=1).total.minor_units == 648_882  # over Rs 5,000
    shop.events(event(B.STORE_EVENT_KIND_EXIT, track))
    assert shop.session(session_id).decision_reason == "amount_over_threshold"
    declined = shop.billing.ConfirmCharge(B.ConfirmChargeRequest(
        request_id=rid(), session_id=session_id, customer_id=customer, approve=False), timeout=10).session
    assert declined.state == B.SESSION_STATE_STAFF_CHECKOUT and declined.decision_reason == "declined_by_shopper"
    assert not declined.payment_id


def test_one_customer_in_two_stores_at_once_is_not_charged(shop):
    customer, here, there = shop.customer(), rid(), rid()
    shop.events(event(B.STORE_EVENT_KIND_ENTRY, there, OTHER_STORE), event(
        B.STORE_EVENT_KIND_IDENTIFIED, there, OTHER_STORE, customer_id=customer, false_match_probability=1e-7))
    session_id = shop.events(event(B.STORE_EVENT_KIND_ENTRY, here), event(
        B.STORE_EVENT_KIND_IDENTIFIED, here, customer_id=customer, false_match_probability=1e-7))[0].session_id
    shop.cart(session_id, TEA=1)
    shop.events(event(B.STORE_EVENT_KIND_EXIT, here))
    session = shop.session(session_id)
    assert session.state == B.SESSION_STATE_STAFF_CHECKOUT and session.decision_reason == "velocity"


def test_cart_errors_are_precise_and_change_nothing(shop):
    session_id = shop.events(event(B.STORE_EVENT_KIND_ENTRY, rid()))[0].session_id
    shop.cart(session_id, TEA=2)
    for changes in ({"NOPE": 1}, {"TEA": -3}):
        with pytest.raises(grpc.RpcError) as bad:
            shop.cart(session_id, **changes)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(bad.value) == "VALIDATION_FAILED"
    assert [(l.sku, l.quantity) for l in shop.session(session_id, until=()).bill.lines] == [("TEA", 2)]
    with pytest.raises(grpc.RpcError) as unknown:
        shop.cart(rid(), TEA=1)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_erasure_unlinks_sessions(shop):
    customer, track = shop.customer(("stripe",)), rid()
    session_id = shop.events(event(B.STORE_EVENT_KIND_ENTRY, track), event(
        B.STORE_EVENT_KIND_IDENTIFIED, track, customer_id=customer, false_match_probability=1e-7))[0].session_id
    shop.cart(session_id, TEA=1)
    shop.events(event(B.STORE_EVENT_KIND_EXIT, track))
    paid = shop.session(session_id)
    assert paid.state == B.SESSION_STATE_PAID and paid.customer_id == customer
    erased = shop.identity.EraseCustomer(identity_pb2.EraseCustomerRequest(request_id=rid(), customer_id=customer),
                                         timeout=60)
    assert erased.transactions_anonymised >= 2  # the session and the payment, besides identity's own rows
    after = shop.session(session_id, until=())
    assert after.customer_id == "" and after.bill.total.minor_units == paid.bill.total.minor_units


def test_the_demo_counts_only_its_own_captures_against_its_bills(shop, local_stack, tmp_path):
    # Money captured before the demo runs (this stack's other tests, an earlier demo on the
    # same home) must not read as a double charge of the demo's own bills.
    customer, track = shop.customer(("stripe",)), rid()
    session_id = shop.events(event(B.STORE_EVENT_KIND_ENTRY, track), event(
        B.STORE_EVENT_KIND_IDENTIFIED, track, customer_id=customer, false_match_probability=0.03))[0].session_id
    shop.cart(session_id, TEA=1)
    shop.events(event(B.STORE_EVENT_KIND_EXIT, track))
    assert shop.session(session_id).state == B.SESSION_STATE_AWAITING_CONFIRMATION
    assert shop.billing.ConfirmCharge(B.ConfirmChargeRequest(request_id=rid(), session_id=session_id,
                                                             customer_id=customer, approve=True),
                                      timeout=30).session.state == B.SESSION_STATE_PAID

    report = tmp_path / "demo.json"
    ran = local_stack.cli("demo", "--customers", "2", "--visits", "3", "--seed", "11", "--report", str(report))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    summary = json.loads(report.read_text())["summary"]
    assert summary["double_charges"] == 0 and summary["lost_charges"] == 0 and summary["ledger_balanced"]
    assert summary["ledger_captured_minor"] == sum(summary["charged_minor_per_gateway"].values())


def test_the_checkout_bench_times_real_captures_on_the_running_stack(local_stack):
    # `gaitpay bench checkout` is where the exit-to-capture figure comes from: it must charge
    # every session it times (it stops at the first that is not PAID) and print each measure.
    ran = local_stack.cli("bench", "checkout", "--customers", "2", "--sessions", "4")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:5]]
            for line in ran.stdout.splitlines() if line.count("│") >= 5}
    assert set(rows) == {"exit_to_captured_ms", "exit_to_paid_seen_ms", "get_session_ms"}, ran.stdout
    for name, (p50, p99, ratio) in rows.items():
        assert 0 < float(p50) <= float(p99), (name, p50, p99)
    assert rows["get_session_ms"][2] == "1.0"  # the baseline, against itself
