"""`gaitpay partner ...`: partner API keys on the gateway (operator certificate)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

import grpc
import typer
from rich.console import Console
from rich.table import Table

from gaitpay_cli.admin_commands import service_address
from mesh import config
from mesh.errors import error_info, status_from_rpc_error

partner_app = typer.Typer(help="Partner retailers' API keys for the REST gateway.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@contextmanager
def _admin(what: str) -> Iterator[object]:
    from gaitpay.gateway.v1 import gateway_pb2_grpc
    from mesh.client import open_sync_channel

    try:
        settings = config.load()
    except config.ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    channel = open_sync_channel(settings, identity="operator", service="gateway",
                                address=service_address(settings, "gateway"))
    try:
        yield gateway_pb2_grpc.PartnerAdminServiceStub(channel)
    except grpc.RpcError as exc:
        status = status_from_rpc_error(exc)
        info = error_info(status)
        err.print(f"[red]gaitpay partner {what}:[/red] {exc.code().name}"  # type: ignore[attr-defined]
                  f"{' (' + info.reason + ')' if info else ''}: {status.message or exc.details()}")  # type: ignore[attr-defined]
        raise typer.Exit(2 if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,  # type: ignore[attr-defined]
                                             grpc.StatusCode.FAILED_PRECONDITION) else 1) from None
    finally:
        channel.close()


def _show_secret(secret: str, key_id: str) -> None:
    if secret:
        console.print(f"key [bold]{key_id}[/bold]; give the partner this secret (shown once, stored only as a hash):")
        print(secret)
    else:
        console.print(f"key [bold]{key_id}[/bold] was already issued for this request id; its secret is not shown "
                      "again (rotate it for a new one)")


@partner_app.command("create-key")
def create_key(
    retailer: str = typer.Option(..., help="The partner retailer's id."),
    store: list[str] = typer.Option(..., "--store", help="A store the key may use (repeat for several)."),
    rate: int = typer.Option(0, help="Requests per second (0: the gateway's default)."),
    burst: int = typer.Option(0, help="Burst above the rate (0: twice the rate)."),
    request_id: str = typer.Option("", help="Idempotency key (a UUID); a replay returns the same key."),
) -> None:
    """Issue an API key bound to a retailer and some of its stores."""
    from gaitpay.gateway.v1 import gateway_pb2

    with _admin("create-key") as stub:
        reply = stub.CreateApiKey(gateway_pb2.CreateApiKeyRequest(  # type: ignore[attr-defined]
            request_id=request_id or str(uuid.uuid4()), retailer_id=retailer, store_ids=store,
            rate_per_s=rate, burst=burst), timeout=10)
    _show_secret(reply.secret, reply.api_key.key_id)


@partner_app.command("rotate-key")
def rotate_key(
    key_id: str = typer.Argument(..., help="The key to replace."),
    grace: int = typer.Option(86400, help="Seconds the old key keeps working."),
    request_id: str = typer.Option("", help="Idempotency key (a UUID)."),
) -> None:
    """Issue a successor; the old key keeps working for --grace seconds."""
    from gaitpay.gateway.v1 import gateway_pb2

    with _admin("rotate-key") as stub:
        reply = stub.RotateApiKey(gateway_pb2.RotateApiKeyRequest(  # type: ignore[attr-defined]
            request_id=request_id or str(uuid.uuid4()), key_id=key_id, grace_s=grace), timeout=10)
    console.print(f"{key_id} ends at {reply.previous.expires_at.ToDatetime():%Y-%m-%d %H:%M:%S} UTC")
    _show_secret(reply.secret, reply.api_key.key_id)


@partner_app.command("revoke-key")
def revoke_key(key_id: str = typer.Argument(..., help="The key to end now.")) -> None:
    """End a key now (every gateway replica refuses it within 5 s)."""
    from gaitpay.gateway.v1 import gateway_pb2

    with _admin("revoke-key") as stub:
        stub.RevokeApiKey(gateway_pb2.RevokeApiKeyRequest(request_id=str(uuid.uuid4()), key_id=key_id),  # type: ignore[attr-defined]
                          timeout=10)
    console.print(f"revoked {key_id}")


@partner_app.command("list-keys")
def list_keys(retailer: str = typer.Option("", help="Only this retailer's keys.")) -> None:
    """Every key (never a secret)."""
    from gaitpay.gateway.v1 import gateway_pb2

    with _admin("list-keys") as stub:
        reply = stub.ListApiKeys(gateway_pb2.ListApiKeysRequest(retailer_id=retailer), timeout=10)  # type: ignore[attr-defined]
    table = Table()
    for column in ("key", "retailer", "stores", "rate/s", "burst", "state", "expires"):
        table.add_column(column)
    for key in reply.api_keys:
        state = "revoked" if key.revoked else (f"replaced by {key.replaced_by}" if key.replaced_by else "active")
        expires = f"{key.expires_at.ToDatetime():%Y-%m-%d %H:%M}" if key.HasField("expires_at") else "-"
        table.add_row(key.key_id, key.retailer_id, ", ".join(key.store_ids), str(key.rate_per_s), str(key.burst),
                      state, expires)
    console.print(table)
