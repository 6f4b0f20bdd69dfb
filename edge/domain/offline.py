"""Identification at the edge while the cloud is out of reach: the store's hot cache of
frequent customers, searched in memory, and the matcher's own decision rule over it.

The decision is the matcher's (matcher.domain.identification), not a second, looser one: a
link that is down must not make a stranger chargeable. The false-match estimate is taken
over the cache's size, which is the right gallery: a person outside the cache, enrolled or
not, can only be mistaken for someone in it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from gait.protection import CancelableTransform
from gait.versions import ModelNames
from matcher.domain.camera_drift import CameraDrift, DriftSnapshot
from matcher.domain.camera_state import CameraState, adopt
from matcher.domain.camera_statistics import CameraSnapshot, CameraStatistics
from matcher.domain.identification import BodyWeigher, Decision, EmbedFn, Hit, Identifier, ProjectFn
from matcher.domain.policy import ScoreModel
from matcher.domain.windows import Window


@dataclass(frozen=True)
class HotCache:
    """An opened hot cache: templates in the export's own basis and the transform into it."""

    store_id: str
    model_version: str
    customer_ids: tuple[str, ...]  # one per row of `vectors`
    vectors: np.ndarray  # float32 [N, D], L2-normalised, in the export's basis
    transform: CancelableTransform
    fetched_at: float  # unix seconds
    expires_at: float
    bodies: tuple[np.ndarray | None, ...] = ()  # per row: the customer's enrolment body measures, if any
    cameras: CameraState = field(default_factory=CameraState)  # the matcher's view of the store's cameras

    @property
    def customers(self) -> int:
        return len(set(self.customer_ids))

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


@dataclass
class HotCacheGallery:
    """The matcher's TemplateIndex port over a hot cache: best score per customer, top k."""

    cache: HotCache

    def search(self, embedding: np.ndarray, store_id: str, k: int, all_stores: bool = False,
               with_bodies: bool = True) -> list[Hit]:
        """The hits carry bodies whatever with_bodies says (they are in memory already)."""
        if not len(self.cache.customer_ids):
            return []
        scores = self.cache.vectors @ np.asarray(embedding, dtype=np.float32)
        best: dict[str, Hit] = {}
        for row in np.argsort(-scores):
            customer = self.cache.customer_ids[row]
            if customer not in best:
                body = self.cache.bodies[row] if row < len(self.cache.bodies) else None
                best[customer] = Hit(customer, float(scores[row]), body)
                if len(best) == k:
                    break
        return list(best.values())

    def count(self, store_id: str | None = None) -> int:
        return len(self.cache.customer_ids)  # the cache is one store's


class CacheUnusable(RuntimeError):
    """No hot cache, an expired one, or one of another gait model: no offline decision."""


@dataclass
class OfflineIdentifier:
    """Per-track evidence against the hot cache in hand. A new cache starts the evidence
    afresh (its scores are in another basis)."""

    embed: EmbedFn
    model: ModelNames  # the edge's gait model: a cache of another one is refused
    scores: ScoreModel = field(default_factory=ScoreModel)
    bodies: BodyWeigher | None = None  # as the matcher weighs them
    # Each camera's own statistics and drift, as the matcher keeps them (kept across caches:
    # they describe the cameras, not the templates; each cache brings the matcher's newer ones).
    project: ProjectFn | None = None
    adaptation: CameraStatistics | None = None
    drift: CameraDrift = field(default_factory=CameraDrift)
    _cache: HotCache | None = None
    _identifier: Identifier | None = None
    windows_decided: int = 0
    # The last cache's camera snapshots not taken, each with why.
    cameras_refused: list[tuple[CameraSnapshot | DriftSnapshot, str]] = field(default_factory=list)

    def use(self, cache: HotCache) -> None:
        if not self.model.accepts(cache.model_version):
            raise CacheUnusable(f"hot cache holds templates of gait model {cache.model_version!r}; this edge "
                                f"runs {self.model.version!r}")
        self._cache = cache
        # The matcher saw every window of these cameras while the link was up, the edge only
        # those of earlier outages: its view replaces the edge's. Without it, and before this
        # drift was kept across caches, every outage began with the cameras unjudged for 30
        # walkers, and a camera the matcher held back was not held back offline meanwhile.
        _, self.cameras_refused = adopt(cache.cameras, self.drift, self.adaptation, overwrite=True)
        self._identifier = Identifier(index=HotCacheGallery(cache), embed=self.embed, scores=self.scores,
                                      protect=cache.transform.apply, gallery_refresh_s=0.0, bodies=self.bodies,
                                      project=self.project, adaptation=self.adaptation, drift=self.drift)

    @property
    def cache(self) -> HotCache | None:
        return self._cache

    def observe(self, window: Window) -> Decision:
        if self._cache is None or self._identifier is None:
            raise CacheUnusable("no hot cache has been fetched yet")
        if self._cache.expired():
            raise CacheUnusable("the hot cache has expired; it is renewed when the link returns")
        decision = self._identifier.observe(window)
        self.windows_decided += 1
        return decision
