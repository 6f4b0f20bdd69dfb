"""Composition root of the matcher: wires the domain core to its adapters and the server."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.matcher.v1 import matcher_pb2, matcher_pb2_grpc
from matcher.domain.identification import Identifier
from matcher.grpc_api import MatcherServicer
from mesh import config, dependencies
from mesh.server import ServiceSpec, serve_forever

SERVICE_NAME = matcher_pb2.DESCRIPTOR.services_by_name["MatcherService"].full_name


def build(settings: config.Settings) -> ServiceSpec:
    identifier = Identifier(index=None)

    def register(server: grpc.aio.Server) -> None:
        matcher_pb2_grpc.add_MatcherServiceServicer_to_server(MatcherServicer(identifier), server)

    return ServiceSpec(name="matcher", register=register, grpc_services=[SERVICE_NAME])


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    return {"milvus": dependencies.milvus(settings.milvus_uri)} if settings.milvus_uri else {}


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever(build(settings), settings, readiness(settings)))
