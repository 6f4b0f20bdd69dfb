"""What the matcher learnt of each camera outlives it: the keeper (matcher.domain.camera_state)
over a store, that store on a real Milvus (milvus-lite and a Milvus server), and the
matcher's hooks that restore at start and save as it stops."""

from __future__ import annotations

import asyncio
import socket
import uuid

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from matcher.adapters.milvus_camera_state import MilvusCameraState, MilvusCameraStateConfig
from matcher.domain.camera_drift import CameraDrift, DriftSnapshot
from matcher.domain.camera_state import CameraState, CameraStateKeeper, CameraStateStoreError
from matcher.domain.camera_statistics import CameraSnapshot, CameraStatistics, StatisticsConfig
from matcher.domain.windows import TrackKey

DIM = 8


def _standardise(projection: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    out = (np.asarray(projection, np.float32) - mean) / np.sqrt(var + 1e-5)
    return (out / np.linalg.norm(out)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


class DictStore:
    """A store in a dict, for the keeper's unit tests (the real one is tested below)."""

    def __init__(self) -> None:
        self.statistics: dict[tuple[str, str], CameraSnapshot] = {}
        self.drift: dict[tuple[str, str], DriftSnapshot] = {}
        self.saves: list[int] = []
        self.down = False

    def load(self) -> CameraState:
        if self.down:
            raise CameraStateStoreError("store down")
        return CameraState(list(self.statistics.values()), list(self.drift.values()))

    def save(self, state: CameraState) -> None:
        if self.down:
            raise CameraStateStoreError("store down")
        self.saves.append(len(state.statistics) + len(state.drift))
        self.statistics.update({(s.store_id, s.camera_id): s for s in state.statistics})
        self.drift.update({(d.store_id, d.camera_id): d for d in state.drift})


class Camera:
    """What the identifier does with a window, as far as a camera's state goes: statistics
    first (a drift reset when they take over), then the drift of the embedding."""

    def __init__(self, adapts: bool) -> None:
        self.statistics = CameraStatistics(_standardise, StatisticsConfig(min_tracks=30)) if adapts else None
        self.drift = CameraDrift()

    def walkers(self, camera: str, count: int, rng: np.random.Generator, first: int = 0,
                shared: float = 0.0) -> None:
        for t in range(first, first + count):
            track = TrackKey("s1", camera, f"t{t}")
            for _ in range(3):
                projection = rng.normal(2.0, 3.0, size=DIM)
                embedding = _unit(projection + shared)  # walkers of one camera sharing a direction
                if self.statistics is not None:
                    if self.statistics.observe(track, projection):
                        self.drift.reset("s1", camera)
                    adapted = self.statistics.embedding(track, projection)
                    embedding = embedding if adapted is None else adapted
                self.drift.observe(track, embedding)

    def keeper(self, store: DictStore) -> CameraStateKeeper:
        return CameraStateKeeper(self.drift, self.statistics, store)


def test_a_restarted_matcher_normalises_a_camera_as_the_one_before_it_did() -> None:
    rng = np.random.default_rng(1)
    store = DictStore()
    before = Camera(adapts=True)
    before.walkers("door", 40, rng)
    before.walkers("aisle", 5, rng)  # not enough walkers yet: kept all the same, and counted on
    keeper = before.keeper(store)
    assert keeper.save_changed() == {"saved": 4, "failed": 0}  # statistics and drift of both
    assert keeper.save_changed() == {"saved": 0, "failed": 0}  # nothing moved: nothing written

    after = Camera(adapts=True)
    assert after.keeper(store).restore() == {"statistics": 2, "drift": 2, "adapted": 1, "held_back": 0, "refused": 0}
    probe = rng.normal(size=DIM)
    np.testing.assert_allclose(after.statistics.embedding(TrackKey("s1", "door", "new"), probe),  # type: ignore[union-attr]
                               before.statistics.embedding(TrackKey("s1", "door", "new"), probe), rtol=1e-5)  # type: ignore[union-attr]
    assert after.drift.cameras()[("s1", "door")][0] == 11  # walkers since the statistics took over (the 30th on)
    assert not after.statistics.adapted("s1", "aisle")  # type: ignore[union-attr]
    after.walkers("aisle", 25, rng, first=5)  # the restored 5 count: 25 more make 30
    assert after.statistics.adapted("s1", "aisle")  # type: ignore[union-attr]


def test_a_camera_held_back_before_a_restart_is_held_back_after_it() -> None:
    rng = np.random.default_rng(2)
    store = DictStore()
    before = Camera(adapts=False)
    before.walkers("door", 40, rng, shared=20.0)  # one strong shared direction, as on a real camera
    assert before.drift.drifted(TrackKey("s1", "door", "x")) is not None
    before.keeper(store).save_changed()

    after = Camera(adapts=False)
    assert after.keeper(store).restore()["held_back"] == 1
    assert after.drift.drifted(TrackKey("s1", "door", "x")) is not None  # from its first walker on
    # Without the keeping it would be judged only after 30 more walkers, charging meanwhile.
    assert Camera(adapts=False).drift.drifted(TrackKey("s1", "door", "x")) is None


def test_drift_is_taken_back_only_where_embeddings_are_normalised_alike() -> None:
    rng = np.random.default_rng(3)
    store = DictStore()
    adapted = Camera(adapts=True)
    adapted.walkers("door", 70, rng, shared=20.0)  # adapted from walker 30 on: 41 walkers of weak drift
    adapted.keeper(store).save_changed()
    assert store.drift[("s1", "door")].adapted and store.drift[("s1", "door")].tracks == 41

    # A matcher that does not adapt sees this camera's raw windows: the adapted drift would
    # let a strong camera through, so it starts afresh.
    plain = Camera(adapts=False)
    assert plain.keeper(store).restore()["drift"] == 0 and not plain.drift.cameras()
    again = Camera(adapts=True)
    assert again.keeper(store).restore()["drift"] == 1


def test_what_this_run_measured_itself_is_not_overwritten_and_bad_snapshots_are_refused() -> None:
    rng = np.random.default_rng(4)
    store = DictStore()
    old = Camera(adapts=True)
    old.walkers("door", 35, rng)
    old.keeper(store).save_changed()
    mean, var = np.zeros(DIM), np.ones(DIM)
    store.statistics[("s1", "nan")] = CameraSnapshot("s1", "nan", mean + np.nan, var, 40, 30)
    store.statistics[("s1", "short")] = CameraSnapshot("s1", "short", mean[:3], var, 40, 30)
    store.statistics[("s1", "counts")] = CameraSnapshot("s1", "counts", mean, var, 10, 30)
    store.drift[("s1", "long")] = DriftSnapshot("s1", "long", np.full(DIM, 5.0), 40)

    live = Camera(adapts=True)
    live.walkers("door", 31, rng)  # measured already, in this run
    own = live.statistics.statistics("s1", "door")  # type: ignore[union-attr]
    counts = live.keeper(store).restore()
    assert counts["refused"] == 4 and counts["statistics"] == 4
    np.testing.assert_array_equal(live.statistics.statistics("s1", "door")[0], own[0])  # type: ignore[union-attr,index]
    assert set(live.statistics.cameras()) == {("s1", "door")}  # type: ignore[union-attr]


def test_a_store_that_is_down_costs_the_keeping_only_and_a_failed_save_is_tried_again() -> None:
    rng = np.random.default_rng(5)
    store = DictStore()
    store.down = True
    camera = Camera(adapts=True)
    keeper = camera.keeper(store)
    assert keeper.restore()["statistics"] == 0
    camera.walkers("door", 30, rng)
    assert keeper.save_changed() == {"saved": 0, "failed": 2}
    assert camera.statistics.adapted("s1", "door")  # type: ignore[union-attr]  # the matcher goes on as before
    store.down = False
    assert keeper.save_changed() == {"saved": 2, "failed": 0} and store.saves == [2]


@pytest.fixture(params=["lite", "server"])
def milvus(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("milvus_uri" if request.param == "lite" else "milvus_server_uri")


def test_milvus_keeps_each_model_s_cameras_apart_and_replaces_a_camera_s_rows(
        milvus: str, request: pytest.FixtureRequest) -> None:
    rng = np.random.default_rng(6)
    collection = f"t_{uuid.uuid4().hex[:12]}"

    def opened(version: str) -> MilvusCameraState:
        store = MilvusCameraState(MilvusCameraStateConfig(milvus, collection, version, DIM))
        request.addfinalizer(store.close)  # no client (and its threads) outlives the test
        return store

    first = opened("synthetic-1-aaaaaaaa")
    assert first.load() == CameraState()
    odd = "door \x1f\u00e9" + "x" * 200  # any characters, and longer than a template's fields
    stats = [CameraSnapshot("s1", camera, rng.normal(size=DIM), rng.uniform(0.5, 2, DIM), 100, 30)
             for camera in ("door", odd)]
    drift = DriftSnapshot("s1", "door", _unit(rng.normal(size=DIM)) * 0.6, 45, adapted=True)
    first.save(CameraState(stats, [drift]))
    first.save(CameraState([CameraSnapshot("s1", "door", stats[0].mean + 1, stats[0].var, 130, 40)]))  # replaces
    opened("synthetic-1-bbbbbbbb").save(CameraState([CameraSnapshot("s1", "door", np.zeros(DIM), np.ones(DIM), 9, 9)]))

    kept = opened("synthetic-1-aaaaaaaa").load()
    by_camera = {s.camera_id: s for s in kept.statistics}
    assert set(by_camera) == {"door", odd}
    assert (by_camera["door"].windows, by_camera["door"].tracks) == (130, 40)
    np.testing.assert_allclose(by_camera["door"].mean, stats[0].mean + 1, rtol=1e-6)
    np.testing.assert_allclose(by_camera[odd].var, stats[1].var, rtol=1e-6)  # float32 in Milvus
    [restored] = kept.drift
    assert (restored.camera_id, restored.tracks, restored.adapted) == ("door", 45, True)
    np.testing.assert_allclose(restored.mean, drift.mean, rtol=1e-6)
    other = opened("synthetic-1-bbbbbbbb").load()
    assert [(s.windows, s.tracks) for s in other.statistics] == [(9, 9)] and other.drift == []


def test_a_load_reads_every_camera_page_by_page(milvus: str, request: pytest.FixtureRequest,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Milvus answers one query with at most 16,384 rows; a chain's cameras can outnumber that.
    # Pages of 7 rows here stand for pages of 2,000 there.
    from matcher.adapters import milvus_camera_state

    monkeypatch.setattr(milvus_camera_state, "LOAD_BATCH", 7)
    store = MilvusCameraState(MilvusCameraStateConfig(milvus, f"t_{uuid.uuid4().hex[:12]}", "synthetic-1-cccccccc",
                                                      DIM))
    request.addfinalizer(store.close)
    rng = np.random.default_rng(8)
    cameras = [f"cam-{i}" for i in range(30)]
    store.save(CameraState([CameraSnapshot(f"s{i % 4}", c, rng.normal(size=DIM), np.ones(DIM), 50 + i, 30)
                            for i, c in enumerate(cameras)],
                           [DriftSnapshot("s0", c, _unit(rng.normal(size=DIM)), 40, False) for c in cameras[:12]]))
    kept = store.load()
    assert sorted(s.camera_id for s in kept.statistics) == sorted(cameras)
    assert {s.camera_id: s.windows for s in kept.statistics}["cam-29"] == 79 and len(kept.drift) == 12


def test_the_matcher_saves_its_cameras_as_it_stops_and_the_next_one_starts_from_them(milvus_uri: str) -> None:
    from matcher import bootstrap
    from matcher.domain.identification import Identifier
    from mesh import config

    settings = config.load(environ={}, milvus_uri=milvus_uri, milvus_collection=f"t_{uuid.uuid4().hex[:12]}",
                           camera_state_save_s=3600.0)
    rng = np.random.default_rng(7)

    async def serve_and_stop(camera: Camera, walkers: int) -> dict[str, float]:
        identifier = Identifier(index=None, embed=lambda walks: [], drift=camera.drift, adaptation=camera.statistics)
        registry = CollectorRegistry()
        start, stop = bootstrap._camera_keeping(settings, identifier, "synthetic-1-aaaaaaaa", DIM, registry)
        await start()
        camera.walkers("door", walkers, rng, shared=20.0)
        await stop()  # long before the first round: only the save at stop can have kept them
        return {outcome: registry.get_sample_value("gaitpay_matcher_camera_state_rows_total", {"outcome": outcome})
                for outcome in ("restored", "refused", "saved", "failed")}

    first = Camera(adapts=False)
    assert asyncio.run(serve_and_stop(first, 40)) == {"restored": 0, "refused": 0, "saved": 1, "failed": 0}
    second = Camera(adapts=False)
    assert asyncio.run(serve_and_stop(second, 0)) == {"restored": 1, "refused": 0, "saved": 0, "failed": 0}
    assert second.drift.drifted(TrackKey("s1", "door", "x")) is not None
    unkept = config.load(environ={}, milvus_uri=milvus_uri, camera_state_save_s=0.0)
    assert bootstrap._camera_keeping(unkept, Identifier(index=None, embed=lambda walks: []), "v", DIM) == []
    # A Milvus that cannot be reached costs the keeping, not the matcher's start.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused = probe.getsockname()[1]
    nowhere = config.load(environ={}, milvus_uri=f"http://127.0.0.1:{unused}", default_deadline_s=1.0)
    assert bootstrap._camera_keeping(nowhere, Identifier(index=None, embed=lambda walks: []), "v", DIM) == []
