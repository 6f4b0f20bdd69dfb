"""The open-set decision: who a track is, only when the evidence says so.

Per track, every window's top-k candidates (customer, cosine similarity) add evidence. A
customer missing from a window's top-k is credited that window's k-th score (an upper bound
on what they scored), which can only make the runner-up look stronger: conservative.

The estimated probability that the best candidate is a false match (a stranger, or the
wrong customer, scoring this high by chance) comes from the impostor score model measured
by `gaitpay eval`: per-comparison impostor scores ~ N(mu, sigma); the mean over n windows of
one walk has n_eff = n / (1 + (n - 1) rho) independent windows' worth of evidence (windows of
one walk are correlated); any of the G enrolled customers in scope may be the impostor,
and the track is tested again after every window, up to L = max_windows - min_windows + 1
looks (union bounds over both, so peeking after each window does not inflate the false-match
rate). The score model comes from `gaitpay eval --write-calibration` for the model in use
(gait/models/policy-calibration.json). IDENTIFIED needs min_windows, that probability below the configured bound,
and a margin over the runner-up. STRANGER when the best candidate scores like an impostor
against the genuine score model, or when max_windows pass without an identification.

Body measures (gait.body: shoulder and hip heights from a calibrated camera), where the track
and a candidate's templates both have them, add evidence the embedding cannot have (it never
sees size): `TrackEvidence.body_chance` holds, per candidate, the chance that someone else's
body matches the track's this well, which multiplies the embedding's chance (independent
evidence). A candidate whose body is too far from the track's to be the walker (beyond the
body model's veto) is no candidate at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Verdict(Enum):
    PENDING = "pending"
    IDENTIFIED = "identified"
    STRANGER = "stranger"


@dataclass(frozen=True)
class ScoreModel:
    """Score statistics of the embedding model. The matcher loads those measured for the model
    version it runs (`gaitpay eval --write-calibration`, gait/models/policy-calibration.json);
    these defaults, a fallback, are that measurement for model synthetic-20261125-291dec62:
    best of 4 enrolment templates over synthetic visits, impostor 0.1443 +/- 0.1773 (spread
    widened so the Gaussian's 1e-3 tail is no lighter than measured), genuine 0.5235 +/-
    0.160, windows of one pair correlated 0.511."""

    impostor_mean: float = 0.1443
    impostor_std: float = 0.1773
    genuine_mean: float = 0.5235
    genuine_std: float = 0.160
    window_correlation: float = 0.511


@dataclass(frozen=True)
class PolicyConfig:
    max_false_match: float = 1e-4  # the product's bound: < 1 in 10,000 visits charged wrongly
    margin: float = 0.05
    min_windows: int = 2
    max_windows: int = 12
    stranger_sigmas: float = 3.0
    # A track that ends its window budget unidentified but whose best candidate is this likely
    # (false-match probability at most this, with the margin) names that candidate as
    # "probable": never charged automatically, only asked to confirm in the app.
    probable_false_match: float = 0.1


@dataclass
class TrackEvidence:
    windows: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    kth_scores: list[float] = field(default_factory=list)  # each window's k-th best score
    announced: str = ""  # the customer this track was last identified as
    # Per candidate with body measures on both sides: the chance an impostor's body is this close.
    body_chance: dict[str, float] = field(default_factory=dict)
    vetoed: set[str] = field(default_factory=set)  # candidates whose bodies rule them out
    bodies: list[np.ndarray] = field(default_factory=list)  # the track's measured windows'
    candidate_bodies: dict[str, np.ndarray] = field(default_factory=dict)  # as enrolled

    def add(self, candidates: list[tuple[str, float]]) -> None:
        for customer, score in candidates:
            self.sums[customer] = self.sums.get(customer, 0.0) + score
            self.seen[customer] = self.seen.get(customer, 0) + 1
        self.windows += 1
        self.kth_scores.append(candidates[-1][1] if candidates else -1.0)

    def mean(self, customer: str) -> float:
        """Mean score over all windows, missing windows credited their k-th score."""
        missing = self.windows - self.seen.get(customer, 0)
        if missing <= 0:
            return self.sums[customer] / self.windows
        # Credit the missing windows with the k-th scores of the windows it was absent from;
        # we do not track which those were, so use the highest k-th scores (conservative).
        credit = sum(sorted(self.kth_scores, reverse=True)[:missing])
        return (self.sums.get(customer, 0.0) + credit) / self.windows


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    customer_id: str
    best_mean: float
    runner_up_mean: float
    false_match_probability: float
    windows: int
    reason: str
    alternatives: tuple[tuple[str, float], ...]
    probable_customer_id: str = ""


def _upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def decide(evidence: TrackEvidence, gallery_size: int, scores: ScoreModel, cfg: PolicyConfig) -> Outcome:
    n = evidence.windows
    ranked = sorted(((c, evidence.mean(c)) for c in evidence.sums if c not in evidence.vetoed), key=lambda kv: -kv[1])
    if not ranked:
        verdict = Verdict.STRANGER if n >= cfg.min_windows else Verdict.PENDING
        why = (f"every candidate's body rules them out ({len(evidence.vetoed)} vetoed)" if evidence.vetoed
               else "no enrolled customer in scope")
        return Outcome(verdict, "", -1.0, -1.0, 1.0, n, why, ())
    best, best_mean = ranked[0]
    runner_up_mean = ranked[1][1] if len(ranked) > 1 else -1.0
    n_eff = n / (1 + (n - 1) * scores.window_correlation)
    z = (best_mean - scores.impostor_mean) * math.sqrt(n_eff) / scores.impostor_std
    looks = max(1, cfg.max_windows - cfg.min_windows + 1)
    body = evidence.body_chance.get(best, 1.0)
    fmp = min(1.0, max(gallery_size, 1) * looks * _upper_tail(z) * body)
    margin = best_mean - runner_up_mean
    alternatives = tuple((c, round(s, 4)) for c, s in ranked[1:4])
    facts = (f"best {best_mean:.3f} over {n} windows (n_eff {n_eff:.1f}), runner-up {runner_up_mean:.3f}, "
             + (f"body matched by {body:.1%} of others, " if best in evidence.body_chance else "")
             + f"estimated false-match probability {fmp:.2e} against {gallery_size} enrolled")
    genuine_floor = scores.genuine_mean - cfg.stranger_sigmas * scores.genuine_std / math.sqrt(n_eff)
    if n >= cfg.min_windows and fmp <= cfg.max_false_match and margin >= cfg.margin:
        return Outcome(Verdict.IDENTIFIED, best, best_mean, runner_up_mean, fmp, n,
                       f"identified: {facts}; bound {cfg.max_false_match:g}, margin {margin:.3f}", alternatives)
    if n >= cfg.min_windows and best_mean < genuine_floor:
        return Outcome(Verdict.STRANGER, "", best_mean, runner_up_mean, fmp, n,
                       f"stranger: {facts}; below the genuine floor {genuine_floor:.3f}", alternatives)
    if n >= cfg.max_windows:
        probable = best if fmp <= cfg.probable_false_match and margin >= cfg.margin else ""
        return Outcome(Verdict.STRANGER, "", best_mean, runner_up_mean, fmp, n,
                       f"stranger: no identification within {cfg.max_windows} windows; {facts}"
                       + ("; a probable candidate may confirm in the app" if probable else ""), alternatives, probable)
    why = "too few windows" if n < cfg.min_windows else (
        "false-match probability above the bound" if fmp > cfg.max_false_match else "margin too small")
    return Outcome(Verdict.PENDING, "", best_mean, runner_up_mean, fmp, n, f"pending ({why}): {facts}", alternatives)
