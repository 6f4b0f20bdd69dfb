"""Score calibration for the matcher's open-set policy, measured the way the matcher scores.

The matcher compares each streamed window with every template of a customer and keeps the
best (enrolment stores several walks per customer), then averages over a track's windows.
So the statistics the policy needs are those of *best-of-K-templates* scores per window,
and how strongly the windows of one (probe person, enrolled customer) pair correlate: a
stranger who happens to resemble a customer resembles them in every window.

`measure()` renders synthetic enrolled customers (K enrolment walks each) and probe people
(enrolled and strangers, W windows each), embeds everything with the shipped model and
returns those statistics; `gaitpay eval` writes them to `gait/models/policy-calibration.json`
with `--write-calibration`, which the matcher loads for the model version it runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE = Path(__file__).with_name("models") / "policy-calibration.json"
_Z_1E3 = 3.0902  # standard normal upper 1e-3 quantile


@dataclass(frozen=True)
class Calibration:
    model_version: str
    enrol_walks: int
    impostor_mean: float
    impostor_std: float  # widened so the Gaussian's 1e-3 tail is no lighter than measured
    genuine_mean: float
    genuine_std: float
    # Correlation of one impostor pair's windows, fitted so that the Gaussian model's upper
    # tail of an n-window mean is no lighter than the measured one (1e-4 where the pairs
    # support it) for every n: the measured intra-class correlation alone underestimates
    # that tail (some strangers simply walk like a customer).
    window_correlation: float
    measured_icc: float
    impostor_pairs: int
    genuine_pairs: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def best_of_templates(gallery: np.ndarray, owners: np.ndarray, probes: np.ndarray, customers: int) -> np.ndarray:
    """[P, D] probes against a gallery of [N, D] templates owned by customers 0..C-1:
    [P, C] scores, each the best over that customer's templates."""
    scores = probes @ gallery.T
    out = np.full((len(probes), customers), -1.0, dtype=np.float32)
    for c in range(customers):
        out[:, c] = scores[:, owners == c].max(axis=1)
    return out


def intra_class_correlation(pairs: np.ndarray) -> float:
    """One-way ICC of [pairs, windows] scores (0 when windows are independent, 1 when
    every window of a pair scores the same)."""
    n = pairs.shape[1]
    within = float(pairs.var(axis=1, ddof=1).mean())
    between = float(pairs.mean(axis=1).var(ddof=1)) - within / n
    return max(0.0, min(1.0, between / (between + within))) if between + within > 0 else 0.0


def _tail_correlation(impostor: np.ndarray, mean: float, std: float) -> float:
    """The smallest correlation rho for which mean + z * std * sqrt(rho + (1 - rho) / n)
    reaches the measured upper quantile of n-window pair means, for every n."""
    rate, z = (1e-4, 3.719) if impostor.shape[0] >= 30_000 else (1e-3, _Z_1E3)
    needed = 0.0
    for n in range(2, impostor.shape[1] + 1):
        measured = float(np.quantile(impostor[:, :n].mean(axis=1), 1 - rate))
        spread = ((measured - mean) / (z * std)) ** 2
        needed = max(needed, (spread - 1 / n) / (1 - 1 / n))
    return min(1.0, needed)


def fit(genuine: np.ndarray, impostor: np.ndarray, model_version: str, enrol_walks: int) -> Calibration:
    """genuine: [pairs, windows]; impostor: [pairs, windows] best-of-K scores."""
    imp = impostor.ravel()
    mean, std = float(imp.mean()), float(imp.std())
    tail = float(np.quantile(imp, 1 - 1e-3)) if imp.size >= 3000 else mean + _Z_1E3 * std
    std = max(std, (tail - mean) / _Z_1E3)
    icc = intra_class_correlation(impostor)
    return Calibration(
        model_version=model_version, enrol_walks=enrol_walks,
        impostor_mean=round(mean, 4), impostor_std=round(std, 4),
        genuine_mean=round(float(genuine.mean()), 4), genuine_std=round(float(genuine.std()), 4),
        window_correlation=round(max(icc, _tail_correlation(impostor, mean, std)), 3), measured_icc=round(icc, 3),
        impostor_pairs=int(impostor.shape[0]), genuine_pairs=int(genuine.shape[0]),
    )


@dataclass(frozen=True)
class VisitSimulation:
    """The policy replayed over synthetic visits with an exact search."""

    enrolled_visits: int
    identified_correctly: int
    identified_wrongly: int
    strangers: int
    strangers_identified: int
    median_windows_to_identify: float | None  # None when nobody was identified
    # Visits that ended unidentified but named a probable customer (asked to confirm in the app):
    # the right customer, another customer, or a stranger's visit put to a customer.
    probable_right: int = 0
    probable_wrong: int = 0
    strangers_probable: int = 0

    @property
    def identification_rate(self) -> float:
        return self.identified_correctly / max(self.enrolled_visits, 1)


@dataclass(frozen=True)
class VisitBodies:
    """Body measures for the visits (gait.body): each visitor's track (the first window's
    walk: a track's windows are one walk, seen by one camera, in one pair of shoes) and each
    customer's enrolment (the mean over their enrolment walks); NaN rows where none."""

    model: object  # gait.body.BodyModel
    tracks: dict[int, np.ndarray]
    customers: np.ndarray  # [customers, M]


def _body_evidence(evidence: object, top: np.ndarray, track: np.ndarray, bodies: VisitBodies) -> None:
    vetoed, chance = bodies.model.weigh(track, bodies.customers[top])  # type: ignore[attr-defined]
    for c, out, p in zip(top, vetoed, chance):
        if out:
            evidence.vetoed.add(str(c))  # type: ignore[attr-defined]
        elif np.isfinite(p):
            evidence.body_chance[str(c)] = float(p)  # type: ignore[attr-defined]


def replay_visit(scores: np.ndarray, policy_config: object, score_model: object, k: int = 5,
                 bodies: tuple[np.ndarray, VisitBodies] | None = None) -> object:
    """One visit as the matcher sees it: scores [windows, customers] (customer c is named
    str(c)), each window's top k added to the track's evidence, decided after every window
    until the policy stops waiting. Returns the policy's last Outcome; with `bodies` (the
    track's measures and the customers'), the policy also weighs bodies."""
    from matcher.domain.policy import TrackEvidence, Verdict, decide

    evidence = TrackEvidence()
    outcome = None
    for row in scores:
        top = np.argsort(-row)[:k]
        if bodies is not None:
            _body_evidence(evidence, top, bodies[0], bodies[1])
        evidence.add([(str(c), float(row[c])) for c in top])
        outcome = decide(evidence, scores.shape[1], score_model, policy_config)  # type: ignore[arg-type]
        if outcome.verdict != Verdict.PENDING:
            break
    if outcome is None:
        raise ValueError("a visit needs at least one window of scores")
    return outcome


def simulate_visits(per_window: dict[int, np.ndarray], enrolled: int, policy_config: object,
                    score_model: object, k: int = 5, bodies: VisitBodies | None = None) -> VisitSimulation:
    """per_window[person]: [windows, customers] best-of-K scores; persons < enrolled are
    customers (their own column is the genuine one), the rest strangers. With `bodies`, the
    policy also weighs body measures where the track and the candidate both have them."""
    from matcher.domain.policy import Verdict

    right = wrong = strangers_hit = 0
    asked = {"right": 0, "wrong": 0, "stranger": 0}
    windows_needed: list[int] = []
    for person, scores in per_window.items():
        outcome = replay_visit(scores, policy_config, score_model, k,
                               None if bodies is None else (bodies.tracks[person], bodies))
        if outcome.verdict == Verdict.IDENTIFIED:
            if person >= enrolled:
                strangers_hit += 1
            elif outcome.customer_id == str(person):
                right += 1
                windows_needed.append(outcome.windows)
            else:
                wrong += 1
        elif outcome.probable_customer_id:
            asked["stranger" if person >= enrolled else
                  "right" if outcome.probable_customer_id == str(person) else "wrong"] += 1
    return VisitSimulation(enrolled, right, wrong, len(per_window) - enrolled, strangers_hit,
                           float(np.median(windows_needed)) if windows_needed else None,
                           asked["right"], asked["wrong"], asked["stranger"])


def measure(embedder: object, enrolled: int = 300, strangers: int = 150, enrol_walks: int = 4,
            windows: int = 12, seed: int = 880_000,
            body_model: object = None) -> tuple[Calibration, dict[int, np.ndarray], VisitBodies | None]:
    """Calibration from synthetic people never used in training, the per-window scores
    behind it, and (with a body model) the visits' body measures (for simulate_visits)."""
    from gait.eval_suite import _embed, synthetic_walks

    walks = synthetic_walks(enrolled + strangers, enrol_walks + windows, seed)
    vectors, ids, bodies, _ = _embed(embedder, walks)  # type: ignore[arg-type]
    gallery_rows, probe_rows = [], []
    count: dict[int, int] = {}
    for row, person in enumerate(ids):
        n = count.get(int(person), 0)
        count[int(person)] = n + 1
        (gallery_rows if person < enrolled and n < enrol_walks else probe_rows).append(row)
    gallery, owners = vectors[gallery_rows], ids[gallery_rows]
    scores = best_of_templates(gallery, owners, vectors[probe_rows], enrolled)
    probe_ids = ids[probe_rows]
    per_window = {int(p): scores[probe_ids == p][:windows] for p in np.unique(probe_ids)}
    usable = {p: s for p, s in per_window.items() if len(s) == windows}
    genuine = np.stack([s[:, p] for p, s in usable.items() if p < enrolled])
    impostor = np.concatenate([np.delete(s, p, axis=1).T if p < enrolled else s.T for p, s in usable.items()])
    version = getattr(embedder, "version", "unknown")
    visit_bodies = None
    if body_model is not None:
        enrolment = bodies[gallery_rows]
        customers = np.stack([np.nanmean(enrolment[owners == c], axis=0) if np.isfinite(enrolment[owners == c]).any()
                              else np.full(bodies.shape[1], np.nan) for c in range(enrolled)])
        probe_bodies = bodies[probe_rows]
        tracks = {p: probe_bodies[probe_ids == p][0] for p in usable}
        visit_bodies = VisitBodies(body_model, tracks, customers)
    return fit(genuine, impostor, version, enrol_walks), usable, visit_bodies


def load(model_version: str, path: Path = CALIBRATION_FILE) -> Calibration | None:
    """The calibration for this model version, or None (the policy then keeps its defaults)."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Calibration(**data) if data.get("model_version") == model_version else None
