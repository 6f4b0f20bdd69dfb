"""Gait embeddings at service time: ONNX Runtime, never PyTorch.

Execution providers are chosen from what this machine's ONNX Runtime offers, best first:
TensorRT, CUDA, then CPU. Walks are batched by length (after resampling to the model's rate)
so no padding ever enters the attention pooling.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gait.adaptation import (HEAD_NORM_KEY, MIN_CAMERA_WALKS, PROJECTION_OUTPUT, AdaptationError,
                             CameraStatistics, HeadNorm)
from gait.encoding import encode_normalised
from gait.features import heel_strikes, quality
from gait.normalize import Normalised, normalise
from gait.track import single_body
from gait.versions import ModelNames
from gait.walk import Walk

MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODEL_DIR / "gait-embedder.onnx"
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
MIN_FRAMES = 16  # about half a second at 30 fps: shorter walks carry no gait cycle


def resolve_model_path(explicit: Path | None = None) -> Path:
    """The gait model to run: the one given, else GAITPAY_GAIT_MODEL, else the shipped one."""
    return Path(explicit or os.environ.get("GAITPAY_GAIT_MODEL") or DEFAULT_MODEL)


class UnusableWalk(ValueError):
    """A walk the model cannot embed; the message says why."""


@dataclass(frozen=True)
class Embedding:
    vector: np.ndarray  # float32 [D], L2-normalised
    quality: float
    # The head's projection before its batch norm (gait.adaptation), where the model has one.
    projection: np.ndarray | None = None


def available_providers() -> list[str]:
    import onnxruntime as ort

    offered = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in offered]


def open_session(path: Path, providers: list[str] | None = None, threads: int | None = None):
    """An ONNX Runtime session with every graph optimisation, on the best providers here
    (or those given); the gait model and the edge's pose models open the same way."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=providers or available_providers())


class ModelCardMismatch(ValueError):
    """The model card beside a model names its file but records other bytes."""


def model_version(model_path: Path | None = None) -> str:
    """The model's version (resolved as Embedder resolves the model): the one on the card
    beside it, once the card is checked to be this file's; 'unknown-' and the file's first
    8 sha256 digits where no card names the file. Templates, score calibration and camera
    statistics are kept per version, so two models must never share one: a card copied
    beside other weights is refused rather than believed."""
    return model_names(model_path).version


def model_names(model_path: Path | None = None) -> ModelNames:
    """The model's version, and the names the same weights had before (the card's
    former_versions): templates and statistics files stored under those are this model's.
    The shipped model was synthetic-20261125 until its version came to name its weights."""
    path = resolve_model_path(model_path)
    if not path.exists():
        raise FileNotFoundError(f"gait model {path} not found: run `gaitpay train` or restore it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    card_path = path.with_name("model-card.json")
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    if card.get("file") != path.name or "version" not in card:
        return ModelNames(f"unknown-{digest[:8]}")
    if card.get("sha256") != digest:
        raise ModelCardMismatch(
            f"{path} has sha256 {digest[:16]}…, but its card {card_path} records {str(card.get('sha256'))[:16]}… "
            f"for version {card['version']}: the card describes other weights. Restore the model and its card "
            "together, or train again (`gaitpay train`)")
    return ModelNames(str(card["version"]), tuple(str(v) for v in card.get("former_versions", ())))


class Embedder:
    def __init__(self, model_path: Path | None = None, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        self.model_path = resolve_model_path(model_path)
        if not self.model_path.exists():
            raise FileNotFoundError(f"gait model {self.model_path} not found: run `gaitpay train` or restore it")
        self.session = open_session(self.model_path, providers, threads)
        outputs = [o.name for o in self.session.get_outputs()]
        self._embedding_output = outputs[0]
        self.dim = int(self.session.get_outputs()[0].shape[1])
        self.names = model_names(self.model_path)
        # Camera statistics need the projection and the head norm's parameters; a model
        # exported before they were (or by someone else) embeds with its own statistics only.
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.head_norm: HeadNorm | None = None
        if PROJECTION_OUTPUT in outputs and HEAD_NORM_KEY in metadata:
            self.head_norm = HeadNorm.from_metadata(metadata[HEAD_NORM_KEY])

    @property
    def version(self) -> str:
        """What this model writes on everything it makes (its names' first)."""
        return self.names.version

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def _normalised(self, walk: Walk) -> tuple[Walk, Normalised]:
        """The walk with a tracker's swap to a bystander cut out (gait.track), normalised;
        or UnusableWalk."""
        walk = single_body(walk)
        n = normalise(walk)
        if n.frames < MIN_FRAMES:
            raise UnusableWalk(f"too short: {walk.seconds:.2f} s (at least {MIN_FRAMES / n.fps:.2f} s needed)")
        seen = float((walk.coco[:, 5:17, 2] > 0.05).mean())
        if seen < 0.3:
            raise UnusableWalk(f"body keypoints visible in only {seen:.0%} of frames and joints")
        return walk, n

    def prepare(self, walk: Walk) -> tuple[np.ndarray, float]:
        """Model input [T, C] and quality, or UnusableWalk."""
        walk, n = self._normalised(walk)
        return encode_normalised(n), quality(walk, n, heel_strikes(n))

    def run(self, features: np.ndarray) -> np.ndarray:
        """[B, T, C] -> [B, D]."""
        return self.session.run([self._embedding_output], {"features": features.astype(np.float32, copy=False)})[0]

    def run_projected(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B, T, C] -> embeddings [B, D] and the head's projections [B, D]."""
        if self.head_norm is None:
            raise AdaptationError(f"model {self.model_path.name} has no {PROJECTION_OUTPUT!r} output with its head "
                                  f"norm's parameters: export it again (gait.train.reexport) to adapt it to a camera")
        vectors, projections = self.session.run([self._embedding_output, PROJECTION_OUTPUT],
                                                {"features": features.astype(np.float32, copy=False)})
        return vectors, projections

    def embed_many(self, walks: dict[str, Walk], projections: bool = False) -> tuple[dict[str, Embedding], dict[str, str]]:
        """Embeddings of the walks it can embed, and the reason for each it cannot; with
        `projections`, each also carries its head projection (for camera statistics)."""
        prepared: dict[str, tuple[np.ndarray, float]] = {}
        errors: dict[str, str] = {}
        for key, walk in walks.items():
            try:
                prepared[key] = self.prepare(walk)
            except UnusableWalk as exc:
                errors[key] = str(exc)
        by_length: dict[int, list[str]] = {}
        for key, (features, _) in prepared.items():
            by_length.setdefault(features.shape[0], []).append(key)
        out: dict[str, Embedding] = {}
        for keys in by_length.values():
            for start in range(0, len(keys), 256):
                chunk = keys[start:start + 256]
                batch = np.stack([prepared[k][0] for k in chunk])
                if projections:
                    vectors, projected = self.run_projected(batch)
                else:
                    vectors, projected = self.run(batch), [None] * len(chunk)
                for key, vector, projection in zip(chunk, vectors, projected):
                    out[key] = Embedding(vector.astype(np.float32), prepared[key][1],
                                         None if projection is None else projection.astype(np.float32))
        return out, errors

    def camera_adapted(self, embeddings: dict[str, Embedding],
                       min_walks: int = MIN_CAMERA_WALKS) -> tuple[dict[str, Embedding], CameraStatistics]:
        """The embeddings (from embed_many(..., projections=True)) with the head norm's
        statistics taken from their own projections: one camera's walks of many different
        people (gait.adaptation). AdaptationError where there are too few walks."""
        projections = self._projections(embeddings)
        stats = CameraStatistics.of(projections, min_walks)
        return self._renormalised(embeddings, projections, stats), stats

    def load_statistics(self, path: Path) -> CameraStatistics:
        """A camera's statistics, measured before for this model (CameraStatistics.save);
        AdaptationError where the model cannot adapt or the file does not fit it."""
        if self.head_norm is None:
            raise AdaptationError(f"model {self.version} has no {PROJECTION_OUTPUT!r} output with its head norm's "
                                  "parameters: it cannot be normalised with camera statistics")
        return CameraStatistics.load(path, self.names, self.head_norm.gain.shape[0])

    def with_statistics(self, embeddings: dict[str, Embedding], stats: CameraStatistics) -> dict[str, Embedding]:
        """The embeddings (from embed_many(..., projections=True)) with the head norm's
        statistics set to `stats`: a camera's, measured before (CameraStatistics.load)."""
        return self._renormalised(embeddings, self._projections(embeddings), stats)

    def _projections(self, embeddings: dict[str, Embedding]) -> np.ndarray:
        """[N, D] projections of the embeddings, in their order; AdaptationError where the
        model cannot adapt or a walk was embedded without its projection."""
        if self.head_norm is None:
            raise AdaptationError(f"model {self.model_path.name} cannot be adapted to a camera: it has no "
                                  f"{PROJECTION_OUTPUT!r} output with its head norm's parameters")
        if any(e.projection is None for e in embeddings.values()):
            raise AdaptationError("camera statistics need every walk's projection: embed with projections=True")
        if not embeddings:
            return np.empty((0, self.head_norm.gain.shape[0]), dtype=np.float32)
        return np.stack([e.projection for e in embeddings.values()])

    def _renormalised(self, embeddings: dict[str, Embedding], projections: np.ndarray,
                      stats: CameraStatistics) -> dict[str, Embedding]:
        assert self.head_norm is not None  # _projections checked it
        vectors = self.head_norm.embed(projections, stats)
        return {k: replace(e, vector=v) for (k, e), v in zip(embeddings.items(), vectors)}

    def vector(self, walk: Walk) -> np.ndarray:
        """The embedding alone, without the quality score (the matcher's per-window path,
        where gait-cycle segmentation would only be thrown away)."""
        return self.run(encode_normalised(self._normalised(walk)[1])[None])[0].astype(np.float32)

    def vector_and_projection(self, walk: Walk) -> tuple[np.ndarray, np.ndarray]:
        """The embedding and the head's projection (for a camera's statistics), without the
        quality score; AdaptationError where the model has no projection output."""
        vectors, projections = self.run_projected(encode_normalised(self._normalised(walk)[1])[None])
        return vectors[0].astype(np.float32), projections[0].astype(np.float32)

    def embed(self, walk: Walk, projection: bool = False) -> Embedding:
        """One walk's embedding and quality; with `projection`, its head projection too."""
        features, q = self.prepare(walk)
        if not projection:
            return Embedding(self.run(features[None])[0].astype(np.float32), q)
        vectors, projections = self.run_projected(features[None])
        return Embedding(vectors[0].astype(np.float32), q, projections[0].astype(np.float32))
