"""Which customers a store's edge keeps for offline identification.

The store's most frequently identified customers first; the rest of the room goes to other
customers enrolled for that store (a matcher that has just started has counted nobody yet).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import numpy as np

from gait.protection import CancelableTransform
from gait.versions import ModelNames
from matcher.domain.templates import Template

DEFAULT_CUSTOMERS = 1_000


@dataclass
class VisitCounter:
    """Identifications per (store, customer), in memory; bounded per store."""

    max_per_store: int = 200_000
    _counts: dict[str, Counter[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def identified(self, store_id: str, customer_id: str) -> None:
        with self._lock:
            counts = self._counts.setdefault(store_id, Counter())
            counts[customer_id] += 1
            if len(counts) > self.max_per_store:  # forget the rarest half, keep the regulars
                self._counts[store_id] = Counter(dict(counts.most_common(self.max_per_store // 2)))

    def forget_customer(self, customer_id: str) -> None:
        with self._lock:
            for counts in self._counts.values():
                counts.pop(customer_id, None)

    def most_frequent(self, store_id: str, limit: int) -> list[tuple[str, int]]:
        with self._lock:
            return self._counts.get(store_id, Counter()).most_common(limit)


def choose(frequent: list[tuple[str, int]], enrolled_for_store: Iterable[str], limit: int) -> list[tuple[str, int]]:
    chosen = list(frequent[:limit])
    taken = {c for c, _ in chosen}
    for customer in enrolled_for_store:
        if len(chosen) >= limit:
            break
        if customer not in taken:
            chosen.append((customer, 0))
            taken.add(customer)
    return chosen


def rebase(templates: Mapping[str, list[Template]], deployment: CancelableTransform | None,
           export: CancelableTransform, model: ModelNames) -> dict[str, list[Template]]:
    """The templates moved from the deployment's protected basis into an export's own one.

    Stored templates are tagged "<model>/<transform label>", with "+<statistics label>" after
    it where identity normalised them with an enrolment source's statistics (identity writes
    them so; the statistics do not change the basis). Only
    those of this matcher's model (under any of its names: they leave under its version) and
    of the deployment's current transform are exported: a
    template of another model, or one still awaiting re-protection after a re-issue, would
    compare as noise. Without a deployment transform the stored vectors are the model's own.
    """
    out: dict[str, list[Template]] = {}
    for customer, rows in templates.items():
        kept = []
        for t in rows:
            if not model.accepts(t.model) or (t.transform_label or None) != (deployment.label if deployment else None):
                continue
            raw = deployment.restore(t.vector) if deployment else np.asarray(t.vector, dtype=np.float32)
            kept.append(replace(t, vector=export.apply(raw), model_version=model.version))
        if kept:
            out[customer] = kept
    return out
