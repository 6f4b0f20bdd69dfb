"""The edge's vision on real walking video (shared/data/README.md) and its model files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from edge.vision.pose import LandmarkModel, PoseDetector
from edge.vision.tracker import PersonTracker, TrackerConfig
from gaitpay_cli.real_videos import opencv_vtest, sports2d_demo

ROOT = Path(__file__).resolve().parents[1]
WOMAN_IN_VIEW = range(38, 208)  # frames where the walker is fully in view (shared/data/README.md)


def _track(path: Path, config: TrackerConfig, max_frames: int | None = None):
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    tracker = PersonTracker(PoseDetector(), LandmarkModel(), fps, config)
    frames = 0
    while max_frames is None or frames < max_frames:
        ok, image = capture.read()
        if not ok:
            break
        tracker.update(image)
        frames += 1
    capture.release()
    return tracker.close(), frames, tracker


def test_the_walking_woman_is_one_track_with_sane_keypoints() -> None:
    tracks, frames, _ = _track(sports2d_demo(), TrackerConfig())
    assert frames == 230

    def walked(t) -> float:  # how far across the frame the feet travelled (px)
        feet = np.stack(t.keypoints)[:, [15, 16], 0].mean(axis=1)
        return float(feet.max() - feet.min()) if len(feet) else 0.0

    woman = max(tracks, key=walked)
    assert walked(woman) > 800, "the side-on walker should cross most of the 1768 px frame"
    covered = set(woman.frames) & set(WOMAN_IN_VIEW)
    assert len(covered) / len(WOMAN_IN_VIEW) >= 0.9, f"one track covers {len(covered)} of {len(WOMAN_IN_VIEW)} frames"
    k = np.stack(woman.keypoints)  # image y grows downwards
    hips = k[:, [11, 12], 1].mean(axis=1)
    knees, ankles = k[:, [13, 14], 1], k[:, [15, 16], 1]
    assert (knees > hips[:, None]).all(), "a knee above the hips"
    assert (ankles > knees).all(), "an ankle above its knee"
    assert k[:, 5:17, 2].mean() > 0.7


def test_pedestrians_in_vtest_become_tracks_long_enough_for_a_gait_window() -> None:
    tracks, frames, _ = _track(opencv_vtest(), TrackerConfig(tile_fraction=0.34), max_frames=250)
    assert frames == 250
    window_frames = 20  # WindowSpec's 2 s at vtest's 10 fps
    long_enough = [t for t in tracks if len(t.frames) >= window_frames]
    assert len(long_enough) >= 4, f"only {len(long_enough)} tracks of >= {window_frames} frames"
    for t in long_enough:
        k = np.stack(t.keypoints)
        assert (k[:, [15, 16], 1].mean(axis=1) > k[:, [11, 12], 1].mean(axis=1)).mean() > 0.95


def test_the_model_files_are_what_the_script_makes(tmp_path: Path) -> None:
    """tools/pose_models.py rebuilds the committed ONNX files byte for byte from the
    MediaPipe wheel, and ONNX Runtime agrees with LiteRT on the originals."""
    made = subprocess.run([sys.executable, str(ROOT / "tools" / "pose_models.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stdout + made.stderr
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    for name in ("pose_detection", "pose_landmark_full"):
        ours = hashlib.sha256((ROOT / "edge" / "models" / f"{name}.onnx").read_bytes()).hexdigest()
        assert manifest["models"][name]["onnx_sha256"] == ours
        assert max(manifest["models"][name]["max_relative_difference"].values()) < 1e-3


def test_two_calibrated_cameras_seeing_the_walker_report_her_entry_and_exit_as_one_shopper(tmp_path: Path) -> None:
    """The clip played as two cameras on one floor plan (the same calibration: they see the
    same floor): the entry line is on one, the exit line on the other, and both crossings
    name one shopper, as does her crossing of an aisle's line on the first. Nothing is reachable: the events stay in the queue."""
    import asyncio

    from edge.domain.floor import FloorCalibration
    from edge.domain.zones import Line
    from edge.runtime import CameraConfig, EdgeRuntime
    from gaitpay.billing.v1 import billing_pb2
    from mesh import config

    floor = FloorCalibration(((0.0, 1.0), (1.0, 1.0), (1.0, 0.5), (0.0, 0.5)), ((0, 0), (8, 0), (8, 10), (0, 10)))
    cameras = [CameraConfig("door-in", str(sports2d_demo()), entry=Line.parse("entry", "0.75,1,0.75,0"), floor=floor,
                            zones=(Line.parse("aisle-1", "0.5,1,0.5,0"),)),
               CameraConfig("door-out", str(sports2d_demo()), exit=Line.parse("exit", "0.25,1,0.25,0"), floor=floor)]
    settings = config.load({}, home=tmp_path, tls=False)
    runtime = EdgeRuntime(settings, cameras, tmp_path / "queue.sqlite3", billing_address="127.0.0.1:9",
                          matcher_address="127.0.0.1:9", offline=False)
    try:
        report = asyncio.run(runtime.run(flush_s=0.5))
        events = runtime.queue.pending()
    finally:
        runtime.close()
    assert report.tracks_merged_across_cameras >= 1
    crossings = {(e.camera_id, e.kind): e.track_id for e in events}
    entry = crossings[("door-in", billing_pb2.STORE_EVENT_KIND_ENTRY)]
    exit_ = crossings[("door-out", billing_pb2.STORE_EVENT_KIND_EXIT)]
    assert entry == exit_, "the two cameras' crossings name one shopper"
    zone = [e for e in events if e.kind == billing_pb2.STORE_EVENT_KIND_ZONE]
    assert [(z.zone, z.track_id) for z in zone] == [("aisle-1", entry)], "she passed the aisle's mouth once"
    assert len(events) == 3
