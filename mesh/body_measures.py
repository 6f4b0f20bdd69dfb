"""gaitpay.common.v1.BodyMeasures <-> the [shoulder, hip] metres array (gait.body.MEASURES's
order) the domains work with. An unset field is "not measured": None."""

from __future__ import annotations

from typing import Any

import numpy as np


def from_proto(message: Any, field: str = "body") -> np.ndarray | None:
    """The message's BodyMeasures field as float32 [shoulder, hip], or None when unset
    (protovalidate has checked the values wherever it is set)."""
    if not message.HasField(field):
        return None
    body = getattr(message, field)
    return np.array([body.shoulder_height_m, body.hip_height_m], dtype=np.float32)


def to_proto(body: np.ndarray | None, message: Any, field: str = "body") -> None:
    """Set the message's BodyMeasures field from [shoulder, hip]; leave it unset for None."""
    if body is not None:
        target = getattr(message, field)
        target.shoulder_height_m, target.hip_height_m = float(body[0]), float(body[1])
