"""What body measures look like from real store cameras: calibrated by hand, watching
people in whatever shoes they wore that day.

A camera's calibration (`edge.domain.floor.FloorCalibration`: tape marks on the floor) is
never exact. The errors below are those of a careful installation: the camera's height known
to a few centimetres, its tilt to half a degree, its roll to a third, its focal length to 2%.
At 4 m a half-degree tilt moves a ray by 3.5 cm, about the spread of one person's heights.
Shoes lift the whole body: flat shoes differ by up to 3 cm between days, and one walk in
twenty is in heels (3-7 cm more).

Calibration errors and footwear are drawn from a generator of their own, so the walks (and
the training data rendered with them) are the same with or without body measures.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from gait.body import CameraModel, measure
from gait.synth.dataset import SeenWalk

HEIGHT_ERROR_M = 0.02
TILT_ERROR_DEG = 0.25
ROLL_ERROR_DEG = 0.2
FOCAL_ERROR = 0.01


def installed(camera: CameraModel, rng: np.random.Generator) -> CameraModel:
    """The camera as its installer calibrated it: the true one, a little off."""
    centre = camera.centre.copy()
    centre[1] += rng.normal(0, HEIGHT_ERROR_M)
    # Tilt turns about the camera's own x axis, roll about its optical axis.
    error = Rotation.from_euler("xz", [rng.normal(0, TILT_ERROR_DEG), rng.normal(0, ROLL_ERROR_DEG)],
                                degrees=True).as_matrix()
    rotation = error @ camera.R
    K = camera.K.copy()
    scale = rng.lognormal(0, FOCAL_ERROR)
    K[0, 0] *= scale
    K[1, 1] *= scale
    return CameraModel(K, rotation, -rotation @ centre, camera.width, camera.height, camera.mirrored)


def footwear_m(rng: np.random.Generator) -> float:
    """How much this walk's shoes lift the walker."""
    lift = rng.uniform(0.0, 0.03)
    if rng.random() < 0.05:
        lift += rng.uniform(0.03, 0.07)
    return float(lift)


def measured(seen: SeenWalk, rng: np.random.Generator, footwear: float | None = None) -> np.ndarray | None:
    """The body measures an installed camera takes of this walk, or None (see gait.body.measure).
    footwear: the lift of the shoes worn (one pair for a whole visit); None draws a pair for
    this walk."""
    result = measure(seen.walk, installed(seen.camera, rng))
    lift = footwear_m(rng) if footwear is None else footwear
    return None if result is None else result.values + np.float32(lift)
