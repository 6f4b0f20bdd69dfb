"""`gaitpay audit verify`, `gaitpay vault provision` and `gaitpay vault reissue-transform`:
operator tasks on a running mesh."""

from __future__ import annotations

import uuid
from typing import Callable, TypeVar

import grpc
import typer
from rich.console import Console

from gaitpay_cli import stack
from mesh import config

T = TypeVar("T")

audit_app = typer.Typer(help="The identity service's audit chain.", no_args_is_help=True)
vault_app = typer.Typer(help="Vault (or OpenBao) for the mesh.", no_args_is_help=True)
templates_app = typer.Typer(help="Enrolled templates in the matcher's index.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def service_address(settings: config.Settings, service: str) -> str:
    """The running local stack's address for the service, else the configured one."""
    state = stack.StackState.load(stack.state_path(settings))
    if state is not None:
        for record in state.records:
            if record.name == service:
                return record.address
    return settings.address_of(service)


@audit_app.command("verify")
def audit_verify(timeout: float = typer.Option(120.0, help="Seconds before giving up.")) -> None:
    """Walk the audit chain end to end and check every link (exit 1 if it was tampered with)."""
    from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
    from mesh.client import open_sync_channel

    settings = config.load()
    channel = open_sync_channel(settings, identity="operator", service="identity",
                                address=service_address(settings, "identity"))
    try:
        with console.status("verifying the audit chain"):
            report = identity_pb2_grpc.IdentityServiceStub(channel).VerifyAuditChain(
                identity_pb2.VerifyAuditChainRequest(), timeout=timeout)
    except grpc.RpcError as exc:
        err.print(f"[red]gaitpay audit verify:[/red] identity service: {exc.code().name}: {exc.details()}")
        raise typer.Exit(2) from None
    finally:
        channel.close()
    if report.intact:
        console.print(f"[green]audit chain intact[/green]: {report.entries} entries verified")
        return
    err.print(f"[red]audit chain BROKEN[/red] at entry {report.first_broken_sequence}: {report.problem} "
              f"({report.entries} entries verified before it)")
    raise typer.Exit(1)


def _with_vault(command: str, call: Callable[[str, str], T], addr: str | None, token: str | None) -> T:
    """call(addr, token), with a readable line and exit 2 when either is missing, exit 1 when
    Vault fails (hvac and requests errors)."""
    if not addr or not token:
        err.print(f"[red]gaitpay vault {command}:[/red] set VAULT_ADDR and VAULT_TOKEN (or --addr/--token)")
        raise typer.Exit(2)
    try:
        return call(addr, token)
    except Exception as exc:  # noqa: BLE001 - hvac/requests errors, shown readably
        err.print(f"[red]gaitpay vault {command}:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None


@vault_app.command("provision")
def vault_provision_cmd(
    addr: str = typer.Option(None, envvar="VAULT_ADDR", help="Vault address."),
    token: str = typer.Option(None, envvar="VAULT_TOKEN", help="A token allowed to mount engines and write policies."),
    print_tokens: bool = typer.Option(False, help="Print the per-service tokens (a dev setup; use Kubernetes auth in production)."),
) -> None:
    """Transit engine, shared HMAC keys, the per-service policies from vault-policies/, the
    template-transform secret (created once, never overwritten) and a token per service."""
    from mesh import vault_provision

    done = _with_vault("provision", vault_provision.provision, addr, token)
    console.print(f"provisioned {addr}: policies {', '.join(sorted(done.tokens))}; "
                  f"template transform version {done.transform_version}")
    if print_tokens:
        for service, value in done.tokens.items():
            console.print(f"{service}={value}")


@vault_app.command("reissue-transform")
def vault_reissue_transform(
    addr: str = typer.Option(None, envvar="VAULT_ADDR", help="Vault address."),
    token: str = typer.Option(None, envvar="VAULT_TOKEN", help="A token allowed to write the transform secret."),
    timeout: float = typer.Option(600.0, help="Seconds the re-protection may take."),
) -> None:
    """Re-issue the template-transform secret (after a leak of the index, or on schedule) and
    re-protect every enrolled customer's templates with it. The old index vectors match
    nothing afterwards; the matcher takes the new secret within GAITPAY_TRANSFORM_REFRESH_S."""
    from mesh import vault_provision

    settings = config.load()
    state = stack.StackState.load(stack.state_path(settings))
    if state is not None:  # the local stack's own dev Vault
        addr, token = addr or state.env.get("VAULT_ADDR"), token or state.env.get("VAULT_TOKEN")
    version = _with_vault("reissue-transform", vault_provision.reissue_transform, addr, token)
    console.print(f"template transform version {version} issued")
    done = _reprotect(settings, "vault reissue-transform", timeout)
    console.print(f"re-protected {done.customers} customers ({done.templates} templates) with transform version "
                  f"{done.transform_version}; the matcher uses it within {settings.transform_refresh_s:g} s")


@templates_app.command("reindex")
def templates_reindex(
    timeout: float = typer.Option(600.0, help="Seconds the re-indexing may take."),
) -> None:
    """Bring every enrolled customer's index vectors to what identity runs with now: after
    GAITPAY_ENROLMENT_STATISTICS was set or changed (and identity restarted), templates are
    normalised with the enrolment source's statistics. Customers already current are skipped,
    so a run cut short is finished by running it again."""
    settings = config.load()
    done = _reprotect(settings, "templates reindex", timeout)
    console.print(f"re-indexed {done.customers} customers ({done.templates} templates), under template transform "
                  f"version {done.transform_version}")


def _reprotect(settings: config.Settings, command: str, timeout: float):  # type: ignore[no-untyped-def]
    """Identity's ReprotectTemplates, with a spinner; a failure is a readable exit 1."""
    from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
    from mesh.client import open_sync_channel

    channel = open_sync_channel(settings, identity="operator", service="identity",
                                address=service_address(settings, "identity"))
    request_id = str(uuid.uuid4())
    try:
        with console.status("re-indexing every customer's templates"):
            return identity_pb2_grpc.IdentityServiceStub(channel).ReprotectTemplates(
                identity_pb2.ReprotectTemplatesRequest(request_id=request_id), timeout=timeout)
    except grpc.RpcError as exc:
        err.print(f"[red]gaitpay {command}:[/red] identity service: {exc.code().name}: "
                  f"{exc.details()} (run it again: customers already done are skipped)")
        raise typer.Exit(1) from None
    finally:
        channel.close()
