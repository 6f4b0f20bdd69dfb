"""Body measures from a calibrated camera (gait.body), the body model, and their place in
the evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gait.body import BodyModel, CameraModel, fused_scores, measure
from gait.datasets import ucalgary
from gait.evaluation import Fusion, Trial, summarise
from gait.synth.camera import Camera, observe_mirrored, random_view, walker_to_world
from gait.synth.dataset import people, render_seen
from gait.synth.walker import sample_person, simulate
from gait.walk import J, Walk


def _walker_seen_by(camera: Camera, rng: np.random.Generator, noise: float = 0.0, mirror: bool = False,
                    heading: float = np.pi, start: np.ndarray | None = None) -> tuple[Walk, np.ndarray]:
    """A walker towards an entrance camera at the origin; its keypoints and true heights."""
    person = sample_person(rng)
    joints = simulate(person, 4.0, 30.0, rng)
    world = walker_to_world(joints, heading, np.array([0.0, 0.0, 7.5]) if start is None else start)
    keypoints, _ = observe_mirrored(world, camera, rng, noise=noise, mirror=mirror)
    truth = np.array([np.median(world[:, [J["left_shoulder"], J["right_shoulder"]], 1].mean(1)),
                      np.median(world[:, [J["left_hip"], J["right_hip"]], 1].mean(1))])
    return Walk(keypoints, 30.0), truth


def _model(camera: Camera, mirrored: bool = False) -> CameraModel:
    return CameraModel.look_at(camera.position, camera.target, camera.focal_px, camera.width, camera.height, mirrored)


ENTRANCE = Camera(np.array([0.0, 2.4, 0.0]), np.array([0.0, 0.8, 4.0]), 900.0, 1280, 720)


def test_the_camera_model_projects_as_the_synthetic_camera_does_and_its_rays_come_back() -> None:
    points = np.random.default_rng(0).uniform([-2, 0, 2], [2, 2, 8], (50, 3))
    model = _model(ENTRANCE)
    assert np.allclose(model.project(points), ENTRANCE.project(points)[0], atol=1e-6)
    rays = model.rays(model.project(points))
    expected = points - model.centre
    assert np.allclose(rays, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-9)
    mirrored = _model(ENTRANCE, mirrored=True)
    assert np.allclose(mirrored.project(points)[:, 0], ENTRANCE.width - model.project(points)[:, 0])


@pytest.mark.parametrize("mirror", [False, True])
def test_heights_come_back_within_centimetres_from_clean_keypoints(mirror: bool) -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        walk, truth = _walker_seen_by(ENTRANCE, rng, mirror=mirror)
        measured = measure(walk, _model(ENTRANCE, mirrored=mirror))
        assert measured is not None and measured.frames >= 60
        assert np.abs(measured.values - truth).max() < 0.05, (measured.values, truth)


def test_heights_come_back_within_centimetres_through_a_noisy_estimator() -> None:
    rng = np.random.default_rng(2)
    walk, truth = _walker_seen_by(ENTRANCE, rng, noise=1.0)
    measured = measure(walk, _model(ENTRANCE))
    assert measured is not None
    assert np.abs(measured.values - truth).max() < 0.08


def test_a_camera_that_sees_the_floor_too_flatly_measures_nothing() -> None:
    low = Camera(np.array([0.0, 0.3, 0.0]), np.array([0.0, 0.6, 4.0]), 600.0, 640, 480)
    walk, _ = _walker_seen_by(low, np.random.default_rng(3))
    assert measure(walk, _model(low)) is None


def test_a_walk_without_ankles_measures_nothing() -> None:
    walk, _ = _walker_seen_by(ENTRANCE, np.random.default_rng(4))
    keypoints = walk.keypoints.copy()
    keypoints[:, [J["left_ankle"], J["right_ankle"]], 2] = 0.0
    assert measure(Walk(keypoints, 30.0), _model(ENTRANCE)) is None


def test_render_seen_gives_the_walk_render_walk_gives_and_its_camera() -> None:
    from gait.synth.dataset import render_walk

    person = people(1, 5)[0]
    seen = render_seen(person, np.random.default_rng(9))
    assert np.array_equal(seen.walk.keypoints, render_walk(person, np.random.default_rng(9)).keypoints)
    _, _, _ = random_view(np.random.default_rng(0), 4.0)  # the camera kinds render_seen draws from
    assert seen.camera.width > 0


def _fitted_model(rng: np.random.Generator) -> tuple[BodyModel, np.ndarray, np.ndarray]:
    means = rng.normal([1.40, 0.90], [0.08, 0.05], (200, 2))
    ids = np.repeat(np.arange(200), 4)
    measures = means[ids] + rng.normal(0, 0.02, (800, 2))
    return BodyModel.fit(measures, ids), measures, ids


def test_the_body_model_favours_one_person_and_round_trips() -> None:
    model, measures, ids = _fitted_model(np.random.default_rng(6))
    assert np.allclose(np.sqrt(np.diag(model.within)), 0.02, atol=0.003)
    first, second = np.arange(0, 800, 4), np.arange(1, 800, 4)
    same = model.llr(measures[first], measures[second])
    other = model.llr(measures[first], measures[np.roll(second, 1)])
    assert np.median(same) > 0 and np.median(same) > np.median(other) + 2
    assert 8 < model.veto_d2 < 20  # chi-square(2) 0.999 quantile is 13.8
    again = BodyModel.from_dict(model.to_dict())
    assert np.allclose(again.llr(measures[0], measures[5]), model.llr(measures[0], measures[5]), atol=1e-3)
    with pytest.raises(ValueError, match="measures"):
        BodyModel.from_dict({**model.to_dict(), "measures": ["stature"]})


def test_fused_scores_keep_the_embedding_where_a_side_has_no_measures() -> None:
    model, measures, _ = _fitted_model(np.random.default_rng(7))
    cosines = np.array([[0.6, 0.6]])
    embedding = (0.14, 0.18, 0.52, 0.16)
    plain = fused_scores(cosines, np.full((1, 2), np.nan), measures[[0, 4]], model, embedding)
    assert plain[0, 0] == pytest.approx(plain[0, 1])
    fused = fused_scores(cosines, measures[[1]], measures[[0, 4]], model, embedding)
    # The same cosine against its own walker's body and another's: the body decides.
    assert fused[0, 0] > plain[0, 0] > fused[0, 1]


def test_a_trial_with_body_measures_separates_people_the_embedding_alone_cannot() -> None:
    rng = np.random.default_rng(8)
    model, measures, ids = _fitted_model(rng)
    first, second = np.arange(0, 400, 4), np.arange(1, 400, 4)  # 100 people, two walks each
    vectors = rng.normal(size=(100, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    noisy = vectors + rng.normal(0, 0.35, vectors.shape)  # an embedding that confuses many
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    trial = Trial(vectors, ids[first], noisy, ids[second], measures[first], measures[second])
    alone, fused = summarise(trial), summarise(trial.with_fusion(Fusion(model, (0.0, 0.25, 0.7, 0.15))))
    assert fused["rank1"] > alone["rank1"] + 0.05
    assert fused["eer"] < alone["eer"]


def test_the_real_sets_camera_is_calibrated_from_the_floor_its_walkers_trace(tmp_path: Path) -> None:
    from tests.test_ucalgary_loader import _write

    for subject, run in ((4, 1), (4, 2), (7, 1)):
        _write(tmp_path, subject, run, "N", seed=subject * 10 + run)
    camera = ucalgary.installation_camera(tmp_path)
    # The test walkers' ankles are 0.7 m below the camera (Kinect y = -0.7), on a level floor.
    assert camera.centre[1] == pytest.approx(0.7 + 0.07, abs=0.02)
    assert np.allclose(camera.R @ np.array([0.0, 1.0, 0.0]), [0.0, -1.0, 0.0], atol=0.02)
    walks = ucalgary.load(tmp_path)
    measured = measure(walks[0].walk, camera)
    assert measured is not None
    # Test skeleton: shoulders 0.65 m and hips 0.15 m above the camera.
    assert np.allclose(measured.values, [0.65 + 0.77, 0.15 + 0.77], atol=0.04)


def test_the_evaluation_scores_each_trial_with_and_without_body_measures(tmp_path: Path) -> None:
    from gait import eval_suite
    from gait.body import load_body_model
    from gait.embedder import Embedder
    from tests.test_ucalgary_loader import _write

    for subject in (4, 7, 9):
        for run, condition in ((1, "N"), (2, "N"), (3, "AR")):
            _write(tmp_path / "real", subject, run, condition, seed=subject * 10 + run)
    model = load_body_model()
    assert model is not None  # shipped beside the gait model
    fusion = Fusion(model, (0.1443, 0.1773, 0.5235, 0.160))
    result = eval_suite.run(Embedder(), [30], tmp_path / "real", tmp_path / "out", fusion=fusion)
    assert {"synthetic 30", "synthetic 30, with body measures", "real normal walk 1 -> walk 2",
            "real normal walk 1 -> walk 2, with body measures"} <= set(result.rows)
    assert "synthetic 30, protected, with body measures" not in result.rows  # the index holds no measures
    for name, row in result.rows.items():
        assert 0.0 <= float(row["eer"]) <= 1.0 and 0.0 <= float(row["rank1"]) <= 1.0, name


def test_the_chance_an_impostors_body_is_this_close_matches_a_simulation() -> None:
    model, _, _ = _fitted_model(np.random.default_rng(10))
    rng = np.random.default_rng(11)
    others = rng.multivariate_normal([0.0, 0.0], model.population, 200_000)
    d2 = np.einsum("ni,ij,nj->n", others, np.linalg.inv(2 * model.within), others)
    for bound in (0.05, 0.5, 2.0, 10.0):
        assert model.p_impostor(bound) == pytest.approx((d2 <= bound).mean(), abs=0.004, rel=0.05)
    assert model.p_impostor(0.0) == 0.0 and model.p_impostor(1e9) == pytest.approx(1.0)


@pytest.mark.parametrize("flipped_plan", [False, True])
def test_a_floor_calibration_gives_back_the_camera_and_its_measures(flipped_plan: bool) -> None:
    # Four taped points, as an installer enters them (normalised image, floor plan metres;
    # a plan may run its y axis either way): the camera they imply measures as the true one.
    from edge.domain.floor import FloorCalibration

    overhead = Camera(np.array([0.6, 3.0, -1.0]), np.array([0.0, 0.0, 4.0]), 1000.0, 1280, 720)
    truth = _model(overhead)
    tape = np.array([[-1.0, 0.0, 3.0], [1.5, 0.0, 3.0], [1.5, 0.0, 6.0], [-1.0, 0.0, 6.0]])
    image = truth.project(tape) / [overhead.width, overhead.height]
    plan = tape[:, [0, 2]] * ([1.0, -1.0] if flipped_plan else [1.0, 1.0])
    calibration = FloorCalibration(tuple(map(tuple, image)), tuple(map(tuple, plan)))
    camera = calibration.camera(overhead.width, overhead.height)
    assert camera.K[0, 0] == pytest.approx(1000.0, rel=1e-4)
    assert camera.centre[1] == pytest.approx(3.0, abs=1e-3)
    rng = np.random.default_rng(21)
    for _ in range(3):
        walk, _ = _walker_seen_by(overhead, rng, noise=1.0, heading=0.0, start=np.array([0.0, 0.0, 2.5]))
        exact, implied = measure(walk, truth), measure(walk, camera)
        assert exact is not None and implied is not None
        assert np.abs(exact.values - implied.values).max() < 1e-3


def test_a_floor_seen_straight_on_holds_no_focal_length() -> None:
    from gait.body import camera_from_floor

    with pytest.raises(ValueError, match="focal length"):
        camera_from_floor(np.diag([4.0, 3.0, 1.0]), 1280, 720)  # an affine map: no perspective at all


def test_weighing_candidates_at_once_is_weighing_each_and_skips_the_unmeasured() -> None:
    from gait.body import load_body_model

    model = load_body_model()
    assert model is not None
    track = np.array([1.45, 0.95])
    candidates = np.array([[1.46, 0.96], [1.30, 0.98], [np.nan, np.nan], [1.50, 0.99]])
    vetoed, chance = model.weigh(track, candidates)
    assert vetoed.tolist() == [False, True, False, False]
    assert np.isnan(chance[[1, 2]]).all()
    for i in (0, 3):  # read from a table: never below the exact chance, at most 0.6% above
        exact = float(model.p_impostor(model.d2(track, candidates[i])))
        assert exact <= chance[i] <= exact * 1.006
    assert 0 < chance[0] < chance[3] < 1  # the closer body is the rarer match
