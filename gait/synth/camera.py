"""Store cameras and what a pose estimator makes of their view.

Two kinds of views, as in a store: entrance cameras facing the walker (mounted from chest
height up to 12 ft, tilted down), and overhead aisle cameras at 8-12 ft looking down at
about 45 degrees with people crossing at any angle. Then the pose estimator's flaws:
jitter, dropped keypoints, occlusion, confidences, and mirrored images (some pipelines
and datasets flip left and right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gait.walk import J

FT = 0.3048


@dataclass(frozen=True)
class Camera:
    position: np.ndarray  # metres, right-handed world, y up
    target: np.ndarray
    focal_px: float
    width: int
    height: int

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] -> pixels [..., 2] and depth [...]"""
        f = self.target - self.position
        f = f / np.linalg.norm(f)
        r = np.cross(f, [0.0, 1.0, 0.0])
        r = r / np.linalg.norm(r)
        u = np.cross(r, f)
        rel = points - self.position
        xc, yc, zc = rel @ r, rel @ u, rel @ f
        zc = np.maximum(zc, 1e-3)
        px = self.width / 2 + self.focal_px * xc / zc
        py = self.height / 2 - self.focal_px * yc / zc
        return np.stack([px, py], axis=-1), zc


def walker_to_world(joints: np.ndarray, heading: float, start: np.ndarray) -> np.ndarray:
    """The walker frame (x right, y up, z forward) into the right-handed world, walking along
    `heading` (radians from +z toward +x) from `start`."""
    world = joints.copy()
    world[..., 0] = -joints[..., 0]  # walker's right is world -x when facing +z
    c, s = np.cos(heading), np.sin(heading)
    x, z = world[..., 0].copy(), world[..., 2].copy()
    world[..., 0] = c * x + s * z
    world[..., 2] = -s * x + c * z
    return world + start


def random_view(rng: np.random.Generator, seconds: float, speed: float = 1.1,
                entrance_probability: float = 0.55) -> tuple[Camera, float, np.ndarray]:
    """A camera, a heading and a start point that keep the walker mostly in view."""
    width, height = [(640, 480), (1280, 720), (1920, 1080), (512, 424)][rng.integers(4)]
    fov = np.deg2rad(rng.uniform(55, 90))
    focal = width / 2 / np.tan(fov / 2)
    path = speed * seconds
    if rng.random() < entrance_probability:  # entrance camera: walker approaches it
        # Mostly mounted high and tilted down; some sit low (a gate, a depth sensor on a stand)
        # and look up at the walker.
        cam_height = rng.uniform(0.8, 12 * FT) if rng.random() < 0.65 else rng.uniform(0.1, 0.8)
        end_distance = rng.uniform(0.9, 2.2) + 0.4 * cam_height
        cam = np.array([0.0, cam_height, 0.0])
        approach = rng.normal(0, np.deg2rad(12))  # not always straight at the camera
        heading = np.pi + approach  # walking toward -z (toward the camera at the origin)
        start = np.array([rng.normal(0, 0.4) + np.sin(approach) * (end_distance + path) * -1, 0.0,
                          np.cos(approach) * (end_distance + path)])
        target = np.array([start[0] * 0.5, rng.uniform(0.6, 1.0), (end_distance + path / 2)])
    else:  # overhead aisle camera, about 45 degrees down, walker crosses at any angle
        cam_height = rng.uniform(8 * FT, 12 * FT)
        distance = cam_height / np.tan(np.deg2rad(rng.uniform(35, 55)))
        cam = np.array([0.0, cam_height, 0.0])
        centre = np.array([0.0, 0.0, distance + rng.uniform(0.5, 2.0)])
        heading = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(heading), 0.0, np.cos(heading)])
        start = centre - direction * path / 2
        target = centre + np.array([0.0, 0.8, 0.0])
    return Camera(cam, target, focal, width, height), heading, start


def observe(joints_world: np.ndarray, camera: Camera, rng: np.random.Generator, noise: float = 1.0,
            mirror: bool | None = None) -> np.ndarray:
    """What a pose estimator reports: float32 [T, 23, 3] pixels and confidences."""
    return observe_mirrored(joints_world, camera, rng, noise, mirror)[0]


def observe_mirrored(joints_world: np.ndarray, camera: Camera, rng: np.random.Generator, noise: float = 1.0,
                     mirror: bool | None = None) -> tuple[np.ndarray, bool]:
    """`observe`, and whether the image was mirrored (same draws from rng)."""
    pixels, depth = camera.project(joints_world)
    frames, joints = pixels.shape[:2]
    body_px = camera.focal_px * 1.7 / np.median(depth, axis=1)  # stature in pixels per frame
    # Jitter: a few percent of body size, partly correlated in time like a real estimator.
    white = rng.normal(0, 1, (frames, joints, 2))
    kernel = np.array([0.25, 0.5, 0.25])
    correlated = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, white)
    sigma = noise * rng.uniform(0.003, 0.015) * body_px[:, None, None]
    extra = np.ones(joints)
    extra[[J[n] for n in ("left_wrist", "right_wrist", "left_knee", "right_knee", "left_ankle", "right_ankle")]] = 1.6
    pixels = pixels + sigma * extra[None, :, None] * (0.6 * white + 0.8 * correlated)
    # Each estimator run places joints a little off in its own way (clothing, view, model):
    # a per-walk offset per joint, the same in every frame, a share of body size.
    bias = rng.normal(0, noise * rng.uniform(0.002, 0.012), (1, joints, 2)) * body_px[:, None, None]
    pixels = pixels + bias
    conf = np.clip(rng.normal(0.85, 0.08, (frames, joints)), 0.3, 1.0)
    if rng.random() < 0.5:  # dropouts of single keypoints
        drop = rng.random((frames, joints)) < rng.uniform(0.0, 0.06) * noise
        conf[drop] = 0.0
    if rng.random() < 0.15 * noise:  # a shelf or a cart hides the legs for a while
        start = rng.integers(0, frames)
        length = rng.integers(frames // 10, frames // 3 + 1)
        lower = [J[n] for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")] + list(range(17, 23))
        conf[start:start + length][:, lower] = 0.0
    if rng.random() < 0.3:  # face keypoints unreliable or absent (as with Kinect skeletons)
        conf[:, 1:5] = 0.0
    outside = (pixels[..., 0] < 0) | (pixels[..., 0] >= camera.width) | (pixels[..., 1] < 0) | \
        (pixels[..., 1] >= camera.height)
    if rng.random() < 0.5:  # image-based estimators lose what leaves the frame...
        conf[outside] = 0.0
    # ...while skeleton trackers (Kinect and the like) keep inferring it.
    if mirror is None:
        mirror = rng.random() < 0.5
    if mirror:
        pixels[..., 0] = camera.width - pixels[..., 0]
    out = np.concatenate([pixels, conf[..., None]], axis=-1).astype(np.float32)
    out[conf == 0, :2] = 0.0
    return out, bool(mirror)
