"""An enrolled template as the matcher stores it: a protected embedding and its facts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Template:
    template_id: str
    vector: np.ndarray  # float32 [D], L2-normalised
    quality: float
    model_version: str
    # The customer's enrolment body measures [len(gait.body.MEASURES)] in metres; None: not measured.
    body: np.ndarray | None = None
