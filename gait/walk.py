"""The one format of a walk, in memory and on disk.

In memory: `Walk.keypoints` is float32 [T, J, 3] = (x, y, confidence) per frame and joint,
in image pixels (origin top-left, y down); J = 17 (COCO order below) or 23 (COCO + the
six BlazePose foot points: left heel, right heel, left foot index, right foot index, left
small toe, right small toe). Confidence 0 marks a missing keypoint; dropped frames,
varying fps and any length are normal input, not errors.

On disk (`gaitpay embed` input): an .npz with one array per walk named `seq_<id>` (or `track_<id>`)
(float32 [T, 17 or 23, 3]) and a scalar array `fps` (shared by the walks in the file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
FEET6 = ("left_heel", "right_heel", "left_foot_index", "right_foot_index", "left_small_toe", "right_small_toe")
J = {name: i for i, name in enumerate(COCO17 + FEET6)}
LEFT_RIGHT_PAIRS = [(J[f"left_{p}"], J[f"right_{p}"]) for p in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")]
# Bones used for body size and proportions (parent, child).
BONES = [
    (J["left_shoulder"], J["left_elbow"]), (J["left_elbow"], J["left_wrist"]),
    (J["right_shoulder"], J["right_elbow"]), (J["right_elbow"], J["right_wrist"]),
    (J["left_hip"], J["left_knee"]), (J["left_knee"], J["left_ankle"]),
    (J["right_hip"], J["right_knee"]), (J["right_knee"], J["right_ankle"]),
    (J["left_shoulder"], J["right_shoulder"]), (J["left_hip"], J["right_hip"]),
    (J["left_shoulder"], J["left_hip"]), (J["right_shoulder"], J["right_hip"]),
]

_NAME = re.compile(r"^(?:seq|track)_(.+)$")  # track_<id>: what `gaitpay edge extract` writes


class WalkFormatError(ValueError):
    """A walk or a walk file that breaks the format; the message says how."""


@dataclass(frozen=True)
class Walk:
    keypoints: np.ndarray  # float32 [T, J, 3]
    fps: float

    def __post_init__(self) -> None:
        kp = self.keypoints
        if not isinstance(kp, np.ndarray) or kp.ndim != 3 or kp.shape[2] != 3 or kp.shape[1] not in (17, 23):
            shape = getattr(kp, "shape", None)
            raise WalkFormatError(f"keypoints must be [frames, 17 or 23, 3], got {shape}")
        if not np.isfinite(self.fps) or not 1 <= self.fps <= 240:
            raise WalkFormatError(f"fps must be within [1, 240], got {self.fps}")

    @property
    def frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    @property
    def coco(self) -> np.ndarray:
        """The COCO-17 part, float32 [T, 17, 3]."""
        return self.keypoints[:, :17]


def load_npz(path: Path) -> tuple[dict[str, np.ndarray], float]:
    """Arrays named seq_<id> and the file's fps. Raises WalkFormatError for an unusable file."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise WalkFormatError(f"{path}: not a readable .npz ({exc})") from None
    with data:
        if "fps" not in data.files:
            raise WalkFormatError(f"{path}: no `fps` array")
        fps_arr = np.asarray(data["fps"])
        if fps_arr.size != 1:
            raise WalkFormatError(f"{path}: `fps` must be a scalar")
        fps = float(fps_arr.reshape(()))
        sequences = {m.group(1): np.asarray(data[name]) for name in data.files if (m := _NAME.match(name))}
    if not sequences:
        raise WalkFormatError(f"{path}: no arrays named seq_<id>")
    return sequences, fps


def save_npz(path: Path, walks: dict[str, Walk]) -> None:
    fps = {w.fps for w in walks.values()}
    if len(fps) > 1:
        raise WalkFormatError("walks in one file must share one fps")
    arrays = {f"seq_{k}": w.keypoints.astype(np.float32) for k, w in walks.items()}
    np.savez_compressed(path, fps=np.float32(fps.pop() if fps else 30.0), **arrays)


def iter_walks(sequences: dict[str, np.ndarray], fps: float) -> Iterator[tuple[str, Walk | WalkFormatError]]:
    for key, array in sequences.items():
        try:
            yield key, Walk(np.asarray(array, dtype=np.float32), fps)
        except WalkFormatError as exc:
            yield key, exc
