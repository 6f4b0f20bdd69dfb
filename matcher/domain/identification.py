"""Per-track evidence and a decision for each window.

Ports: an Embedder (keypoints -> L2-normalised embedding), a TemplateIndex (embedding ->
best enrolled customers, with their body measures where enrolled with them) and, optionally,
a BodyWeigher (gait.body.BodyModel: what a track's body measures say of a candidate's).
Without an index the matcher never guesses: every track stays PENDING and the reason says why.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Callable, Protocol

import numpy as np

from matcher.domain.camera_drift import CameraDrift
from matcher.domain.camera_statistics import CameraStatistics
from matcher.domain.hot_cache import VisitCounter
from matcher.domain.policy import Outcome, PolicyConfig, ScoreModel, TrackEvidence, Verdict, decide
from matcher.domain.windows import MalformedWindow, TrackKey, Window, check_features, check_keypoints

TOP_K = 5
MAX_BODY_WINDOWS = 64  # a track's latest measured windows, whose median is its body


class State(Enum):
    PENDING = "pending"
    IDENTIFIED = "identified"
    STRANGER = "stranger"


_STATE = {Verdict.PENDING: State.PENDING, Verdict.IDENTIFIED: State.IDENTIFIED, Verdict.STRANGER: State.STRANGER}


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
    probable_customer_id: str = ""


class Hit(tuple):
    """One customer a search found: unpacks as (customer_id, similarity) wherever a pair is
    wanted; `body` holds the customer's enrolment body measures, None where not measured."""

    body: np.ndarray | None

    def __new__(cls, customer_id: str, similarity: float, body: np.ndarray | None = None) -> "Hit":
        hit = super().__new__(cls, (customer_id, similarity))
        hit.body = body
        return hit


class TemplateIndex(Protocol):
    """Port: nearest enrolled customers for an embedding."""

    def search(self, embedding: np.ndarray, store_id: str, k: int, all_stores: bool = False,
               with_bodies: bool = False) -> list[Hit]:
        """with_bodies: the hits carry the customers' body measures (otherwise they may not)."""
        ...

    def count(self, store_id: str | None = None) -> int:
        """Template rows a search of this store would look through (None: every store)."""
        ...


EmbedFn = Callable[[np.ndarray, float], np.ndarray]  # (keypoints [T, J, 3], fps) -> embedding
# (keypoints [T, J, 3], fps) -> (embedding, the head's projection before its batch norm)
ProjectFn = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]


class BodyWeigher(Protocol):
    """Port (gait.body.BodyModel): for a track's measures [M] against candidates' [N, M],
    vetoed [N] and the chance [N] that someone else's body is this close."""

    def weigh(self, track: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def held_back(outcome: Outcome, strength: float, policy: PolicyConfig) -> Outcome:
    """An identification on a camera whose embeddings share one direction (camera_drift):
    the score model behind its false-match estimate does not hold there, so nobody is
    charged. The track waits; at the end of its window budget, the candidate is only
    'probable' (asked to confirm in the app, never charged automatically)."""
    why = (f"held back: this camera's embeddings share one direction (strength {strength:.2f}), so the "
           f"false-match estimate does not hold for it until its own statistics normalise its windows; "
           f"{outcome.reason}")
    if outcome.windows >= policy.max_windows:
        return replace(outcome, verdict=Verdict.STRANGER, customer_id="", probable_customer_id=outcome.customer_id,
                       reason=why)
    return replace(outcome, verdict=Verdict.PENDING, customer_id="", reason=why)


def scope_of(window: Window, all_stores: bool = False) -> str | None:
    """The search scope of a window: its store, or None for every store."""
    return None if all_stores else window.track.store_id


@dataclass
class Identifier:
    """Keeps evidence per live track (bounded: the least recently seen tracks go first)."""

    index: TemplateIndex | None = None
    embed: EmbedFn | None = None
    scores: ScoreModel = field(default_factory=ScoreModel)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    # The deployment's cancelable template transform (identity applies it to templates;
    # queries must live in the same protected space). None: templates are stored as sent.
    protect: Callable[[np.ndarray], np.ndarray] | None = None
    visits: VisitCounter = field(default_factory=VisitCounter)
    # Body measures weigh beside the embedding where a track and a candidate both have them.
    bodies: BodyWeigher | None = None
    # Cameras whose embeddings share one direction, where the score model does not hold.
    drift: CameraDrift = field(default_factory=CameraDrift)
    # Each camera's own head-norm statistics (camera_statistics), with the model's projection
    # of a window: a camera's keypoint windows are normalised with them once it has enough
    # walkers. None (or no project): windows are embedded with the model's own statistics.
    project: ProjectFn | None = None
    adaptation: CameraStatistics | None = None
    max_tracks: int = 10_000
    gallery_refresh_s: float = 5.0
    _tracks: OrderedDict[TrackKey, TrackEvidence] = field(default_factory=OrderedDict)
    _galleries: dict[str | None, tuple[float, int]] = field(default_factory=dict)  # scope -> (counted at, rows)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def gallery_stale(self, scope: str | None) -> bool:
        counted_at = self._galleries.get(scope, (-1e18, 0))[0]
        return self.index is not None and time.monotonic() - counted_at > self.gallery_refresh_s

    def gallery_size(self, scope: str | None, refresh: bool = True) -> int:
        """G of the false-match estimate: the template rows the search looked through, in the
        store's scope (None: every store). Rows, not people: an upper bound on the customers
        who could have matched, which only makes the estimate more cautious; a store is not
        charged for customers enrolled only elsewhere. Counted again every few seconds, not
        per window; refresh=False: the last count, without asking the index (a blocking call)."""
        size = self._galleries.get(scope, (0.0, 0))[1]
        if refresh and self.gallery_stale(scope):
            size = self.index.count(scope)  # type: ignore[union-attr]
            if len(self._galleries) > 10_000:  # one entry per store; never unbounded
                self._galleries.clear()
            self._galleries[scope] = (time.monotonic(), size)
        return size

    def embedding_of(self, window: Window) -> np.ndarray:
        if window.features is not None:
            check_features(window.features)
            return window.features
        assert window.keypoints is not None
        check_keypoints(window.keypoints)
        if self.project is not None and self.adaptation is not None:
            embedding, projection = self.project(window.keypoints, window.fps)
            if self.adaptation.observe(window.track, projection):
                self.drift.reset(window.track.store_id, window.track.camera_id)
            adapted = self.adaptation.embedding(window.track, projection)
            return embedding if adapted is None else adapted
        if self.embed is None:
            raise MalformedWindow("this matcher has no embedding model; send feature vectors")
        return self.embed(window.keypoints, window.fps)

    def observe(self, window: Window, all_stores: bool = False) -> Decision:
        if self.index is None:
            if window.keypoints is not None:
                check_keypoints(window.keypoints)
            if window.features is not None:
                check_features(window.features)
            with self._lock:
                evidence = self._evidence(window.track)
                evidence.windows += 1
            return Decision(window.track, window.sequence, State.PENDING, evidence.windows,
                            "no template index is configured on this matcher; no identification is made")
        candidates = self.index.search(self.query_of(window), window.track.store_id, TOP_K, all_stores,
                                       with_bodies=self.wants_bodies(window))
        return self.conclude(window, candidates, self.gallery_size(scope_of(window, all_stores)))

    def wants_bodies(self, window: Window) -> bool:
        """Whether this window's candidates should come with their bodies: the matcher weighs
        bodies, and the window or an earlier one of its track was measured."""
        if self.bodies is None:
            return False
        if window.body is not None:
            return True
        with self._lock:
            evidence = self._tracks.get(window.track)
            return evidence is not None and bool(evidence.bodies)

    def query_of(self, window: Window) -> np.ndarray:
        """The window's embedding as the index holds templates (protected when they are)."""
        embedding = self.embedding_of(window)
        self.drift.observe(window.track, embedding)
        return self.protect(embedding) if self.protect is not None else embedding

    def conclude(self, window: Window, candidates: list[Hit], gallery: int) -> Decision:
        """Add one window's search result to its track's evidence and decide, against a
        gallery of `gallery` rows. `observe` is query_of, a search, gallery_size, then this; a
        caller that searches on its own (asynchronously) uses the parts."""
        with self._lock:  # streams run their windows on worker threads
            evidence = self._evidence(window.track)
            evidence.add(candidates)
            if self.bodies is not None:
                self._weigh_bodies(evidence, window, candidates)
            outcome = decide(evidence, gallery, self.scores, self.policy)
            strength = self.drift.drifted(window.track)
            if strength is not None and outcome.verdict == Verdict.IDENTIFIED:
                outcome = held_back(outcome, strength, self.policy)
            if outcome.verdict == Verdict.IDENTIFIED and evidence.announced != outcome.customer_id:
                evidence.announced = outcome.customer_id  # one visit counts once, not per window
                self.visits.identified(window.track.store_id, outcome.customer_id)
        return Decision(
            track=window.track, window_sequence=window.sequence, state=_STATE[outcome.verdict],
            windows_used=outcome.windows, reason=outcome.reason, customer_id=outcome.customer_id,
            confidence=1.0 - outcome.false_match_probability if outcome.customer_id else 0.0,
            false_match_probability=outcome.false_match_probability, alternatives=outcome.alternatives,
            probable_customer_id=outcome.probable_customer_id,
        )

    def _weigh_bodies(self, evidence: TrackEvidence, window: Window, candidates: list[Hit]) -> None:
        """The track's measures (the median over its measured windows: one walk, one pair of
        shoes) against every candidate's it has met, again as the track's median moves."""
        if window.body is not None:
            evidence.bodies.append(np.asarray(window.body, dtype=np.float64))
            del evidence.bodies[:-MAX_BODY_WINDOWS]
        for hit in candidates:
            body = getattr(hit, "body", None)
            if body is not None:
                evidence.candidate_bodies[hit[0]] = np.asarray(body, dtype=np.float64)
        if not evidence.bodies or not evidence.candidate_bodies:
            return
        track = np.median(np.stack(evidence.bodies), axis=0)
        customers = list(evidence.candidate_bodies)
        vetoed, chance = self.bodies.weigh(track, np.stack([evidence.candidate_bodies[c] for c in customers]))  # type: ignore[union-attr]
        evidence.vetoed = {c for c, out in zip(customers, vetoed) if out}
        evidence.body_chance = {c: float(p) for c, p in zip(customers, chance) if np.isfinite(p)}

    def _evidence(self, track: TrackKey) -> TrackEvidence:
        evidence = self._tracks.pop(track, None) or TrackEvidence()
        self._tracks[track] = evidence
        while len(self._tracks) > self.max_tracks:
            self._tracks.popitem(last=False)
        return evidence

    def forget(self, track: TrackKey) -> None:
        with self._lock:
            self._tracks.pop(track, None)

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)
