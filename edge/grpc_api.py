"""The edge's own gRPC surface (operators): status of cameras, link, hot cache and queue."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.runtime import EdgeRuntime, timestamp
from gaitpay.edge.v1 import edge_pb2, edge_pb2_grpc
from mesh.client import open_channel
from mesh.config import Settings


class EdgeServicer(edge_pb2_grpc.EdgeServiceServicer):
    def __init__(self, settings: Settings, runtime: EdgeRuntime | None = None) -> None:
        self._settings = settings
        self._runtime = runtime
        self._since = timestamp(int(time.time()))

    async def _cloud_reachable(self) -> bool:
        """The link is up when the matcher answers a health check within a second."""
        channel = open_channel(self._settings, identity="edge", service="matcher")
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
            return response.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            return False
        finally:
            await channel.close()

    async def GetEdgeStatus(
        self, request: edge_pb2.GetEdgeStatusRequest, context: grpc.aio.ServicerContext
    ) -> edge_pb2.GetEdgeStatusResponse:
        online = await self._cloud_reachable()
        response = edge_pb2.GetEdgeStatusResponse(
            store_id=self._settings.store_id,
            link=edge_pb2.LINK_STATE_ONLINE if online else edge_pb2.LINK_STATE_OFFLINE,
            since=self._since,
        )
        runtime = self._runtime
        if runtime is None:
            return response
        configured = {c.camera_id: c.source for c in runtime.cameras}
        for camera in list(runtime.report.cameras):
            response.cameras.add(camera_id=camera.camera_id, source=configured.get(camera.camera_id, ""),
                                 frames_per_second=camera.fps, active_tracks=camera.active_tracks,
                                 frames=camera.frames, stopped=camera.stopped, windows=camera.windows,
                                 windows_with_body_measures=camera.windows_with_body_measures,
                                 body_measures_off=camera.body_measures_off)
        response.queued_events = await asyncio.to_thread(runtime.queue.depth)
        response.tracks_merged_across_cameras = runtime.report.tracks_merged_across_cameras
        cache = runtime.hot_cache
        response.hot_cache.windows_identified_offline = runtime.report.windows_identified_offline
        if cache is not None:
            response.hot_cache.customers = cache.customers
            response.hot_cache.fetched_at.CopyFrom(timestamp(cache.fetched_at))
            response.hot_cache.expires_at.CopyFrom(timestamp(cache.expires_at))
        return response
