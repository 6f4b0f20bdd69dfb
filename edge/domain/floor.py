"""One shopper across cameras: each calibrated camera maps its people's foot points onto
the store's floor plan (metres), and a track that appears where another camera's shopper
stands, at the same moment, is that shopper.

A wrong merge would put one person's items on another's bill, so merging is cautious: a new
track joins a shopper only when exactly one shopper seen by another camera in the last
`max_gap_s` stands within `radius_m` of it; two candidates, or none, make a new shopper.
Once made, a track's shopper never changes (events already sent name it).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class FloorCalibration:
    """Where a camera looks: four or more points of its image (normalised 0..1) and the same
    points on the floor plan (metres). The camera's position, height and tilt are all in
    this one mapping, measured once when the camera is mounted (tape on the floor)."""

    image_points: tuple[tuple[float, float], ...]
    floor_points: tuple[tuple[float, float], ...]
    _homography: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        image = np.asarray(self.image_points, dtype=np.float64)
        floor = np.asarray(self.floor_points, dtype=np.float64)
        if image.shape != floor.shape or image.ndim != 2 or image.shape[1] != 2 or len(image) < 4:
            raise ValueError("floor calibration needs the same four or more (x, y) points on the image and the floor")
        if not ((image >= 0) & (image <= 1)).all():
            raise ValueError("calibration image points must lie inside the image (0..1)")
        homography, _ = cv2.findHomography(image, floor, 0)
        if homography is None or abs(np.linalg.det(homography)) < 1e-12:
            raise ValueError("calibration points are degenerate (three of them on one line?)")
        object.__setattr__(self, "_homography", homography)

    def camera(self, width: int, height: int):  # type: ignore[no-untyped-def]
        """The calibrated camera (gait.body.CameraModel) behind this mapping, for a frame of
        this size: what body measures are taken with. Raises ValueError when the points do
        not hold one (see gait.body.camera_from_floor)."""
        from gait.body import camera_from_floor

        return camera_from_floor(self._homography, width, height)

    def to_floor(self, point: np.ndarray) -> np.ndarray:
        """A normalised image point (where someone stands) -> floor plan metres."""
        mapped = cv2.perspectiveTransform(np.asarray(point, dtype=np.float64).reshape(1, 1, 2), self._homography)
        return mapped.reshape(2)


@dataclass
class _Shopper:
    shopper_id: str
    position: np.ndarray
    seen_at: float
    cameras: dict[str, str] = field(default_factory=dict)  # camera -> its current local track
    # Where they stood over the last seconds: cameras run on their own threads and one may
    # report a moment later than another, so a newcomer is compared with the same moment.
    trail: deque = field(default_factory=lambda: deque(maxlen=256))

    def where_at(self, at: float, within_s: float) -> np.ndarray | None:
        if not self.trail:
            return None
        when, where = min(self.trail, key=lambda entry: abs(entry[0] - at))
        return where if abs(when - at) <= within_s else None


@dataclass
class ShopperFusion:
    """Local tracks (camera, track) -> shoppers. Uncalibrated cameras are never merged."""

    prefix: str
    radius_m: float = 0.6
    max_gap_s: float = 1.0
    forget_after_s: float = 30.0
    merged: int = 0  # tracks that joined a shopper another camera was seeing at the time
    _shoppers: dict[str, _Shopper] = field(default_factory=dict)
    _of_track: dict[tuple[str, str], str] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _swept_at: float = 0.0

    def shopper(self, camera_id: str, track_id: str, floor: np.ndarray | None, at: float) -> str:
        """The shopper a camera's track belongs to, updating where they stand."""
        key = (camera_id, track_id)
        known = self._of_track.get(key)
        if known is None:
            found = self._match(camera_id, floor, at) if floor is not None else None
            if found is None:
                found = _Shopper(f"{self.prefix}-s{next(self._ids)}", np.zeros(2) if floor is None else floor, at)
                self._shoppers[found.shopper_id] = found
            elif found.cameras:
                self.merged += 1
            known = self._of_track[key] = found.shopper_id
        shopper = self._shoppers.get(known)
        if shopper is None:  # forgotten while its track was quiet: back with the same id
            shopper = self._shoppers[known] = _Shopper(known, np.zeros(2) if floor is None else floor, at)
        shopper.cameras[camera_id] = track_id
        if floor is not None:
            shopper.position, shopper.seen_at = np.asarray(floor, dtype=np.float64), max(shopper.seen_at, at)
            shopper.trail.append((at, shopper.position))
        self._forget(at)
        return known

    def _match(self, camera_id: str, floor: np.ndarray, at: float) -> _Shopper | None:
        near = []
        for s in self._shoppers.values():
            if camera_id in s.cameras:  # this camera sees them already, as another track
                continue
            then = s.where_at(at, self.max_gap_s)
            if then is not None and float(np.linalg.norm(then - floor)) <= self.radius_m:
                near.append(s)
        return near[0] if len(near) == 1 else None

    def of_track(self, camera_id: str, track_id: str) -> str:
        """The shopper a camera's track was given when it was seen (every track is seen, with
        shopper(), before anything else names it); a lookup that moves nobody."""
        known = self._of_track.get((camera_id, track_id))
        return known if known is not None else self.shopper(camera_id, track_id, None, self._swept_at)

    def known(self, shopper_id: str) -> bool:
        return shopper_id in self._shoppers

    def ended(self, camera_id: str, track_id: str) -> None:
        """A camera lost its track: that camera no longer sees the shopper."""
        shopper_id = self._of_track.get((camera_id, track_id))
        shopper = self._shoppers.get(shopper_id or "")
        if shopper is not None and shopper.cameras.get(camera_id) == track_id:
            del shopper.cameras[camera_id]

    def _forget(self, now: float) -> None:
        if now - self._swept_at < 1.0:
            return
        self._swept_at = now
        stale = [k for k, s in self._shoppers.items() if now - s.seen_at > self.forget_after_s and not s.cameras]
        for k in stale:
            del self._shoppers[k]
        if stale:  # their tracks are long over: keep the track map bounded on a box that runs for weeks
            gone = set(stale)
            self._of_track = {t: s for t, s in self._of_track.items() if s not in gone}
