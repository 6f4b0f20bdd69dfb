"""`gaitpay up` / `status` / `down` on the real components, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gaitpay.edge.v1 import edge_pb2, edge_pb2_grpc
from gaitpay_cli.stack import pid_alive
from mesh import pki
from mesh.client import channel_credentials

pytestmark = pytest.mark.stack
GAITPAY = [sys.executable, "-m", "gaitpay_cli"]
EXPECTED = {
    "edge": "gaitpay.edge.v1.EdgeService", "matcher": "gaitpay.matcher.v1.MatcherService",
    "identity": "gaitpay.identity.v1.IdentityService", "billing": "gaitpay.billing.v1.BillingService",
    "payment": "gaitpay.payment.v1.PaymentService", "gateway": "gaitpay.gateway.v1.PartnerAdminService",
}


def gaitpay(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GAITPAY_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([*GAITPAY, *args], env=env, capture_output=True, text=True, timeout=timeout)


def operator_channel(home: Path, service: str, address: str) -> grpc.Channel:
    creds = pki.credentials(home / "pki", "operator")
    return grpc.secure_channel(address, channel_credentials(creds),
                               options=[("grpc.ssl_target_name_override", f"{service}.gaitpay.svc")])


def test_up_status_down(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    started = gaitpay(home, "up")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        report = json.loads(gaitpay(home, "status", "--json").stdout)
        rows = {r["name"]: r for r in report["components"]}
        assert set(rows) == {"postgres", "milvus", "vault", "stripe", "razorpay", "mail", *EXPECTED}
        unhealthy = {name: r["detail"] for name, r in rows.items() if not r["healthy"]}
        assert not unhealthy
        assert all(r["address"].startswith("127.0.0.1:") for r in rows.values())

        again = gaitpay(home, "up")
        assert again.returncode == 1
        assert "already running" in again.stderr

        for service, full_name in EXPECTED.items():
            with operator_channel(home, service, rows[service]["address"]) as channel:
                health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert health.status == health_pb2.HealthCheckResponse.SERVING
                replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
                listed = {s.name for r in replies for s in r.list_services_response.service}
                assert full_name in listed and "grpc.health.v1.Health" in listed

        with operator_channel(home, "edge", rows["edge"]["address"]) as channel:
            edge = edge_pb2_grpc.EdgeServiceStub(channel).GetEdgeStatus(edge_pb2.GetEdgeStatusRequest(), timeout=5)
        assert edge.link == edge_pb2.LINK_STATE_ONLINE  # the edge reached the matcher over mTLS
    finally:
        stopped = gaitpay(home, "down")
    assert stopped.returncode == 0, stopped.stderr
    state = json.loads(json.dumps(report))
    for row in state["components"]:
        assert not pid_alive(row["pid"]), f"{row['name']} (pid {row['pid']}) left behind"
    assert not (home / "stack.json").exists()
    assert "no stack running" in gaitpay(home, "status").stdout


def test_a_component_that_cannot_start_is_reported_and_nothing_is_left(tmp_path: Path) -> None:
    home = tmp_path / "broken"
    home.mkdir()
    (home / "postgres").mkdir()
    (home / "postgres" / "PG_VERSION").write_text("not a database\n")  # a damaged data folder
    result = gaitpay(home, "up")
    assert result.returncode == 1
    assert "postgres did not start" in result.stderr
    assert not (home / "stack.json").exists()


def test_an_external_component_is_used_and_left_running(tmp_path: Path, milvus_uri: str) -> None:
    """GAITPAY_MILVUS_URI points at a Milvus the stack did not start: `up` uses it (the
    matcher checks it before SERVING), `status` reports it, `down` leaves it alone."""
    from mesh import dependencies

    home = tmp_path / "ext"
    env_extra = {"GAITPAY_MILVUS_URI": milvus_uri}
    env = {**os.environ, "GAITPAY_HOME": str(home), "COLUMNS": "200", **env_extra}
    run = lambda *a: subprocess.run([*GAITPAY, *a], env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    started = run("up")
    assert started.returncode == 0, started.stderr
    try:
        rows = {r["name"]: r for r in json.loads(run("status", "--json").stdout)["components"]}
        assert rows["milvus"]["external"] and rows["milvus"]["address"] == milvus_uri
        assert rows["milvus"]["healthy"] and rows["matcher"]["healthy"]
        assert not (home / "milvus").exists()  # no embedded Milvus was started
    finally:
        assert run("down").returncode == 0
    # Still answering after `down`. Asked until it answers (10 s at most): the test process's
    # pooled channel to this Milvus may have just been closed by the server (a GOAWAY after
    # keepalive pings), which says nothing about the server being up.
    from conftest import wait_until_answering

    wait_until_answering(dependencies.milvus(milvus_uri, timeout_s=3), timeout_s=10)


def test_a_port_taken_while_the_services_start_moves_them_to_other_ports(
        tmp_path: Path, milvus_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`up` chooses each service's ports free, and the service binds them moments later; another
    process may bind one in between (CI once saw the matcher's metrics port taken so). Here a
    socket takes the matcher's metrics port right after it was chosen: the matcher fails with
    "Address already in use", and `up` starts the services again on ports not tried before."""
    import socket

    from gaitpay_cli import stack
    from mesh import config

    settings = config.load(environ={"GAITPAY_MILVUS_URI": milvus_uri}, home=tmp_path / "race")
    matcher_port = config.port_of(settings.matcher_addr)
    choose = stack._free_service_port
    thief = socket.socket()
    stolen: list[int] = []

    def choose_then_lose(preferred: int | None, offsets: list[int], taken: set[int], tries: int = 200) -> int:
        port = choose(preferred, offsets, taken, tries)
        if preferred == matcher_port and not stolen:
            thief.bind(("127.0.0.1", port + settings.metrics_port_offset))
            thief.listen()
            stolen.append(port)
        return port

    monkeypatch.setattr(stack, "_free_service_port", choose_then_lose)
    try:
        state = stack.up(settings)
        try:
            services = {r.name: r for r in state.records if r.kind == "service"}
            assert set(services) == set(EXPECTED)
            assert stolen and services["matcher"].address != f"127.0.0.1:{stolen[0]}"
            assert all(pid_alive(r.pid) for r in services.values())
            assert "matcher lost its port to another process" in capsys.readouterr().err
            report = {r["name"]: r for r in stack.status(settings)["components"]}
            assert all(r["healthy"] for r in report.values()), report
            assert len(report) == len(state.records)  # the first attempt's services are gone from the record
        finally:
            stack.down(settings, state)
    finally:
        thief.close()
    assert not any(pid_alive(r.pid) for r in state.records)


def test_ports_chosen_for_the_stack_are_outside_the_ranges_others_hand_out() -> None:
    # Below the kernel's ephemeral range (no outgoing connection is given them) and below
    # Kubernetes' NodePorts; a preferred port is kept when free.
    from gaitpay_cli import stack

    ephemeral = stack._ephemeral_ports()
    chosen = {stack.free_port() for _ in range(50)}
    assert all(1024 <= p < min(ephemeral.start, 30000) for p in chosen), sorted(chosen)
    assert len(chosen) > 1  # random, not one port for every caller
    preferred = stack.free_port()
    assert stack.free_port(preferred) == preferred


def test_postgres_runs_as_its_own_user_and_is_started_without_forking_this_process(tmp_path: Path) -> None:
    """As root, postgres runs as an unprivileged user. The switch is made by setpriv after exec:
    subprocess's user= would fork this gRPC-using process, whose child then ran gRPC's fork
    handlers before exec and now and then broke pg_ctl."""
    from gaitpay_cli import stack

    if os.geteuid() != 0:
        pytest.skip("postgres runs as the caller when the caller is not root")
    argv, options = stack._as_pg_user(["/bin/true"])
    assert options == {} and Path(argv[0]).name == "setpriv" and argv[-1] == "/bin/true"
    (tmp_path / "logs").mkdir()
    record, _dsn = stack.start_postgres(tmp_path)
    try:
        uid = int(next(line for line in Path(f"/proc/{record.pid}/status").read_text().splitlines()
                       if line.startswith("Uid:")).split()[1])
        import pwd

        assert uid == pwd.getpwnam(stack.PG_SYSTEM_USER).pw_uid != 0
    finally:
        stack.stop_postgres(tmp_path, record)
    assert not pid_alive(record.pid)
