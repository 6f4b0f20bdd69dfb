"""People tracks in one camera: detect new people, follow known ones by their own pose.

A known person's next region comes from their landmarks (MediaPipe's tracking mode), so the
detector runs only every few frames, to find people who came in, and to pick up a track
that was lost for a moment (occlusion): a detection near where a lost track was heading, of
a like size, gets that track's id back instead of a new one.

Small, far-away people: the detector runs on overlapping tiles as well as on the whole
frame, each tile upscaled to the detector's input, so a person 80 px tall is ~100 px there."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from edge.vision.pose import Detection, LandmarkModel, Pose, PoseDetector, Region, iou, suppress_overlaps
from edge.vision.smoothing import OneEuro


@dataclass(frozen=True)
class TrackerConfig:
    detect_period_s: float = 0.3  # every detector tile is searched once in this time
    tile_fraction: float = 0.5  # tile side as a fraction of the frame height; 0 = whole frame only
    min_presence: float = 0.5  # landmark model's person-present score to keep following
    max_lost_frames: int = 15  # how long a lost track can still be picked up again
    min_visible_joints: int = 8  # body joints (of 12) seen, else the frame is a miss


@dataclass
class Track:
    track_id: int
    region: Region
    smoother: OneEuro
    last_pose: Pose | None = None
    last_frame: int = -1
    lost_frames: int = 0
    velocity: tuple[float, float] = (0.0, 0.0)
    frames: list[int] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.lost_frames == 0


@dataclass(frozen=True)
class TrackedPerson:
    """One person in one frame."""

    track_id: int
    keypoints: np.ndarray  # float32 [23, 3], smoothed, image pixels
    box: tuple[float, float, float, float]


def tiles(width: int, height: int, fraction: float) -> list[tuple[int, int, int, int]]:
    """The whole frame plus square tiles overlapping by a quarter."""
    windows = [(0, 0, width, height)]
    if fraction <= 0:
        return windows
    side = max(64, int(height * fraction))
    step = max(1, side * 3 // 4)
    for y in range(0, max(height - side, 0) + step, step):
        for x in range(0, max(width - side, 0) + step, step):
            y0, x0 = min(y, max(height - side, 0)), min(x, max(width - side, 0))
            windows.append((x0, y0, min(x0 + side, width), min(y0 + side, height)))
    return list(dict.fromkeys(windows))


def _merge(detections: list[Detection], threshold: float = 0.3) -> list[Detection]:
    """One detection per person across overlapping tiles (the most confident)."""
    if not detections:
        return []
    boxes = np.array([d.box for d in detections])
    scores = np.array([d.score for d in detections])
    return [detections[i] for i in suppress_overlaps(boxes, scores, threshold)]


class PersonTracker:
    def __init__(self, detector: PoseDetector, landmarks: LandmarkModel, fps: float,
                 config: TrackerConfig | None = None) -> None:
        self.detector = detector
        self.landmarks = landmarks
        self.fps = fps
        self.config = config or TrackerConfig()
        self.tracks: dict[int, Track] = {}
        self.finished: list[Track] = []
        self._next_id = 1
        self._frame = -1
        self._windows: list[tuple[int, int, int, int]] | None = None
        self.timings = {"detect": 0.0, "pose": 0.0, "track": 0.0}

    # -- per frame ------------------------------------------------------------------------

    def update(self, image: np.ndarray) -> list[TrackedPerson]:
        self._frame += 1
        started = time.perf_counter()
        for track in list(self.tracks.values()):
            self._follow(track, image)
        posed = time.perf_counter()
        self._discover(image)
        detected = time.perf_counter()
        self._drop_duplicates()
        self._expire()
        people = [
            TrackedPerson(t.track_id, t.keypoints[-1], t.last_pose.bounds())
            for t in self.tracks.values() if t.active and t.last_frame == self._frame and t.last_pose
        ]
        self.timings["pose"] += posed - started
        self.timings["detect"] += detected - posed
        self.timings["track"] += time.perf_counter() - detected
        return people

    def close(self) -> list[Track]:
        """End of the video: every track, finished or not."""
        self.finished.extend(self.tracks.values())
        self.tracks.clear()
        return sorted(self.finished, key=lambda t: t.track_id)

    # -- internals ----------------------------------------------------------------------------

    def _sane(self, pose: Pose) -> bool:
        if pose.presence < self.config.min_presence:
            return False
        body = pose.landmarks[[11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]]
        return int((body[:, 2] > 0.5).sum()) >= self.config.min_visible_joints

    def _follow(self, track: Track, image: np.ndarray) -> None:
        region = track.region
        if not track.active:
            # Coast along the last motion while lost; the detector may hand it back.
            vx, vy = track.velocity
            region = Region(region.cx + vx, region.cy + vy, region.size, region.angle)
            track.region = region
            track.lost_frames += 1
            return
        pose = self.landmarks.estimate(image, region)
        if not self._sane(pose):
            track.lost_frames = 1
            return
        self._accept(track, pose)

    def _accept(self, track: Track, pose: Pose) -> None:
        nxt = pose.next_region
        if track.last_pose is not None and track.last_frame >= 0:
            gap = max(1, self._frame - track.last_frame)
            vx, vy = (nxt.cx - track.region.cx) / gap, (nxt.cy - track.region.cy) / gap
            track.velocity = (0.7 * track.velocity[0] + 0.3 * vx, 0.7 * track.velocity[1] + 0.3 * vy)
        track.region = nxt
        track.last_pose = pose
        track.last_frame = self._frame
        track.lost_frames = 0
        points = pose.keypoints23()
        points[:, :2] = track.smoother(self._frame / self.fps, points[:, :2])
        track.frames.append(self._frame)
        track.keypoints.append(points)

    def _discover(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        if self._windows is None:
            self._windows = tiles(width, height, self.config.tile_fraction)
        # A share of the tiles each frame, in turn: every tile is searched once per
        # `detect_period_s`, and each frame costs about the same.
        every = max(1, round(self.config.detect_period_s * self.fps))
        share = -(-len(self._windows) // every)
        start = (self._frame * share) % len(self._windows)
        windows = [self._windows[(start + i) % len(self._windows)] for i in range(share)]
        found = _merge([d for w in windows for d in self.detector.detect(image, w)])
        for detection in found:
            if self._already_followed(detection):
                continue
            track = self._lost_match(detection)
            if track is None:
                track = Track(self._next_id, detection.region, OneEuro())
                self._next_id += 1
            pose = self.landmarks.estimate(image, detection.region)
            if not self._sane(pose):
                continue
            self.tracks[track.track_id] = track
            self._accept(track, pose)

    def _already_followed(self, detection: Detection) -> bool:
        hip = np.array([detection.region.cx, detection.region.cy])
        for t in self.tracks.values():
            if t.active and t.last_pose is not None:
                x0, y0, x1, y1 = t.last_pose.bounds()
                margin = 0.15 * (y1 - y0)
                if x0 - margin <= hip[0] <= x1 + margin and y0 - margin <= hip[1] <= y1 + margin:
                    return True
        return False

    def _lost_match(self, detection: Detection) -> Track | None:
        best, best_distance = None, math.inf
        for t in self.tracks.values():
            if t.active:
                continue
            ratio = detection.region.size / t.region.size
            distance = math.hypot(detection.region.cx - t.region.cx, detection.region.cy - t.region.cy)
            if 0.6 <= ratio <= 1.6 and distance < 0.6 * t.region.size and distance < best_distance:
                best, best_distance = t, distance
        return best

    def _drop_duplicates(self) -> None:
        """Two tracks that slid onto one person: keep the older."""
        live = sorted((t for t in self.tracks.values() if t.active and t.last_pose is not None), key=lambda t: t.track_id)
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                if b.track_id not in self.tracks or a.track_id not in self.tracks:
                    continue
                if iou(np.array(a.last_pose.bounds()), np.array([b.last_pose.bounds()]))[0] > 0.6:
                    self._end(b)

    def _expire(self) -> None:
        for t in list(self.tracks.values()):
            if t.lost_frames > self.config.max_lost_frames:
                self._end(t)

    def _end(self, track: Track) -> None:
        self.tracks.pop(track.track_id, None)
        if track.frames:
            self.finished.append(track)


def track_arrays(tracks: Iterable[Track]) -> dict[str, np.ndarray]:
    """`track_<id>` float32 [T, 17, 3] (plus `feet_<id>` [T, 6, 3]) and `frames_<id>`."""
    out: dict[str, np.ndarray] = {}
    for t in tracks:
        if not t.frames:
            continue
        points = np.stack(t.keypoints).astype(np.float32)
        out[f"track_{t.track_id}"] = points[:, :17]
        out[f"feet_{t.track_id}"] = points[:, 17:]
        out[f"frames_{t.track_id}"] = np.asarray(t.frames, dtype=np.int32)
    return out
