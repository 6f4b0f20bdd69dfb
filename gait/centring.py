"""Camera centring: take away the direction that every walk one camera sees has in common.

Why: the embeddings of real walkers seen by one camera share a direction that synthetic
walkers do not. The mean of the 74 real UCalgary embeddings has norm 0.83 (their mean pairwise
cosine is 0.69), against about 0.1 for synthetic walks. Two strangers from one real camera
therefore score about 0.65 against each other, far above the impostor score model the
matcher was calibrated with (0.14 +/- 0.18), and the policy charges strangers (docs/gait.md,
"Fourth round"). The direction belongs to the camera and the pose source, not to anyone's
gait: the synthetic walkers' mean is orthogonal to it (cosine -0.0005), so it cannot be
trained away on synthetic data. Subtracting the mean of what one camera sees, over many
different people, and re-normalising takes it away without knowing who anyone is.

A centre is a plain mean of L2-normalised embeddings; `centred` subtracts it and
re-normalises. Mean subtraction followed by normalisation is the same whether or not the
walk itself was part of the mean (x - mean(all) is proportional to x - mean(others)), so a
camera's centre may include the walk being centred.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A centre from fewer walks than this is mostly the walkers' own identities, not the camera's.
MIN_CENTRE_WALKS = 20


class CentreError(ValueError):
    """A centre cannot be formed or applied (too few walks, wrong shape)."""


@dataclass(frozen=True)
class CameraCentre:
    """The mean embedding of `walks` walks one camera (or one enrolment source) saw."""

    vector: np.ndarray  # float32 [D]
    walks: int

    @classmethod
    def of(cls, embeddings: np.ndarray, min_walks: int = MIN_CENTRE_WALKS) -> "CameraCentre":
        """The centre of [N, D] embeddings (N >= min_walks: different people, ideally many)."""
        vectors = camera_walks(embeddings, min_walks, "a camera centre needs embeddings", CentreError)
        return cls(vectors.mean(axis=0).astype(np.float32), int(vectors.shape[0]))

    @property
    def strength(self) -> float:
        """The centre's norm: near 0 where a camera's walks share nothing (synthetic walkers
        give about 0.1), near 1 where they all point one way (real walkers: 0.83)."""
        return float(np.linalg.norm(self.vector))

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        """[D] or [N, D] -> the same shape: minus the centre, L2-normalised again."""
        return centred(embeddings, self.vector)


def camera_walks(values: np.ndarray, min_walks: int, needs: str, error: type[ValueError]) -> np.ndarray:
    """values as float64 [N, D] rows of N >= min_walks walks, or `error` saying what it
    `needs` ("a camera centre needs embeddings") and what it got."""
    rows = np.asarray(values, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise error(f"{needs} [N, D], got shape {rows.shape}")
    if rows.shape[0] < min_walks:
        raise error(f"{needs} of at least {min_walks} walks, got {rows.shape[0]}")
    return rows


def centred(embeddings: np.ndarray, centre: np.ndarray) -> np.ndarray:
    vectors = np.asarray(embeddings, dtype=np.float32)
    centre = np.asarray(centre, dtype=np.float32)
    if vectors.shape[-1] != centre.shape[-1] or centre.ndim != 1:
        raise CentreError(f"embeddings of dimension {vectors.shape[-1]} cannot take a centre of shape {centre.shape}")
    shifted = vectors - centre
    norms = np.linalg.norm(shifted, axis=-1, keepdims=True)
    # A walk exactly at the centre has no direction left; it stays where it was rather than
    # becoming NaN (it can only happen to a centre of one walk, which `of` refuses).
    return np.where(norms > 1e-6, shifted / np.maximum(norms, 1e-6), vectors).astype(np.float32)
