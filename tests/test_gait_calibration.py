"""The policy calibration: the statistics it measures and the visit replay built on them."""

from __future__ import annotations

import json

import numpy as np

from gait import calibration
from matcher.domain.policy import PolicyConfig, ScoreModel


def test_intra_class_correlation_recovers_a_known_pair_effect() -> None:
    rng = np.random.default_rng(1)
    pairs = rng.normal(0, np.sqrt(0.4), size=(20_000, 1)) + rng.normal(0, np.sqrt(0.6), size=(20_000, 12))
    assert abs(calibration.intra_class_correlation(pairs) - 0.4) < 0.02
    assert calibration.intra_class_correlation(rng.normal(size=(20_000, 12))) < 0.02


def test_a_heavy_pair_tail_raises_the_fitted_correlation_above_the_measured_one() -> None:
    rng = np.random.default_rng(2)
    # Gaussian windows, but 1% of impostor pairs resemble the customer strongly.
    effect = np.where(rng.random((40_000, 1)) < 0.01, 0.35, 0.0)
    impostor = effect + rng.normal(0, 0.1, size=(40_000, 12))
    genuine = 0.5 + rng.normal(0, 0.1, size=(100, 12))
    cal = calibration.fit(genuine, impostor, "m", 4)
    assert cal.window_correlation > cal.measured_icc + 0.1
    # With the fitted correlation, the model's 1e-4 tail of a 12-window mean covers the measured one.
    n, z = 12, 3.719
    predicted = cal.impostor_mean + z * cal.impostor_std * np.sqrt(cal.window_correlation + (1 - cal.window_correlation) / n)
    assert predicted >= np.quantile(impostor.mean(axis=1), 1 - 1e-4) - 1e-6


def test_visit_replay_counts_right_wrong_and_stranger_identifications() -> None:
    rng = np.random.default_rng(3)
    customers, windows = 10, 12
    per_window = {}
    for person in range(customers + 5):
        scores = rng.normal(0.0, 0.05, size=(windows, customers))
        if person < customers:
            scores[:, person] = 0.95
        per_window[person] = scores
    model = ScoreModel(impostor_mean=0.0, impostor_std=0.05, window_correlation=0.3)
    sim = calibration.simulate_visits(per_window, customers, PolicyConfig(), model)
    assert (sim.identified_correctly, sim.identified_wrongly, sim.strangers_identified) == (customers, 0, 0)
    assert sim.median_windows_to_identify == PolicyConfig().min_windows


WEAK = ScoreModel(impostor_mean=0.0, impostor_std=0.1, genuine_mean=0.3, genuine_std=0.05, window_correlation=0.9)


def _weak_visits(customers: int = 10, windows: int = 12) -> dict[int, np.ndarray]:
    """Ten customers and three strangers whose visits are too weak for the bound (at 12
    windows: false-match probability ~4e-3) but strong enough for a probable candidate.
    Customers 0-7 score as themselves; customer 8 scores like customer 3 and stranger 10
    like customer 5."""
    rng = np.random.default_rng(4)
    likely, resembles = 0.38, {8: 3, 10: 5}
    per_window = {}
    for person in range(customers + 3):
        scores = rng.normal(0.0, 0.02, size=(windows, customers))
        if person < 8:
            scores[:, person] = likely
        if person in resembles:
            scores[:, resembles[person]] = likely
        per_window[person] = scores
    return per_window


def test_visit_replay_counts_who_would_be_asked_to_confirm_in_the_app() -> None:
    """The right customer, another customer, or a stranger put to a customer."""
    sim = calibration.simulate_visits(_weak_visits(), 10, PolicyConfig(), WEAK)
    assert (sim.identified_correctly, sim.identified_wrongly, sim.strangers_identified) == (0, 0, 0)
    assert (sim.probable_right, sim.probable_wrong, sim.strangers_probable) == (8, 1, 1)
    assert sim.median_windows_to_identify is None


def test_the_shipped_calibration_belongs_to_the_shipped_model() -> None:
    card = json.loads((calibration.CALIBRATION_FILE.parent / "model-card.json").read_text())
    cal = calibration.load(card["version"])
    assert cal is not None and cal.impostor_pairs >= 30_000
    assert cal.genuine_mean > cal.impostor_mean and cal.window_correlation >= cal.measured_icc
    assert calibration.load("some-other-model") is None


def test_visit_replay_with_body_measures_identifies_whom_the_body_confirms_and_rules_out_the_rest() -> None:
    """The same weak visits as above; now each visitor's body is measured. Customers 0-7
    match their own bodies and are identified; customer 8 resembles customer 3 in gait but
    not in body, and stranger 10 resembles customer 5 in gait but not in body."""
    from gait.body import BodyModel

    per_window, customers = _weak_visits(), 10
    body = BodyModel(np.eye(2) * 0.02 ** 2, np.eye(2) * 0.08 ** 2, veto_d2=14.0)
    heights = np.column_stack([np.linspace(1.25, 1.55, 13), np.linspace(0.80, 1.00, 13)])  # 13 people, 2.5 cm apart
    tracks = {person: heights[person] + 0.005 for person in per_window}
    bodies = calibration.VisitBodies(body, tracks, heights[:customers])
    sim = calibration.simulate_visits(per_window, customers, PolicyConfig(), WEAK, bodies=bodies)
    assert (sim.identified_correctly, sim.identified_wrongly, sim.strangers_identified) == (8, 0, 0)
    # Customer 8 and stranger 10 stand far from the bodies of those they walk like: never put to them.
    assert (sim.probable_wrong, sim.strangers_probable) == (0, 0)
