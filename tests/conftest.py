from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import config, pki
from mesh.client import channel_credentials

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free port below the kernel's ephemeral range, which no outgoing connection is given
    between choosing it here and a service binding it (see gaitpay_cli.stack.free_port)."""
    from gaitpay_cli.stack import free_port as stack_free_port

    return stack_free_port()


@pytest.fixture(scope="session", autouse=True)
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A process has one tracer provider for its life. This test process plays the edge
    # (it drives streams into services it starts); every test writes its spans here, and
    # tests tell theirs apart by trace id.
    from mesh.telemetry import setup_tracing

    path = tmp_path_factory.mktemp("traces")
    setup_tracing(config.load(environ={}, trace_dir_override=str(path)), "edge")
    return path


@pytest.fixture
def settings(tmp_path: Path, trace_dir: Path) -> config.Settings:
    """Settings for services under test: a private home (own CA), free ports."""
    addrs = {f"{svc}_addr": f"127.0.0.1:{free_port()}" for svc in config.SERVICES}
    return config.load(
        environ={}, home=tmp_path / "home", metrics_port_offset=0, trace_dir_override=str(trace_dir), **addrs
    )


FORMER_NAME = "synthetic-former-name"  # a name the shipped weights answer to in tests


@pytest.fixture(scope="session")
def model_with_former_name(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model file under a card that also lists a former name of the same weights
    (as the single network's card listed `synthetic-20261125`): whoever asks "is this of my
    model?" must accept templates, windows and statistics made under that name."""
    import json
    import shutil

    from gait.embedder import DEFAULT_MODEL

    folder = tmp_path_factory.mktemp("renamed-model")
    shutil.copy(DEFAULT_MODEL, folder / DEFAULT_MODEL.name)
    card = json.loads(DEFAULT_MODEL.with_name("model-card.json").read_text())
    card["former_versions"] = [*card.get("former_versions", []), FORMER_NAME]
    (folder / "model-card.json").write_text(json.dumps(card))
    return folder / DEFAULT_MODEL.name


def wait_serving(settings: config.Settings, service: str, timeout_s: float = 30.0) -> None:
    creds = pki.credentials(settings.pki_dir, "operator")
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        channel = grpc.secure_channel(
            settings.address_of(service),
            channel_credentials(creds),
            options=[("grpc.ssl_target_name_override", f"{service}.gaitpay.svc")],
        )
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            if status.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError as exc:
            last = exc
        finally:
            channel.close()
        time.sleep(0.1)
    raise TimeoutError(f"{service} not SERVING after {timeout_s}s: {last}")


@pytest.fixture
def service_process(settings: config.Settings) -> Iterator:
    """Start `python -m <service>` as a real process with the test's settings."""
    started: list[subprocess.Popen] = []

    def start(service: str, custom: config.Settings | None = None) -> subprocess.Popen:
        chosen = custom or settings
        env = {**os.environ, **config.as_environment(chosen)}
        with open(chosen.home / f"{service}.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", service], env=env, cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=log)
        started.append(proc)
        wait_serving(chosen, service)
        return proc

    settings.home.mkdir(parents=True, exist_ok=True)
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until_answering(probe: Callable[[], object], timeout_s: float = 30.0) -> None:
    """Call a readiness probe (mesh.dependencies) until it passes; its last error if it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe()
            return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus (milvus-lite's server) on 127.0.0.1 for the session."""
    import signal

    from gaitpay_cli import stack
    from mesh import dependencies

    home = tmp_path_factory.mktemp("milvus-home")
    record, uri = stack.start_milvus(home)
    wait_until_answering(dependencies.milvus(uri, timeout_s=2))
    yield uri
    os.killpg(record.pgid or record.pid, signal.SIGTERM)


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus standalone server (the embedded `milvus` package, stock settings) for the
    session: time ticks and consistency levels as a production server has them."""
    from gaitpay_cli import milvus_server

    with milvus_server.running(tmp_path_factory.mktemp("milvus-server")) as uri:
        yield uri


class LocalStack:
    """A stack started by `gaitpay up`, as a user starts it, with operator-style access."""

    def __init__(self, home: Path, rows: dict[str, dict]) -> None:
        self.home = home
        self.rows = rows

    def channel(self, service: str, identity: str = "operator") -> grpc.Channel:
        creds = pki.credentials(self.home / "pki", identity)
        return grpc.secure_channel(self.rows[service]["address"], channel_credentials(creds),
                                   options=[("grpc.ssl_target_name_override", f"{service}.gaitpay.svc")])

    def settings(self) -> config.Settings:
        """Settings a client process would load for this stack (its home, its addresses)."""
        addrs = {f"{svc}_addr": self.rows[svc]["address"] for svc in config.SERVICES}
        return config.load(environ={}, home=self.home, **addrs)

    def cli(self, *args: str, timeout: float = 120,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GAITPAY_HOME": str(self.home), "COLUMNS": "200", **(extra_env or {})}
        return subprocess.run([sys.executable, "-m", "gaitpay_cli", *args], env=env, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture(scope="session")
def postgres_homes() -> Iterator[Path]:
    """Where the session's long-lived stacks keep their homes: outside /tmp/pytest-of-<user>.
    Their PostgreSQL runs as another user (`pgserver`) that must traverse the folders above its
    data, and every new pytest session on the machine resets that folder to owner-only: a test
    run beside the suite would take its PostgreSQL's access away mid-run (it stops at its next
    checkpoint, "Permission denied")."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="gaitpay-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def local_stack(postgres_homes: Path) -> Iterator[LocalStack]:
    """One `gaitpay up` shared by the end-to-end tests of the session; `down` at the end."""
    import json

    home = postgres_homes / "local-stack"
    home.mkdir()
    stack = LocalStack(home, {})
    # Partner webhooks retry within the tests' patience (production waits 30 s, doubling).
    # and a re-issued template transform reaches the matcher within a second.
    started = stack.cli("up", extra_env={"GAITPAY_WEBHOOK_RETRY_BASE_S": "0.5",
                                         "GAITPAY_WEBHOOK_POLL_INTERVAL_S": "0.2",
                                         "GAITPAY_TRANSFORM_REFRESH_S": "1"})
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        stack.rows = {r["name"]: r for r in json.loads(stack.cli("status", "--json").stdout)["components"]}
        yield stack
    finally:
        stack.cli("down")


@pytest.fixture(scope="session")
def backing_services(postgres_homes: Path) -> Iterator[dict[str, str]]:
    """A real PostgreSQL and a provisioned OpenBao for services started alone by a test:
    {"postgres_dsn", "vault_addr", "root_token", "<service>_token"...}."""
    import signal

    from gaitpay_cli import stack
    from mesh import dependencies, vault_provision

    home = postgres_homes / "backing"
    (home / "logs").mkdir(parents=True)
    pg_record, dsn = stack.start_postgres(home)
    vault_record, addr, root = stack.start_vault(home)
    try:
        wait_until_answering(dependencies.vault(addr, root, timeout_s=1))
        tokens = vault_provision.provision(addr, root).tokens
        yield {"postgres_dsn": dsn, "vault_addr": addr, "root_token": root,
               **{f"{name}_token": token for name, token in tokens.items()}}
    finally:
        os.killpg(vault_record.pgid or vault_record.pid, signal.SIGTERM)
        stack.stop_postgres(home, pg_record)


class LocalGateways:
    """localstripe and the fake Razorpay, started alone for payment tests."""

    def __init__(self, stripe_base: str, stripe_key: str, razorpay_base: str, key_id: str, key_secret: str) -> None:
        self.stripe_base, self.stripe_key = stripe_base, stripe_key
        self.razorpay_base, self.key_id, self.key_secret = razorpay_base, key_id, key_secret

    def razorpay_fault(self, mode: str, seconds: float = 0.0) -> None:
        import json
        import urllib.request

        request = urllib.request.Request(self.razorpay_base + "/_fake/faults",
                                         data=json.dumps({"mode": mode, "seconds": seconds}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5):
            pass


@pytest.fixture(scope="session")
def local_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateways]:
    import secrets
    import signal

    from gaitpay_cli import stack
    from mesh import dependencies

    home = tmp_path_factory.mktemp("gateways")
    (home / "logs").mkdir()
    key_id, key_secret = "rzp_test_" + secrets.token_hex(7), secrets.token_hex(12)
    stripe_record, stripe_base = stack.start_localstripe(home)
    razorpay_record, razorpay_base = stack.start_razorpay(home, key_id, key_secret)
    try:
        wait_until_answering(dependencies.http(stripe_base + "/v1/balance", timeout_s=1))
        wait_until_answering(dependencies.http(razorpay_base + "/v1/health", timeout_s=1))
        yield LocalGateways(stripe_base, "sk_test_" + secrets.token_hex(8), razorpay_base, key_id, key_secret)
    finally:
        for record in (stripe_record, razorpay_record):
            os.killpg(record.pgid or record.pid, signal.SIGTERM)
