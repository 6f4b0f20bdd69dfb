"""Composition root of the edge service. It has no cloud dependency to wait for: a store
must keep working when the link is down. With cameras configured (GAITPAY_EDGE_CAMERAS) the
video pipeline runs in this process, beside the operators' status service."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import structlog
from prometheus_client import CollectorRegistry

from edge.adapters.metrics import EdgeFigures
from edge.grpc_api import EdgeServicer
from gaitpay.edge.v1 import edge_pb2, edge_pb2_grpc
from mesh import config
from mesh.server import ServiceSpec, cancel_and_wait, serve_forever

SERVICE_NAME = edge_pb2.DESCRIPTOR.services_by_name["EdgeService"].full_name
log = structlog.get_logger("gaitpay.edge")


def build(settings: config.Settings) -> ServiceSpec:
    runtime = None
    if settings.edge_cameras:
        from pathlib import Path

        from edge.adapters import camera_file, video_buffer
        from edge.runtime import EdgeRuntime, open_source

        cameras = camera_file.load(Path(settings.edge_cameras))
        for camera in cameras:  # a camera that can't be opened stops the start, with its name
            open_source(camera.source).release()
        runtime = EdgeRuntime(settings, cameras, settings.edge_state / "queue.sqlite3",
                              billing_address=settings.billing_addr, matcher_address=settings.matcher_addr,
                              hot_cache_refresh_s=settings.edge_hot_cache_refresh_s,
                              video=video_buffer.from_settings(settings),
                              on_event=lambda line: log.info("edge.event", what=line))
    pipeline: list[asyncio.Task] = []

    async def start() -> None:
        if runtime is not None:
            pipeline.append(asyncio.create_task(_run(runtime), name="edge-pipeline"))

    async def stop() -> None:
        if pipeline:
            await cancel_and_wait(pipeline[0])
        if runtime is not None:
            runtime.close()

    def register(server: grpc.aio.Server) -> None:
        edge_pb2_grpc.add_EdgeServiceServicer_to_server(EdgeServicer(settings, runtime), server)

    registry = CollectorRegistry()
    registry.register(EdgeFigures(runtime))
    return ServiceSpec(name="edge", register=register, grpc_services=[SERVICE_NAME], on_start=[start],
                       on_stop=[stop], registry=registry)


async def _run(runtime) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(asyncio.CancelledError):
        await runtime.run(serve=True)


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("edge", lambda: build(settings), settings))
