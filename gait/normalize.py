"""From raw pixel keypoints to a signal that does not care where the person is in the image
or how far from the camera, and that is robust to jitter and gaps.

Steps: resample to a fixed rate (varying fps), fill short gaps per joint from its visible
neighbours in time, Savitzky-Golay smoothing, then per frame: subtract the pelvis and divide
by the body size. Body size is estimated per frame from torso and leg lengths and smoothed
over time, because a walker approaching an entrance camera grows several-fold in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from gait.walk import J, Walk

TARGET_FPS = 30.0
VISIBLE = 0.05  # confidence above which a keypoint counts as seen
_L_SHO, _R_SHO, _L_HIP, _R_HIP = J["left_shoulder"], J["right_shoulder"], J["left_hip"], J["right_hip"]
_LEGS = [(J["left_hip"], J["left_knee"]), (J["left_knee"], J["left_ankle"]),
         (J["right_hip"], J["right_knee"]), (J["right_knee"], J["right_ankle"])]


@dataclass(frozen=True)
class Normalised:
    """coords: float32 [T, J, 2] relative to the pelvis in body-size units (y down);
    visible: float32 [T, J] in [0, 1]; root_velocity: float32 [T, 2] pelvis motion per
    frame in body-size units; scale: float32 [T] body size in pixels; fps: the rate."""

    coords: np.ndarray
    visible: np.ndarray
    root_velocity: np.ndarray
    scale: np.ndarray
    fps: float

    @property
    def frames(self) -> int:
        return int(self.coords.shape[0])


def resample(keypoints: np.ndarray, fps: float, target_fps: float = TARGET_FPS) -> np.ndarray:
    """Linear resampling in time to target_fps; confidences are resampled too."""
    frames = keypoints.shape[0]
    if frames < 2 or abs(fps - target_fps) < 1e-6:
        return keypoints.astype(np.float32, copy=True)
    duration = (frames - 1) / fps
    out_frames = max(2, int(round(duration * target_fps)) + 1)
    t_in = np.arange(frames) / fps
    t_out = np.linspace(0.0, duration, out_frames)
    flat = keypoints.reshape(frames, -1)
    resampled = np.stack([np.interp(t_out, t_in, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    return resampled.reshape(out_frames, *keypoints.shape[1:]).astype(np.float32)


def fill_gaps(keypoints: np.ndarray) -> np.ndarray:
    """Interpolate each joint's missing frames from its visible frames (edges held)."""
    out = keypoints.astype(np.float32, copy=True)
    frames = out.shape[0]
    t = np.arange(frames)
    for j in range(out.shape[1]):
        seen = out[:, j, 2] > VISIBLE
        if seen.all() or not seen.any():
            continue
        for c in (0, 1):
            out[~seen, j, c] = np.interp(t[~seen], t[seen], out[seen, j, c])
        out[~seen, j, 2] = 0.5 * VISIBLE  # filled, not seen: stays below the visibility bar
    return out


def smooth(keypoints: np.ndarray, window: int = 7, order: int = 2) -> np.ndarray:
    frames = keypoints.shape[0]
    if frames <= order + 2:
        return keypoints
    window = min(window, frames if frames % 2 == 1 else frames - 1)
    if window <= order:
        return keypoints
    out = keypoints.copy()
    out[..., :2] = savgol_filter(keypoints[..., :2], window, order, axis=0)
    return out


def _midpoint(kp: np.ndarray, a: int, b: int) -> np.ndarray:
    return 0.5 * (kp[:, a, :2] + kp[:, b, :2])


def body_scale(kp: np.ndarray) -> np.ndarray:
    """Per-frame body size in pixels: torso length plus the mean leg length, smoothed."""
    torso = np.linalg.norm(_midpoint(kp, _L_SHO, _R_SHO) - _midpoint(kp, _L_HIP, _R_HIP), axis=1)
    legs = np.stack([np.linalg.norm(kp[:, a, :2] - kp[:, b, :2], axis=1) for a, b in _LEGS], axis=1)
    leg = legs.sum(axis=1) / 2  # mean of left and right (thigh + shank)
    raw = torso + leg
    ok = np.isfinite(raw) & (raw > 1e-3)
    if not ok.any():
        return np.ones(kp.shape[0], dtype=np.float32)
    raw = np.where(ok, raw, np.median(raw[ok]))
    frames = raw.shape[0]
    # A person's image size changes smoothly with distance: a low-order fit in time keeps the
    # trend (approach) and drops the in-stride wobble of the legs.
    if frames >= 8:
        t = np.linspace(-1, 1, frames)
        fitted = np.polyval(np.polyfit(t, raw, 2), t)
        raw = np.where(fitted > 0.2 * np.median(raw), fitted, np.median(raw))
    return raw.astype(np.float32)


def normalise(walk: Walk, target_fps: float = TARGET_FPS) -> Normalised:
    kp = resample(walk.keypoints, walk.fps, target_fps)
    kp = smooth(fill_gaps(kp))
    scale = body_scale(kp)
    root = _midpoint(kp, _L_HIP, _R_HIP)
    coords = (kp[..., :2] - root[:, None, :]) / scale[:, None, None]
    root_velocity = np.zeros_like(root)
    root_velocity[1:] = (root[1:] - root[:-1]) / scale[1:, None]
    visible = np.clip(kp[..., 2], 0.0, 1.0)
    coords = np.where(visible[..., None] > 0, coords, 0.0)  # never-seen joints carry no position
    return Normalised(coords.astype(np.float32), visible.astype(np.float32), root_velocity.astype(np.float32),
                      scale, target_fps)
