"""Channels from one mesh identity to a service: mTLS, tracing, default deadlines.

The server's certificate is checked against the service we meant to reach
(<service>.gaitpay.svc is in its SAN), so a client can't be pointed at an impostor.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from mesh import pki
from mesh.config import Settings


class _DefaultDeadline(grpc.aio.UnaryUnaryClientInterceptor):
    """Every unary call gets a deadline, even when the caller forgot one."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        if client_call_details.timeout is None:
            client_call_details = grpc.aio.ClientCallDetails(
                client_call_details.method,
                self._seconds,
                client_call_details.metadata,
                client_call_details.credentials,
                client_call_details.wait_for_ready,
            )
        return await continuation(client_call_details, request)


# A peer that went away is retried at most 10 s apart (gRPC's default backoff grows to 2
# minutes), so an edge whose uplink returns is back within seconds.
_OPTIONS = [("grpc.keepalive_time_ms", 30_000), ("grpc.max_receive_message_length", 8 * 1024 * 1024),
            ("grpc.max_reconnect_backoff_ms", 10_000)]


def channel_credentials(credentials: pki.Credentials) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=credentials.ca_cert, private_key=credentials.key, certificate_chain=credentials.cert
    )


def open_channel(
    settings: Settings,
    *,
    identity: str,
    service: str,
    address: str | None = None,
    credentials: pki.Credentials | None = None,
) -> grpc.aio.Channel:
    """An aio channel from `identity` to `service` (address from settings unless given)."""
    target = address or settings.address_of(service)
    interceptors: list[Any] = [*aio_client_interceptors(), _DefaultDeadline(settings.default_deadline_s)]
    options = _OPTIONS.copy()
    if not settings.tls:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    creds = credentials or pki.credentials(settings.pki_dir, identity)
    options.append(("grpc.ssl_target_name_override", f"{service}.gaitpay.svc"))
    return grpc.aio.secure_channel(target, channel_credentials(creds), options=options, interceptors=interceptors)


def open_sync_channel(settings: Settings, *, identity: str, service: str, address: str | None = None) -> grpc.Channel:
    """A blocking channel (for domain cores that run on worker threads), same mTLS and
    tracing; callers pass a deadline on every call."""
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    target = address or settings.address_of(service)
    options = _OPTIONS.copy()
    if settings.tls:
        creds = pki.credentials(settings.pki_dir, identity)
        options.append(("grpc.ssl_target_name_override", f"{service}.gaitpay.svc"))
        channel = grpc.secure_channel(target, channel_credentials(creds), options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    return intercept_channel(channel, client_interceptor())
