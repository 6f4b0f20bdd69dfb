"""The edge's link to the matcher: one bidirectional identification stream.

Windows go in as they are cut from tracks; decisions (or per-track errors) come back as
the matcher's evidence accumulates. The stream is one RPC, so one trace follows it from
the edge into the matcher."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import grpc
import numpy as np
import structlog

from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from mesh import body_measures
from mesh.client import open_channel
from edge.domain.windows import CutWindow
from mesh.config import Settings

log = structlog.get_logger("gaitpay.edge")


def keypoint_window(
    store_id: str, camera_id: str, track_id: str, sequence: int, xyc: np.ndarray, fps: float, quality: float = 1.0,
    body: np.ndarray | None = None,
) -> matcher_pb2.KeypointWindow:
    """A window message from a float32 [T, J, 3] keypoint array, with the walker's body
    measures [shoulder, hip] in metres where a calibrated camera took them."""
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
    body_measures.to_proto(body, window)
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


class MatcherSession:
    """The identification stream over one channel. A window goes out only while the channel is
    READY: otherwise (the matcher unreachable) `send` says so at once, without blocking, and
    the window is decided offline; gRPC keeps reconnecting in the background, and the stream
    is reopened on the first window after the channel is back."""

    def __init__(self, settings: Settings, address: str | None,
                 on_decision: Callable[[matcher_pb2.TrackDecision], None]) -> None:
        self._settings = settings
        self._channel = open_channel(settings, identity="edge", service="matcher", address=address)
        self._on_decision = on_decision
        self._link: MatcherLink | None = None
        self._reader: asyncio.Task | None = None
        self._ready()  # starts connecting now, not at the first window

    def _ready(self) -> bool:
        return self._channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY

    async def _open(self) -> MatcherLink | None:
        if self._link is not None and self._reader is not None and not self._reader.done():
            return self._link if self._ready() else None
        if not self._ready():
            return None
        self._link = MatcherLink(self._settings, channel=self._channel)
        self._link.open()
        self._reader = asyncio.create_task(self._read(self._link))
        return self._link

    async def _read(self, link: MatcherLink) -> None:
        try:
            async for response in link.responses():
                if response.WhichOneof("result") == "decision":
                    self._on_decision(response.decision)
        except grpc.aio.AioRpcError as exc:
            log.info("matcher_link.lost", code=exc.code().name)

    async def send(self, store_id: str, camera_id: str, track_id: str, window: CutWindow, fps: float) -> bool:
        link = await self._open()
        if link is None:
            return False
        await link.send(keypoint_window(store_id, camera_id, track_id, window.sequence, window.keypoints[:, :17],
                                        fps, quality=window.quality, body=window.body))
        return True

    async def close(self, wait_s: float = 10.0) -> None:
        if self._link is not None:
            await self._link.finish()
            if self._reader is not None:
                try:
                    await asyncio.wait_for(self._reader, wait_s)
                except asyncio.TimeoutError:
                    self._reader.cancel()
        await self._channel.close()
