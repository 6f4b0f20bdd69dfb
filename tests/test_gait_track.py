"""One body per walk: a tracker's swap to a bystander is cut out of the walk before it is
embedded (gait.track), and walks of one person are never cut."""

from __future__ import annotations

import numpy as np
import pytest

from gait.embedder import Embedder
from gait.synth.dataset import people, render_walk, walks_of
from gait.track import bodies, foreign_frames, single_body
from gait.walk import Walk


def entrance_walk(seed: int) -> Walk:
    """A synthetic walker coming towards an entrance camera, seen for 4 s at 30 fps."""
    from dataclasses import replace

    from gait.synth.dataset import SynthConfig
    cfg = replace(SynthConfig(), seconds=(4.0, 4.0), fps_choices=(30.0,), entrance_probability=1.0,
                  limp_probability=0.0, carry_probability=0.0, speed_change_probability=0.0, noise=0.5)
    rng = np.random.default_rng(seed)
    return render_walk(people(1, seed)[0], rng, cfg)


def with_bystander(walk: Walk, frames: slice, seed: int) -> Walk:
    """The walk with `frames` showing someone else, standing a body width or more to the side."""
    other = entrance_walk(seed + 1000).keypoints
    keypoints = walk.keypoints.copy()
    span = range(*frames.indices(walk.frames))
    standing = other[len(other) // 2].copy()  # one pose, held: a bystander waiting by the door
    body = np.ptp(walk.keypoints[span.start, 5:17, 1])
    standing[:, 0] += 1.5 * body
    keypoints[frames] = standing
    return Walk(keypoints, walk.fps)


@pytest.mark.parametrize("where", ["start", "end"])
def test_a_swap_at_either_end_is_cut_off(where: str) -> None:
    walk = entrance_walk(1)
    frames = slice(0, 12) if where == "start" else slice(walk.frames - 20, None)
    swapped = with_bystander(walk, frames, seed=1)

    labels = bodies(swapped)
    kept = single_body(swapped)

    assert len(set(labels.tolist())) == 2
    assert foreign_frames(swapped) == ("frames 0-11 of 120 show another body" if where == "start"
                                       else "frames 100-119 of 120 show another body")
    assert foreign_frames(walk) is None
    expected = walk.keypoints[12:] if where == "start" else walk.keypoints[:walk.frames - 20]
    np.testing.assert_array_equal(kept.keypoints, expected)


def test_a_swap_in_the_middle_becomes_missing_frames_and_the_walk_embeds_as_if_clean() -> None:
    embedder = Embedder(None)
    walk = entrance_walk(2)
    swapped = with_bystander(walk, slice(50, 62), seed=2)

    kept = single_body(swapped)

    assert kept.frames == walk.frames  # the walker is back after the swap: one walk, a gap in it
    assert (kept.keypoints[50:62] == 0).all() and (kept.keypoints[:50] == walk.keypoints[:50]).all()
    clean = embedder.embed(walk).vector
    # The embedder cuts by itself; fed both bodies, the model would read a walk nobody walked.
    assert float(clean @ embedder.embed(swapped).vector) > 0.9
    both_bodies = embedder.run(_encode_without_cut(swapped)[None])[0]
    assert float(clean @ embedder.embed(swapped).vector) > float(clean @ both_bodies)


def _encode_without_cut(walk: Walk) -> np.ndarray:
    from gait.encoding import encode_normalised
    from gait.normalize import normalise
    return encode_normalised(normalise(walk))


def test_walks_of_one_person_are_not_cut_at_any_frame_rate() -> None:
    walks, _ = walks_of(people(150, 31), 2, seed=32)  # the training mix: every camera kind, limps, noise
    cut = [i for i, w in enumerate(walks) if bodies(w).any()]
    # Measured 4 in 2,000 of the mix: walkers passing under an overhead camera, whose joints
    # project from behind it to absurd pixels (those frames are worth dropping too).
    assert len(cut) <= 3, cut
    at_10_fps = [Walk(w.keypoints[::3], w.fps / 3) for w in walks if w.fps == 30.0]
    assert sum(bool(bodies(w).any()) for w in at_10_fps) <= 3


def test_the_embed_command_says_which_frames_it_left_out(tmp_path) -> None:
    import subprocess
    import sys
    walk = with_bystander(entrance_walk(3), slice(0, 8), seed=3)
    np.savez(tmp_path / "in.npz", fps=np.float32(30), seq_door=walk.keypoints[:, :17],
             seq_clean=entrance_walk(4).keypoints[:, :17])
    command = [sys.executable, "-m", "gaitpay_cli", "embed", str(tmp_path / "in.npz"), str(tmp_path / "out.npz")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "walk door: frames 0-7 of 120 show another body (a tracker swap), embedded without them" in result.stderr
    assert "walk clean" not in result.stderr
    assert set(np.load(tmp_path / "out.npz").files) == {"emb_door", "quality_door", "emb_clean", "quality_clean"}
