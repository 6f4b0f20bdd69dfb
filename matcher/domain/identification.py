"""Per-track evidence and the decision for each window.

The template search and the open-set policy plug in through the TemplateIndex port (the
Milvus adapter and the calibrated policy belong to the matcher issue). Until an index is
wired, every track stays PENDING and the reason says so: the matcher never guesses."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import numpy as np

from matcher.domain.windows import TrackKey, Window, check_features, check_keypoints


class State(Enum):
    PENDING = "pending"
    IDENTIFIED = "identified"
    STRANGER = "stranger"


@dataclass(frozen=True)
class Decision:
    track: TrackKey
    window_sequence: int
    state: State
    windows_used: int
    reason: str
    customer_id: str = ""
    confidence: float = 0.0
    false_match_probability: float = 1.0
    alternatives: tuple[tuple[str, float], ...] = ()


class TemplateIndex(Protocol):
    """Port: nearest enrolled templates for an embedding."""

    def search(self, embedding: np.ndarray, store_id: str, k: int) -> list[tuple[str, float]]: ...


@dataclass
class _Evidence:
    windows: int = 0


@dataclass
class Identifier:
    """Keeps evidence per live track (bounded: the oldest tracks are forgotten first)."""

    index: TemplateIndex | None = None
    max_tracks: int = 10_000
    _tracks: OrderedDict[TrackKey, _Evidence] = field(default_factory=OrderedDict)

    def observe(self, window: Window) -> Decision:
        if window.keypoints is not None:
            check_keypoints(window.keypoints)
        if window.features is not None:
            check_features(window.features)
        evidence = self._tracks.pop(window.track, None) or _Evidence()
        evidence.windows += 1
        self._tracks[window.track] = evidence
        while len(self._tracks) > self.max_tracks:
            self._tracks.popitem(last=False)
        if self.index is None:
            return Decision(
                track=window.track,
                window_sequence=window.sequence,
                state=State.PENDING,
                windows_used=evidence.windows,
                reason="no template index is configured on this matcher; no identification is made",
            )
        raise NotImplementedError("template search and the open-set policy arrive with the Milvus adapter")

    def forget(self, track: TrackKey) -> None:
        self._tracks.pop(track, None)

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)
