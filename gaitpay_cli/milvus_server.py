"""An embedded Milvus *server* for the tests and benchmarks that need one rather than
milvus-lite: the PyPI package `milvus` 2.3.5 runs Milvus standalone (the Go server, with
embedded etcd and local storage) as a child process. Unlike milvus-lite it builds HNSW,
honours nprobe and ef, and has time ticks and consistency levels, as Milvus standalone or
distributed has in production (where GAITPAY_MILVUS_URI points at it instead). Its settings
are Milvus's defaults (a 200 ms time tick), so what is measured here is what a stock server
does.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class MilvusServerError(RuntimeError):
    """The embedded server did not start; the message says where its log is."""


def _check_etcd_peer_port_free() -> None:
    # The server's embedded etcd always listens on 127.0.0.1:2380 (the package resolves every
    # other port), so a second server on the machine would crash on start, after a long wait.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", 2380))
        except OSError:
            raise MilvusServerError("port 2380 is taken (another embedded Milvus server, or etcd, is running on "
                                    "this machine): one embedded Milvus server at a time") from None


@contextmanager
def running(home: Path, start_timeout_s: float = 120.0) -> Iterator[str]:
    """Start a server with its data under `home`, yield its URI, stop it on exit."""
    try:
        from milvus import MilvusServer
    except ImportError:
        raise MilvusServerError("the embedded Milvus server (PyPI `milvus`) is not installed: run `make venv`") \
            from None
    _check_etcd_peer_port_free()
    home.mkdir(parents=True, exist_ok=True)
    server = MilvusServer(wait_for_started=False)
    server.set_base_dir(str(home))
    try:
        server.start()
        try:
            server.wait_started(timeout=int(start_timeout_s * 1000))
        except (TimeoutError, RuntimeError) as exc:
            raise MilvusServerError(f"embedded Milvus server did not start ({exc}); log: "
                                    f"{home / 'logs' / 'milvus-stderr.log'}") from None
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()
