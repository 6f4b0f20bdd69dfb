"""`gaitpay demo`: the product end to end on the local stack.

Synthetic customers enrol (consent, walks from the synthetic walker, a saved card at Stripe
and at Razorpay). Then visits: enrolled customers and strangers walk in; their keypoint
windows stream to the matcher as the edge streams them, with the body measures the store's
calibrated cameras take (each camera calibrated by hand, a little off; one pair of shoes a
visit, gait.synth.installation), as the enrolment camera took them at enrolment; store events go to billing over the
edge's event stream; they shop (cart updates priced from the catalogue), walk out and are
charged, or asked to confirm in the app, or sent to staff. Along the way a Razorpay outage
and a cut of the edge's event link (with a replay of everything unacknowledged) are injected.
Every figure in the summary is read back from the services, not counted by the demo alone.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from edge.adapters.matcher_link import keypoint_window
from gait.synth.installation import footwear_m, measured
from gaitpay.billing.v1 import billing_pb2, billing_pb2_grpc
from gaitpay.common.v1 import types_pb2
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from gaitpay.payment.v1 import payment_pb2, payment_pb2_grpc
from mesh import config
from gaitpay_cli.walk_messages import in_frame, walk_message
from mesh.client import open_sync_channel

STORE_NAMES = ("demo-store-1", "demo-store-2")
CATALOGUE = [  # sku, name, price (paise), GST bp, discount bp
    ("MILK-1L", "Toned milk 1 L", 6_800, 0, 0), ("BREAD", "Whole wheat bread", 5_500, 0, 0),
    ("RICE-5", "Basmati rice 5 kg", 74_900, 500, 1_000), ("DAL-1", "Toor dal 1 kg", 16_900, 500, 0),
    ("SOAP-4", "Soap, pack of 4", 19_900, 1_800, 500), ("CHOC", "Dark chocolate", 12_000, 1_800, 0),
    ("COLA", "Cola 750 ml", 4_000, 2_800, 0), ("TEA-500", "Assam tea 500 g", 28_500, 500, 1_500),
    ("SHAMPOO", "Shampoo 340 ml", 32_500, 1_800, 0), ("EARBUDS", "Wireless earbuds", 649_900, 1_800, 1_000),
]
CAPTURED_STATES = {payment_pb2.PAYMENT_STATE_CAPTURED, payment_pb2.PAYMENT_STATE_PARTIALLY_REFUNDED,
              payment_pb2.PAYMENT_STATE_REFUNDED}
S = billing_pb2


@dataclass
class Visit:
    index: int
    person: int
    customer_id: str | None  # the truth: who really walked in (None: a stranger)
    store_id: str
    track_id: str
    matcher_state: str = ""
    named_customer: str = ""  # whom the matcher identified, or named as probable
    probable: bool = False
    final_state: str = ""
    reason: str = ""
    total_minor: int = 0
    payment_id: str = ""
    gateway: str = ""
    exit_to_capture_ms: float | None = None
    confirm_to_capture_ms: float | None = None
    app_answer: str = ""
    replayed_events: int = 0
    duplicates_acknowledged: int = 0
    trace_id: str = ""
    seconds: float = 0.0  # entry to settled (paid, staff, or the app's answer taken)


@dataclass
class DemoOptions:
    customers: int = 20
    visits: int = 40
    seed: int = 7
    stranger_share: float = 0.3
    enrol_walks: int = 4
    windows: int = 12
    report: Path | None = None


@dataclass
class Summary:
    visits: int = 0
    enrolled_visits: int = 0
    stranger_visits: int = 0
    identified_correctly: int = 0
    wrongly_identified: int = 0
    probable_asked_right_person: int = 0
    probable_asked_wrong_person: int = 0
    sent_to_confirmation: int = 0
    approved_in_app: int = 0
    declined_in_app: int = 0
    sent_to_staff: int = 0
    staff_reasons: dict[str, int] = field(default_factory=dict)
    paid: int = 0
    false_charges: int = 0
    double_charges: int = 0
    lost_charges: int = 0
    charged_minor_per_gateway: dict[str, int] = field(default_factory=dict)
    payments_per_gateway: dict[str, int] = field(default_factory=dict)
    failovers: int = 0
    ledger_balanced: bool = False
    ledger_debits_minor: int = 0
    ledger_credits_minor: int = 0
    ledger_captured_minor: int = 0
    exit_to_capture_ms_p50: float | None = None
    exit_to_capture_ms_p99: float | None = None
    exit_to_capture_samples: int = 0
    confirm_to_capture_ms_p50: float | None = None
    confirm_to_capture_ms_p99: float | None = None
    confirm_to_capture_samples: int = 0
    edge_link_cuts: int = 0
    events_replayed: int = 0
    duplicate_events_acknowledged: int = 0
    razorpay_outage_visits: int = 0
    enrolment_s: float = 0.0
    visits_s: float = 0.0
    sample_trace_id: str = ""
    outbox_by_channel: dict[str, int] = field(default_factory=dict)
    emails_sent: int = 0  # receipts the relay handed to the SMTP server (the stack's keeps them in HOME/mail)
    windows_sent: int = 0
    windows_with_body_measures: int = 0


def _now_ts() -> Any:
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def _rid() -> str:
    return str(uuid.uuid4())


class Demo:
    def __init__(self, settings: config.Settings, env: dict[str, str], options: DemoOptions,
                 progress: Callable[[str, int, int], None]) -> None:
        self.settings, self.env, self.o, self.progress = settings, env, options, progress
        self.rng = random.Random(options.seed)
        # Calibration errors and shoes: a generator of their own, so the walks are the same.
        self.body_rng = np.random.default_rng(options.seed + 2)
        self.windows_sent = self.windows_measured = 0
        ch = lambda service, identity: open_sync_channel(settings, identity=identity, service=service)  # noqa: E731
        self.identity = identity_pb2_grpc.IdentityServiceStub(ch("identity", "operator"))
        self.billing = billing_pb2_grpc.BillingServiceStub(ch("billing", "operator"))
        self.billing_edge = billing_pb2_grpc.BillingServiceStub(ch("billing", "edge"))
        self.matcher_edge = matcher_pb2_grpc.MatcherServiceStub(ch("matcher", "edge"))
        self.payment = payment_pb2_grpc.PaymentServiceStub(ch("payment", "operator"))
        self.customers: dict[int, str] = {}
        self.run_id = uuid.uuid4().hex[:8]  # a second demo on a running stack enrols new people
        # ... in stores of its own: the matcher weighs a store's identifications against the
        # customers enrolled for that store, so the customers of earlier runs (still enrolled in
        # this home) do not make this run's shoppers harder to recognise.
        self.stores = tuple(f"{name}-{self.run_id}" for name in STORE_NAMES)

    # -- set-up ------------------------------------------------------------------------------

    def seed_catalogue(self) -> None:
        for store in self.stores:
            self.billing.UpsertCatalogue(billing_pb2.UpsertCatalogueRequest(
                request_id=_rid(), store_id=store, items=[billing_pb2.CatalogueItem(
                    sku=sku, name=name, unit_price=types_pb2.Money(currency_code="INR", minor_units=price),
                    gst_rate_bp=gst, discount_bp=disc) for sku, name, price, gst, disc in CATALOGUE]), timeout=10)

    def enrol(self, walks_by_person: dict[int, list[Any]]) -> None:
        from payment import sandbox

        for p in range(self.o.customers):
            self.progress("enrolling customers", p, self.o.customers)
            consent = identity_pb2.Consent(policy_version="2026-11", purposes=["gait_identification", "payment"],
                                           retention_days=365, jurisdiction="IN-DPDP")
            consent.given_at.GetCurrentTime()
            email = f"shopper{p}.{self.run_id}@demo.gaitpay.example"
            customer = self.identity.CreateCustomer(identity_pb2.CreateCustomerRequest(
                request_id=_rid(), display_name=f"Demo shopper {p}", email=email, consent=consent), timeout=30).customer
            shoes = footwear_m(self.body_rng)  # enrolment is one sitting, in one pair of shoes
            self.identity.EnrollWalks(identity_pb2.EnrollWalksRequest(
                request_id=_rid(), customer_id=customer.customer_id, store_ids=list(self.stores),
                walks=[walk_message(s.walk, body=measured(s, self.body_rng, shoes))
                       for s in walks_by_person[p][:self.o.enrol_walks]]), timeout=60)
            saved = [sandbox.token_from_stack(self.env, gateway, email) for gateway in ("stripe", "razorpay")]
            if self.rng.random() < 0.5:  # the last one added is the default: about half prefer Razorpay
                saved.reverse()
            for token in saved:
                self.identity.AddPaymentMethod(identity_pb2.AddPaymentMethodRequest(
                    request_id=_rid(), customer_id=customer.customer_id,
                    kind=identity_pb2.PAYMENT_METHOD_KIND_CARD, gateway=token.gateway,
                    gateway_token=token.token, gateway_customer=token.customer_reference, last4=token.last4,
                    brand="Visa"), timeout=10)
            self.customers[p] = customer.customer_id
        self.progress("enrolling customers", self.o.customers, self.o.customers)

    # -- one visit -----------------------------------------------------------------------------

    def _event(self, visit: Visit, kind: int, **extra: Any) -> billing_pb2.StreamStoreEventsRequest:
        return billing_pb2.StreamStoreEventsRequest(event=billing_pb2.StoreEvent(
            event_id=_rid(), kind=kind, store_id=visit.store_id, camera_id="door", track_id=visit.track_id,
            occurred_at=_now_ts(), **extra))

    def _send(self, events: list[billing_pb2.StreamStoreEventsRequest]) -> list[billing_pb2.StreamStoreEventsResponse]:
        return list(self.billing_edge.StreamStoreEvents(iter(events), timeout=30))

    def _identify(self, visit: Visit, walks: list[Any]) -> matcher_pb2.TrackDecision | None:
        requests = []
        shoes = footwear_m(self.body_rng)
        for seq, seen in enumerate(walks[:self.o.windows]):
            walk, body = seen.walk, measured(seen, self.body_rng, shoes)
            window = keypoint_window(visit.store_id, "entrance", visit.track_id, seq, walk.keypoints[:, :17], walk.fps,
                                     body=body)
            requests.append(matcher_pb2.StreamIdentifyRequest(window=window))
            self.windows_sent += 1
            self.windows_measured += body is not None
        last = None
        for response in self.matcher_edge.StreamIdentify(iter(requests), timeout=60):
            if response.WhichOneof("result") == "decision":
                last = response.decision
                if last.state in (matcher_pb2.DECISION_STATE_IDENTIFIED, matcher_pb2.DECISION_STATE_STRANGER):
                    break
        return last

    def visit(self, visit: Visit, walks: list[Any], cut_link: bool) -> None:
        from opentelemetry import trace

        started = time.monotonic()
        with trace.get_tracer("gaitpay.demo").start_as_current_span("demo.visit") as span:
            visit.trace_id = f"{span.get_span_context().trace_id:032x}"
            entry = self._event(visit, S.STORE_EVENT_KIND_ENTRY)
            acks = self._send([entry])
            session_id = acks[0].session_id
            decision = self._identify(visit, walks)
            queue = []
            if decision is not None:
                visit.matcher_state = matcher_pb2.DecisionState.Name(decision.state).removeprefix("DECISION_STATE_")
                named = decision.customer_id or decision.probable_customer_id
                if named:
                    visit.named_customer, visit.probable = named, not decision.customer_id
                    queue.append(self._event(visit, S.STORE_EVENT_KIND_IDENTIFIED, customer_id=named,
                                             identification_confidence=decision.confidence,
                                             false_match_probability=decision.false_match_probability))
            basket = self.rng.sample(CATALOGUE, self.rng.randint(1, 4))
            if self.rng.random() < 0.12:
                basket.append(CATALOGUE[-1])  # the earbuds: a bill over Rs 5,000
            self.billing.UpdateCart(billing_pb2.UpdateCartRequest(
                request_id=_rid(), store_id=visit.store_id, session_id=session_id,
                changes=[billing_pb2.CartChange(sku=sku, quantity_delta=self.rng.randint(1, 2))
                         for sku, *_ in dict.fromkeys(basket)]), timeout=10)
            queue.append(self._event(visit, S.STORE_EVENT_KIND_EXIT))
            if cut_link:
                # The link drops after the store sent the entry again and the identification but
                # before it saw their acknowledgements: on reconnect it replays its whole queue.
                call = self.billing_edge.StreamStoreEvents(iter([entry, *queue[:-1]]), timeout=30)
                call.cancel()
                visit.replayed_events = 1 + len(queue)
                acks = self._send([entry, *queue])
            else:
                acks = self._send(queue)
            visit.duplicates_acknowledged = sum(a.duplicate for a in acks)
            self._settle(visit, session_id)
        visit.seconds = round(time.monotonic() - started, 3)

    def _session(self, visit: Visit, session_id: str) -> billing_pb2.Session:
        return self.billing.GetSession(billing_pb2.GetSessionRequest(store_id=visit.store_id, session_id=session_id),
                                       timeout=10).session

    def _wait(self, visit: Visit, session_id: str, pending: set[int], timeout_s: float = 30.0) -> billing_pb2.Session:
        deadline = time.monotonic() + timeout_s
        session = self._session(visit, session_id)
        while session.state in pending and time.monotonic() < deadline:
            time.sleep(0.02)
            session = self._session(visit, session_id)
        return session

    def _settle(self, visit: Visit, session_id: str) -> None:
        session = self._wait(visit, session_id, {S.SESSION_STATE_OPEN, S.SESSION_STATE_CHARGING})
        if session.state == S.SESSION_STATE_AWAITING_CONFIRMATION:
            # The shopper's app: the person asked approves only if they really were there.
            approve = session.customer_id == visit.customer_id
            visit.app_answer = "approved" if approve else "declined"
            confirmed_at = datetime.now(timezone.utc)
            self.billing.ConfirmCharge(billing_pb2.ConfirmChargeRequest(
                request_id=_rid(), session_id=session_id, customer_id=session.customer_id, approve=approve), timeout=30)
            session = self._wait(visit, session_id, {S.SESSION_STATE_CHARGING})
        visit.final_state = billing_pb2.SessionState.Name(session.state).removeprefix("SESSION_STATE_")
        visit.reason, visit.total_minor, visit.payment_id = session.decision_reason, session.bill.total.minor_units, \
            session.payment_id
        if session.state == S.SESSION_STATE_PAID and session.payment_id:
            payment = self.payment.GetPayment(payment_pb2.GetPaymentRequest(payment_id=session.payment_id),
                                              timeout=10).payment
            visit.gateway = payment.gateway
            if payment.HasField("captured_at"):
                captured = payment.captured_at.ToDatetime(tzinfo=timezone.utc)
                if visit.app_answer:
                    visit.confirm_to_capture_ms = (captured - confirmed_at).total_seconds() * 1000
                else:
                    visit.exit_to_capture_ms = (captured - session.exited_at.ToDatetime(tzinfo=timezone.utc)
                                                ).total_seconds() * 1000

    def outbox_counts(self, tracks: list[str], wait_s: float = 15.0) -> tuple[dict[str, int], int]:
        """The notification outbox of this run's visits (receipts by email, app pushes,
        payment-link SMS, staff notices), read straight from the stack's PostgreSQL, and how
        many receipts billing's relay has emailed; it waits a little for the relay to catch up.
        Push, SMS and staff notices have no provider locally and stay in the outbox."""
        import psycopg

        deadline = time.monotonic() + wait_s
        with psycopg.connect(self.env["GAITPAY_POSTGRES_DSN"], connect_timeout=5, autocommit=True) as conn:
            while True:
                rows = conn.execute(_outbox_sql(), (tracks,)).fetchall()
                by_channel = {channel: n for channel, n, _, _ in rows}
                sent = sum(s for channel, _, s, _ in rows if channel == "email")
                waiting = sum(w for channel, _, _, w in rows if channel == "email")
                if not waiting or time.monotonic() > deadline:
                    return by_channel, sent
                time.sleep(0.2)

    # -- faults ----------------------------------------------------------------------------------

    def razorpay_fault(self, mode: str) -> None:
        request = urllib.request.Request(self.env["GAITPAY_RAZORPAY_BASE_URL"] + "/_fake/faults",
                                         data=json.dumps({"mode": mode}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5):
            pass

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> tuple[Summary, list[Visit]]:
        from gait.synth.dataset import people, seen_walks_of

        o = self.o
        strangers = max(1, round(o.visits * o.stranger_share))
        persons = people(o.customers + strangers, seed=o.seed)
        visits_each = max(1, -(-o.visits // len(persons)) + 1)
        walks, labels = seen_walks_of(persons, o.enrol_walks + o.windows * visits_each + 4, seed=o.seed + 1)
        by_person: dict[int, list[Any]] = {p: [] for p in range(len(persons))}
        for seen, label in zip(walks, labels):
            if in_frame(seen.walk):  # a camera only sees what is in its frame: drop off-screen renders
                by_person[int(label)].append(seen)
        t0 = time.monotonic()
        self.seed_catalogue()
        self.enrol(by_person)
        enrolment_s = time.monotonic() - t0
        plan = [self.rng.randrange(o.customers) if self.rng.random() >= o.stranger_share
                else o.customers + self.rng.randrange(strangers) for _ in range(o.visits)]
        used = {p: 0 for p in by_person}
        outage = range(o.visits // 3, o.visits // 3 + max(1, o.visits // 6))
        cuts = {o.visits // 2, (3 * o.visits) // 4}
        done: list[Visit] = []
        # The ledger may already hold captures (an earlier demo on this home, other clients of
        # a running stack): only what this run adds is compared with this run's bills.
        captured_before = self.ledger_captured_minor()
        t1 = time.monotonic()
        try:
            for i, person in enumerate(plan):
                self.progress("store visits", i, o.visits)
                if i == outage.start:
                    self.razorpay_fault("unavailable")
                if i == outage.stop:
                    self.razorpay_fault("none")
                start = (o.enrol_walks if person < o.customers else 0) + used[person] * o.windows
                used[person] += 1
                store = self.stores[i % 2 if i % 7 else 1]
                visit = Visit(i, person, self.customers.get(person), store, f"t-{_rid()[:8]}")
                fresh = by_person[person][start:start + o.windows]
                self.visit(visit, fresh, cut_link=i in cuts)
                done.append(visit)
        finally:
            self.razorpay_fault("none")
        self.progress("store visits", o.visits, o.visits)
        summary = self.summarise(done, outage, captured_before)
        summary.enrolment_s, summary.visits_s = round(enrolment_s, 1), round(time.monotonic() - t1, 1)
        return summary, done

    def ledger_captured_minor(self) -> int:
        return _captured_minor(self.payment.GetLedgerBalance(payment_pb2.GetLedgerBalanceRequest(), timeout=10))

    def summarise(self, visits: list[Visit], outage: range, captured_before: int = 0) -> Summary:
        s = Summary(visits=len(visits), windows_sent=self.windows_sent,
                    windows_with_body_measures=self.windows_measured)
        s.enrolled_visits = sum(v.customer_id is not None for v in visits)
        s.stranger_visits = s.visits - s.enrolled_visits
        for v in visits:
            if v.named_customer and not v.probable:
                if v.named_customer == v.customer_id:
                    s.identified_correctly += 1
                else:
                    s.wrongly_identified += 1
            if v.probable:
                if v.named_customer == v.customer_id:
                    s.probable_asked_right_person += 1
                else:
                    s.probable_asked_wrong_person += 1
            if v.app_answer:
                s.sent_to_confirmation += 1
                s.approved_in_app += v.app_answer == "approved"
                s.declined_in_app += v.app_answer == "declined"
            if v.final_state == "STAFF_CHECKOUT":
                s.sent_to_staff += 1
                s.staff_reasons[v.reason] = s.staff_reasons.get(v.reason, 0) + 1
            if v.final_state == "PAID" and v.payment_id:
                s.paid += 1
                s.charged_minor_per_gateway[v.gateway] = s.charged_minor_per_gateway.get(v.gateway, 0) + v.total_minor
                s.payments_per_gateway[v.gateway] = s.payments_per_gateway.get(v.gateway, 0) + 1
            if v.final_state == "PAID" and v.payment_id and v.named_customer != v.customer_id:
                s.false_charges += 1
            # Lost: the rules said charge (auto, or approved in the app) and nothing was captured.
            should_charge = v.reason in ("auto_charge", "amount_over_threshold", "identification_unsure") \
                and (v.app_answer in ("", "approved")) and v.total_minor > 0 and v.named_customer
            if should_charge and v.final_state != "PAID":
                s.lost_charges += 1
            s.events_replayed += v.replayed_events
            s.duplicate_events_acknowledged += v.duplicates_acknowledged
        s.edge_link_cuts = sum(v.replayed_events > 0 for v in visits)
        s.razorpay_outage_visits = len([v for v in visits if v.index in outage])
        # Double charges, from the payment side: every paid session has exactly one payment,
        # that payment captured exactly the bill, and the ledger's captures equal the bills.
        payment_ids = [v.payment_id for v in visits if v.final_state == "PAID" and v.payment_id]
        s.double_charges = len(payment_ids) - len(set(payment_ids))
        for v in visits:
            if v.final_state == "PAID" and v.payment_id:
                p = self.payment.GetPayment(payment_pb2.GetPaymentRequest(payment_id=v.payment_id), timeout=10).payment
                if p.amount.minor_units != v.total_minor or p.state not in CAPTURED_STATES:
                    s.lost_charges += 1
                s.failovers += any(a.gateway != p.gateway for a in p.attempts)
        balance = self.payment.GetLedgerBalance(payment_pb2.GetLedgerBalanceRequest(), timeout=10)
        s.ledger_balanced = balance.balanced
        s.ledger_debits_minor, s.ledger_credits_minor = balance.total_debit_minor, balance.total_credit_minor
        s.ledger_captured_minor = _captured_minor(balance) - captured_before
        # More captured in the books than the sessions billed would be a double charge too.
        s.double_charges += max(0, (s.ledger_captured_minor - sum(s.charged_minor_per_gateway.values())) > 0)
        samples = sorted(v.exit_to_capture_ms for v in visits if v.exit_to_capture_ms is not None)
        if samples:
            s.exit_to_capture_samples = len(samples)
            s.exit_to_capture_ms_p50 = round(statistics.median(samples), 1)
            s.exit_to_capture_ms_p99 = round(float(np.percentile(samples, 99)), 1)
        confirmed = sorted(v.confirm_to_capture_ms for v in visits if v.confirm_to_capture_ms is not None)
        if confirmed:
            s.confirm_to_capture_samples = len(confirmed)
            s.confirm_to_capture_ms_p50 = round(statistics.median(confirmed), 1)
            s.confirm_to_capture_ms_p99 = round(float(np.percentile(confirmed, 99)), 1)
        s.outbox_by_channel, s.emails_sent = self.outbox_counts([v.track_id for v in visits])
        paid = [v for v in visits if v.final_state == "PAID"]
        s.sample_trace_id = (paid[0] if paid else visits[0]).trace_id if visits else ""
        return s


def _outbox_sql() -> str:
    return ("SELECT o.channel, count(*) AS n, count(o.sent_at) AS sent, "
            "count(*) FILTER (WHERE o.sent_at IS NULL AND o.failed_at IS NULL) AS waiting "
            "FROM billing.outbox o JOIN billing.sessions s USING (session_id) "
            "WHERE s.track_id = ANY(%s) GROUP BY o.channel")


def write_report(path: Path, options: DemoOptions, summary: Summary, visits: list[Visit]) -> None:
    path.write_text(json.dumps({"options": {k: str(v) if isinstance(v, Path) else v
                                            for k, v in asdict(options).items()},
                                "summary": asdict(summary), "visits": [asdict(v) for v in visits],
                                "finished_at": datetime.now(timezone.utc).isoformat()}, indent=2))


def _captured_minor(balance: payment_pb2.GetLedgerBalanceResponse) -> int:
    """Everything the ledger's clearing accounts have been debited (captures), all time."""
    return sum(a.debit_minor for a in balance.accounts if a.account.startswith("clearing:"))


def iter_rows(summary: Summary) -> Iterator[tuple[str, str]]:
    rupees = lambda minor: f"Rs {minor / 100:,.2f}"  # noqa: E731
    yield "visits (enrolled / strangers)", f"{summary.visits} ({summary.enrolled_visits} / {summary.stranger_visits})"
    yield "identified correctly (auto)", str(summary.identified_correctly)
    yield "wrongly identified", str(summary.wrongly_identified)
    yield "windows with body measures", f"{summary.windows_with_body_measures} of {summary.windows_sent}"
    yield "probable, asked in app (right / wrong person)", \
        f"{summary.probable_asked_right_person} / {summary.probable_asked_wrong_person}"
    yield "sent to confirmation (approved / declined)", \
        f"{summary.sent_to_confirmation} ({summary.approved_in_app} / {summary.declined_in_app})"
    yield "sent to staff", f"{summary.sent_to_staff} {summary.staff_reasons or ''}"
    yield "paid", str(summary.paid)
    yield "false charges", str(summary.false_charges)
    yield "double charges / lost charges", f"{summary.double_charges} / {summary.lost_charges}"
    for gateway in sorted(summary.charged_minor_per_gateway):
        yield f"charged via {gateway}", (f"{rupees(summary.charged_minor_per_gateway[gateway])} in "
                                         f"{summary.payments_per_gateway[gateway]} payments")
    yield "payments that failed over", str(summary.failovers)
    yield "ledger", (f"{'balanced' if summary.ledger_balanced else 'NOT BALANCED'}: debits "
                     f"{rupees(summary.ledger_debits_minor)} = credits {rupees(summary.ledger_credits_minor)} "
                     f"(whole ledger); this run captured {rupees(summary.ledger_captured_minor)}")
    yield "exit to captured (auto-charged)", (
        f"p50 {summary.exit_to_capture_ms_p50} ms, p99 {summary.exit_to_capture_ms_p99} ms "
        f"({summary.exit_to_capture_samples} payments)" if summary.exit_to_capture_samples else "no auto-charges")
    yield "app approval to captured", (
        f"p50 {summary.confirm_to_capture_ms_p50} ms, p99 {summary.confirm_to_capture_ms_p99} ms "
        f"({summary.confirm_to_capture_samples} payments)" if summary.confirm_to_capture_samples else "none")
    yield "faults injected", (f"Razorpay outage over {summary.razorpay_outage_visits} visits; "
                              f"{summary.edge_link_cuts} edge link cuts, {summary.events_replayed} events replayed, "
                              f"{summary.duplicate_events_acknowledged} acknowledged as duplicates")
    yield "notifications in the outbox", ", ".join(f"{n} {c}" for c, n in sorted(summary.outbox_by_channel.items()))
    yield "receipts emailed", f"{summary.emails_sent} (to the stack's SMTP server; HOME/mail holds them)"
    yield "time", f"enrolment {summary.enrolment_s} s, visits {summary.visits_s} s"
    yield "one visit's trace", f"gaitpay trace {summary.sample_trace_id}"


def bench_checkout(demo: Demo, customers: int, sessions: int,
                   progress: Callable[[str, int, int], None]) -> dict[str, list[float]]:
    """The checkout path alone, apart from the gait model: sessions whose identification
    met the bound (as the matcher would report it) are exited and auto-charged. Exit to
    captured is read from the services' own timestamps; a GetSession read in the same run is
    the baseline."""
    from payment import sandbox

    ids: list[str] = []
    demo.seed_catalogue()
    for p in range(customers):
        progress("customers", p, customers)
        consent = identity_pb2.Consent(policy_version="bench", purposes=["payment"], retention_days=30,
                                       jurisdiction="IN-DPDP")
        consent.given_at.GetCurrentTime()
        customer = demo.identity.CreateCustomer(identity_pb2.CreateCustomerRequest(
            request_id=_rid(), display_name=f"Bench {p}", consent=consent), timeout=30).customer
        email = f"bench{p}.{demo.run_id}@demo.gaitpay.example"
        token = sandbox.token_from_stack(demo.env, "stripe" if p % 2 else "razorpay", email)
        demo.identity.AddPaymentMethod(identity_pb2.AddPaymentMethodRequest(
            request_id=_rid(), customer_id=customer.customer_id, kind=identity_pb2.PAYMENT_METHOD_KIND_CARD,
            gateway=token.gateway, gateway_token=token.token, gateway_customer=token.customer_reference), timeout=10)
        ids.append(customer.customer_id)
    progress("customers", customers, customers)
    out: dict[str, list[float]] = {"exit_to_captured_ms": [], "exit_to_paid_seen_ms": [], "get_session_ms": []}
    for i in range(sessions):
        progress("checkouts", i, sessions)
        visit = Visit(i, i, ids[i % customers], demo.stores[i % 2], f"b-{_rid()[:8]}")
        session_id = demo._send([demo._event(visit, S.STORE_EVENT_KIND_ENTRY), demo._event(
            visit, S.STORE_EVENT_KIND_IDENTIFIED, customer_id=visit.customer_id, false_match_probability=1e-6)]
        )[0].session_id
        demo.billing.UpdateCart(billing_pb2.UpdateCartRequest(
            request_id=_rid(), store_id=visit.store_id, session_id=session_id,
            changes=[billing_pb2.CartChange(sku=CATALOGUE[i % 9][0], quantity_delta=1 + i % 3)]), timeout=10)
        t0 = time.perf_counter()
        demo._send([demo._event(visit, S.STORE_EVENT_KIND_EXIT)])
        session = demo._wait(visit, session_id, {S.SESSION_STATE_OPEN, S.SESSION_STATE_CHARGING})
        out["exit_to_paid_seen_ms"].append((time.perf_counter() - t0) * 1000)
        t1 = time.perf_counter()
        demo._session(visit, session_id)
        out["get_session_ms"].append((time.perf_counter() - t1) * 1000)
        if session.state != S.SESSION_STATE_PAID:
            raise RuntimeError(f"session {session_id} ended {billing_pb2.SessionState.Name(session.state)} "
                               f"({session.decision_reason})")
        payment = demo.payment.GetPayment(payment_pb2.GetPaymentRequest(payment_id=session.payment_id),
                                          timeout=10).payment
        out["exit_to_captured_ms"].append((payment.captured_at.ToDatetime(tzinfo=timezone.utc)
                                           - session.exited_at.ToDatetime(tzinfo=timezone.utc)).total_seconds() * 1000)
    progress("checkouts", sessions, sessions)
    return out
