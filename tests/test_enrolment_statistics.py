"""Templates normalised with the enrolment source's statistics (identity): what is sealed, what
the index receives, and how a change of statistics reaches every customer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gait.adaptation import CameraStatistics
from gait.embedder import Embedder
from gait.synth.dataset import people, render_walk
from gait.versions import ModelNames
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


@pytest.fixture(scope="module")
def synthetic_statistics_file(tmp_path_factory: pytest.TempPathFactory, engine: Embedder,
                              enrolment_walks: list) -> Path:  # type: ignore[type-arg]
    """The statistics of an enrolment source that films the synthetic walkers as they are."""
    path = tmp_path_factory.mktemp("stats") / "synthetic.npz"
    CameraStatistics.of(np.stack([w.projection for w in enrolment_walks])).save(path, engine.version)
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
    model_m = SimpleNamespace(model_version="m", names=ModelNames("m"))  # the rows' model
    plain = IdentityCore(db=None, keys=_PlainKeys(), index=None, embedder=model_m, protector=lambda: rotation)  # type: ignore[arg-type]
    adapted = IdentityCore(db=None, keys=_PlainKeys(), index=None, embedder=model_m, protector=lambda: rotation,  # type: ignore[arg-type]
                           enrolment_statistics=stats)
    before = plain._protected("c1", rows, rotation)
    after = adapted._protected("c1", rows, rotation)
    assert [t.model_version for t in before] == ["m/t1"] * 3
    assert [t.model_version for t in after] == [f"m/t1+{stats.label}"] * 3  # a change re-indexes everyone
    loaded = CameraStatistics.load(statistics_file, ModelNames(engine.version), engine.dim)
    for walk, t in zip(walks[:2], after[:2]):
        np.testing.assert_allclose(t.vector, rotation.apply(engine.head_norm.embed(walk.projection, loaded)), atol=1e-5)  # type: ignore[union-attr]
        assert abs(float(np.linalg.norm(t.vector)) - 1.0) < 1e-5
    np.testing.assert_allclose(before[0].vector, rotation.apply(walks[0].vector), atol=1e-6)
    # A template without its projection keeps the model's own statistics.
    np.testing.assert_allclose(after[2].vector, before[2].vector, atol=1e-6)
    assert float(after[0].vector @ before[0].vector) < 0.99  # the statistics did change the vector


def test_only_the_embedder_s_model_goes_to_the_index(engine: Embedder, enrolment_walks: list) -> None:  # type: ignore[type-arg]
    # After a model change a customer who enrols again has templates of both models here; the
    # matcher refuses another model's (MODEL_MISMATCH), so sending them all would fail the very
    # enrolment that brings the customer back. The old ones stay sealed here, unindexed.
    rotation = _Rotation(engine.dim)
    rows = _rows(enrolment_walks[:3], [True, True, True])
    rows[0] = replace(rows[0], model_version="m-before")
    rows[1] = replace(rows[1], model_version="m-former-name")  # the same weights' former name: indexed
    core = IdentityCore(db=None, keys=_PlainKeys(), index=None,  # type: ignore[arg-type]
                        embedder=SimpleNamespace(model_version="m", names=ModelNames("m", ("m-former-name",))),
                        protector=lambda: rotation)
    indexed = core._protected("c1", rows, rotation)
    assert [t.template_id for t in indexed] == ["t1", "t2"]
    assert [t.model_version for t in indexed] == ["m-former-name/t1", "m/t1"]


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


@pytest.mark.stack
async def test_set_enrolment_statistics_re_index_every_customer_and_keep_them_identified(
        settings, service_process, backing_services, milvus_uri, synthetic_statistics_file: Path) -> None:
    """Real identity and matcher processes: a customer enrolled without enrolment statistics,
    identity restarted with them, re-indexed (the stored vectors change, under the new label),
    a customer enrolled with them, and both still identified by a matcher that normalises its
    camera with its own live statistics."""
    import dataclasses
    import uuid

    from pymilvus import MilvusClient

    from gait.synth.dataset import walks_of
    from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
    from gait.embedder import Embedder
    from matcher.adapters.milvus_index import SCHEMA_VERSION, sized_name
    from mesh.client import open_sync_channel
    from test_identity_stack import consent, identified_as, walk_message

    collection = f"enrolstats{uuid.uuid4().hex[:8]}"
    base = dataclasses.replace(settings, postgres_dsn=backing_services["postgres_dsn"], milvus_uri=milvus_uri,
                               milvus_collection=collection, vault_addr=backing_services["vault_addr"],
                               transform_refresh_s=1.0)
    service_process("matcher", dataclasses.replace(base, vault_token=backing_services["matcher_token"],
                                                   camera_statistics="on"))
    identity_settings = dataclasses.replace(base, vault_token=backing_services["identity_token"])
    identity = service_process("identity", identity_settings)
    walks, labels = walks_of(people(34, seed=4301), 4, seed=4302)
    by_person = [[w for w, lab in zip(walks, labels) if lab == p] for p in range(34)]

    def enrol(person: int) -> str:
        channel = open_sync_channel(base, identity="operator", service="identity")
        try:
            stub = identity_pb2_grpc.IdentityServiceStub(channel)
            cid = stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
                request_id=str(uuid.uuid4()), display_name=f"Walker {person}", consent=consent()),
                timeout=30).customer.customer_id
            stub.EnrollWalks(identity_pb2.EnrollWalksRequest(
                request_id=str(uuid.uuid4()), customer_id=cid, store_ids=["store-1"],
                walks=[walk_message(w) for w in by_person[person]]), timeout=60)
            return cid
        finally:
            channel.close()

    def stored(cid: str) -> dict[str, dict]:  # type: ignore[type-arg]
        client = MilvusClient(uri=milvus_uri)
        try:
            rows = client.query(f"{sized_name(collection, Embedder().dim)}_v{SCHEMA_VERSION}",
                                filter=f'customer_id == "{cid}"',
                                output_fields=["template_id", "embedding", "model_version"])
        finally:
            client.close()
        return {r["template_id"]: r for r in rows}

    first = enrol(0)
    before = stored(first)
    # Tagged <model>/<transform> (no statistics label yet; the model's own name may hold "+").
    assert before and all("+" not in r["model_version"].partition("/")[2] for r in before.values())

    identity.terminate()
    assert identity.wait(timeout=15) == 0
    service_process("identity", dataclasses.replace(identity_settings, enrolment_statistics=str(synthetic_statistics_file)))
    channel = open_sync_channel(base, identity="operator", service="identity")
    try:
        done = identity_pb2_grpc.IdentityServiceStub(channel).ReprotectTemplates(
            identity_pb2.ReprotectTemplatesRequest(request_id=str(uuid.uuid4())), timeout=120)
    finally:
        channel.close()
    assert done.customers == 1 and done.templates == len(before)
    after = stored(first)
    label = f"+{FileEnrolmentStatistics(synthetic_statistics_file).label}"
    assert set(after) == set(before) and all(r["model_version"].endswith(label) for r in after.values())
    assert all(float(np.dot(before[t]["embedding"], after[t]["embedding"])) < 0.999 for t in after)
    second = enrol(1)
    assert all(r["model_version"].endswith(label) for r in stored(second).values())

    # The camera's everyday walkers (none enrolled), then the two customers' own walks again.
    for person in range(2, 34):
        await identified_as(base, by_person[person][:1], f"walker-{person}")
    assert await identified_as(base, by_person[0], "visit-0") == first
    assert await identified_as(base, by_person[1], "visit-1") == second
