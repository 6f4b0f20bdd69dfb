"""Cameras on one floor plan: calibration from four taped points, and one shopper across
cameras, merged only when nobody else could be meant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.domain.floor import FloorCalibration, ShopperFusion


def pinhole(height_m: float, tilt_deg: float, x_m: float, yaw_deg: float):
    """A camera `height_m` above the floor at (x_m, 0), looking along +y turned by yaw and
    tilted down by tilt: floor (x, y) metres -> normalised image point (or None behind it)."""
    tilt, yaw = np.radians(tilt_deg), np.radians(yaw_deg)
    # world -> camera: camera x right, y down, z forward
    forward = np.array([np.sin(yaw) * np.cos(tilt), np.cos(yaw) * np.cos(tilt), -np.sin(tilt)])
    right = np.array([np.cos(yaw), -np.sin(yaw), 0.0])
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    centre = np.array([x_m, 0.0, height_m])
    focal = 0.6  # normalised focal length (a wide lens)

    def project(point):
        c = rotation @ (np.array([point[0], point[1], 0.0]) - centre)
        if c[2] <= 0.1:
            return None
        return np.array([0.5 + focal * c[0] / c[2], 0.5 + focal * c[1] / c[2]])

    return project


def calibrate(project, floor_points) -> FloorCalibration:
    image = [tuple(project(p)) for p in floor_points]
    return FloorCalibration(tuple(image), tuple(tuple(p) for p in floor_points))


TAPE = [(1.0, 3.0), (3.0, 3.0), (3.0, 6.0), (1.0, 6.0)]


@settings(max_examples=60, deadline=None)
@given(height=st.floats(2.5, 4.5), tilt=st.floats(25, 60), x=st.floats(0.0, 4.0), yaw=st.floats(-20, 20),
       px=st.floats(0.5, 3.5), py=st.floats(2.5, 7.0))
def test_a_calibrated_camera_puts_a_foot_point_where_it_is_on_the_floor(height, tilt, x, yaw, px, py) -> None:
    project = pinhole(height, tilt, x, yaw)
    image = [project(p) for p in TAPE + [(px, py)]]
    if any(p is None or not ((0 <= p) & (p <= 1)).all() for p in image):
        return  # the tape or the point is out of this camera's view: nothing to check
    calibration = calibrate(project, TAPE)
    assert np.linalg.norm(calibration.to_floor(image[-1]) - np.array([px, py])) < 0.01


def test_a_calibration_that_cannot_be_used_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="four or more"):
        FloorCalibration(((0.1, 0.1), (0.2, 0.2), (0.3, 0.1)), ((0, 0), (1, 1), (2, 0)))
    with pytest.raises(ValueError, match="inside the image"):
        FloorCalibration(((0.1, 0.1), (1.2, 0.2), (0.3, 0.9), (0.1, 0.9)), ((0, 0), (1, 0), (1, 1), (0, 1)))
    with pytest.raises(ValueError, match="degenerate"):
        FloorCalibration(((0.1, 0.1), (0.2, 0.2), (0.3, 0.3), (0.4, 0.4)), ((0, 0), (1, 1), (2, 2), (3, 3)))


def walk(start, end, t0, seconds, fps=10.0):
    for i in range(int(seconds * fps) + 1):
        f = i / (seconds * fps)
        yield t0 + i / fps, np.array(start) + f * (np.array(end) - np.array(start))


def test_one_shopper_walking_from_one_camera_into_another_is_one_shopper() -> None:
    fusion = ShopperFusion("run")
    rng = np.random.default_rng(3)
    seen = set()
    for t, where in walk((0, 0), (6, 0), 0.0, 6.0):
        seen.add(fusion.shopper("a", "1", where + rng.normal(0, 0.05, 2), t))
        if where[0] >= 3.0:  # camera b's view starts at x = 3 m; its own tracker numbers her 7
            seen.add(fusion.shopper("b", "7", where + rng.normal(0, 0.1, 2), t))
    assert seen == {"run-s1"} and fusion.merged == 1


def test_a_camera_reporting_late_is_compared_with_the_same_moment() -> None:
    fusion = ShopperFusion("run")
    for t, where in walk((0, 0), (6, 0), 0.0, 4.0):
        fusion.shopper("a", "1", where, t)
    # Camera b's thread is two seconds behind: it reports t = 2.0 when a is already at t = 4.
    assert fusion.shopper("b", "3", np.array([3.0, 0.05]), 2.0) == "run-s1"


def test_two_shoppers_side_by_side_are_never_merged_into_each_other() -> None:
    fusion = ShopperFusion("run")
    for t, where in walk((0, 0), (4, 0), 0.0, 3.0):
        fusion.shopper("a", "1", where, t)
        fusion.shopper("a", "2", where + np.array([0.0, 0.4]), t)
    # Camera b picks up someone between the two: either could be meant, so neither is.
    newcomer = fusion.shopper("b", "9", np.array([4.0, 0.2]), 3.0)
    assert newcomer not in {"run-s1", "run-s2"} and fusion.merged == 0
    # Far away, or long after: a new shopper too.
    assert fusion.shopper("b", "10", np.array([9.0, 9.0]), 3.0) == "run-s4"
    assert fusion.shopper("c", "1", np.array([4.0, 0.0]), 9.0) == "run-s5"


def test_a_track_keeps_its_shopper_and_uncalibrated_cameras_never_merge() -> None:
    fusion = ShopperFusion("run")
    first = fusion.shopper("a", "1", np.array([1.0, 1.0]), 0.0)
    assert fusion.shopper("a", "1", np.array([1.2, 1.0]), 0.1) == first
    assert fusion.shopper("a", "1", None, 0.2) == first  # a lookup by track
    assert fusion.shopper("u", "1", None, 0.2) != first  # no floor position, no merge
    # The camera loses her and finds her again as a new track where she was: the same shopper.
    fusion.ended("a", "1")
    assert fusion.shopper("a", "5", np.array([1.3, 1.0]), 0.6) == first
    assert fusion.merged == 0  # nobody else was seeing her: a re-acquisition, not a merge
