"""The gait engine as the identity core's WalkEmbedder: keypoints -> embedding + quality."""

from __future__ import annotations

import numpy as np

from gait.embedder import Embedder, UnusableWalk as EngineUnusable
from gait.walk import Walk
from identity.domain.ports import WalkEmbedding
from identity.domain.service import UnusableWalk


class GaitWalkEmbedder:
    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder or Embedder()
        self.model_version = self._embedder.version
        self.dim = self._embedder.dim

    def embed(self, keypoints: np.ndarray, fps: float) -> WalkEmbedding:
        try:
            result = self._embedder.embed(Walk(keypoints, fps))
        except (EngineUnusable, ValueError) as exc:
            raise UnusableWalk(str(exc)) from None
        return WalkEmbedding(result.vector, float(result.quality))
