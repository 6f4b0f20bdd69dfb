"""The charge decision at exit: auto-charge only what is safe to charge without asking."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RiskPolicy:
    # The matcher's bound: an identification whose false-match probability is above this
    # is "unsure" and the shopper confirms in the app.
    max_false_match: float = 1e-4
    # Bills above this are confirmed in the app (Rs 5,000).
    confirm_above_minor: int = 500_000


@dataclass(frozen=True)
class ExitFacts:
    customer_id: str | None
    false_match_probability: float
    total_minor: int
    # Another store has this customer in an open session right now.
    active_elsewhere: bool = False
    per_visit_limit_minor: int = 0
    daily_limit_minor: int = 0
    spent_today_minor: int = 0


@dataclass(frozen=True)
class Decision:
    action: str  # charge, confirm, staff, nothing
    reason: str


def decide(policy: RiskPolicy, facts: ExitFacts) -> Decision:
    if facts.customer_id is None:
        return Decision("staff", "stranger")
    if facts.active_elsewhere:
        # One person cannot shop in two stores at once: one of the identifications is wrong.
        return Decision("staff", "velocity")
    if facts.total_minor == 0:
        return Decision("nothing", "empty_cart")
    if facts.per_visit_limit_minor and facts.total_minor > facts.per_visit_limit_minor:
        return Decision("staff", "over_limit")
    if facts.daily_limit_minor and facts.spent_today_minor + facts.total_minor > facts.daily_limit_minor:
        return Decision("staff", "over_daily_limit")
    if not facts.false_match_probability <= policy.max_false_match:  # NaN is unsure too
        return Decision("confirm", "identification_unsure")
    if facts.total_minor > policy.confirm_above_minor:
        return Decision("confirm", "amount_over_threshold")
    return Decision("charge", "auto_charge")
