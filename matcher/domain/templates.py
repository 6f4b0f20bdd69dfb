"""An enrolled template as the matcher stores it: a protected embedding and its facts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Template:
    template_id: str
    vector: np.ndarray  # float32 [D], L2-normalised
    quality: float
    # "<model>/<transform label>", with "+<statistics label>" where identity normalised the
    # template with an enrolment source's statistics (identity tags them so).
    model_version: str
    # The customer's enrolment body measures [len(gait.body.MEASURES)] in metres; None: not measured.
    body: np.ndarray | None = None

    @property
    def model(self) -> str:
        """The gait model that made the template, without the tag's protection labels."""
        return model_of(self.model_version)

    @property
    def transform_label(self) -> str:
        """The tag's transform label, without the statistics label ("" where untagged)."""
        return self.model_version.partition("/")[2].partition("+")[0]


def model_of(tag: str) -> str:
    """The model part of a template's model_version tag (see Template)."""
    return tag.partition("/")[0]
