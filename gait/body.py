"""Body measures in metres from a calibrated camera: how high a walker's shoulders and hips
are above the floor.

The embedding is blind to size on purpose (a walk is normalised by body size, so that the
same person far from a camera and close to it look alike). Yet a store camera is mounted
once and calibrated (`edge.domain.floor.FloorCalibration`: where the floor is in its image),
and with that calibration 2D keypoints give absolute heights: the ray through a walker's
ankles meets the floor where they stand, and the rays through their shoulders and hips pass
over that spot at their heights. People differ by 6-9 cm in these heights; one person's measures vary by 3-4 cm between walks seen by different,
imperfectly calibrated cameras (gait.synth.installation), and by about a centimetre on the
real walkers' single camera. So the measures tell apart people the embedding confuses, and
independently of it, since the embedding never sees size. (The nose was measured too and
left out: it sits ahead of the body's vertical line by an amount that changes with head
pose, so a camera looking down at 45 degrees misplaces it by 4 cm; it added nothing to the
evaluation's figures.)

World frame: metres, y up, the floor at y = 0. Cameras follow OpenCV's pinhole model
(x right, y down, z forward; pixels = K (R X + t)).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from scipy.special import erf

from gait.walk import J, Walk

# Heights measured, in this order.
MEASURES = ("shoulder_height", "hip_height")
# The ankle keypoint sits above the floor (about 4% of stature); a population mean is used:
# a walker's own ankle height differs from it by a centimetre at most, the same in every walk.
ANKLE_HEIGHT_M = 0.07
MIN_FRAMES = 5  # frames with every point needed, for a median worth reporting
MIN_DEPRESSION_DEG = 8.0  # how far below the horizon the camera must see the walker's feet
_POINTS = {
    "shoulder_height": (J["left_shoulder"], J["right_shoulder"]),
    "hip_height": (J["left_hip"], J["right_hip"]),
}
_ANKLES = (J["left_ankle"], J["right_ankle"])
BODY_MODEL_FILE = Path(__file__).with_name("models") / "body-measures.json"


@dataclass(frozen=True)
class CameraModel:
    """A calibrated pinhole camera: intrinsics K [3, 3], rotation R [3, 3] and translation t
    [3] (world -> camera), the image's size, and whether the pose pipeline mirrors the image
    left-right (some do; the keypoints are then in the mirrored image)."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    mirrored: bool = False

    def __post_init__(self) -> None:
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape or not np.isfinite(value).all():
                raise ValueError(f"camera {name} must be a finite {shape} array, got {value.shape}")
            object.__setattr__(self, name, value)
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-6):
            raise ValueError("camera R must be a rotation")
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0 or self.width <= 0 or self.height <= 0:
            raise ValueError("camera focal lengths and image size must be positive")

    @staticmethod
    def look_at(position: np.ndarray, target: np.ndarray, focal_px: float, width: int, height: int,
                mirrored: bool = False) -> "CameraModel":
        """A camera at `position` looking at `target` (world, y up), no roll, principal point
        at the image centre."""
        forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        R = np.stack([right, down, forward])
        K = np.array([[focal_px, 0, width / 2], [0, focal_px, height / 2], [0, 0, 1.0]])
        return CameraModel(K, R, -R @ np.asarray(position, dtype=np.float64), width, height, mirrored)

    @property
    def centre(self) -> np.ndarray:
        return -self.R.T @ self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] -> pixels [..., 2] (in the image the keypoints come from)."""
        cam = points @ self.R.T + self.t
        uv = (cam @ self.K.T)[..., :2] / cam[..., 2:3]
        if self.mirrored:
            uv[..., 0] = self.width - uv[..., 0]
        return uv

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """Unit world directions [..., 3] of the rays through pixels [..., 2]."""
        uv = np.array(pixels, dtype=np.float64)
        if self.mirrored:
            uv[..., 0] = self.width - uv[..., 0]
        homogeneous = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)
        directions = (homogeneous @ np.linalg.inv(self.K).T) @ self.R
        return directions / np.linalg.norm(directions, axis=-1, keepdims=True)


def camera_from_floor(image_to_floor: np.ndarray, width: int, height: int) -> CameraModel:
    """The camera behind a floor calibration: `image_to_floor` maps normalised image points
    (0..1, homogeneous) to floor plan metres, as `edge.domain.floor.FloorCalibration` fits it
    from taped points. The principal point is taken at the image centre and pixels as square,
    which leaves one unknown, the focal length; the homography's two floor axes must be
    perpendicular and of one length in the camera frame, which gives it (least squares over
    both conditions). Raises ValueError when the calibration cannot hold a camera (the floor
    seen straight on, or the points inconsistent). The floor plan becomes the world's x and z
    (mirrored where its axes turn the other way): heights are all the measures use."""
    floor_to_image = np.linalg.inv(np.asarray(image_to_floor, dtype=np.float64))
    cx, cy = width / 2.0, height / 2.0
    to_centred_pixels = np.array([[width, 0.0, -cx], [0.0, height, -cy], [0.0, 0.0, 1.0]])
    b = to_centred_pixels @ floor_to_image
    b /= np.linalg.norm(b[:, :2])
    b1, b2 = b[:, 0], b[:, 1]
    # w = 1/f^2: w (b1x b2x + b1y b2y) + b1z b2z = 0 and w (|b1xy|^2 - |b2xy|^2) + b1z^2 - b2z^2 = 0.
    a = np.array([b1[0] * b2[0] + b1[1] * b2[1], b1[:2] @ b1[:2] - b2[:2] @ b2[:2]])
    c = np.array([b1[2] * b2[2], b1[2] ** 2 - b2[2] ** 2])
    w = -(a @ c) / (a @ a) if a @ a > 0 else 0.0
    if not w > 0 or not np.isfinite(w):
        raise ValueError("this floor calibration does not determine a focal length (is the floor seen straight on?)")
    focal = 1.0 / np.sqrt(w)
    m = np.diag([1.0 / focal, 1.0 / focal, 1.0]) @ b
    scale = 0.5 * (np.linalg.norm(m[:, 0]) + np.linalg.norm(m[:, 1]))
    axis_x, axis_z, origin = m[:, 0] / scale, m[:, 1] / scale, m[:, 2] / scale
    # The sign of a homography is free: the floor at the bottom of the image is in front.
    seen = np.linalg.inv(floor_to_image) @ np.array([0.5, 1.0, 1.0])
    if (axis_x * seen[0] / seen[2] + axis_z * seen[1] / seen[2] + origin)[2] < 0:
        axis_x, axis_z, origin = -axis_x, -axis_z, -origin
    axis_y = np.cross(axis_z, axis_x)
    if axis_y @ origin > 0:  # the camera would be under the floor: the plan's axes turn the other way
        axis_z, axis_y = -axis_z, -axis_y
    u, _, vt = np.linalg.svd(np.stack([axis_x, axis_y, axis_z], axis=1))
    rotation = u @ vt
    K = np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
    return CameraModel(K, rotation, origin, width, height)


def standing_points(camera: CameraModel, ankles: np.ndarray) -> np.ndarray:
    """Where a walker's body is over the floor [T, 3] (y = 0) from both ankles' pixels
    [T, 2, 2] (NaN where missing). Each ankle's ray meets the plane at ankle height; the
    foot on the floor is the one that stays put (a swinging foot moves at twice the walking
    speed, and a lifted one's ray meets the plane beyond it). Those footprints alternate
    under a body that moves smoothly between them: the body's path is a quadratic in time
    fitted to them (all NaN when fewer than 3 footprints were found)."""
    rays = camera.rays(ankles)
    c = camera.centre
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (ANKLE_HEIGHT_M - c[1]) / rays[..., 1]
    s = np.where(s > 0, s, np.nan)
    feet = c + s[..., None] * rays  # [T, 2, 3]
    steady = _moving_mean(feet, 5)
    motion = np.full(feet.shape[:2], np.inf)
    motion[1:-1] = np.linalg.norm(steady[2:] - steady[:-2], axis=-1)
    motion = np.where(np.isfinite(motion), motion, np.inf)
    planted = steady[np.arange(len(feet)), np.argmin(motion, axis=1)]
    path = np.full_like(planted, np.nan)
    found = np.isfinite(planted).all(axis=1)
    if found.sum() >= 3:
        t = np.arange(len(planted), dtype=np.float64)
        for axis in (0, 2):
            path[:, axis] = np.polyval(np.polyfit(t[found], planted[found, axis], 2), t)
        path[:, 1] = 0.0
    return path


def _moving_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Centred mean over `width` frames along axis 0, ignoring NaN (NaN where all are)."""
    known = np.isfinite(values)
    padded = np.where(known, values, 0.0)
    kernel = np.ones(width)

    def smooth(v: np.ndarray) -> np.ndarray:
        return np.apply_along_axis(lambda x: np.convolve(x, kernel, mode="same"), 0, v)

    with np.errstate(invalid="ignore", divide="ignore"):
        return smooth(padded) / smooth(known.astype(np.float64))


def heights_above(camera: CameraModel, spots: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Height [T] of the point on the vertical line through each spot [T, 3] that comes closest
    to the ray through each pixel [T, 2]: how high above the floor that keypoint is."""
    d = camera.rays(np.nan_to_num(pixels, nan=-1.0))
    d[~np.isfinite(pixels).all(axis=-1)] = np.nan
    c = camera.centre
    up = np.array([0.0, 1.0, 0.0])
    # Closest points of two lines c + s d and spot + h up: solve the 2x2 normal equations.
    w = c - spots
    b = d @ up
    denom = 1.0 - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        h = (w @ up - b * np.einsum("ij,ij->i", w, d)) / denom
    return np.where(denom > 1e-6, h, np.nan)


@dataclass(frozen=True)
class BodyMeasures:
    """Median heights (metres) over the frames of one walk that show every point needed."""

    values: np.ndarray  # [len(MEASURES)]
    frames: int


def measure(walk: Walk, camera: CameraModel) -> BodyMeasures | None:
    """The walk's body measures, or None when too few frames show the ankles,
    shoulders and hips, or the camera looks at the floor too flatly to place the feet
    (below MIN_DEPRESSION_DEG, a small error in an ankle's pixel row moves the walker by
    metres)."""
    kp = walk.keypoints.astype(np.float64)
    # A point outside the image is a tracker's guess (or a point behind the camera), not a view.
    outside = (kp[..., 0] < 0) | (kp[..., 0] > camera.width) | (kp[..., 1] < 0) | (kp[..., 1] > camera.height)
    kp[(kp[..., 2] <= 0) | outside, :2] = np.nan
    ankles = kp[:, list(_ANKLES), :2]
    spots = standing_points(camera, ankles)
    if not np.isfinite(spots).any():
        return None
    c = camera.centre
    reach = np.linalg.norm((spots - c)[:, [0, 2]], axis=1)
    with np.errstate(invalid="ignore"):
        depression = np.degrees(np.arctan2(c[1] - ANKLE_HEIGHT_M, reach))
    if not np.nanmedian(depression) >= MIN_DEPRESSION_DEG:
        return None
    heights = []
    for points in _POINTS.values():
        heights.append(np.mean([heights_above(camera, spots, kp[:, i, :2]) for i in points], axis=0))
    table = np.stack(heights, axis=1)  # [frames, measures]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(table).all(axis=1) & (table > 0).all(axis=1) & (table < 2.6).all(axis=1)
    if good.sum() < MIN_FRAMES:
        return None
    return BodyMeasures(np.median(table[good], axis=0).astype(np.float32), int(good.sum()))


@dataclass(frozen=True)
class BodyModel:
    """How much two walks' body measures say about whether they are one person, fitted on
    synthetic walkers seen through imperfectly calibrated cameras (`gaitpay eval
    --write-calibration` writes gait/models/body-measures.json).

    The difference of two walks' measures is taken as Gaussian: pair covariance 2 W for one
    person's two walks (W: the spread of one person's walks, cameras and shoes included),
    2 P for two different people (P: the spread of walks over the population). `llr` is the
    log likelihood ratio of the two. The embedding is blind to size, so its own evidence is
    independent of this and the two add. `veto_d2`: one person's two walks lie farther
    apart than this (D2, Mahalanobis under 2 W) in about 1 pair in 1,000."""

    within: np.ndarray  # [M, M]
    population: np.ndarray  # [M, M]
    veto_d2: float

    def d2(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """D2 between measures a [..., M] and b [..., M] (broadcast) under one person's spread."""
        return _mahalanobis(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), 2 * self.within)

    def llr_matrix(self, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """`llr` of every probe [P, M] against every gallery entry [G, M]: [P, G]. Each side
        is whitened once, so the distances are matrix products (a 10,000 x 20,000 trial
        in seconds)."""
        def whitened_d2(covariance: np.ndarray) -> np.ndarray:
            factor = np.linalg.cholesky(np.linalg.inv(covariance))
            p, g = np.asarray(probes, np.float64) @ factor, np.asarray(gallery, np.float64) @ factor
            return (p * p).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2 * p @ g.T

        same, other = 2 * self.within, 2 * self.population
        log_det = np.linalg.slogdet(other)[1] - np.linalg.slogdet(same)[1]
        return 0.5 * (log_det + whitened_d2(other) - whitened_d2(same))

    def llr(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """log p(difference | one person) - log p(difference | two people); NaN where either
        side has no measures."""
        diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        same, other = 2 * self.within, 2 * self.population
        log_det = np.linalg.slogdet(other)[1] - np.linalg.slogdet(same)[1]
        return 0.5 * (log_det + _mahalanobis(diff, other) - _mahalanobis(diff, same))

    def p_impostor(self, d2: np.ndarray | float) -> np.ndarray:
        """The chance that someone else's measures lie within D2 of a walker's: the share of
        the population inside that ellipse around the walker, were the walker at the
        population's centre, where others are densest (so never an underestimate).

        With the difference ~ N(0, P), D2 = sum(l_i z_i^2) for the eigenvalues l_i of
        P (2 W)^-1 and standard normal z_i; for two measures its distribution function is one
        smooth integral (z_1 = a sin(t)), done by Gauss-Legendre quadrature."""
        if len(MEASURES) != 2:
            raise NotImplementedError("p_impostor integrates two measures")
        lam = self._impostor_spread
        d2 = np.maximum(np.asarray(d2, dtype=np.float64), 0.0)
        nodes, weights = _legendre_48()
        a = np.sqrt(d2 / lam[0])[..., None]
        # Only |z_1| < 9 carries any weight: integrate over the angles that reach that far.
        with np.errstate(divide="ignore"):
            reach = np.arcsin(np.minimum(1.0, 9.0 / a))
        theta = nodes * reach
        z1 = a * np.sin(theta)
        inner = erf(np.cos(theta) * np.sqrt(d2[..., None] / (2 * lam[1])))
        density = np.exp(-z1 ** 2 / 2) / np.sqrt(2 * np.pi)
        total = (density * inner * a * np.cos(theta) * reach) @ weights
        return np.clip(total, 0.0, 1.0)

    def weigh(self, track: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What a track's measures [M] say of candidates' [N, M], at once: vetoed [N] (too far
        apart to be one person) and the chance [N] that someone else's body is this close; NaN
        chance (and no veto) where either side was not measured (NaN)."""
        diff = np.atleast_2d(np.asarray(candidates, dtype=np.float64)) - np.asarray(track, dtype=np.float64)
        d2 = np.einsum("ni,ij,nj->n", diff, self._pair_precision, diff)
        measured = np.isfinite(d2)
        vetoed = measured & (np.where(measured, d2, 0.0) > self.veto_d2)
        grid, table = self._impostor_table
        at = np.minimum(np.searchsorted(grid, np.where(measured, d2, 0.0)), len(grid) - 1)
        chance = np.where(measured & ~vetoed, table[at], np.nan)
        return vetoed, chance

    @cached_property
    def _pair_precision(self) -> np.ndarray:
        return np.linalg.inv(2 * self.within)

    @cached_property
    def _impostor_table(self) -> tuple[np.ndarray, np.ndarray]:
        """p_impostor at 4,096 D2 from 1e-8 to the veto, spaced geometrically (the matcher
        weighs bodies on every window: a table read is five times quicker than the quadrature).
        `weigh` reads the next point up: p grows with D2, so it never reads less than the
        exact chance (never a less cautious decision), and at most 0.6% more."""
        grid = np.geomspace(1e-8, max(self.veto_d2, 1e-6), 4096)
        return grid, self.p_impostor(grid)

    @cached_property
    def _impostor_spread(self) -> np.ndarray:
        """The eigenvalues of P (2 W)^-1, smallest first (p_impostor runs per window and candidate)."""
        return np.sort(np.linalg.eigvals(np.linalg.solve(2 * self.within, self.population)).real)

    @staticmethod
    def fit(measures: np.ndarray, people: np.ndarray) -> "BodyModel":
        """From walks' measures [N, M] and whose walk each is [N]."""
        measures = np.asarray(measures, dtype=np.float64)
        people = np.asarray(people)
        deviations, dof = [], 0
        for person in np.unique(people):
            mine = measures[people == person]
            if len(mine) > 1:
                deviations.append(mine - mine.mean(axis=0))
                dof += len(mine) - 1
        if dof < 10 * measures.shape[1]:
            raise ValueError(f"too few repeated walks to fit body measures ({dof} degrees of freedom)")
        stacked = np.concatenate(deviations)
        model = BodyModel(stacked.T @ stacked / dof, np.cov(measures.T), 0.0)
        pairs = []
        for person in np.unique(people):
            mine = measures[people == person]
            first, second = np.triu_indices(len(mine), 1)
            pairs.append(model.d2(mine[first], mine[second]))
        return replace(model, veto_d2=float(np.quantile(np.concatenate(pairs), 0.999)))

    def to_dict(self) -> dict:
        return {"measures": list(MEASURES), "within": self.within.tolist(),
                "population": self.population.tolist(), "veto_d2": round(self.veto_d2, 3)}

    @staticmethod
    def from_dict(data: dict) -> "BodyModel":
        if tuple(data.get("measures", ())) != MEASURES:
            raise ValueError(f"body model measures {data.get('measures')} are not {list(MEASURES)}")
        return BodyModel(np.asarray(data["within"], dtype=np.float64),
                         np.asarray(data["population"], dtype=np.float64), float(data["veto_d2"]))


@lru_cache(maxsize=1)
def _legendre_48() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights (2 ms to compute: once, not per call)."""
    return np.polynomial.legendre.leggauss(48)


def _mahalanobis(diff: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    return np.einsum("...i,ij,...j->...", diff, np.linalg.inv(covariance), diff)


def fused_scores(cosines: np.ndarray, probe_body: np.ndarray, gallery_body: np.ndarray, model: BodyModel,
                 embedding: tuple[float, float, float, float]) -> np.ndarray:
    """[P, G] log likelihood ratios (one person against two) of the embedding and the body
    together, divided by 10 to sit on a cosine-like scale. embedding: the Gaussian score
    models of one pair's cosine (impostor mean, std, genuine mean, std). A pair with no
    measures on one side has the embedding's evidence alone."""
    imp_mean, imp_std, gen_mean, gen_std = embedding
    z_gen, z_imp = (cosines - gen_mean) / gen_std, (cosines - imp_mean) / imp_std
    llr = 0.5 * (z_imp ** 2 - z_gen ** 2) + np.log(imp_std / gen_std)
    body = model.llr_matrix(probe_body, gallery_body)
    return ((llr + np.where(np.isfinite(body), body, 0.0)) / 10).astype(np.float32)


def load_body_model(path: Path = BODY_MODEL_FILE) -> BodyModel | None:
    """The shipped body model (`gaitpay eval --write-calibration` writes it), or None."""
    return BodyModel.from_dict(json.loads(path.read_text())) if path.exists() else None
