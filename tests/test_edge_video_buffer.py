"""The dispute buffer: segments on the edge box, clips cut by time, and nothing kept past
the retention or the disk cap."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.adapters.video_buffer import BufferPolicy, VideoBuffer

T0 = 1_764_000_000.0  # a moment in 2025, on the runtime's clock


def frame(i: int) -> np.ndarray:
    """A frame whose number is written in 8 black or white bars, readable after lossy encoding."""
    image = np.zeros((96, 128, 3), dtype=np.uint8)
    for bit in range(8):
        if i >> bit & 1:
            image[:, bit * 16:(bit + 1) * 16] = 255
    return image


def number(image: np.ndarray) -> int:
    return sum(1 << bit for bit in range(8) if image[:, bit * 16 + 4:(bit + 1) * 16 - 4].mean() > 128)


def record(buffer: VideoBuffer, seconds: float, fps: float = 10.0, start: float = T0) -> None:
    for i in range(int(seconds * fps)):
        buffer.write("door", frame(i), start + i / fps, fps)
    buffer.close("door")


def test_video_is_kept_in_segments_and_a_clip_holds_exactly_the_asked_time(tmp_path: Path) -> None:
    buffer = VideoBuffer(tmp_path, BufferPolicy(retention_s=3600, segment_s=2.0))
    record(buffer, 7.0)
    segments = buffer.segments("door")
    assert [round(s.start - T0, 1) for s in segments] == [0.0, 2.0, 4.0, 6.0]
    out = tmp_path / "clip.mp4"
    frames = buffer.clip("door", T0 + 3.0, T0 + 4.95, out)
    assert frames == 20  # 3.0 .. 4.9 s at 10 frames/s, across two segments
    capture = cv2.VideoCapture(str(out))
    first_ok, first = capture.read()
    assert first_ok and number(first) == 30, "the clip starts at frame 30"
    rest = []
    while (read := capture.read())[0]:
        rest.append(number(read[1]))
    assert rest == list(range(31, 50)), "and runs on, in order and without a gap, to frame 49"
    assert buffer.clip("door", T0 + 100, T0 + 110, tmp_path / "none.mp4") == 0


def test_segments_past_the_retention_or_over_the_disk_cap_are_deleted_oldest_first(tmp_path: Path) -> None:
    buffer = VideoBuffer(tmp_path, BufferPolicy(retention_s=4.0, segment_s=2.0))
    record(buffer, 10.0)  # segments at 0, 2, 4, 6, 8 s; each new one prunes
    starts = [round(s.start - T0) for s in buffer.segments("door")]
    assert starts == [2, 4, 6, 8], "the segment ended more than the retention before the last opened is gone"
    assert buffer.prune(T0 + 60) == 4 and buffer.segments() == []

    capped = VideoBuffer(tmp_path / "capped", BufferPolicy(retention_s=3600, segment_s=2.0))
    record(capped, 8.0)
    sizes = [s.path.stat().st_size for s in capped.segments("door")]
    small = VideoBuffer(tmp_path / "capped", BufferPolicy(retention_s=3600, max_bytes=sum(sizes[-2:]), segment_s=2.0))
    assert small.prune(T0 + 8) == 2
    assert [round(s.start - T0) for s in small.segments("door")] == [4, 6]


def test_a_full_hd_camera_is_kept_at_ten_frames_a_second_and_1280_wide(tmp_path: Path) -> None:
    buffer = VideoBuffer(tmp_path, BufferPolicy(retention_s=3600, segment_s=60.0))
    for i in range(90):  # three seconds of a 30 frames/s 1080p camera
        buffer.write("door", cv2.resize(frame(i), (1920, 1080), interpolation=cv2.INTER_NEAREST), T0 + i / 30, 30.0)
    buffer.close("door")
    (segment,) = buffer.segments("door")
    assert segment.fps == 10.0
    capture = cv2.VideoCapture(str(segment.path))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    kept = []
    while (read := capture.read())[0]:
        kept.append(number(cv2.resize(read[1], (128, 96), interpolation=cv2.INTER_AREA)))
    assert kept == list(range(0, 90, 3)), "every third frame, on time"
