"""The edge's link to the matcher: one bidirectional identification stream.

Windows go in as they are cut from tracks; decisions (or per-track errors) come back as
the matcher's evidence accumulates. The stream is one RPC, so one trace follows it from
the edge into the matcher."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import grpc
import numpy as np

from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from mesh.client import open_channel
from mesh.config import Settings


def keypoint_window(
    store_id: str, camera_id: str, track_id: str, sequence: int, xyc: np.ndarray, fps: float, quality: float = 1.0
) -> matcher_pb2.KeypointWindow:
    """A window message from a float32 [T, J, 3] keypoint array."""
    frames, joints, _ = xyc.shape
    window = matcher_pb2.KeypointWindow(
        track=matcher_pb2.TrackRef(store_id=store_id, camera_id=camera_id, track_id=track_id),
        sequence=sequence,
        quality=quality,
    )
    window.keypoints.frames = frames
    window.keypoints.joints = joints
    window.keypoints.fps = fps
    window.keypoints.xyc.extend(np.asarray(xyc, dtype=np.float32).ravel().tolist())
    return window


class MatcherLink:
    """Owns the channel and the stream; `send` windows, iterate `responses`."""

    def __init__(self, settings: Settings, *, address: str | None = None, identity: str = "edge",
                 channel: grpc.aio.Channel | None = None) -> None:
        # A channel given is shared (the caller closes it); otherwise the link owns its own.
        self._owned = channel is None
        self._channel = channel or open_channel(settings, identity=identity, service="matcher", address=address)
        self._stub = matcher_pb2_grpc.MatcherServiceStub(self._channel)
        self._outbox: asyncio.Queue[matcher_pb2.KeypointWindow | None] = asyncio.Queue(maxsize=256)
        self._call: grpc.aio.StreamStreamCall | None = None

    async def _requests(self) -> AsyncIterator[matcher_pb2.StreamIdentifyRequest]:
        while True:
            window = await self._outbox.get()
            if window is None:
                return
            yield matcher_pb2.StreamIdentifyRequest(window=window)

    def open(self) -> grpc.aio.StreamStreamCall:
        self._call = self._stub.StreamIdentify(self._requests())
        return self._call

    async def send(self, window: matcher_pb2.KeypointWindow) -> None:
        await self._outbox.put(window)

    async def finish(self) -> None:
        await self._outbox.put(None)

    async def responses(self) -> AsyncIterator[matcher_pb2.StreamIdentifyResponse]:
        if self._call is None:
            raise RuntimeError("open() the stream first")
        async for response in self._call:
            yield response

    async def close(self) -> None:
        if self._owned:
            await self._channel.close()
