"""The matcher service end to end on a real Milvus: templates in, windows streamed by the
edge, decisions out; removal makes a customer unfindable at once."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest

from edge.adapters.matcher_link import MatcherLink, keypoint_window
from gait.embedder import Embedder, model_version
from gait.synth.dataset import people, render_walk
from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher import bootstrap
from mesh import server
from mesh.client import open_channel
from mesh.errors import error_info
from conftest import FORMER_NAME

DIM = Embedder().dim  # the shipped model's embedding size


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def customer_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


@pytest.fixture
async def matcher(settings, milvus_uri, model_with_former_name, monkeypatch):
    # The shipped model, under a card that also lists a former name of its weights.
    monkeypatch.setenv("GAITPAY_GAIT_MODEL", str(model_with_former_name))
    custom = dataclasses.replace(settings, milvus_uri=milvus_uri, milvus_collection=f"m_{uuid.uuid4().hex[:10]}")
    running = await server.start(bootstrap.build(custom), custom)
    yield custom
    await running.stop(grace=0)


def features_window(track: str, seq: int, vector: np.ndarray, model: str = "") -> matcher_pb2.KeypointWindow:
    window = matcher_pb2.KeypointWindow(
        track=matcher_pb2.TrackRef(store_id="store-1", camera_id="cam-1", track_id=track), sequence=seq, quality=1.0)
    window.features.values.extend(vector.tolist())
    window.features.model_version = model or model_version()  # what an edge with the model on board sends
    return window


async def stream(settings, windows: list[matcher_pb2.KeypointWindow]) -> list[matcher_pb2.StreamIdentifyResponse]:
    link = MatcherLink(settings)
    link.open()
    for w in windows:
        await link.send(w)
    await link.finish()
    replies = [r async for r in link.responses()]
    await link.close()
    return replies


async def test_regulars_are_identified_strangers_are_not_and_removal_is_immediate(matcher) -> None:
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(30, DIM)))
    async with open_channel(matcher, identity="identity", service="matcher") as channel:
        stub = matcher_pb2_grpc.MatcherServiceStub(channel)
        for i, centre in enumerate(centres):
            request = matcher_pb2.UpsertTemplatesRequest(request_id=str(uuid.uuid4()), customer_id=customer_id(i))
            for j in range(2):
                vector = unit(centre + 0.02 * rng.normal(size=DIM))
                request.templates.add(template_id=f"t{i}-{j}", values=vector.tolist(),
                                      model_version=model_version(), quality=0.9)
            assert (await stub.UpsertTemplates(request)).stored == 2

        # The regular's windows score about 0.95 against their templates: this tests the stream and
        # the policy; how often real walks score that high is the model's accuracy (`gaitpay eval`).
        regular = [features_window("t-regular", s, unit(centres[5] + 0.02 * rng.normal(size=DIM))) for s in range(3)]
        stranger = [features_window("t-stranger", s, unit(rng.normal(size=DIM))) for s in range(12)]
        replies = await stream(matcher, regular + stranger)
        by_track: dict[str, list[matcher_pb2.TrackDecision]] = {}
        for r in replies:
            by_track.setdefault(r.decision.track.track_id, []).append(r.decision)
        assert by_track["t-regular"][0].state == matcher_pb2.DECISION_STATE_PENDING  # one window is not enough
        final = by_track["t-regular"][-1]
        assert final.state == matcher_pb2.DECISION_STATE_IDENTIFIED and final.customer_id == customer_id(5)
        assert final.false_match_probability <= 1e-4 and "identified" in final.reason
        assert all(d.state != matcher_pb2.DECISION_STATE_IDENTIFIED for d in by_track["t-stranger"])
        assert by_track["t-stranger"][-1].state == matcher_pb2.DECISION_STATE_STRANGER

        removed = await stub.RemoveTemplates(matcher_pb2.RemoveTemplatesRequest(
            request_id=str(uuid.uuid4()), customer_id=customer_id(5)))
        assert removed.removed == 2
        again = await stream(matcher, [features_window("t-after", s, unit(centres[5] + 0.08 * rng.normal(size=DIM)))
                                       for s in range(4)])
        assert all(r.decision.customer_id != customer_id(5) for r in again)
        assert all(customer_id(5) not in [a.customer_id for a in r.decision.alternatives] for r in again)


async def test_keypoint_windows_are_embedded_and_bad_ones_get_track_errors(matcher) -> None:
    walk = render_walk(people(1, 3)[0], np.random.default_rng(2))
    good = keypoint_window("store-1", "cam-1", "k1", 1, walk.keypoints[:, :17], walk.fps)
    unnormalised = features_window("k2", 1, np.full(DIM, 0.5, dtype=np.float32))
    too_short = keypoint_window("store-1", "cam-1", "k3", 1, walk.keypoints[:5, :17], walk.fps)
    other_model = features_window("k4", 1, unit(np.ones(DIM)), model="synthetic-19990101")
    # A former name of the same weights (an edge not yet upgraded) is the same model.
    former_name = features_window("k5", 1, unit(np.ones(DIM)), model=FORMER_NAME)
    replies = await stream(matcher, [good, unnormalised, too_short, other_model, good, former_name])
    assert [r.WhichOneof("result") for r in replies] == ["decision", "error", "error", "error", "decision", "decision"]
    assert replies[0].decision.windows_used == 1
    assert "L2-normalised" in replies[1].error.status.message
    assert "too short" in replies[2].error.status.message
    assert error_info(replies[2].error.status).reason == "MALFORMED_WINDOW"
    # An edge on another gait model: its features would score at random against these templates.
    refused = replies[3].error.status.message
    assert "synthetic-19990101" in refused and model_version() in refused
    assert error_info(replies[3].error.status).reason == "MALFORMED_WINDOW"
    assert replies[4].decision.windows_used == 2  # the stream stayed up for the next window


async def test_templates_of_the_wrong_size_are_refused(matcher) -> None:
    async with open_channel(matcher, identity="identity", service="matcher") as channel:
        request = matcher_pb2.UpsertTemplatesRequest(request_id=str(uuid.uuid4()), customer_id=customer_id(99))
        request.templates.add(template_id="x", values=unit(np.ones((1, 64)))[0].tolist(),
                              model_version=model_version())
        with pytest.raises(Exception) as caught:
            await matcher_pb2_grpc.MatcherServiceStub(channel).UpsertTemplates(request)
    assert "64 values" in caught.value.details()


async def test_templates_of_another_model_are_refused_and_nothing_is_replaced(matcher) -> None:
    # Stored, they would never be searched (the search keeps to the matcher's model), so the
    # customer would silently go unrecognised: identity learns it at enrolment instead.
    import grpc

    from mesh.errors import status_from_rpc_error

    vectors = unit(np.random.default_rng(3).normal(size=(2, DIM)))
    async with open_channel(matcher, identity="identity", service="matcher") as channel:
        stub = matcher_pb2_grpc.MatcherServiceStub(channel)
        await upsert(stub, customer_id(40), vectors[:1], [])
        former = FORMER_NAME  # the weights' former name (its model card) is as good
        await upsert(stub, customer_id(41), vectors[1:], [], model=f"{former}/t1")  # as identity tags them
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await upsert(stub, customer_id(40), vectors[1:], [], model="synthetic-19990101-00000000/t1")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(status_from_rpc_error(caught.value))
    assert info.reason == "MODEL_MISMATCH"
    assert dict(info.metadata) == {"template_model": "synthetic-19990101-00000000", "matcher_model": model_version()}
    replies = await stream(matcher, [features_window(f"t{i}", s, vectors[i]) for s in range(3) for i in range(2)])
    final = {r.decision.track.track_id: r.decision.customer_id for r in replies}
    assert final == {"t0": customer_id(40), "t1": customer_id(41)}  # the refused call replaced nothing


async def upsert(stub, customer: str, vectors: np.ndarray, stores: list[str], model: str = "") -> None:
    """The customer's templates, of the matcher's model unless `model` names another."""
    request = matcher_pb2.UpsertTemplatesRequest(request_id=str(uuid.uuid4()), customer_id=customer, store_ids=stores)
    for j, v in enumerate(vectors):
        request.templates.add(template_id=f"{customer[-4:]}-{j}", values=v.tolist(),
                              model_version=model or model_version(), quality=0.8)
    await stub.UpsertTemplates(request)


async def test_hot_cache_holds_the_store_regulars_first_and_only_the_edge_can_open_it(matcher) -> None:
    import grpc

    from gaitpay.matcher.v1.matcher_pb2 import HotCache
    from mesh.sealing import HOT_CACHE_INFO
    from mesh import sealing

    from gait.protection import CancelableTransform
    from matcher.adapters.gait_model import embedder

    model = embedder()[2]  # the cache carries only templates of the matcher's own model
    rng = np.random.default_rng(7)
    centres = unit(rng.normal(size=(6, DIM)))
    async with open_channel(matcher, identity="identity", service="matcher") as channel:
        stub = matcher_pb2_grpc.MatcherServiceStub(channel)
        for i in range(5):  # customers 0-4 enrolled for store-1, customer 5 only for store-2
            # Template noise of one norm whatever the model's size (0.03 per dimension at 128).
            noise = 0.03 * np.sqrt(128 / DIM) * rng.normal(size=(2, DIM))
            await upsert(stub, customer_id(i), unit(centres[i] + noise),
                         ["store-1"] if i < 5 else ["store-2"], model=model)
        await upsert(stub, customer_id(5), unit(centres[5][None]), ["store-2"], model=model)
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # identity has no business with the cache
            await stub.ExportHotCache(matcher_pb2.ExportHotCacheRequest(store_id="store-1",
                                                                        recipient_public_key=bytes(32)))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # Customer 3 visits store-1 and is identified: the regular heads the cache.
    visit = [unit(centres[3] + 0.02 * rng.normal(size=DIM)) for _ in range(3)]
    stored_first_window = visit[0]
    await stream(matcher, [features_window("v1", s, v) for s, v in enumerate(visit)])
    private, public = sealing.new_keypair()
    async with open_channel(matcher, identity="edge", service="matcher") as channel:
        stub = matcher_pb2_grpc.MatcherServiceStub(channel)
        reply = await stub.ExportHotCache(matcher_pb2.ExportHotCacheRequest(
            store_id="store-1", max_customers=3, recipient_public_key=public))
        elsewhere = await stub.ExportHotCache(matcher_pb2.ExportHotCacheRequest(
            store_id="store-2", recipient_public_key=public))
        with pytest.raises(grpc.aio.AioRpcError) as forbidden:  # and the edge can't write templates
            await upsert(stub, customer_id(9), unit(centres[:1]), [])
        assert forbidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reply.customers == 3 and len(reply.ephemeral_public_key) == 32
    assert str(customer_id(3)).encode() not in reply.sealed_templates  # sealed, not merely serialized
    box = sealing.Sealed(reply.sealed_templates, reply.ephemeral_public_key)
    cache = HotCache.FromString(sealing.open_sealed(box, private, b"store-1", HOT_CACHE_INFO))
    listed = [c.customer_id for c in cache.customers]
    assert listed[0] == customer_id(3) and cache.customers[0].identifications == 1
    assert len(listed) == 3 and customer_id(5) not in listed  # another store's customer stays out
    assert all(len(c.templates) == 2 and len(c.templates[0].values) == DIM for c in cache.customers)
    assert np.allclose(np.linalg.norm(np.asarray(cache.customers[0].templates[0].values)), 1.0, atol=1e-4)
    # The templates are in the export's own basis: the customer's walk matches them only
    # through the cache's query transform, which is new with every export.
    assert cache.model_version == model and len(cache.query_transform_secret) == 32
    query = CancelableTransform(cache.query_transform_secret, 0, DIM).apply(centres[3])
    stored = np.asarray([t.values for t in cache.customers[0].templates])
    assert (stored @ query).min() > 0.9 and (stored @ centres[3]).max() < 0.5

    # The store's cameras as the matcher judged them (for the edge deciding offline): cam-1
    # saw one walker, whose first window is the drift's mean; store-2's cache has no camera.
    [camera] = cache.cameras
    assert (camera.camera_id, camera.drift_walkers, camera.drift_adapted) == ("cam-1", 1, False)
    np.testing.assert_allclose(camera.drift_mean, stored_first_window, atol=1e-6)
    assert not camera.statistics_mean  # this matcher does not adapt cameras
    other = HotCache.FromString(sealing.open_sealed(sealing.Sealed(elsewhere.sealed_templates,
                                                                   elsewhere.ephemeral_public_key),
                                                    private, b"store-2", HOT_CACHE_INFO))
    assert not other.cameras

    stranger_key, _ = sealing.new_keypair()
    with pytest.raises(sealing.SealError):
        sealing.open_sealed(box, stranger_key, b"store-1", HOT_CACHE_INFO)
    with pytest.raises(sealing.SealError):  # a cache replayed to another store does not open
        sealing.open_sealed(box, private, b"store-2", HOT_CACHE_INFO)


async def test_identity_hears_the_model_mismatch_as_such(matcher) -> None:
    # Identity's adapter keeps the matcher's reason (and which models) for this refusal, where
    # other refusals become DEPENDENCY_UNAVAILABLE: the operator has to re-enrol, not retry.
    import asyncio

    from identity.adapters.matcher_templates import MatcherTemplates
    from identity.domain.ports import IndexTemplate
    from mesh.client import open_sync_channel
    from mesh.errors import MeshError

    templates = MatcherTemplates(open_sync_channel(matcher, identity="identity", service="matcher"), timeout_s=10)
    vector = unit(np.random.default_rng(4).normal(size=DIM))
    stale = IndexTemplate("t-stale", vector, 0.9, "synthetic-19990101-00000000", None)
    with pytest.raises(MeshError) as caught:
        await asyncio.to_thread(templates.upsert, str(uuid.uuid4()), customer_id(50), [stale], [])
    assert caught.value.reason == "MODEL_MISMATCH" and caught.value.metadata["matcher_model"] == model_version()
    assert "synthetic-19990101-00000000" in caught.value.message
    current = IndexTemplate("t-current", vector, 0.9, model_version(), None)
    assert await asyncio.to_thread(templates.upsert, str(uuid.uuid4()), customer_id(50), [current], []) == 1


def test_templates_of_another_model_are_counted_for_the_operator(settings, milvus_uri, model_with_former_name,
                                                                 monkeypatch) -> None:
    # After a model change the old templates stay stored but unsearched: the operator sees how
    # many (a gauge, counted again every few minutes, and a warning at start). Templates under
    # a former name of the same weights are not another model's.
    import structlog.testing

    monkeypatch.setenv("GAITPAY_GAIT_MODEL", str(model_with_former_name))

    from matcher.adapters.milvus_index import MilvusConfig, MilvusTemplateIndex
    from matcher.domain.templates import Template

    custom = dataclasses.replace(settings, milvus_uri=milvus_uri, milvus_collection=f"m_{uuid.uuid4().hex[:10]}")
    index = MilvusTemplateIndex(MilvusConfig(uri=milvus_uri, collection=custom.milvus_collection, dim=DIM))
    vector = unit(np.ones((1, DIM)))[0]
    for customer, model in (("old-1", "synthetic-19990101-00000000/t1"), ("old-2", "synthetic-19990101-00000000"),
                            ("current", f"{model_version()}/t1"), ("renamed", f"{FORMER_NAME}/t1")):
        index.upsert(customer, [Template(f"{customer}-t0", vector, 0.9, model)], [])
    with structlog.testing.capture_logs() as logs:
        spec = bootstrap.build(custom)
    assert spec.registry.get_sample_value("gaitpay_matcher_templates_of_other_models") == 2
    assert {"event": "milvus.templates_of_other_models", "rows": 2, "model": model_version(),
            "log_level": "warning"} in logs
