"""BlazePose (MediaPipe, Apache-2.0) run by ONNX Runtime: a person detector and a landmark
model working on rotated regions of interest, as MediaPipe's own pose graph does.

The detector finds a person by two alignment points (hip centre and a point on the circle
that encloses the whole body); the region of interest is the square around them, turned so
the body stands upright. The landmark model then reads 33 landmarks plus two alignment points
of its own, which give the next frame's region: tracking needs the detector only for new people.

The model files are made from the MediaPipe wheel by `tools/pose_models.py`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gait.embedder import open_session

MODEL_DIR = Path(__file__).resolve().parents[1] / "models"
DETECTOR_MODEL = MODEL_DIR / "pose_detection.onnx"
LANDMARK_MODEL = MODEL_DIR / "pose_landmark_full.onnx"

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
ROI_SCALE = 1.25  # MediaPipe's margin around the body circle
# BlazePose landmark index for each COCO-17 keypoint, then the six foot points of
# gait.walk.FEET6 (BlazePose has heels and big toes, no small toes: those stay at confidence 0).
COCO_FROM_BLAZEPOSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
FEET_FROM_BLAZEPOSE = (29, 30, 31, 32, -1, -1)


def _session(path: Path, providers: list[str] | None, threads: int | None):
    if not path.exists():
        raise FileNotFoundError(f"pose model {path} not found: run `python tools/pose_models.py`")
    return open_session(path, providers, threads)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


def detector_anchors() -> np.ndarray:
    """SSD anchor centres of the pose detector, [2254, 2] in [0, 1] (MediaPipe's options:
    strides 8, 16, 32, 32, 32, two anchors per cell per layer, fixed size)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        cells = DETECTOR_SIZE // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Region:
    """A rotated square in image pixels: where the landmark model looks."""

    cx: float
    cy: float
    size: float
    angle: float  # radians; the body's up direction is turned to the image's up

    @classmethod
    def from_alignment(cls, centre: np.ndarray, edge: np.ndarray, scale: float = ROI_SCALE) -> "Region":
        dx, dy = float(edge[0] - centre[0]), float(edge[1] - centre[1])
        angle = math.pi / 2 - math.atan2(-dy, dx)
        angle = (angle + math.pi) % (2 * math.pi) - math.pi
        return cls(float(centre[0]), float(centre[1]), 2.0 * math.hypot(dx, dy) * scale, angle)

    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned bounds (x0, y0, x1, y1) of the unrotated square."""
        half = self.size / 2
        return self.cx - half, self.cy - half, self.cx + half, self.cy + half

    def affine(self, out: int) -> np.ndarray:
        """2x3 transform from image pixels to the model's out x out input."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        scale = out / self.size
        # Rotate by -angle about the centre, scale, then move the centre to the middle.
        m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]]) * scale
        m[:, 2] = np.array([out / 2, out / 2]) - m[:, :2] @ np.array([self.cx, self.cy])
        return m.astype(np.float32)


@dataclass(frozen=True)
class Detection:
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels (the face-led box)
    region: Region


@dataclass(frozen=True)
class Pose:
    """33 BlazePose landmarks in image pixels with visibility, and the region for the next frame."""

    landmarks: np.ndarray  # float32 [33, 3]: x, y, visibility (0..1)
    presence: float  # the model's belief that a person is in the region
    next_region: Region

    def keypoints23(self) -> np.ndarray:
        """COCO-17 plus gait.walk.FEET6, float32 [23, 3] (x, y, confidence)."""
        out = np.zeros((23, 3), np.float32)
        for i, b in enumerate(COCO_FROM_BLAZEPOSE + FEET_FROM_BLAZEPOSE):
            if b >= 0:
                out[i] = self.landmarks[b]
        return out

    def bounds(self) -> tuple[float, float, float, float]:
        seen = self.landmarks[self.landmarks[:, 2] > 0.3]
        points = seen if len(seen) >= 4 else self.landmarks
        return (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max()))


class PoseDetector:
    """Finds people in an image (or a part of it) by the BlazePose detector."""

    def __init__(self, providers: list[str] | None = None, threads: int | None = None,
                 min_score: float = 0.5, nms_iou: float = 0.3) -> None:
        self._session = _session(DETECTOR_MODEL, providers, threads)
        self._input = self._session.get_inputs()[0].name
        self._anchors = detector_anchors()
        self.min_score = min_score
        self.nms_iou = nms_iou

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def detect(self, image_bgr: np.ndarray, window: tuple[int, int, int, int] | None = None) -> list[Detection]:
        """People in `window` (x0, y0, x1, y1; the whole image if None), in image pixels.
        The window is letterboxed to 224 x 224, so a small window upscales small people."""
        height, width = image_bgr.shape[:2]
        x0, y0, x1, y1 = window or (0, 0, width, height)
        side = max(x1 - x0, y1 - y0)
        scale = DETECTOR_SIZE / side
        # Letterbox: the window's top-left at the model's top-left plus the centring pad.
        pad_x, pad_y = (side - (x1 - x0)) / 2, (side - (y1 - y0)) / 2
        m = np.array([[scale, 0, (pad_x - x0) * scale], [0, scale, (pad_y - y0) * scale]], np.float32)
        tensor = cv2.warpAffine(image_bgr, m, (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        tensor = cv2.cvtColor(tensor, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
        raw_boxes, raw_scores = self._session.run(None, {self._input: tensor[None]})
        scores = _sigmoid(raw_scores[0, :, 0])
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        raw = raw_boxes[0, keep] / DETECTOR_SIZE
        anchors = self._anchors[keep]
        centres = raw[:, 0:2] + anchors
        sizes = raw[:, 2:4]
        points = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
        inverse = cv2.invertAffineTransform(m)

        def to_image(p: np.ndarray) -> np.ndarray:
            p = p * DETECTOR_SIZE
            return p @ inverse[:, :2].T + inverse[:, 2]

        found = []
        for i in suppress_overlaps(boxes, scores[keep], self.nms_iou):
            corners = to_image(boxes[i].reshape(2, 2)).ravel()
            hip, edge = to_image(points[i, 0]), to_image(points[i, 1])
            found.append(Detection(float(scores[keep][i]), tuple(float(v) for v in corners), Region.from_alignment(hip, edge)))
        return found


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each of `others`."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(others) - inter, 1e-9)


def suppress_overlaps(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices of the best box of each overlapping group, best first (greedy non-maximum
    suppression: the detector fires on neighbouring anchors, and on overlapping tiles, for
    one person)."""
    order = list(np.argsort(-scores, kind="stable"))
    kept = []
    while order:
        best = order.pop(0)
        kept.append(int(best))
        if order:
            overlaps = iou(boxes[best], boxes[order])
            order = [o for o, v in zip(order, overlaps) if v < threshold]
    return kept


class LandmarkModel:
    """33 landmarks of the one person inside a region."""

    def __init__(self, providers: list[str] | None = None, threads: int | None = None) -> None:
        self._session = _session(LANDMARK_MODEL, providers, threads)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def estimate(self, image_bgr: np.ndarray, region: Region) -> Pose:
        m = region.affine(LANDMARK_SIZE)
        crop = cv2.warpAffine(image_bgr, m, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        results = dict(zip(self._outputs, self._session.run(self._outputs, {self._input: tensor[None]})))
        raw = results["Identity"].reshape(39, 5)
        presence = float(np.asarray(results["Identity_1"]).ravel()[0])
        inverse = cv2.invertAffineTransform(m)
        xy = raw[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        visibility = _sigmoid(raw[:, 3]) * _sigmoid(raw[:, 4])
        landmarks = np.concatenate([xy[:33], visibility[:33, None]], axis=1).astype(np.float32)
        return Pose(landmarks, presence, Region.from_alignment(xy[33], xy[34]))
