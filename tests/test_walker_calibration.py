"""tools/walker_calibration.py: its measures read back what the walker was given, and its
floor frame puts the real walkers' feet on the floor."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gait.datasets import ucalgary
from gait.synth.walker import sample_person, simulate

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("walker_calibration", ROOT / "tools" / "walker_calibration.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["walker_calibration"] = module
    spec.loader.exec_module(module)
    return module


def test_measures_read_back_the_walkers_cadence_and_posture() -> None:
    tool = _tool()
    rng = np.random.default_rng(5)
    base = sample_person(rng)
    for cadence, trunk_deg, elbow_deg in ((96.0, 2.0, 15.0), (118.0, 9.0, 35.0)):
        person = replace(base, cadence=cadence, trunk_lean=np.deg2rad(trunk_deg), elbow_flexion=np.deg2rad(elbow_deg),
                         elbow_swing=0.0, trunk_side_lean=0.0)
        m = tool.measures(tool.synthetic_body(simulate(person, 3.0, 30.0, rng, start_phase=0.0)), 30.0)
        assert abs(m[4] - cadence) < 5  # the spectrum's bins are 3.5 steps/min apart
        assert abs(m[1] - trunk_deg) < 1.5
        assert abs(m[0] - elbow_deg) < 1.0


def test_the_real_walkers_stand_on_the_floor_and_walk_forward() -> None:
    root = ucalgary.default_root()
    if not root.exists():
        pytest.skip("no UCalgary development data here")
    tool = _tool()
    camera = ucalgary.installation_camera(root)
    path = sorted(root.glob("sub8/Run1/*_N.csv"))[0]
    floor = tool.walking_frame(ucalgary.read_csv(path), camera)
    ankles = floor[:, [ucalgary.KINECT.index("AnkleL"), ucalgary.KINECT.index("AnkleR")], 1].min(axis=1)
    head = floor[:, ucalgary.KINECT.index("Head"), 1]
    pelvis = floor[:, ucalgary.KINECT.index("SpineBase")]
    assert 0.0 < np.median(ankles) < 0.15
    assert 1.2 < np.median(head) < 1.9
    assert pelvis[-1, 2] - pelvis[0, 2] > 2.0  # about 4.4 m away to under 1 m


def test_the_table_has_every_measure_for_both_populations() -> None:
    tool = _tool()
    walks = tool.synthetic_walks(12)
    mean, between, within = tool.spreads(walks)
    assert mean.shape == between.shape == within.shape == (len(tool.MEASURES),)
    assert np.all(between > 0) and np.all(within > 0)


def test_leg_motion_reads_back_the_walkers_knee_and_hip_ranges() -> None:
    tool = _tool()
    rng = np.random.default_rng(9)
    person = replace(sample_person(rng), asym_knee=0.0, asym_hip=0.0)

    def motion(walker):  # type: ignore[no-untyped-def]
        return [tool.leg_motion(tool.synthetic_body(simulate(walker, 3.0, 30.0, rng)), 30.0)]

    normal = motion(person)
    stiff_knees = motion(replace(person, knee_swing=person.knee_swing * 0.7))
    small_hips = motion(replace(person, hip_amplitude=person.hip_amplitude * 0.8))
    knees = tool.abnormal_ratios(normal, stiff_knees, "right")
    hips = tool.abnormal_ratios(normal, small_hips, "left")
    assert knees[0] < 0.85 and knees[1] < 0.85  # both knees bend less
    assert abs(knees[2] - 1) < 0.06 and abs(knees[3] - 1) < 0.06  # the hips do not change
    assert abs(hips[2] - 0.8) < 0.06 and abs(hips[3] - 0.8) < 0.06


def test_the_abnormal_table_has_both_sides_for_both_populations() -> None:
    tool = _tool()
    ratios = tool.synthetic_abnormal(6)
    assert set(ratios) == {"abnormal_right", "abnormal_left"}
    for values in ratios.values():
        assert values.shape == (len(tool.LEG_MEASURES),) and np.all(values > 0)
        assert values[0] < 1  # the affected knee bends less, whatever the walker's limp


def test_the_stiff_walker_stiffens_both_legs_as_the_real_abnormal_walkers_do() -> None:
    # The real AR/AL walkers bend both knees and swing both hips less (0.69-0.84 of their
    # normal walks); the limp bends the other knee more (1.23), which no real walker did.
    tool = _tool()
    limp = tool.synthetic_abnormal(40, abnormality="limp")
    assert all(values[1] > 1.1 for values in limp.values())  # the limp's other knee, as measured
    ratios = tool.synthetic_abnormal(40, abnormality="stiff")
    for values in ratios.values():
        affected_knee, other_knee, affected_hip, other_hip, cadence = values
        assert 0.65 < affected_knee < 0.9 and 0.65 < other_knee < 0.95
        assert 0.65 < affected_hip < 0.95 and 0.65 < other_hip < 0.95
        assert affected_knee < other_knee  # the affected side a little stiffer still
        assert 0.85 < cadence < 1.02
