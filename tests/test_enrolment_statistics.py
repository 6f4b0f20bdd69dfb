"""Templates normalised with the enrolment source's statistics (identity): what is sealed, what
the index receives, and how a change of statistics reaches every customer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gait.adaptation import CameraStatistics
from gait.embedder import Embedder
from gait.synth.dataset import people, render_walk
from identity.adapters.walk_embedder import FileEnrolmentStatistics, GaitWalkEmbedder
from identity.domain.ports import Envelope, TemplateRow
from identity.domain.service import IdentityCore, _opened_payload, _sealed_payload
from mesh import config


@pytest.fixture(scope="module")
def engine() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def enrolment_walks(engine: Embedder) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(41)
    return [GaitWalkEmbedder(engine).embed(render_walk(p, rng).keypoints[:, :17], 30.0) for p in people(12, 41)]


@pytest.fixture(scope="module")
def statistics_file(tmp_path_factory: pytest.TempPathFactory, engine: Embedder, enrolment_walks: list) -> Path:  # type: ignore[type-arg]
    """What `gaitpay embed --write-statistics` writes from an enrolment source's walks, here
    shifted and scaled the way a source other than the synthetic walkers' shifts them."""
    projections = np.stack([w.projection for w in enrolment_walks]) * 1.3 + 0.4
    path = tmp_path_factory.mktemp("stats") / "enrolment.npz"
    CameraStatistics.of(projections).save(path, engine.version)
    return path


def test_the_sealed_payload_keeps_the_projection_and_reads_every_older_payload(enrolment_walks: list) -> None:  # type: ignore[type-arg]
    walk = enrolment_walks[0]
    assert walk.projection is not None and walk.projection.shape == walk.vector.shape
    body = np.array([1.41, 0.93], np.float32)
    plain, payload = _sealed_payload(walk.vector, body, walk.projection)
    opened = _opened_payload(plain, payload)
    assert payload == 3
    np.testing.assert_array_equal(opened.vector, walk.vector)
    np.testing.assert_array_equal(opened.projection, walk.projection)
    np.testing.assert_allclose(opened.body, body)
    unmeasured = _opened_payload(*_sealed_payload(walk.vector, None, walk.projection))
    assert unmeasured.body is None and unmeasured.projection is not None
    # Rows sealed before projections (2) and before body measures (1) still open.
    older, version = _sealed_payload(walk.vector, body, None)
    assert version == 2 and _opened_payload(older, 2).projection is None
    np.testing.assert_array_equal(_opened_payload(walk.vector.tobytes(), 1).vector, walk.vector)


class _PlainKeys:
    """Keys whose envelope is the plaintext: the core's use of them is all this test needs."""

    def open(self, customer_id: str, envelope: Envelope, context: bytes) -> bytes:
        return envelope.ciphertext


class _Rotation:
    label, version = "t1", 1

    def __init__(self, dim: int) -> None:
        self.matrix = np.linalg.qr(np.random.default_rng(2).normal(size=(dim, dim)))[0].astype(np.float32)

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, np.float32) @ self.matrix.T


def _rows(walks: list, with_projection: list[bool]) -> list[TemplateRow]:  # type: ignore[type-arg]
    rows = []
    for i, (walk, keep) in enumerate(zip(walks, with_projection)):
        plain, payload = _sealed_payload(walk.vector, None, walk.projection if keep else None)
        rows.append(TemplateRow(f"t{i}", "c1", "m", "t1", walk.quality, "", b"", plain, "app", payload))
    return rows


def test_templates_are_normalised_with_the_enrolment_statistics_before_protection(
        engine: Embedder, enrolment_walks: list, statistics_file: Path) -> None:  # type: ignore[type-arg]
    stats = FileEnrolmentStatistics(statistics_file, engine)
    rotation = _Rotation(engine.dim)
    walks = enrolment_walks[:3]
    rows = _rows(walks, [True, True, False])  # the last was sealed before projections were kept
    plain = IdentityCore(db=None, keys=_PlainKeys(), index=None, embedder=None, protector=lambda: rotation)  # type: ignore[arg-type]
    adapted = IdentityCore(db=None, keys=_PlainKeys(), index=None, embedder=None, protector=lambda: rotation,  # type: ignore[arg-type]
                           enrolment_statistics=stats)
    before = plain._protected("c1", rows, rotation)
    after = adapted._protected("c1", rows, rotation)
    assert [t.model_version for t in before] == ["m/t1"] * 3
    assert [t.model_version for t in after] == [f"m/t1+{stats.label}"] * 3  # a change re-indexes everyone
    loaded = CameraStatistics.load(statistics_file, engine.version, engine.dim)
    for walk, t in zip(walks[:2], after[:2]):
        np.testing.assert_allclose(t.vector, rotation.apply(engine.head_norm.embed(walk.projection, loaded)), atol=1e-5)  # type: ignore[union-attr]
        assert abs(float(np.linalg.norm(t.vector)) - 1.0) < 1e-5
    np.testing.assert_allclose(before[0].vector, rotation.apply(walks[0].vector), atol=1e-6)
    # A template without its projection keeps the model's own statistics.
    np.testing.assert_allclose(after[2].vector, before[2].vector, atol=1e-6)
    assert float(after[0].vector @ before[0].vector) < 0.99  # the statistics did change the vector


def test_identity_refuses_statistics_that_do_not_fit_its_model_naming_the_setting(
        tmp_path: Path, engine: Embedder, statistics_file: Path) -> None:
    from identity.bootstrap import _enrolment_statistics

    embedder = GaitWalkEmbedder(engine)
    assert _enrolment_statistics(config.load({}), embedder) is None
    good = _enrolment_statistics(config.load({"GAITPAY_ENROLMENT_STATISTICS": str(statistics_file)}), embedder)
    assert good is not None and good.label.startswith("s") and good.walks == 12
    other = tmp_path / "other.npz"
    CameraStatistics.of(np.ones((8, engine.dim), np.float32)).save(other, "another-model")
    for path, why in ((tmp_path / "missing.npz", "not a camera statistics file"), (other, "another-model")):
        with pytest.raises(config.ConfigError) as caught:
            _enrolment_statistics(config.load({"GAITPAY_ENROLMENT_STATISTICS": str(path)}), embedder)
        assert "GAITPAY_ENROLMENT_STATISTICS" in str(caught.value) and why in str(caught.value)


def test_cameras_adapt_by_default_only_where_templates_are_normalised_too() -> None:
    """One side normalised alone gains nothing on a real camera (docs/gait.md), so the
    matcher's camera statistics follow the enrolment statistics unless set on their own."""
    assert not config.load({}).adapts_cameras
    assert config.load({"GAITPAY_ENROLMENT_STATISTICS": "/stats.npz"}).adapts_cameras
    assert config.load({"GAITPAY_CAMERA_STATISTICS": "on"}).adapts_cameras
    assert not config.load({"GAITPAY_CAMERA_STATISTICS": "off", "GAITPAY_ENROLMENT_STATISTICS": "/s.npz"}).adapts_cameras
    with pytest.raises(config.ConfigError, match="GAITPAY_CAMERA_STATISTICS='yes': expected auto, on or off"):
        config.load({"GAITPAY_CAMERA_STATISTICS": "yes"})
