"""The names one model's weights answer to.

A model's version names its weights (gait.train.weights_fingerprint). Weights shipped
before that carried another name, which templates, statistics files, feature windows and hot
caches stored then still hold: the model card lists them as `former_versions`, and whoever
checks "is this of my model?" asks a ModelNames, so that the answer is the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelNames:
    version: str  # what this model writes on everything it makes
    former: tuple[str, ...] = ()  # what the same weights were called before: as good as the version

    def accepts(self, name: str) -> bool:
        """Whether something made under `name` is this model's."""
        return name == self.version or name in self.former

    @property
    def all(self) -> tuple[str, ...]:
        """The version, then the former names."""
        return (self.version, *self.former)
