"""The UCalgary Normal & Abnormal Gait Dataset (Kozlow, Abid, Yanushkevich, "Utilizing gait
traits to improve e-border watchlist performance", IEEE SSCI 2017).

Licence: research and scientific use only. We evaluate on it; no shipped model is ever
trained on it (gait/train.py reads synthetic walkers alone).

Kinect v2 skeletons of people walking towards the camera (a store entrance view), projected
to 2D with a pinhole camera and mapped to COCO-17 (Head stands in for the nose; eyes and
ears are missing, confidence 0).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gait.body import ANKLE_HEIGHT_M, CameraModel
from gait.track import main_body_frames
from gait.walk import J, Walk

KINECT = ("FootL", "AnkleL", "KneeL", "HipL", "FootR", "AnkleR", "KneeR", "HipR", "SpineBase", "SpineMid",
          "Neck", "Head", "ShoulderL", "ShoulderR", "WristL", "WristR", "ElbowL", "ElbowR")
TO_COCO = {
    "Head": "nose", "ShoulderL": "left_shoulder", "ShoulderR": "right_shoulder", "ElbowL": "left_elbow",
    "ElbowR": "right_elbow", "WristL": "left_wrist", "WristR": "right_wrist", "HipL": "left_hip",
    "HipR": "right_hip", "KneeL": "left_knee", "KneeR": "right_knee", "AnkleL": "left_ankle",
    "AnkleR": "right_ankle",
}
FOCAL, CX, CY = 365.0, 256.0, 212.0
FPS = 30.0
CONDITION = {"N": "normal", "AR": "abnormal_right", "AL": "abnormal_left"}
_FILE = re.compile(r"subject(\d+)_Seq_(\d+)_Gen_([MF])_GeometricPositions_(N|AR|AL)\.csv$")


@dataclass(frozen=True)
class RealWalk:
    subject: str
    run: int
    condition: str
    walk: Walk


def read_csv(path: Path) -> np.ndarray:
    """Camera-space joints, float64 [T, 18, 3], rows with NaN or untracked joints dropped."""
    rows = []
    for line in path.read_text().splitlines()[1:]:
        values = line.strip().rstrip(",").split(",")
        if len(values) < 54:
            continue
        try:
            numbers = [float(v) for v in values[:54]]
        except ValueError:
            continue
        rows.append(numbers)
    joints = np.asarray(rows, dtype=np.float64).reshape(-1, 18, 3)
    good = np.isfinite(joints).all(axis=(1, 2)) & (joints[..., 2] > 0).all(axis=1)
    return joints[good]


def project(joints: np.ndarray) -> np.ndarray:
    """Pinhole projection to COCO-17 pixels: float32 [T, 17, 3]."""
    out = np.zeros((joints.shape[0], 17, 3), dtype=np.float32)
    for kinect_name, coco_name in TO_COCO.items():
        x, y, z = joints[:, KINECT.index(kinect_name)].T
        out[:, J[coco_name], 0] = CX + FOCAL * x / z
        out[:, J[coco_name], 1] = CY - FOCAL * y / z
        out[:, J[coco_name], 2] = 1.0
    return out


@dataclass(frozen=True)
class NotAWalk:
    """A recording in which the tracked body does not walk towards the camera: the Kinect
    followed a bystander (standing about 1.8 m to the side in the development copy) for most
    of it, and the subject for a few frames or none."""
    path: Path
    approach_m: float  # how far the body the track mostly shows came towards the camera
    side_m: float  # that body's median sideways distance from the camera's axis (camera X)

    @property
    def label(self) -> str:
        m = _FILE.search(self.path.name)
        return f"sub{m.group(1)} run {m.group(2)} ({CONDITION[m.group(4)]})" if m else self.path.name


# A walk towards the camera from about 4.5 m covers at least this much, even a slow limp over
# the recording's 4 s (the slowest real walkers cover 1.2 m).
MIN_APPROACH_M = 1.0
_SPINE_BASE = KINECT.index("SpineBase")


def _not_a_walk(path: Path, joints: np.ndarray, walk: Walk) -> NotAWalk | None:
    frames = main_body_frames(walk)
    pelvis = joints[frames, _SPINE_BASE]
    approach = float(pelvis[0, 2] - pelvis[-1, 2])
    if approach >= MIN_APPROACH_M:
        return None
    return NotAWalk(path, approach, float(np.median(pelvis[:, 0])))


@dataclass(frozen=True)
class Duplicate:
    """A recording whose bytes equal one already loaded under another subject."""
    dropped: Path
    same_as: Path


def load(root: Path, duplicates: list[Duplicate] | None = None,
         not_walks: list[NotAWalk] | None = None) -> list[RealWalk]:
    """Every usable recording under root, in subject order. Skipped, and appended to the
    list given for them:
    - duplicates: a file byte-identical to one already loaded (the development copy holds
      sub10's six recordings as exact copies of sub4's; counting one walk as two people
      would turn genuine pairs into impostor pairs);
    - not_walks: a recording whose tracked body, once a tracker's swaps are cut out
      (gait.track), does not come MIN_APPROACH_M towards the camera: it is not the subject's
      walk, and counting it as theirs would score a bystander as a genuine attempt.
    Shorter swaps inside a real walk are left in the recording: the embedder cuts them, as
    it would for a store camera's tracker."""
    walks = []
    seen: dict[str, Path] = {}
    named = [(m, path) for path in root.glob("sub*/Run*/*.csv") if (m := _FILE.search(path.name))]
    for m, path in sorted(named, key=lambda mp: (int(mp[0].group(1)), int(mp[0].group(2)), mp[1].name)):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            if duplicates is not None:
                duplicates.append(Duplicate(path, seen[digest]))
            continue
        seen[digest] = path
        joints = read_csv(path)
        if joints.shape[0] < 10:
            continue
        walk = Walk(project(joints), FPS)
        if (bystander := _not_a_walk(path, joints, walk)) is not None:
            if not_walks is not None:
                not_walks.append(bystander)
            continue
        walks.append(RealWalk(f"sub{m.group(1)}", int(m.group(2)), CONDITION[m.group(4)], walk))
    return walks


def installation_camera(root: Path) -> CameraModel:
    """The recording camera as a store installer would have calibrated it: the pinhole above
    (the dataset's stated intrinsics) and its pose over the floor. The floor is the plane the
    walkers' lower ankles trace, fitted once over every recording under root (the camera
    never moved), and lies ANKLE_HEIGHT_M below it. This is camera geometry, the same for
    every walker; nothing of any person is fitted."""
    ankle_l, ankle_r = KINECT.index("AnkleL"), KINECT.index("AnkleR")
    lower = []
    for path in sorted(root.glob("sub*/Run*/*.csv")):
        joints = read_csv(path)
        if len(joints):
            pick = joints[:, ankle_l, 1] < joints[:, ankle_r, 1]
            lower.append(np.where(pick[:, None], joints[:, ankle_l], joints[:, ankle_r]))
    if not lower:
        raise ValueError(f"no recordings under {root} to calibrate the camera with")
    points = np.concatenate(lower)
    # Kinect camera space: X right, Y up, Z forward. Ankle plane: Y = a X + b Z + c.
    design = np.c_[points[:, 0], points[:, 2], np.ones(len(points))]
    (a, b, c), *_ = np.linalg.lstsq(design, points[:, 1], rcond=None)
    normal = np.array([-a, 1.0, -b])
    camera_height = -c / np.linalg.norm(normal) + ANKLE_HEIGHT_M
    # The same directions in OpenCV's camera frame (y down): the world's axes as columns.
    up = np.array([-a, -1.0, -b]) / np.linalg.norm(normal)
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
    forward /= np.linalg.norm(forward)
    rotation = np.stack([np.cross(up, forward), up, forward], axis=1)
    K = np.array([[FOCAL, 0.0, CX], [0.0, FOCAL, CY], [0.0, 0.0, 1.0]])
    return CameraModel(K, rotation, -rotation @ np.array([0.0, camera_height, 0.0]), 512, 424)


def default_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data" / "ucalgary-dev"
        if candidate.exists():
            return candidate
    return Path("../shared/data/ucalgary-dev")
