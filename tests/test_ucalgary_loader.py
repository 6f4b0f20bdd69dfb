"""The real-walker loader (evaluation only): CSV parsing, projection, and one recording
counted once however many subject folders hold a copy of it."""

import re
from pathlib import Path

import numpy as np

from gait import eval_suite
from gait.datasets import ucalgary
from gait.walk import J

HEADER = "Foot Left X, Y, Z, " + ", ".join(f"j{i} X, Y, Z" for i in range(17)) + "\n"
# A standing body in Kinect camera space (x, y, metres), camera about 0.8 m above the floor, in
# ucalgary.KINECT order: FootL AnkleL KneeL HipL FootR AnkleR KneeR HipR SpineBase SpineMid
# Neck Head ShoulderL ShoulderR WristL WristR ElbowL ElbowR.
BODY = np.array([(-0.1, -0.75), (-0.1, -0.7), (-0.1, -0.25), (-0.1, 0.15), (0.1, -0.75), (0.1, -0.7), (0.1, -0.25),
                 (0.1, 0.15), (0.0, 0.15), (0.0, 0.45), (0.0, 0.7), (0.0, 0.85), (-0.2, 0.65), (0.2, 0.65),
                 (-0.25, 0.1), (0.25, 0.1), (-0.22, 0.38), (0.22, 0.38)])


def _skeletons(frames: int, rng: np.random.Generator, walker: bool = True) -> np.ndarray:
    """[frames, 18, 3]: a walker coming from 4.5 m to 1.5 m on the camera's axis, or a
    bystander standing 1.8 m to the side at 4.4 m; a centimetre or two of tracker jitter."""
    joints = np.zeros((frames, 18, 3))
    joints[..., :2] = BODY
    if walker:
        joints[..., 2] = np.linspace(4.5, 1.5, frames)[:, None]
    else:
        joints[..., 0] += 1.8
        joints[..., 2] = 4.4
    return joints + rng.normal(0, 0.015, joints.shape)


def _write(root: Path, subject: int, run: int, condition: str, seed: int, frames: int = 40,
           bystander_frames: int = 0) -> Path:
    """A recording as the Kinect writes it; its first `bystander_frames` show a bystander."""
    rng = np.random.default_rng(seed)
    joints = _skeletons(frames, rng)
    joints[:bystander_frames] = _skeletons(frames, rng, walker=False)[:bystander_frames]
    lines = [",".join(f"{v:.5f}" for v in frame.ravel()) + "," for frame in joints]
    lines[3] = lines[3].replace(lines[3].split(",")[5], "NaN", 1)  # a dropped row, as the Kinect writes it
    folder = root / f"sub{subject}" / f"Run{run}"
    folder.mkdir(parents=True)
    path = folder / f"subject{subject}_Seq_{run}_Gen_M_GeometricPositions_{condition}.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def test_a_recording_copied_under_another_subject_is_counted_once_and_named(tmp_path):
    _write(tmp_path, 4, 1, "N", seed=1)
    _write(tmp_path, 4, 2, "N", seed=2)
    _write(tmp_path, 7, 1, "N", seed=3)
    for run in (1, 2):  # sub10 holds exact copies of sub4's walks
        target = tmp_path / "sub10" / f"Run{run}"
        target.mkdir(parents=True)
        source = next((tmp_path / "sub4" / f"Run{run}").glob("*.csv"))
        (target / source.name.replace("subject4_", "subject10_")).write_bytes(source.read_bytes())

    duplicates: list[ucalgary.Duplicate] = []
    walks = ucalgary.load(tmp_path, duplicates)

    assert [(w.subject, w.run) for w in walks] == [("sub4", 1), ("sub4", 2), ("sub7", 1)]
    assert [(d.dropped.parent.parent.name, d.same_as.parent.parent.name) for d in duplicates] == [("sub10", "sub4")] * 2
    assert eval_suite.duplicate_notes(duplicates) == ["sub10: 2 recordings byte-identical to sub4's, counted once"]


def test_rows_with_nan_are_dropped_and_joints_are_projected_to_coco_pixels(tmp_path):
    path = _write(tmp_path, 3, 1, "AR", seed=5)
    joints = ucalgary.read_csv(path)
    assert joints.shape == (39, 18, 3) and np.isfinite(joints).all()
    walk = ucalgary.load(tmp_path)[0]
    assert walk.condition == "abnormal_right" and walk.walk.fps == ucalgary.FPS
    head = joints[:, ucalgary.KINECT.index("Head")]
    np.testing.assert_allclose(walk.walk.keypoints[:, J["nose"], 0], ucalgary.CX + ucalgary.FOCAL * head[:, 0] / head[:, 2],
                               rtol=1e-5)
    np.testing.assert_allclose(walk.walk.keypoints[:, J["nose"], 1], ucalgary.CY - ucalgary.FOCAL * head[:, 1] / head[:, 2],
                               rtol=1e-5)
    assert (walk.walk.keypoints[:, J["left_eye"], 2] == 0).all()  # no eyes in a Kinect skeleton


def test_a_recording_of_a_bystander_is_skipped_and_named_and_a_short_swap_is_kept_for_the_embedder(tmp_path):
    _write(tmp_path, 7, 1, "N", seed=1, bystander_frames=40)  # the tracker never found the walker,
    _write(tmp_path, 7, 2, "N", seed=2, bystander_frames=32)  # found them for the last 8 frames,
    _write(tmp_path, 7, 3, "AR", seed=3, bystander_frames=6)  # lost the first 6 to a bystander

    not_walks: list[ucalgary.NotAWalk] = []
    walks = ucalgary.load(tmp_path, not_walks=not_walks)

    assert [(w.run, w.walk.frames) for w in walks] == [(3, 39)]  # whole: the embedder cuts the swap
    assert [n.label for n in not_walks] == ["sub7 run 1 (normal)", "sub7 run 2 (normal)"]
    assert all(abs(n.side_m - 1.8) < 0.05 and abs(n.approach_m) < 0.1 for n in not_walks)
    assert re.fullmatch(r"sub7 run 1 \(normal\): the skeleton follows someone 1\.8\d m to the side who "
                        r"(comes|moves) 0\.\d\d m (closer|away), not the walker; skipped",
                        eval_suite.not_walk_notes(not_walks)[0])
