"""Body measures on their way through the mesh: taken at the edge from a calibrated camera,
carried on the window and in the hot cache, refused when impossible."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from edge.adapters.hot_cache import device_key, open_cache
from edge.adapters.matcher_link import keypoint_window
from edge.domain.floor import FloorCalibration
from edge.domain.offline import HotCache, HotCacheGallery
from edge.domain.windows import CutWindow
from edge.runtime import BodyMeter, CameraConfig
from gait.body import CameraModel, measure
from gait.protection import CancelableTransform
from gait.synth.camera import Camera, observe_mirrored, walker_to_world
from gait.synth.walker import sample_person, simulate
from gait.walk import Walk
from gaitpay.matcher.v1 import matcher_pb2
from matcher.grpc_api import window_from_proto
from mesh import body_measures, sealing, validation

OVERHEAD = Camera(np.array([0.5, 3.0, -1.0]), np.array([0.0, 0.0, 4.0]), 1000.0, 1280, 720)


def _calibrated(camera: Camera) -> tuple[CameraConfig, CameraModel]:
    truth = CameraModel.look_at(camera.position, camera.target, camera.focal_px, camera.width, camera.height)
    tape = np.array([[-1.0, 0.0, 3.0], [1.5, 0.0, 3.0], [1.5, 0.0, 6.0], [-1.0, 0.0, 6.0]])
    image = truth.project(tape) / [camera.width, camera.height]
    floor = FloorCalibration(tuple(map(tuple, image)), tuple(map(tuple, tape[:, [0, 2]])))
    return CameraConfig("aisle", "unused.mp4", floor=floor), truth


def test_the_edge_measures_a_window_from_a_calibrated_camera_as_the_true_camera_would() -> None:
    config, truth = _calibrated(OVERHEAD)
    rng = np.random.default_rng(3)
    joints = simulate(sample_person(rng), 3.0, 30.0, rng)
    keypoints, _ = observe_mirrored(walker_to_world(joints, 0.0, np.array([0.0, 0.0, 2.5])), OVERHEAD, rng,
                                    noise=1.0, mirror=False)
    window = CutWindow(0, keypoints.astype(np.float32), 0, len(keypoints) - 1, 0.9)
    measured = BodyMeter.of(config, OVERHEAD.width, OVERHEAD.height).measured(window, 30.0)
    exact = measure(Walk(keypoints.astype(np.float32), 30.0), truth)
    assert exact is not None and measured.body is not None
    assert np.abs(measured.body - exact.values).max() < 1e-3
    # The window message carries them, and the matcher reads them back.
    message = keypoint_window("s", "aisle", "t1", 0, keypoints[:, :17], 30.0, body=measured.body)
    assert not validation.violations(message)
    assert np.allclose(window_from_proto(message).body, measured.body)
    unmeasured = keypoint_window("s", "aisle", "t1", 1, keypoints[:, :17], 30.0)
    assert window_from_proto(unmeasured).body is None


def test_a_calibration_that_holds_no_camera_measures_nothing_and_loses_nothing() -> None:
    flat = FloorCalibration(((0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)),
                            ((0.0, 0.0), (4.0, 0.0), (4.0, 3.0), (0.0, 3.0)))  # a plan view: no perspective
    meter = BodyMeter.of(CameraConfig("top", "unused.mp4", floor=flat), 640, 480)
    window = CutWindow(0, np.zeros((10, 23, 3), np.float32), 0, 9, 0.5)
    assert meter.camera is None and meter.measured(window, 30.0) is window
    assert "does not determine a focal length" in meter.why_not


@pytest.mark.parametrize("shoulder, hip", [(1.40, 1.45), (3.0, 1.0), (1.4, 0.1)])
def test_impossible_measures_are_a_precise_validation_error(shoulder: float, hip: float) -> None:
    message = keypoint_window("s", "c", "t", 0, np.ones((5, 17, 3), np.float32), 30.0,
                              body=np.array([shoulder, hip]))
    broken = validation.violations(message)
    assert broken and all(path.startswith("body") for path, _ in broken), broken


def test_the_hot_cache_carries_each_customer_s_body_to_the_edge(tmp_path) -> None:
    key = device_key(tmp_path / "device.key")
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(2, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cache = matcher_pb2.HotCache(store_id="s", query_transform_secret=os.urandom(32), model_version="m")
    cache.expires_at.FromNanoseconds(int((time.time() + 600) * 1e9))
    measured = cache.customers.add(customer_id="measured")
    body_measures.to_proto(np.array([1.47, 0.96]), measured.templates.add(template_id="a", values=vectors[0].tolist()))
    cache.customers.add(customer_id="unmeasured").templates.add(template_id="b", values=vectors[1].tolist())
    sealed = sealing.seal(cache.SerializeToString(), public, b"s", sealing.HOT_CACHE_INFO)
    opened = open_cache(matcher_pb2.ExportHotCacheResponse(sealed_templates=sealed.box,
                                                           ephemeral_public_key=sealed.ephemeral_public_key),
                        key, "s", time.time())
    hits = {hit[0]: hit for hit in HotCacheGallery(opened).search(vectors[0] + vectors[1], "s", 2)}
    assert np.allclose(hits["measured"].body, [1.47, 0.96]) and hits["unmeasured"].body is None
    assert HotCacheGallery(HotCache("s", "m", ("x",), vectors[:1], CancelableTransform(os.urandom(32), 0, 16),
                                    0.0, 1e12)).search(vectors[0], "s", 1)[0].body is None
