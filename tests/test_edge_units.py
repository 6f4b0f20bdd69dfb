"""Edge domain and adapters without video: lines, windows, the durable queue, geometry."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given, settings, strategies as st

from edge.adapters.event_queue import EventQueue
from edge.domain.windows import WindowCutter, WindowSpec
from edge.domain.zones import Line, foot_point
from edge.vision.pose import Region, detector_anchors
from edge.vision.tracker import tiles
from gaitpay.billing.v1 import billing_pb2


def test_detector_anchors_match_the_models_output_rows() -> None:
    anchors = detector_anchors()
    assert anchors.shape == (2254, 2)
    assert anchors.min() > 0 and anchors.max() < 1


@given(st.floats(50, 1500), st.floats(50, 900), st.floats(40, 900), st.floats(-3.1, 3.1))
@settings(max_examples=50, deadline=None)
def test_region_affine_puts_the_centre_in_the_middle_and_inverts(cx: float, cy: float, size: float, angle: float) -> None:
    import cv2

    region = Region(cx, cy, size, angle)
    m = region.affine(256)
    centre = m[:, :2] @ np.array([cx, cy]) + m[:, 2]
    assert np.allclose(centre, [128, 128], atol=1e-2)
    inverse = cv2.invertAffineTransform(m)
    corner = inverse[:, :2] @ np.array([0.0, 0.0]) + inverse[:, 2]
    assert np.hypot(*(corner - [cx, cy])) == pytest.approx(size / np.sqrt(2), rel=1e-3)


def test_an_upright_body_gives_an_unrotated_region() -> None:
    region = Region.from_alignment(np.array([500.0, 600.0]), np.array([500.0, 400.0]))
    assert region.angle == pytest.approx(0.0, abs=1e-9)
    assert region.size == pytest.approx(2 * 200 * 1.25)


def test_tiles_cover_the_whole_frame() -> None:
    windows = tiles(1920, 1080, 0.5)
    covered = np.zeros((1080, 1920), bool)
    for x0, y0, x1, y1 in windows:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tiles(1920, 1080, 0.0) == [(0, 0, 1920, 1080)]


def test_a_line_fires_one_way_only_and_within_its_ends() -> None:
    entry = Line.parse("entry", "0.75,1,0.75,0")  # upwards: its right-hand side is the image's right
    assert entry.crossed(np.array([0.8, 0.5]), np.array([0.7, 0.5]))
    assert not entry.crossed(np.array([0.7, 0.5]), np.array([0.8, 0.5]))
    assert not entry.crossed(np.array([0.8, 0.5]), np.array([0.78, 0.5]))
    short = Line.parse("exit", "0.5,0.6,0.5,0.4")
    assert short.crossed(np.array([0.6, 0.5]), np.array([0.4, 0.5]))
    assert not short.crossed(np.array([0.6, 0.9]), np.array([0.4, 0.9]))


@pytest.mark.parametrize("text", ["1,2,3", "0.5,0.5,0.5,0.5", "0,0,1,1.5", "a,b,c,d"])
def test_a_bad_line_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="entry line"):
        Line.parse("entry", text)


def test_the_foot_point_falls_back_to_the_hips() -> None:
    k = np.zeros((23, 3), np.float32)
    k[11] = [100, 200, 0.9]
    k[12] = [120, 200, 0.9]
    assert np.allclose(foot_point(k, 1000, 1000), [0.11, 0.2])
    k[15] = [100, 300, 0.9]
    k[16] = [140, 300, 0.9]
    assert np.allclose(foot_point(k, 1000, 1000), [0.12, 0.3])
    assert foot_point(np.zeros((23, 3), np.float32), 100, 100) is None


def test_windows_overlap_by_half_and_skip_poor_ones() -> None:
    cutter = WindowCutter(10.0, WindowSpec(seconds=2.0, overlap=0.5, min_quality=0.5))
    good = np.ones((23, 3), np.float32)
    poor = good.copy()
    poor[:, 2] = 0.1
    windows = []
    for frame in range(60):
        windows += cutter.add(frame, poor if 40 <= frame < 60 else good)
    # 20-frame windows every 10 frames: starts 0, 10, 20, 30, 40. 30-49 is half poor (quality
    # 0.55, kept); 40-59 is all poor (0.1, skipped) and takes no sequence number.
    assert [(w.first_frame, w.last_frame) for w in windows] == [(0, 19), (10, 29), (20, 39), (30, 49)]
    assert [w.sequence for w in windows] == [0, 1, 2, 3]
    assert windows[3].quality == pytest.approx(0.55)
    assert windows[0].keypoints.shape == (20, 23, 3)


def _event(event_id: str, kind: int = billing_pb2.STORE_EVENT_KIND_ENTRY) -> billing_pb2.StoreEvent:
    ts = timestamp_pb2.Timestamp()
    ts.FromSeconds(1_800_000_000)
    return billing_pb2.StoreEvent(event_id=event_id, kind=kind, store_id="s", camera_id="c", track_id="t", occurred_at=ts)


def test_the_queue_survives_a_restart_in_order_and_once(tmp_path) -> None:
    path = tmp_path / "queue.sqlite3"
    queue = EventQueue(path)
    for i in range(5):
        assert queue.put(_event(f"e{i}"))
    assert not queue.put(_event("e2"))  # the same observation again: stored once
    queue.ack("e0", duplicate=False, session_id="S")
    queue.close()  # the edge restarts here

    again = EventQueue(path)
    assert [e.event_id for e in again.pending()] == ["e1", "e2", "e3", "e4"]
    assert again.depth() == 4
    again.ack("e1", duplicate=True, session_id="S")
    again.ack("e1", duplicate=False, session_id="S")  # a second ack changes nothing
    assert again.history() == [("e0", billing_pb2.STORE_EVENT_KIND_ENTRY, False, "S"),
                               ("e1", billing_pb2.STORE_EVENT_KIND_ENTRY, True, "S")]
    again.close()
