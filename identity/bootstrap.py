"""Composition root of the identity service.

The contract's RPCs that this build does not implement yet answer UNIMPLEMENTED with the
NOT_IMPLEMENTED reason (the generated servicer base raises NotImplementedError; the mesh
guard maps it); the service still proves its dependencies answer before it reports SERVING."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from mesh import config, dependencies
from mesh.server import ServiceSpec, serve_forever

SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name


def build(settings: config.Settings) -> ServiceSpec:
    def register(server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(identity_pb2_grpc.IdentityServiceServicer(), server)

    return ServiceSpec(name="identity", register=register, grpc_services=[SERVICE_NAME])


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    probes: dict[str, dependencies.Probe] = {}
    if settings.postgres_dsn:
        probes["postgres"] = dependencies.postgres(settings.postgres_dsn)
    if settings.vault_addr:
        probes["vault"] = dependencies.vault(settings.vault_addr, settings.vault_token)
    return probes


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("identity", lambda: build(settings), settings, readiness(settings)))
