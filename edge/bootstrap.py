"""Composition root of the edge service. It has no cloud dependency to wait for: a store
must keep working when the link is down."""

from __future__ import annotations

import asyncio

import grpc

from edge.grpc_api import EdgeServicer
from gaitpay.edge.v1 import edge_pb2, edge_pb2_grpc
from mesh import config
from mesh.server import ServiceSpec, serve_forever

SERVICE_NAME = edge_pb2.DESCRIPTOR.services_by_name["EdgeService"].full_name


def build(settings: config.Settings) -> ServiceSpec:
    def register(server: grpc.aio.Server) -> None:
        edge_pb2_grpc.add_EdgeServiceServicer_to_server(EdgeServicer(settings), server)

    return ServiceSpec(name="edge", register=register, grpc_services=[SERVICE_NAME])


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("edge", lambda: build(settings), settings))
