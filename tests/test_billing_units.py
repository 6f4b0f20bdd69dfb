"""Bill arithmetic and the exit risk policy: pure domain, no I/O."""

from __future__ import annotations

import math

from hypothesis import given, strategies as st

from billing.domain.bill import Bill, Item, Line, share
from billing.domain.risk import ExitFacts, RiskPolicy, decide

items = st.builds(Item, sku=st.text("ABC", min_size=1, max_size=3), name=st.just("x"),
                  unit_price_minor=st.integers(0, 10_000_000), gst_rate_bp=st.sampled_from([0, 500, 1200, 1800, 2800]),
                  discount_bp=st.integers(0, 10_000))


@given(st.lists(st.builds(Line, item=items, quantity=st.integers(1, 1000)), max_size=20))
def test_bill_totals_are_exact_sums_of_the_printed_lines(lines):
    bill = Bill(tuple(lines))
    assert bill.total == sum(l.total for l in lines) == bill.subtotal - bill.discount + bill.tax
    for l in lines:
        assert 0 <= l.discount <= l.gross and 0 <= l.tax
        # Within half a paisa of the exact rational value, each rounding on its own line.
        assert abs(l.discount - l.gross * l.item.discount_bp / 10_000) <= 0.5
        assert abs(l.tax - (l.gross - l.discount) * l.item.gst_rate_bp / 10_000) <= 0.5


def test_rounding_is_half_up_to_the_paisa():
    assert share(5, 1_000) == 1  # 0.5 paise rounds up
    assert share(4, 1_000) == 0
    assert share(10_001, 1_800) == 1_800  # 1800.18
    line = Line(Item("RICE", "rice", 74_900, 500, 1_000), 3)
    assert (line.gross, line.discount, line.tax, line.total) == (224_700, 22_470, 10_112, 212_342)


POLICY = RiskPolicy(max_false_match=1e-4, confirm_above_minor=500_000)


def facts(**kw):
    base = dict(customer_id="c1", false_match_probability=1e-6, total_minor=10_000, per_visit_limit_minor=1_000_000,
                daily_limit_minor=2_500_000, spent_today_minor=0)
    return ExitFacts(**{**base, **kw})


def test_risk_policy_decisions():
    assert decide(POLICY, facts()) .action == "charge"
    assert decide(POLICY, facts(customer_id=None)).reason == "stranger"
    assert decide(POLICY, facts(active_elsewhere=True)).reason == "velocity"
    assert decide(POLICY, facts(total_minor=0)).action == "nothing"
    assert decide(POLICY, facts(false_match_probability=2e-4)) == decide(POLICY, facts(false_match_probability=0.05))
    assert decide(POLICY, facts(false_match_probability=2e-4)).reason == "identification_unsure"
    assert decide(POLICY, facts(false_match_probability=math.nan)).action == "confirm"
    assert decide(POLICY, facts(total_minor=500_000)).action == "charge"  # Rs 5,000 exactly: not above
    assert decide(POLICY, facts(total_minor=500_001)).reason == "amount_over_threshold"
    assert decide(POLICY, facts(total_minor=1_000_001)).reason == "over_limit"
    assert decide(POLICY, facts(spent_today_minor=2_495_000, total_minor=10_000)).reason == "over_daily_limit"
