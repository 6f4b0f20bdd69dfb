"""Keypoint windows as the domain sees them, and the checks that make one usable.

The contract's validation (protovalidate) guarantees shape; these checks judge content:
values a camera pipeline can produce. A failure names the first problem precisely."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COCO_JOINTS = 17
WITH_FEET_JOINTS = 23
# No camera frame is wider or taller than this; beyond it a coordinate is garbage.
MAX_ABS_COORDINATE_PX = 20_000.0


class MalformedWindow(ValueError):
    """A window that cannot be used; the message says why (never the values themselves)."""


@dataclass(frozen=True)
class TrackKey:
    store_id: str
    camera_id: str
    track_id: str


@dataclass(frozen=True)
class Window:
    track: TrackKey
    sequence: int
    # keypoints: float32 [T, J, 3] (x, y, confidence); or None when features are given
    keypoints: np.ndarray | None
    fps: float
    features: np.ndarray | None
    quality: float
    # The walker's body measures over the window [len(gait.body.MEASURES)] in metres, from a
    # calibrated camera; None when not measured.
    body: np.ndarray | None = None


def check_keypoints(xyc: np.ndarray) -> None:
    """Raise MalformedWindow if the keypoints can't come from a real pose pipeline."""
    if xyc.ndim != 3 or xyc.shape[2] != 3:
        raise MalformedWindow(f"keypoints must be [frames, joints, 3], got shape {list(xyc.shape)}")
    if xyc.shape[0] == 0:
        raise MalformedWindow("window is empty: no frames")
    if xyc.shape[1] not in (COCO_JOINTS, WITH_FEET_JOINTS):
        raise MalformedWindow(f"expected {COCO_JOINTS} or {WITH_FEET_JOINTS} joints per frame, got {xyc.shape[1]}")
    finite = np.isfinite(xyc)
    if not finite.all():
        frame = int(np.argwhere(~finite)[0][0])
        raise MalformedWindow(f"non-finite value (NaN or infinity) in frame {frame}")
    conf = xyc[..., 2]
    if (conf < 0).any() or (conf > 1).any():
        raise MalformedWindow("confidence outside [0, 1]")
    if np.abs(xyc[..., :2]).max() > MAX_ABS_COORDINATE_PX:
        raise MalformedWindow(f"coordinate beyond +/-{MAX_ABS_COORDINATE_PX:.0f} px")
    if not (conf > 0).any():
        raise MalformedWindow("no keypoint is visible in any frame (all confidences 0)")


def check_features(values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise MalformedWindow("feature vector holds NaN or infinity")
    norm = float(np.linalg.norm(values))
    if not 0.99 <= norm <= 1.01:
        raise MalformedWindow(f"feature vector must be L2-normalised (norm {norm:.3f})")
