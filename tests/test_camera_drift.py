"""A camera whose walkers' embeddings share one direction has its identifications held back."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.domain.camera_drift import CameraDrift, DriftConfig
from matcher.domain.identification import Identifier, State
from matcher.domain.policy import PolicyConfig, ScoreModel
from matcher.domain.windows import TrackKey, Window

SEPARABLE = ScoreModel(impostor_mean=0.0, impostor_std=0.1, genuine_mean=0.8, genuine_std=0.08,
                       window_correlation=0.3)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class OneCustomerIndex:
    """c1 scores 0.6 against every window, c2 0.0: a clear identification by the score model."""

    def search(self, embedding, store_id, k, all_stores=False, with_bodies=False):  # type: ignore[no-untyped-def]
        return [("c1", 0.6), ("c2", 0.0)]

    def count(self, store_id=None):  # type: ignore[no-untyped-def]
        return 10


def _walkers(identifier: Identifier, camera: str, vectors: np.ndarray, windows: int = 1) -> list:  # type: ignore[type-arg]
    decisions = []
    for t, vector in enumerate(vectors):
        for seq in range(windows):
            decisions.append(identifier.observe(Window(TrackKey("s1", camera, f"t{t}"), seq, None, 30.0, vector, 1.0)))
    return decisions


def test_strength_counts_each_walker_once_and_waits_for_enough_walkers() -> None:
    drift = CameraDrift(DriftConfig(min_tracks=30))
    shared = _unit(np.ones(128))
    for seq in range(50):  # one walker lingering: 50 windows, one walker
        drift.observe(TrackKey("s1", "door", "t0"), shared)
    assert drift.strength("s1", "door") is None
    rng = np.random.default_rng(0)
    for t in range(1, 40):
        drift.observe(TrackKey("s1", "door", f"t{t}"), _unit(rng.normal(size=128)))
    strength = drift.strength("s1", "door")
    assert strength is not None and strength < 0.3  # 40 unrelated walkers
    assert drift.drifted(TrackKey("s1", "door", "t99")) is None
    assert drift.strength("s1", "aisle") is None  # cameras are judged apart


def test_a_camera_judged_now_forgets_walkers_long_gone() -> None:
    drift = CameraDrift(DriftConfig(min_tracks=10, window_tracks=50))
    shared = _unit(np.ones(128))
    rng = np.random.default_rng(1)
    for t in range(100):  # the camera used to see everyone alike ...
        drift.observe(TrackKey("s1", "door", f"a{t}"), _unit(shared + 0.01 * rng.normal(size=128)))
    assert drift.drifted(TrackKey("s1", "door", "x")) == pytest.approx(1.0, abs=0.02)
    for t in range(400):  # ... then it was re-aimed, and walkers differ
        drift.observe(TrackKey("s1", "door", f"b{t}"), _unit(rng.normal(size=128)))
    assert drift.drifted(TrackKey("s1", "door", "x")) is None


def test_identification_on_a_camera_whose_walkers_look_alike_is_held_back() -> None:
    rng = np.random.default_rng(2)
    shared = _unit(rng.normal(size=128))
    policy = PolicyConfig(max_windows=4)
    identifier = Identifier(index=OneCustomerIndex(), scores=SEPARABLE, policy=policy)  # type: ignore[arg-type]
    # 40 walkers on a healthy camera are identified, and counted as visits.
    healthy = _walkers(identifier, "aisle", _unit(rng.normal(size=(40, 128))), windows=2)
    assert healthy[-1].state is State.IDENTIFIED and healthy[-1].customer_id == "c1"
    # 40 walkers on a camera that makes everyone point one way: the same scores, held back.
    alike = _unit(shared + 0.3 * _unit(rng.normal(size=(40, 128))))
    _walkers(identifier, "door", alike, windows=1)
    track = [_unit(shared + 0.3 * _unit(rng.normal(size=128)))] * 4
    decisions = [identifier.observe(Window(TrackKey("s1", "door", "late"), seq, None, 30.0, v, 1.0))
                 for seq, v in enumerate(track)]
    assert [d.state for d in decisions] == [State.PENDING] * 3 + [State.STRANGER]
    assert all(d.customer_id == "" and d.confidence == 0.0 for d in decisions)
    assert "held back" in decisions[1].reason and "strength 0.9" in decisions[1].reason
    # At the end of the budget the candidate is only probable: asked in the app, never charged.
    assert decisions[-1].probable_customer_id == "c1"
    assert identifier.visits.most_frequent("s1", 5) == [("c1", 40)]  # the held-back track was not counted as a visit
