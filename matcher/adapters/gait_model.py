"""The gait embedding model (ONNX Runtime) and the score model measured for it: what turns
keypoints into an embedding and scores into a decision. The matcher uses it, and so does the
edge when it identifies against its hot cache offline (the same model and the same
calibration, so a decision means the same thing on either side of the link)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import structlog

from gait.versions import ModelNames
from matcher.domain.camera_statistics import CameraStatistics, Renormalise
from matcher.domain.identification import EmbedFn, ProjectFn
from matcher.domain.policy import ScoreModel

log = structlog.get_logger("gaitpay.matcher")


def score_model(version: str) -> ScoreModel:
    """The policy's score model measured for this embedding model by `gaitpay eval
    --write-calibration`; the built-in defaults only when none was measured for it."""
    from gait import calibration

    cal = calibration.load(version)
    if cal is None:
        log.warning("no policy calibration for this gait model; using built-in defaults", model=version)
        return ScoreModel()
    return ScoreModel(cal.impostor_mean, cal.impostor_std, cal.genuine_mean, cal.genuine_std, cal.window_correlation)


def body_model():  # type: ignore[no-untyped-def]
    """The shipped body model (gait.body.BodyModel), or None with a warning."""
    from gait.body import load_body_model

    model = load_body_model()
    if model is None:
        log.warning("no body model shipped; body measures are not weighed")
    return model


@dataclass(frozen=True)
class GaitModel:
    """The embedding model as the identification core's ports: keypoints -> embedding; where
    the model exports its head's projection, keypoints -> (embedding, projection) and the
    head norm under other statistics (for a camera's own, matcher.domain.camera_statistics)."""

    embed: EmbedFn
    dim: int
    names: ModelNames  # its version, and former names of the same weights (gait.embedder.model_names)
    project: ProjectFn | None = None
    renormalise: Renormalise | None = None

    @property
    def version(self) -> str:
        return self.names.version

    def camera_statistics(self) -> CameraStatistics | None:
        """Live per-camera statistics for this model; None (with a warning) where it cannot adapt."""
        if self.project is None or self.renormalise is None:
            log.warning("this gait model exports no head projection; cameras keep its own statistics",
                        model=self.version)
            return None
        return CameraStatistics(self.renormalise)


def gait_model(threads: int | None = None) -> GaitModel:
    """The shipped model. A walk it cannot embed is a malformed window, with the model's reason."""
    from gait.adaptation import CameraStatistics as Statistics
    from gait.embedder import Embedder, UnusableWalk
    from gait.walk import Walk
    from matcher.domain.windows import MalformedWindow

    model = Embedder(threads=threads)

    def embed(keypoints: np.ndarray, fps: float) -> np.ndarray:
        try:
            return model.vector(Walk(keypoints, fps))
        except UnusableWalk as exc:
            raise MalformedWindow(f"window cannot be embedded: {exc}") from None

    head = model.head_norm
    if head is None:
        return GaitModel(embed, model.dim, model.names)

    def project(keypoints: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
        try:
            return model.vector_and_projection(Walk(keypoints, fps))
        except UnusableWalk as exc:
            raise MalformedWindow(f"window cannot be embedded: {exc}") from None

    def renormalise(projection: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        return head.embed(projection, Statistics(mean, var, 0))

    return GaitModel(embed, model.dim, model.names, project, renormalise)


def embedder(threads: int | None = None) -> tuple[EmbedFn, int, str]:
    """(keypoints, fps) -> embedding, the embedding's size and the model's version. A walk the
    model cannot embed is a malformed window, with the model's reason."""
    model = gait_model(threads)
    return model.embed, model.dim, model.version
