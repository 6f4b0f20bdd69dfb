"""Composition root of the billing service.

The contract's RPCs that this build does not implement yet answer UNIMPLEMENTED with the
NOT_IMPLEMENTED reason (the generated servicer base raises NotImplementedError; the mesh
guard maps it); the service still proves its dependencies answer before it reports SERVING."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.billing.v1 import billing_pb2, billing_pb2_grpc
from mesh import config, dependencies
from mesh.server import ServiceSpec, serve_forever

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name


def build(settings: config.Settings) -> ServiceSpec:
    def register(server: grpc.aio.Server) -> None:
        billing_pb2_grpc.add_BillingServiceServicer_to_server(billing_pb2_grpc.BillingServiceServicer(), server)

    return ServiceSpec(name="billing", register=register, grpc_services=[SERVICE_NAME])


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    return {"postgres": dependencies.postgres(settings.postgres_dsn)} if settings.postgres_dsn else {}


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("billing", lambda: build(settings), settings, readiness(settings)))
