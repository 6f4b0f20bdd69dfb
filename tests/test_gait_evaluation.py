"""The evaluation metrics on trials whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from gait.evaluation import Trial, bootstrap, eer, fnmr_at_fmr, rates, score_histograms, summarise


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered_trial(people: int, strangers: int, spread: float, seed: int = 0) -> Trial:
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(people + strangers, 32)))
    gallery = unit(centres[:people] + spread * rng.normal(size=(people, 32)))
    probes = unit(centres + spread * rng.normal(size=(people + strangers, 32)))
    return Trial(gallery, np.arange(people), probes, np.arange(people + strangers))


def test_perfectly_separable_people() -> None:
    result = summarise(clustered_trial(200, 400, spread=0.01))  # 400 strangers support FPIR 1e-2
    assert result["rank1"] == 1.0 and result["rank5"] == 1.0
    assert result["eer"] < 0.01
    assert result["fnir_at_fpir_0.01"] == pytest.approx(0.0, abs=0.01)


def test_indistinguishable_people_are_at_chance() -> None:
    result = summarise(clustered_trial(300, 300, spread=100.0, seed=1))
    assert result["rank1"] < 0.03
    assert 0.4 < result["eer"] < 0.6


def test_rates_the_comparisons_cannot_support_are_not_reported() -> None:
    trial = clustered_trial(20, 0, spread=0.3)
    result = summarise(trial)  # 20 x 19 = 380 impostor comparisons
    assert result["fnmr_at_fmr_0.01"] is not None
    assert result["fnmr_at_fmr_0.001"] is None and result["fnmr_at_fmr_0.0001"] is None
    assert result["fnir_at_fpir_0.01"] is None  # no strangers at all


def test_eer_of_known_score_distributions() -> None:
    genuine = np.histogram(np.full(1000, 0.5), np.linspace(-1, 1, 4001))[0].astype(float)
    impostor = np.histogram(np.full(1000, -0.5), np.linspace(-1, 1, 4001))[0].astype(float)
    fnmr, fmr = rates(genuine, impostor)
    assert eer(fnmr, fmr) == 0.0
    assert fnmr_at_fmr(fnmr, fmr, 1e-2, impostors=1000) == 0.0


def test_bootstrap_interval_contains_the_estimate() -> None:
    trial = clustered_trial(100, 0, spread=0.6, seed=3)
    point = summarise(trial)
    low, high = bootstrap(trial, rounds=200)["rank1"]
    assert low <= point["rank1"] <= high
    assert high - low < 0.3
    genuine, impostor, n_gen, n_imp = score_histograms(trial)
    assert n_gen == 100 and n_imp == 100 * 99


def test_the_template_transform_costs_no_accuracy() -> None:
    """`gaitpay eval` reports a protected trial beside the plain one; an orthogonal transform
    keeps every score, so every figure is the same."""
    from gait.eval_suite import protected

    rng = np.random.default_rng(3)
    people_vectors = rng.standard_normal((60, 128))
    noisy = lambda: people_vectors + 0.8 * rng.standard_normal(people_vectors.shape)  # noqa: E731
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    ids = np.arange(60)
    trial = Trial(unit(noisy()[:40]), ids[:40], unit(noisy()), ids)
    plain, safe = summarise(trial), summarise(protected(trial))
    assert plain["eer"] == pytest.approx(safe["eer"], abs=1e-6) and plain["rank1"] == safe["rank1"]
    assert not np.allclose(protected(trial).gallery, trial.gallery)  # it did transform
