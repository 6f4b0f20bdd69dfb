"""The gait engine as the identity core's WalkEmbedder (keypoints -> embedding, quality and the
head's projection) and its EnrolmentStatistics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from gait.adaptation import HeadNorm
from gait.embedder import Embedder, UnusableWalk as EngineUnusable
from gait.walk import Walk
from identity.domain.ports import WalkEmbedding
from identity.domain.service import UnusableWalk


class GaitWalkEmbedder:
    def __init__(self, embedder: Embedder | None = None) -> None:
        self.engine = embedder or Embedder()  # the gait engine's, shared with FileEnrolmentStatistics
        self.model_version = self.engine.version
        self.names = self.engine.names
        self.dim = self.engine.dim

    def embed(self, keypoints: np.ndarray, fps: float) -> WalkEmbedding:
        try:
            # The projection too where the model has one: a template can then be normalised
            # with the enrolment source's statistics, now or once they are measured.
            result = self.engine.embed(Walk(keypoints, fps), projection=self.engine.head_norm is not None)
        except (EngineUnusable, ValueError) as exc:
            raise UnusableWalk(str(exc)) from None
        return WalkEmbedding(result.vector, float(result.quality), result.projection)


class FileEnrolmentStatistics:
    """The enrolment source's head-norm statistics, from a file `gaitpay embed
    --write-statistics` wrote from many enrolment walks of different people (gait.adaptation):
    the identity core's EnrolmentStatistics."""

    def __init__(self, path: Path, embedder: Embedder | None = None) -> None:
        model = embedder or Embedder()
        self._stats = model.load_statistics(path)
        assert model.head_norm is not None  # load_statistics refuses a model without one
        self._head: HeadNorm = model.head_norm
        digest = hashlib.sha256(self._stats.mean.tobytes() + self._stats.var.tobytes()).hexdigest()
        self.label = f"s{digest[:10]}"
        self.walks = self._stats.walks

    def embed(self, projections: np.ndarray) -> np.ndarray:
        return self._head.embed(projections, self._stats)
