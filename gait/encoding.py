"""The model's input: per-frame channels from a normalised walk (shared by training and
inference, so the two can never disagree)."""

from __future__ import annotations

import numpy as np

from gait.normalize import Normalised, normalise
from gait.track import single_body
from gait.walk import BONES, J, Walk

# Face points other than the nose are unreliable across pose estimators and absent from some
# skeleton sources, so the model sees the nose and the twelve body joints only.
MODEL_JOINTS = [J[n] for n in (
    "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)]
# x, y, dx, dy, visible per joint; root velocity; bone lengths (body proportions, seen directly)
CHANNELS = len(MODEL_JOINTS) * 5 + 2 + len(BONES)


def encode_normalised(n: Normalised) -> np.ndarray:
    """float32 [T, CHANNELS]."""
    coords = n.coords[:, MODEL_JOINTS]  # [T, 13, 2]
    velocity = np.zeros_like(coords)
    velocity[1:] = coords[1:] - coords[:-1]
    visible = (n.visible[:, MODEL_JOINTS] > 0.05).astype(np.float32)
    frames = coords.shape[0]
    bones = np.stack([np.linalg.norm(n.coords[:, a] - n.coords[:, b], axis=1) for a, b in BONES], axis=1)
    bones_seen = np.stack([(n.visible[:, a] > 0.05) & (n.visible[:, b] > 0.05) for a, b in BONES], axis=1)
    parts = [coords.reshape(frames, -1), (velocity * 10).reshape(frames, -1), visible, n.root_velocity * 10,
             4 * bones * bones_seen]
    return np.concatenate(parts, axis=1).astype(np.float32)


def encode(walk: Walk) -> np.ndarray:
    return encode_normalised(normalise(single_body(walk)))
