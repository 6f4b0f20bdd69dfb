"""The open-set decision policy, on score streams whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from matcher.domain.policy import PolicyConfig, ScoreModel, TrackEvidence, Verdict, decide

SEPARABLE = ScoreModel(impostor_mean=0.0, impostor_std=0.1, genuine_mean=0.8, genuine_std=0.08,
                       window_correlation=0.3)


def stream(rng: np.random.Generator, true_customer: str | None, windows: int, gallery: int,
           model: ScoreModel) -> TrackEvidence:
    evidence = TrackEvidence()
    for _ in range(windows):
        scores = {f"c{i}": rng.normal(model.impostor_mean, model.impostor_std) for i in range(gallery)}
        if true_customer is not None:
            scores[true_customer] = rng.normal(model.genuine_mean, model.genuine_std)
        evidence.add(sorted(scores.items(), key=lambda kv: -kv[1])[:5])
    return evidence


def test_a_regular_is_identified_after_a_few_windows() -> None:
    rng = np.random.default_rng(0)
    outcome = decide(stream(rng, "c7", 4, 200, SEPARABLE), 200, SEPARABLE, PolicyConfig())
    assert outcome.verdict is Verdict.IDENTIFIED and outcome.customer_id == "c7"
    assert outcome.false_match_probability <= 1e-4
    assert "identified" in outcome.reason


def test_one_window_is_never_enough() -> None:
    rng = np.random.default_rng(1)
    outcome = decide(stream(rng, "c7", 1, 200, SEPARABLE), 200, SEPARABLE, PolicyConfig())
    assert outcome.verdict is Verdict.PENDING and "too few windows" in outcome.reason


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), windows=st.integers(1, 12), gallery=st.integers(1, 300))
def test_a_stranger_is_never_identified(seed: int, windows: int, gallery: int) -> None:
    rng = np.random.default_rng(seed)
    outcome = decide(stream(rng, None, windows, gallery, SEPARABLE), gallery, SEPARABLE, PolicyConfig())
    assert outcome.verdict is not Verdict.IDENTIFIED


def test_strangers_are_called_strangers_once_evidence_is_in() -> None:
    rng = np.random.default_rng(3)
    outcomes = [decide(stream(rng, None, 6, 100, SEPARABLE), 100, SEPARABLE, PolicyConfig()) for _ in range(50)]
    assert all(o.verdict is Verdict.STRANGER for o in outcomes)


def test_a_weak_model_stays_pending_rather_than_guess() -> None:
    weak = ScoreModel()  # the shipped model's measured statistics
    rng = np.random.default_rng(4)
    outcomes = [decide(stream(rng, "c3", 8, 1000, weak), 1000, weak, PolicyConfig()) for _ in range(20)]
    assert not any(o.verdict is Verdict.IDENTIFIED and o.customer_id != "c3" for o in outcomes)


def test_missing_windows_are_credited_conservatively() -> None:
    evidence = TrackEvidence()
    evidence.add([("a", 0.9), ("b", 0.5)])
    evidence.add([("b", 0.6), ("c", 0.4)])  # a missing here: credited at most 0.5 (the highest k-th)
    assert evidence.mean("a") == (0.9 + 0.5) / 2


class ScopedIndex:
    """Customer c1 scores `score` in every window; a store holds 10 rows, every store 100,000."""

    def __init__(self, score: float) -> None:
        self.score, self.counted = score, []

    def search(self, embedding, store_id, k, all_stores=False, with_bodies=False):  # type: ignore[no-untyped-def]
        return [("c1", self.score), ("c2", 0.0)]

    def count(self, store_id=None):  # type: ignore[no-untyped-def]
        self.counted.append(store_id)
        return 10 if store_id is not None else 100_000


def test_the_false_match_estimate_counts_the_gallery_the_search_looked_through() -> None:
    import numpy as np

    from matcher.domain.identification import Identifier, State
    from matcher.domain.windows import TrackKey, Window

    index = ScopedIndex(0.40)
    identifier = Identifier(index=index, scores=SEPARABLE)  # type: ignore[arg-type]
    vector = np.ones(128, dtype=np.float32) / np.sqrt(128)

    def visit(track: str, all_stores: bool):  # type: ignore[no-untyped-def]
        decision = None
        for seq in range(3):
            window = Window(TrackKey("small", "cam", track), seq, None, 30.0, vector, 1.0)
            decision = identifier.observe(window, all_stores)
        return decision

    in_store = visit("t1", all_stores=False)
    everywhere = visit("t2", all_stores=True)
    assert in_store.state is State.IDENTIFIED and "against 10 enrolled" in in_store.reason
    assert everywhere.state is not State.IDENTIFIED and "against 100000 enrolled" in everywhere.reason
    assert in_store.false_match_probability * 10_000 == pytest.approx(everywhere.false_match_probability, rel=1e-6)
    assert set(index.counted) == {"small", None}  # once per scope, not per window


def _close_call() -> TrackEvidence:
    """Three windows where c1 leads c2 by a clear margin, but not far enough for the bound."""
    evidence = TrackEvidence()
    for _ in range(3):
        evidence.add([("c1", 0.75), ("c2", 0.30), ("c3", 0.25), ("c4", 0.20), ("c5", 0.18)])
    return evidence


def test_a_matching_body_multiplies_the_chance_of_a_false_match_down() -> None:
    model, cfg = ScoreModel(), PolicyConfig()
    alone = decide(_close_call(), 40, model, cfg)
    assert alone.verdict is Verdict.PENDING and 1e-4 < alone.false_match_probability < 1e-1
    evidence = _close_call()
    evidence.body_chance["c1"] = 0.01  # one person in a hundred has a body this close to the walker's
    with_body = decide(evidence, 40, model, cfg)
    assert with_body.verdict is Verdict.IDENTIFIED and with_body.customer_id == "c1"
    assert with_body.false_match_probability == pytest.approx(alone.false_match_probability * 0.01, rel=1e-6)
    assert "body matched by 1.0% of others" in with_body.reason
    # Another candidate's body says nothing about c1.
    other = _close_call()
    other.body_chance["c2"] = 1e-6
    assert decide(other, 40, model, cfg).false_match_probability == pytest.approx(alone.false_match_probability)


def test_a_candidate_whose_body_rules_them_out_is_not_a_candidate() -> None:
    evidence = _close_call()
    evidence.vetoed.add("c1")
    outcome = decide(evidence, 40, ScoreModel(), PolicyConfig())
    assert outcome.customer_id != "c1" and outcome.best_mean == pytest.approx(0.30)
    assert "c1" not in dict(outcome.alternatives)
    alone = TrackEvidence()
    for _ in range(3):
        alone.add([("c1", 0.9)])
    alone.vetoed.add("c1")
    ruled_out = decide(alone, 40, ScoreModel(), PolicyConfig())
    assert ruled_out.verdict is Verdict.STRANGER and "body rules them out (1 vetoed)" in ruled_out.reason


class MeasuredIndex:
    """c1 scores 0.75 and c2 0.30 in every window; both enrolled with body measures."""

    def __init__(self, c1_body: np.ndarray, c2_body: np.ndarray | None) -> None:
        self.bodies = {"c1": c1_body, "c2": c2_body}
        self.asked_for_bodies: list[bool] = []

    def search(self, embedding, store_id, k, all_stores=False, with_bodies=False):  # type: ignore[no-untyped-def]
        from matcher.domain.identification import Hit

        self.asked_for_bodies.append(with_bodies)
        if not with_bodies:
            return [Hit("c1", 0.75), Hit("c2", 0.30), Hit("c3", 0.25)]
        return [Hit("c1", 0.75, self.bodies["c1"]), Hit("c2", 0.30, self.bodies["c2"]), Hit("c3", 0.25)]

    def count(self, store_id=None):  # type: ignore[no-untyped-def]
        return 40


def _visit_with_bodies(index: MeasuredIndex, track_body: np.ndarray | None, weigh: bool):  # type: ignore[no-untyped-def]
    from gait.body import load_body_model
    from matcher.domain.identification import Identifier
    from matcher.domain.windows import TrackKey, Window

    identifier = Identifier(index=index, bodies=load_body_model() if weigh else None)  # type: ignore[arg-type]
    vector = np.ones(128, dtype=np.float32) / np.sqrt(128)
    decision = None
    for seq in range(3):
        # The second window was not measured: the track's median is of the others.
        body = None if seq == 1 or track_body is None else track_body + 0.005 * seq
        decision = identifier.observe(Window(TrackKey("s", "cam", "t"), seq, None, 30.0, vector, 1.0, body))
    return decision


def test_the_identifier_weighs_the_track_body_against_each_candidate_s() -> None:
    walker = np.array([1.45, 0.95])
    index = MeasuredIndex(walker + 0.01, np.array([1.30, 0.98]))
    alone = _visit_with_bodies(index, walker, weigh=False)
    weighed = _visit_with_bodies(index, walker, weigh=True)
    assert weighed.customer_id == "c1" or "body matched by" in weighed.reason
    assert 0 < weighed.false_match_probability < alone.false_match_probability / 5
    assert "c2" not in dict(weighed.alternatives)  # shoulders 15 cm lower, hips higher: vetoed
    assert "c2" in dict(alone.alternatives)
    # Unmeasured tracks (an uncalibrated camera) weigh nothing.
    unmeasured = _visit_with_bodies(index, None, weigh=True)
    assert unmeasured.false_match_probability == pytest.approx(alone.false_match_probability)


def test_candidates_bodies_are_asked_for_only_once_the_track_has_been_measured() -> None:
    index = MeasuredIndex(np.array([1.45, 0.95]), None)
    _visit_with_bodies(index, np.array([1.45, 0.95]), weigh=True)
    assert index.asked_for_bodies == [True, True, True]  # the unmeasured second window: its track was measured
    index.asked_for_bodies.clear()
    _visit_with_bodies(index, None, weigh=True)
    _visit_with_bodies(index, np.array([1.45, 0.95]), weigh=False)
    assert index.asked_for_bodies == [False] * 6  # an unmeasured track; a matcher that does not weigh bodies


def test_a_track_whose_body_is_not_the_best_candidate_s_never_identifies_them() -> None:
    index = MeasuredIndex(np.array([1.60, 1.05]), None)
    decision = _visit_with_bodies(index, np.array([1.30, 0.82]), weigh=True)
    assert decision.customer_id != "c1" and "c1" not in dict(decision.alternatives)
