"""The matcher service end to end on a real Milvus: templates in, windows streamed by the
edge, decisions out; removal makes a customer unfindable at once."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest

from edge.adapters.matcher_link import MatcherLink, keypoint_window
from gait.synth.dataset import people, render_walk
from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher import bootstrap
from mesh import server
from mesh.client import open_channel
from mesh.errors import error_info

DIM = 128


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def customer_id(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


@pytest.fixture
async def matcher(settings, milvus_uri):
    custom = dataclasses.replace(settings, milvus_uri=milvus_uri, milvus_collection=f"m_{uuid.uuid4().hex[:10]}")
    running = await server.start(bootstrap.build(custom), custom)
    yield custom
    await running.stop(grace=0)


def features_window(track: str, seq: int, vector: np.ndarray) -> matcher_pb2.KeypointWindow:
    window = matcher_pb2.KeypointWindow(
        track=matcher_pb2.TrackRef(store_id="store-1", camera_id="cam-1", track_id=track), sequence=seq, quality=1.0)
    window.features.values.extend(vector.tolist())
    window.features.model_version = "test"
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
                request.templates.add(template_id=f"t{i}-{j}", values=unit(centre + 0.05 * rng.normal(size=DIM)).tolist(),
                                      model_version="test", quality=0.9)
            assert (await stub.UpsertTemplates(request)).stored == 2

        regular = [features_window("t-regular", s, unit(centres[5] + 0.08 * rng.normal(size=DIM))) for s in range(3)]
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
    replies = await stream(matcher, [good, unnormalised, too_short])
    assert [r.WhichOneof("result") for r in replies] == ["decision", "error", "error"]
    assert replies[0].decision.windows_used == 1
    assert "L2-normalised" in replies[1].error.status.message
    assert "too short" in replies[2].error.status.message
    assert error_info(replies[2].error.status).reason == "MALFORMED_WINDOW"


async def test_templates_of_the_wrong_size_are_refused(matcher) -> None:
    async with open_channel(matcher, identity="identity", service="matcher") as channel:
        request = matcher_pb2.UpsertTemplatesRequest(request_id=str(uuid.uuid4()), customer_id=customer_id(99))
        request.templates.add(template_id="x", values=unit(np.ones((1, 64)))[0].tolist(), model_version="m")
        with pytest.raises(Exception) as caught:
            await matcher_pb2_grpc.MatcherServiceStub(channel).UpsertTemplates(request)
    assert "64 values" in caught.value.details()
