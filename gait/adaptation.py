"""Camera statistics for the embedding head's batch norm (AdaBN: Li et al., 2016).

Why: the embedder ends in a linear projection and a batch norm whose running statistics
were measured on synthetic walkers. A real camera's walks reach that norm offset from
them (median 0.8 standard deviations per dimension on the UCalgary walkers, with 0.4 of
the variance), so every walk the camera sees leaves it pointing one way: the mean of the
real embeddings has norm 0.81 against 0.14 for synthetic ones, and two strangers score
0.65 against each other (docs/gait.md, "Fourth round"). Normalising the projection with
the mean and variance of the camera's own walks instead puts them back where the model
was trained to separate people. No labels are used, and nothing is trained: only the
statistics change, from walks of many different people seen by one camera.

The model exports the projection beside the embedding (ONNX output "projection") and the
norm's parameters in its metadata (HEAD_NORM_KEY), so the services need only ONNX Runtime.
With the shipped statistics, `HeadNorm.embed` gives the model's own embedding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gait.centring import camera_walks
from gait.versions import ModelNames

HEAD_NORM_KEY = "gaitpay.head_norm"  # ONNX metadata: the head batch norm's parameters, JSON
PROJECTION_OUTPUT = "projection"
# Statistics from as few as 3 walks of different people, for a gallery and for its probes
# each, match or beat the shipped ones on synthetic walkers and on the real ones
# (tools/few_walk_statistics.py; docs/gait.md, "Seventh round"). Under 8 a file is ever
# likelier to be one person's walks (an enrolment), whose own statistics would take away the
# very walk they share; a centre (gait.centring) still needs 20.
MIN_CAMERA_WALKS = 8


class AdaptationError(ValueError):
    """Camera statistics cannot be formed or applied (too few walks, wrong shape, no head norm)."""


@dataclass(frozen=True)
class CameraStatistics:
    """Per-dimension mean and variance of the projections of `walks` walks one camera saw."""

    mean: np.ndarray  # float32 [D]
    var: np.ndarray  # float32 [D]
    walks: int

    @classmethod
    def of(cls, projections: np.ndarray, min_walks: int = MIN_CAMERA_WALKS) -> "CameraStatistics":
        values = camera_walks(projections, min_walks, "camera statistics need projections", AdaptationError)
        return cls(values.mean(axis=0).astype(np.float32), values.var(axis=0).astype(np.float32),
                   int(values.shape[0]))

    def save(self, path: Path, model_version: str) -> None:
        """An .npz of the statistics and the model whose projections they were measured on
        (another model's projections mean something else)."""
        with open(path, "wb") as out:  # np.savez would append .npz to a name without it
            np.savez(out, mean=self.mean, var=self.var, walks=np.int64(self.walks), model=np.str_(model_version))

    @classmethod
    def load(cls, path: Path, model: ModelNames, dim: int) -> "CameraStatistics":
        """Statistics `save` wrote for this model (under any of its names, of its projection's
        dimension), or AdaptationError saying what is wrong."""
        try:
            with np.load(path, allow_pickle=False) as raw:
                mean, var = raw["mean"].astype(np.float32), raw["var"].astype(np.float32)
                walks, measured_by = int(raw["walks"]), str(raw["model"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AdaptationError(f"{path}: not a camera statistics file ({exc})") from None
        if not model.accepts(measured_by):
            raise AdaptationError(f"{path}: statistics of model {measured_by!r}, not of {model.version!r}: measure "
                                  "them again with this model")
        if mean.shape != (dim,) or var.shape != (dim,):
            raise AdaptationError(f"{path}: statistics of shape {mean.shape} and {var.shape}, the model's are ({dim},)")
        if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):
            raise AdaptationError(f"{path}: statistics with non-finite values or negative variances")
        return cls(mean, var, walks)


@dataclass(frozen=True)
class HeadNorm:
    """The head batch norm: learned gain and bias, and the statistics it shipped with.

    An ensemble of `blocks` networks (gait.train.export_onnx of several models) has one norm
    per network, side by side: each network's block of the embedding is L2-normalised on its
    own and the whole scaled by 1/sqrt(blocks), so that a cosine between two embeddings is the
    mean of the networks' cosines."""

    gain: np.ndarray
    bias: np.ndarray
    eps: float
    shipped: CameraStatistics  # the synthetic walkers' running statistics
    blocks: int = 1

    @classmethod
    def from_metadata(cls, text: str) -> "HeadNorm":
        try:
            raw = json.loads(text)
            arrays = {k: np.asarray(raw[k], dtype=np.float32) for k in ("gain", "bias", "mean", "var")}
            eps = float(raw["eps"])
            blocks = int(raw.get("blocks", 1))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AdaptationError(f"the model's {HEAD_NORM_KEY} metadata is unreadable: {exc}") from None
        dims = {a.shape for a in arrays.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise AdaptationError(f"the model's {HEAD_NORM_KEY} arrays disagree in shape: {sorted(dims)}")
        dim = next(iter(dims))[0]
        if blocks < 1 or dim % blocks:
            raise AdaptationError(f"the model's {HEAD_NORM_KEY} splits {dim} dimensions into {blocks} blocks")
        return cls(arrays["gain"], arrays["bias"], eps, CameraStatistics(arrays["mean"], arrays["var"], 0), blocks)

    def to_metadata(self) -> str:
        fields = {"eps": self.eps, "gain": self.gain.tolist(), "bias": self.bias.tolist(),
                  "mean": self.shipped.mean.tolist(), "var": self.shipped.var.tolist()}
        if self.blocks > 1:  # a single network's metadata stays as it always was
            fields["blocks"] = self.blocks
        return json.dumps(fields)

    def embed(self, projections: np.ndarray, statistics: CameraStatistics | None = None) -> np.ndarray:
        """[D] or [N, D] projections -> L2-normalised embeddings, normalised with `statistics`
        (the shipped ones where None)."""
        stats = statistics or self.shipped
        values = np.asarray(projections, dtype=np.float32)
        if values.shape[-1] != self.gain.shape[0] or stats.mean.shape != self.gain.shape:
            raise AdaptationError(f"projections of dimension {values.shape[-1]} do not fit a head norm of "
                                  f"{self.gain.shape[0]} with statistics of {stats.mean.shape[0]}")
        y = (values - stats.mean) / np.sqrt(stats.var + self.eps) * self.gain + self.bias
        parts = y.reshape(*y.shape[:-1], self.blocks, -1)
        parts = parts / np.maximum(np.linalg.norm(parts, axis=-1, keepdims=True), 1e-12) / np.sqrt(self.blocks)
        return parts.reshape(y.shape).astype(np.float32)
