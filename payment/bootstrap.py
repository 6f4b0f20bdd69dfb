"""Composition root of the payment service.

The contract's RPCs that this build does not implement yet answer UNIMPLEMENTED with the
NOT_IMPLEMENTED reason (the generated servicer base raises NotImplementedError; the mesh
guard maps it); the service still proves its dependencies answer before it reports SERVING."""

from __future__ import annotations

import asyncio

import grpc

from gaitpay.payment.v1 import payment_pb2, payment_pb2_grpc
from mesh import config, dependencies
from mesh.server import ServiceSpec, serve_forever

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name


def build(settings: config.Settings) -> ServiceSpec:
    def register(server: grpc.aio.Server) -> None:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(payment_pb2_grpc.PaymentServiceServicer(), server)

    return ServiceSpec(name="payment", register=register, grpc_services=[SERVICE_NAME])


def readiness(settings: config.Settings) -> dict[str, dependencies.Probe]:
    probes: dict[str, dependencies.Probe] = {}
    if settings.postgres_dsn:
        probes["postgres"] = dependencies.postgres(settings.postgres_dsn)
    if settings.stripe_api_base:
        probes["stripe"] = dependencies.http(settings.stripe_api_base.rstrip("/") + "/v1/balance")
    if settings.razorpay_base_url:
        probes["razorpay"] = dependencies.http(settings.razorpay_base_url.rstrip("/") + "/v1/health")
    return probes


def main() -> None:
    settings = config.load()
    asyncio.run(serve_forever("payment", lambda: build(settings), settings, readiness(settings)))
