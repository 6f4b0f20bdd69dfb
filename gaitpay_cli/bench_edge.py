"""`gaitpay bench edge`: frames per second of one camera's vision on a 1080p stream.

The streams are made from the Sports2D clip (a real walker, fetched from PyPI):
- one person: the clip at 1920x1080, the second person in it (on the box) painted out;
- three people: three 640x1080 panels, each following the walker at a different moment.
Stage timings: decode (reading and composing the frame), detect, pose, track, and stream
(cutting windows and encoding them as the matcher's messages). The baseline, measured in
the same run, is decoding alone."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from edge.adapters.matcher_link import keypoint_window
from edge.domain.windows import WindowCutter
from edge.vision.pose import LandmarkModel, PoseDetector
from edge.vision.tracker import PersonTracker, TrackerConfig

WIDTH, HEIGHT = 1920, 1080
SECOND_PERSON = (540, 40, 800, 480)  # x0, y0, x1, y1 in the clip's 1768x994: the man on the box


@dataclass
class EdgeBenchRow:
    people: int
    providers: str
    fps: list[float]
    decode_fps: list[float]
    stages_ms: dict[str, float]

    @property
    def median_fps(self) -> float:
        return statistics.median(self.fps)


def _clip_frames(path: Path) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        x0, y0, x1, y1 = SECOND_PERSON
        image[y0:y1, x0:x1] = image[y0:y1, x0:x1].mean(axis=(0, 1))
        frames.append(image)
    capture.release()
    return frames


def _walker_x(frames: list[np.ndarray]) -> np.ndarray:
    """The walker's hip x per frame (first pass with the tracker; gaps filled)."""
    tracker = PersonTracker(PoseDetector(), LandmarkModel(), 30.0)
    xs = np.full(len(frames), np.nan)
    for i, image in enumerate(frames):
        for person in tracker.update(image):
            xs[i] = person.keypoints[[11, 12], 0].mean()
    known = np.flatnonzero(~np.isnan(xs))
    return np.interp(np.arange(len(frames)), known, xs[known])


def streams(clip: Path) -> dict[int, Callable[[], Iterator[np.ndarray]]]:
    import cv2

    frames = _clip_frames(clip)
    walker = _walker_x(frames)
    moving = [i for i in range(len(frames)) if 38 <= i <= 200]

    def one() -> Iterator[np.ndarray]:
        for i in moving:
            yield cv2.resize(frames[i], (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)

    def three() -> Iterator[np.ndarray]:
        half = 300
        for step, i in enumerate(moving):
            panels = []
            for k in range(3):
                j = moving[(step + 50 * k) % len(moving)]
                cx = int(np.clip(walker[j], half, frames[j].shape[1] - half))
                panels.append(cv2.resize(frames[j][:, cx - half:cx + half], (WIDTH // 3, HEIGHT)))
            yield np.hstack(panels)

    return {1: one, 3: three}


def run(clip: Path, runs: int, report: Callable[[str], None] = lambda _s: None) -> list[EdgeBenchRow]:
    rows = []
    for people, make in streams(clip).items():
        row = EdgeBenchRow(people, "", [], [], {})
        totals: dict[str, float] = {}
        frames_timed = 0
        for r in range(runs):
            report(f"{people} person(s), run {r + 1}/{runs}")
            started = time.perf_counter()
            decoded = sum(1 for _ in make())
            row.decode_fps.append(decoded / (time.perf_counter() - started))
            detector, landmarks = PoseDetector(), LandmarkModel()
            row.providers = detector.providers[0]
            tracker = PersonTracker(detector, landmarks, 30.0, TrackerConfig())
            cutters: dict[int, WindowCutter] = {}
            decode_s = stream_s = 0.0
            frames = 0
            started = time.perf_counter()
            source = make()
            while True:
                t0 = time.perf_counter()
                image = next(source, None)
                decode_s += time.perf_counter() - t0
                if image is None:
                    break
                people_seen = tracker.update(image)
                t1 = time.perf_counter()
                for person in people_seen:
                    cutter = cutters.setdefault(person.track_id, WindowCutter(30.0))
                    for window in cutter.add(frames, person.keypoints):
                        keypoint_window("bench", "cam", str(person.track_id), window.sequence,
                                        window.keypoints[:, :17], 30.0, window.quality).SerializeToString()
                stream_s += time.perf_counter() - t1
                frames += 1
            row.fps.append(frames / (time.perf_counter() - started))
            for stage, seconds in {"decode": decode_s, **tracker.timings, "stream": stream_s}.items():
                totals[stage] = totals.get(stage, 0.0) + seconds
            frames_timed += frames
        row.stages_ms = {k: v / frames_timed * 1000 for k, v in totals.items()}
        rows.append(row)
    return rows
