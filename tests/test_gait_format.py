"""The walk format, normalisation and gait-cycle segmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings as hsettings, strategies as st

from gait.features import describe, heel_strikes, quality
from gait.normalize import normalise
from gait.synth.camera import Camera, observe, walker_to_world
from gait.synth.walker import sample_person, simulate
from gait.walk import Walk, WalkFormatError, load_npz, save_npz


def side_view_walk(seconds: float = 4.0, fps: float = 30.0, seed: int = 0, cadence: float | None = None) -> Walk:
    rng = np.random.default_rng(seed)
    person = sample_person(rng)
    if cadence is not None:
        from dataclasses import replace
        person = replace(person, cadence=cadence)
    joints = simulate(person, seconds, fps, rng, start_phase=0.1)
    camera = Camera(np.array([6.0, 1.2, 2.0]), np.array([0.0, 1.0, 2.0]), 900.0, 1280, 720)
    return Walk(observe(walker_to_world(joints, 0.0, np.zeros(3)), camera, rng, noise=0.2, mirror=False), fps)


def test_npz_round_trip(tmp_path: Path) -> None:
    walks = {"a": side_view_walk(seed=1), "b": side_view_walk(seed=2)}
    save_npz(tmp_path / "w.npz", walks)
    sequences, fps = load_npz(tmp_path / "w.npz")
    assert fps == 30.0 and set(sequences) == {"a", "b"}
    np.testing.assert_array_equal(sequences["a"], walks["a"].keypoints)


@pytest.mark.parametrize("content", [{"seq_a": np.zeros((5, 17, 3))}, {"fps": np.float32(30)},
                                     {"fps": np.array([30, 25]), "seq_a": np.zeros((5, 17, 3))}])
def test_unusable_files_are_refused(tmp_path: Path, content: dict) -> None:
    np.savez(tmp_path / "bad.npz", **content)
    with pytest.raises(WalkFormatError):
        load_npz(tmp_path / "bad.npz")


def test_bad_walk_shapes_are_refused() -> None:
    with pytest.raises(WalkFormatError, match="17 or 23"):
        Walk(np.zeros((10, 12, 3), dtype=np.float32), 30.0)
    with pytest.raises(WalkFormatError, match="fps"):
        Walk(np.zeros((10, 17, 3), dtype=np.float32), 0.0)


def test_normalisation_ignores_position_and_distance() -> None:
    walk = side_view_walk()
    moved = walk.keypoints.copy()
    moved[..., :2] = moved[..., :2] * 0.4 + np.array([300.0, -50.0])  # farther away, elsewhere
    a, b = normalise(walk), normalise(Walk(moved, walk.fps))
    np.testing.assert_allclose(a.coords, b.coords, atol=1e-3)


def test_varying_fps_gives_the_same_signal() -> None:
    at30 = normalise(side_view_walk(fps=30.0, seed=3))
    at15 = normalise(side_view_walk(fps=15.0, seed=3))
    assert abs(at30.frames - at15.frames) <= 2  # both resampled to 30 fps over the same time
    assert at15.fps == 30.0


def test_missing_keypoints_are_filled_not_fatal() -> None:
    walk = side_view_walk()
    holes = walk.keypoints.copy()
    holes[10:20, 13:17, :] = 0.0  # legs hidden for a third of a second
    n = normalise(Walk(holes, walk.fps))
    assert np.isfinite(n.coords).all()
    assert np.abs(n.coords[10:20, 15] - normalise(walk).coords[10:20, 15]).max() < 0.3


@hsettings(max_examples=25, deadline=None)
@given(cadence=st.floats(90, 130), seconds=st.floats(3.0, 6.0))
@example(cadence=96.375, seconds=3.0)  # a strike misplaced at the walk's end: read 84.7 before
@example(cadence=107.625, seconds=3.65)  # a spurious 24-frame gap folded four real ones: read 158.2 before
@example(cadence=93.375, seconds=3.5)  # one foot lingers; the signal never repeats in range: read 109.1 before
@example(cadence=96.125, seconds=3.25)  # plateaued peaks, two short gaps that agree: read 110.8 before
@example(cadence=106.5, seconds=3.25)  # one gap, holding two cycles: read 52.9 before
def test_heel_strikes_recover_the_cadence(cadence: float, seconds: float) -> None:
    walk = side_view_walk(seconds=seconds, cadence=cadence, seed=int(cadence * 10))
    features = describe(walk)
    cycles = heel_strikes(normalise(walk))
    assert cycles.cycles >= 1
    assert features["cadence_spm"] == pytest.approx(cadence, rel=0.12)


def test_quality_falls_with_occlusion_and_length() -> None:
    walk = side_view_walk()
    good = quality(walk)
    hidden = walk.keypoints.copy()
    hidden[:, 11:17, 2] = 0.0
    short = Walk(walk.keypoints[:20], walk.fps)
    assert good > 0.6
    assert quality(Walk(hidden, walk.fps)) < good * 0.8
    assert quality(short) < good * 0.6
