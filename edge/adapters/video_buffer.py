"""The dispute buffer: each camera's video kept on the edge box for a limited time, so a
shopper's dispute ("I never took that") can be checked against what the camera saw. Raw
video never leaves the box: segments are written here, cut into clips here, and deleted
when they pass the retention (7 days in the design) or the disk cap, oldest first.

Segments are MP4 files of `segment_s` seconds named by camera and start time in unix
milliseconds on the runtime's clock, the same clock store events carry, so a session's
entered_at..exited_at finds its video."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import structlog

from mesh.config import Settings

log = structlog.get_logger("gaitpay.edge.video")
_FOURCC = cv2.VideoWriter_fourcc(*"mp4v")


@dataclass(frozen=True)
class BufferPolicy:
    retention_s: float
    max_bytes: int = 20 * 1024**3
    segment_s: float = 60.0
    # Evidence for a dispute needs to show who took what, not gait: 10 frames/s at 1280 px
    # wide is plenty, and costs a fraction of the disk and CPU of the camera's full stream.
    max_fps: float = 10.0
    max_width: int = 1280


@dataclass(frozen=True)
class Segment:
    path: Path
    camera_id: str
    start: float  # unix seconds
    fps: float

    @classmethod
    def parse(cls, path: Path) -> "Segment | None":
        try:  # <start ms>_<fps x 1000>.mp4 inside the camera's folder
            start_ms, fps_milli = path.stem.split("_")
            return cls(path, path.parent.name, int(start_ms) / 1000, int(fps_milli) / 1000)
        except ValueError:
            return None


class VideoBuffer:
    """Segments under `folder/<camera>/`; one writer per camera (each camera's thread writes
    its own), pruning shared under a lock."""

    def __init__(self, folder: Path, policy: BufferPolicy) -> None:
        self.folder = folder
        self.policy = policy
        self._writers: dict[str, tuple[cv2.VideoWriter, float, Path]] = {}
        self._due: dict[str, float] = {}  # camera -> when its next kept frame is due
        self._lock = threading.Lock()

    def write(self, camera_id: str, frame: np.ndarray, at: float, fps: float) -> None:
        """Offer a camera's frame; kept at the policy's frame rate and width."""
        rate = min(fps, self.policy.max_fps)
        current = self._writers.get(camera_id)
        if current is None or at - current[1] >= self.policy.segment_s:
            if current is not None:
                current[0].release()
            self.prune(at)
            current = self._open(camera_id, frame, at, rate)
            self._due[camera_id] = at
        if at + 0.5 / fps < self._due[camera_id]:
            return
        self._due[camera_id] += 1.0 / rate
        current[0].write(self._scaled(frame))

    def _size(self, frame: np.ndarray) -> tuple[int, int]:
        """(width, height) a frame is kept at: at most max_width wide, the height even."""
        height, width = frame.shape[:2]
        if width <= self.policy.max_width:
            return width, height
        return self.policy.max_width, round(height * self.policy.max_width / width / 2) * 2

    def _scaled(self, frame: np.ndarray) -> np.ndarray:
        size = self._size(frame)
        if size == (frame.shape[1], frame.shape[0]):
            return frame
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def _open(self, camera_id: str, frame: np.ndarray, at: float, fps: float) -> tuple[cv2.VideoWriter, float, Path]:
        folder = self.folder / camera_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{int(at * 1000)}_{int(round(fps * 1000))}.mp4"
        writer = cv2.VideoWriter(str(path), _FOURCC, fps, self._size(frame))
        if not writer.isOpened():
            raise OSError(f"cannot write dispute video to {path}")
        self._writers[camera_id] = (writer, at, path)
        return self._writers[camera_id]

    def close(self, camera_id: str) -> None:
        self._due.pop(camera_id, None)
        current = self._writers.pop(camera_id, None)
        if current is not None:
            current[0].release()

    def segments(self, camera_id: str | None = None) -> list[Segment]:
        folders = [self.folder / camera_id] if camera_id else [p for p in self.folder.glob("*") if p.is_dir()]
        found = [Segment.parse(p) for folder in folders for p in folder.glob("*.mp4")]
        return sorted((s for s in found if s is not None), key=lambda s: s.start)

    def prune(self, now: float) -> int:
        """Deletes segments past the retention, then the oldest while over the disk cap; never
        a segment being written. Returns how many were deleted."""
        with self._lock:
            open_paths = {w[2] for w in self._writers.values()}
            kept, deleted = [], 0
            for segment in self.segments():
                if segment.path in open_paths:
                    continue
                if now - segment.start > self.policy.retention_s + self.policy.segment_s:
                    segment.path.unlink(missing_ok=True)
                    deleted += 1
                else:
                    kept.append(segment)
            total = sum(s.path.stat().st_size for s in kept)
            for segment in kept:
                if total <= self.policy.max_bytes:
                    break
                total -= segment.path.stat().st_size
                segment.path.unlink(missing_ok=True)
                deleted += 1
        if deleted:
            log.info("video.pruned", segments=deleted)
        return deleted

    def clip(self, camera_id: str, start: float, end: float, out: Path) -> int:
        """Writes the camera's frames between start and end (unix seconds) to `out`; returns
        the number of frames (0: nothing kept for that time)."""
        writer, frames = None, 0
        try:
            for segment in self.segments(camera_id):
                if segment.start > end:
                    break
                capture = cv2.VideoCapture(str(segment.path))
                index = 0
                while True:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    at = segment.start + index / segment.fps
                    index += 1
                    if at < start:
                        continue
                    if at > end:
                        break
                    if writer is None:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        writer = cv2.VideoWriter(str(out), _FOURCC, segment.fps, (frame.shape[1], frame.shape[0]))
                    writer.write(frame)
                    frames += 1
                capture.release()
        finally:
            if writer is not None:
                writer.release()
        return frames


def from_settings(settings: Settings) -> VideoBuffer | None:
    """The dispute buffer the settings ask for, or None (retention 0: no video is kept)."""
    if settings.edge_video_retention_h <= 0:
        return None
    return VideoBuffer(settings.edge_state / "video",
                       BufferPolicy(settings.edge_video_retention_h * 3600, settings.edge_video_max_mb * 1024**2))
