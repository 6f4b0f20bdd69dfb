"""The edge's own gRPC surface (operators): status of cameras, link and queue."""

from __future__ import annotations

import time

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gaitpay.edge.v1 import edge_pb2, edge_pb2_grpc
from mesh.client import open_channel
from mesh.config import Settings


class EdgeServicer(edge_pb2_grpc.EdgeServiceServicer):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._since = timestamp_pb2.Timestamp()
        self._since.FromSeconds(int(time.time()))

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
        return edge_pb2.GetEdgeStatusResponse(
            store_id=self._settings.store_id,
            link=edge_pb2.LINK_STATE_ONLINE if online else edge_pb2.LINK_STATE_OFFLINE,
            since=self._since,
        )
