"""Camera centring (gait.centring) and the evaluation rows and policy replay built on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gait.adaptation import CameraStatistics
from gait.centring import CameraCentre, CentreError, centred
from gait.evaluation import Trial, summarise


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _camera_walks(rng: np.random.Generator, people: int, offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two walks of each person, as one camera sees them: a direction every walk shares
    (weight `offset`), the person's own direction, and per-walk noise."""
    shared = _unit(rng.normal(size=128))
    own = _unit(rng.normal(size=(people, 128)))
    walks = [_unit(offset * shared + 0.45 * own + 0.3 * _unit(rng.normal(size=(people, 128)))) for _ in range(2)]
    return walks[0], walks[1], np.arange(people)


def test_a_direction_every_walk_shares_is_taken_away() -> None:
    first, second, ids = _camera_walks(np.random.default_rng(3), 200, offset=1.0)
    raw = Trial(first, ids, second, ids)
    centre = CameraCentre.of(np.concatenate([first, second]))
    assert centre.strength > 0.8 and centre.walks == 400
    fixed = Trial(centre.apply(first), ids, centre.apply(second), ids)
    impostor_raw = (second @ first.T)[~np.eye(200, dtype=bool)].mean()
    impostor_fixed = (fixed.probes @ fixed.gallery.T)[~np.eye(200, dtype=bool)].mean()
    assert impostor_raw > 0.6 and abs(impostor_fixed) < 0.05  # strangers no longer look alike
    assert np.allclose(np.linalg.norm(fixed.gallery, axis=1), 1.0, atol=1e-5)
    # Who is nearest whom is kept: the shared direction only lifted every score alike.
    assert summarise(fixed)["rank1"] == pytest.approx(summarise(raw)["rank1"], abs=0.02)


def test_centring_walks_that_share_nothing_changes_little() -> None:
    first, second, ids = _camera_walks(np.random.default_rng(4), 300, offset=0.0)
    centre = CameraCentre.of(np.concatenate([first, second]))
    assert centre.strength < 0.1
    plain = summarise(Trial(first, ids, second, ids))
    fixed = summarise(Trial(centre.apply(first), ids, centre.apply(second), ids))
    assert fixed["rank1"] == pytest.approx(plain["rank1"], abs=0.03)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(20, 60))
def test_a_walk_in_its_own_centre_is_centred_as_if_it_were_not(seed: int, n: int) -> None:
    # x - mean(all) is proportional to x - mean(others): the camera need not leave anyone out.
    walks = _unit(np.random.default_rng(seed).normal(size=(n, 16)) + 0.7)
    others = walks[1:].mean(axis=0)
    assert np.allclose(centred(walks[0], walks.mean(axis=0)), centred(walks[0], others), atol=1e-5)


def test_a_centre_from_too_few_walks_or_a_wrong_shape_is_refused() -> None:
    with pytest.raises(CentreError, match="at least 20 walks"):
        CameraCentre.of(np.ones((5, 128)))
    with pytest.raises(CentreError, match="embeddings \\[N, D\\]"):
        CameraCentre.of(np.ones(128))
    centre = CameraCentre.of(_unit(np.random.default_rng(5).normal(size=(30, 128))))
    with pytest.raises(CentreError, match="dimension 64"):
        centre.apply(np.ones((2, 64)))


def _real_set(root: Path, subjects: tuple[int, ...], frames: int = 90) -> None:
    from tests.test_ucalgary_loader import _write

    for subject in subjects:
        for run, condition in ((1, "N"), (2, "N"), (3, "AR")):
            _write(root, subject, run, condition, seed=subject * 10 + run, frames=frames)


def test_the_evaluation_adds_camera_centred_real_rows_and_replays_the_policy(tmp_path: Path) -> None:
    from gait import eval_suite
    from gait.datasets import ucalgary
    from gait.embedder import Embedder
    from matcher.domain.policy import ScoreModel

    _real_set(tmp_path / "real", (1, 2, 3, 4, 5, 6, 7, 8))  # 24 walks: enough for a centre, 8 a side
    embedder = Embedder()
    result = eval_suite.run(embedder, [], tmp_path / "real", tmp_path / "out", score_model=ScoreModel())
    centred_rows = {n for n in result.rows if n.endswith(", camera-centred")}
    assert centred_rows == {"real normal walk 1 -> walk 2, camera-centred", "real normal walk 2 -> walk 1, camera-centred",
                            "real normal -> abnormal gait, camera-centred"}
    adapted_rows = {n for n in result.rows if n.endswith(", camera-adapted")}
    assert adapted_rows == {n.replace("centred", "adapted") for n in centred_rows}
    walks = ucalgary.load(tmp_path / "real")
    # Each side with its own walks' statistics: the gallery of walk 1 -> walk 2 is exactly
    # the walk 1 projections normalised with their own mean and variance.
    assert {n for n in result.rows if n.endswith(", each side adapted")} == {
        n.replace("camera-centred", "each side adapted") for n in centred_rows}
    trials = eval_suite.real_trials(embedder, tmp_path / "real", walks=walks)
    firsts, _ = embedder.embed_many({str(i): w.walk for i, w in enumerate(walks) if w.run == 1}, projections=True)
    own = np.stack([firsts[k].projection for k in sorted(firsts, key=int)])
    np.testing.assert_allclose(trials["real normal walk 1 -> walk 2, each side adapted"].gallery,
                               embedder.head_norm.embed(own, CameraStatistics.of(own)), atol=1e-6)
    # Six kinds of evidence at three bounds; 8 genuine visits (walk 2), every recording a stranger once.
    kinds = ("embedding", "camera-centred", "camera-adapted", "camera's impostor model",
             "camera-centred, camera's impostor model", "camera-adapted, camera's impostor model")
    assert [(v.evidence, v.bound) for v in result.visits] == [(e, b) for e in kinds for b in (1e-4, 1e-3, 1e-2)]
    for v in result.visits:
        assert v.genuine_visits == 8 and v.stranger_visits == len(walks) == 24
        assert 0 <= v.identified + v.identified_wrongly <= v.genuine_visits
        assert 0 <= v.strangers_charged <= v.stranger_visits
    # A looser bound never charges fewer strangers nor identifies fewer visitors.
    for evidence in kinds:
        rows = [v for v in result.visits if v.evidence == evidence]
        assert [v.strangers_charged for v in rows] == sorted(v.strangers_charged for v in rows)
        assert [v.identified for v in rows] == sorted(v.identified for v in rows)


def test_a_real_set_with_sides_too_small_for_their_own_statistics_says_so(tmp_path: Path) -> None:
    from gait import eval_suite
    from gait.embedder import Embedder

    _real_set(tmp_path / "real", (1, 2, 3, 4, 5, 6, 7))  # 21 walks: a centre, but 7 a side
    result = eval_suite.run(Embedder(), [], tmp_path / "real", tmp_path / "out")
    assert any(n.endswith("camera-adapted") for n in result.rows)
    assert not any(n.endswith("each side adapted") for n in result.rows)
    assert any("fewer than 8 walks, too few for statistics of its own" in note for note in result.notes)


def test_a_real_set_too_small_for_a_centre_says_so(tmp_path: Path) -> None:
    from gait import eval_suite
    from gait.embedder import Embedder
    from matcher.domain.policy import ScoreModel

    _real_set(tmp_path / "real", (4, 7, 9))
    result = eval_suite.run(Embedder(), [], tmp_path / "real", tmp_path / "out", score_model=ScoreModel())
    assert not any(n.endswith(("camera-centred", "camera-adapted", "each side adapted")) for n in result.rows)
    assert result.visits == ()
    assert any("too few for a camera centre or statistics" in note for note in result.notes)


def _real_scoring_tool():  # type: ignore[no-untyped-def]
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "tools" / "real_scoring.py"
    spec = importlib.util.spec_from_file_location("real_scoring", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["real_scoring"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_real_scoring_tool_measures_eer_rank_and_cohort_scores_correctly() -> None:
    tool = _real_scoring_tool()
    same = np.eye(4, dtype=bool)
    assert tool.exact_eer(np.where(same, 0.9, 0.1), same) == 0.0
    # Genuine 0.5 0.6 0.7 0.8; impostors ten at 0.1, one at 0.55, one at 0.65. The rates come
    # closest at the threshold 0.55: FNMR 1/4 (0.5 falls below), FMR 2/12 (0.55 and 0.65 pass).
    scores = np.full((4, 4), 0.1)
    scores[same] = [0.5, 0.6, 0.7, 0.8]
    scores[0, 1], scores[1, 0] = 0.55, 0.65
    assert tool.exact_eer(scores, same) == pytest.approx((1 / 4 + 2 / 12) / 2)
    ids = np.arange(4)
    assert tool.rank1(scores, ids, ids) == 0.5  # probes 0 and 1 each prefer the other's template
    rng = np.random.default_rng(6)
    probes, cohort = _unit(rng.normal(size=(3, 16))), _unit(rng.normal(size=(40, 16)))
    owners, cohort_owners = np.array([0, 1, 2]), np.repeat(np.arange(10), 4)
    z = tool.cohort_z(probes @ cohort[:5].T, probes, owners, cohort, cohort_owners, axis=0)
    for i in range(3):  # each probe's scores in units of its own cohort (its owner's walks left out)
        against = cohort[cohort_owners != owners[i]] @ probes[i]
        assert np.allclose(z[i], (probes[i] @ cohort[:5].T - against.mean()) / against.std(), atol=1e-5)


def test_the_camera_s_impostor_model_is_measured_on_other_people_s_templates() -> None:
    from gait.datasets.ucalgary import RealWalk
    from gait.eval_suite import _camera_impostor_model
    from gait.walk import Walk
    from matcher.domain.policy import ScoreModel

    walk = Walk(np.zeros((60, 17, 3), dtype=np.float32), 30.0)
    walks = [RealWalk("a", 2, "normal", walk), RealWalk("b", 2, "normal", walk)]
    e = np.eye(4, dtype=np.float32)
    windows = {0: np.stack([e[0], e[0]]), 1: np.stack([e[1], (e[1] + e[2]) / np.sqrt(2)])}
    templates = {"a": e[0], "b": e[2]}
    model = _camera_impostor_model(windows, templates, walks, ScoreModel())
    # a's windows against b's template: 0, 0; b's against a's: 0, 0 (never a walker's own template).
    assert model.impostor_mean == 0.0 and model.impostor_std == 0.0
    templates = {"a": e[1], "b": e[0]}
    model = _camera_impostor_model(windows, templates, walks, ScoreModel())
    # a's windows against b's e0: 1, 1; b's against a's e1: 1, 0.7071.
    assert model.impostor_mean == pytest.approx((3 + np.sqrt(0.5)) / 4, abs=1e-6)
    assert (model.genuine_mean, model.window_correlation) == (ScoreModel().genuine_mean, ScoreModel().window_correlation)


def test_the_real_scoring_tool_renormalises_with_the_shipped_or_the_camera_s_statistics() -> None:
    from gait.embedder import Embedder
    from gait.synth.dataset import people, render_walk

    tool = _real_scoring_tool()
    embedder = Embedder()
    rng = np.random.default_rng(8)
    walks = [render_walk(p, rng) for p in people(6, 9)]
    statistics = tool.HeadStatistics(embedder)
    projected = statistics.project(walks)
    shipped, _ = embedder.embed_many({str(i): w for i, w in enumerate(walks)})
    onnx = np.stack([shipped[str(i)].vector for i in range(len(walks))])
    head = embedder.head_norm
    assert np.abs(statistics.embed(projected, head.shipped) - onnx).max() < 1e-5  # as shipped: the model itself
    # With a camera's own statistics, its walks no longer share the synthetic offset.
    offset = projected + 3.0 * np.sqrt(head.shipped.var)
    variants = statistics.variants(offset)
    assert np.array_equal(variants["the camera's mean"].var, head.shipped.var)
    strength = {name: np.linalg.norm(statistics.embed(offset, stats).mean(axis=0)) for name, stats in variants.items()}
    assert strength["the camera's mean and variance"] < 0.5 < strength["as shipped (synthetic statistics)"]
