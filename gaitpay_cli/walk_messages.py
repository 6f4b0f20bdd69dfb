"""A synthetic walk as the shopper app sends it to EnrollWalks: COCO-17 keypoints, packed."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaitpay.identity.v1 import identity_pb2
from mesh import body_measures


def in_frame(walk: Any) -> bool:
    """Whether a camera would deliver this synthetic walk: its COCO-17 keypoints pass the
    matcher's checks (the walker renders partly off-screen otherwise)."""
    from matcher.domain.windows import MalformedWindow, check_keypoints

    try:
        check_keypoints(np.asarray(walk.keypoints[:, :17], dtype=np.float32))
    except MalformedWindow:
        return False
    return True


def walk_message(walk: Any, source: str = "app", body: np.ndarray | None = None) -> identity_pb2.Walk:
    """body: the walk's measures [shoulder, hip] in metres, as a calibrated enrolment camera
    takes them (gait.body); None for a walk filmed without calibration."""
    kp = walk.keypoints[:, :17]
    msg = identity_pb2.Walk(source=source)
    body_measures.to_proto(body, msg)
    msg.keypoints.frames, msg.keypoints.joints, msg.keypoints.fps = kp.shape[0], 17, walk.fps
    msg.keypoints.xyc.extend(kp.ravel().tolist())
    return msg
