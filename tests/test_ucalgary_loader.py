"""The real-walker loader (evaluation only): CSV parsing, projection, and one recording
counted once however many subject folders hold a copy of it."""

from pathlib import Path

import numpy as np

from gait import eval_suite
from gait.datasets import ucalgary
from gait.walk import J

HEADER = "Foot Left X, Y, Z, " + ", ".join(f"j{i} X, Y, Z" for i in range(17)) + "\n"


def _write(root: Path, subject: int, run: int, condition: str, seed: int, frames: int = 40) -> Path:
    rng = np.random.default_rng(seed)
    joints = rng.uniform(-0.8, 0.8, (frames, 18, 3))
    joints[..., 2] = rng.uniform(1.5, 4.5, (frames, 18))
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
