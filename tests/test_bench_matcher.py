"""`gaitpay bench matcher`: its options and a small run on a Milvus server, as production runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gaitpay_cli import bench_matcher


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gaitpay_cli", *args], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("args", "message"), [
    (["--index", "HNSW"], "HNSW with --milvus server"),
    (["--milvus", "cloud"], "--milvus cloud: expected lite or server"),
    (["--consistency", "Eventually"], "expected Bounded or Strong"),
])
def test_bad_options_are_refused_before_any_work(args: list[str], message: str) -> None:
    result = cli("bench", "matcher", *args)
    assert result.returncode == 2
    assert message in result.stdout.replace("\n", " ")


def test_a_small_run_on_a_server_answers_every_window(milvus_server_uri: str) -> None:
    stages: dict[str, tuple[int, int]] = {}
    result = bench_matcher.run(300, 40, lambda stage, done, total: stages.__setitem__(stage, (done, total)),
                               milvus_uri=milvus_server_uri, index_type="HNSW", engine="server")
    assert (result.engine, result.index, result.consistency, result.windows) == ("server", "HNSW", "Bounded", 40)
    assert stages["building the index"] == (300, 300)
    # HNSW on a server at 300 templates finds what the exact search finds.
    assert result.recall5_milvus == pytest.approx(result.recall5_exact, abs=0.03)
    assert 0 < result.p50_ms <= result.p99_ms


def test_a_small_run_with_body_measures_weighs_them_and_answers_every_window(milvus_uri: str) -> None:
    result = bench_matcher.run(300, 40, lambda stage, done, total: None, milvus_uri=milvus_uri, body_measures=True)
    assert result.body_measures and result.windows == 40 and 0 < result.p50_ms <= result.p99_ms


def test_bench_bodies_scatter_about_the_customers_as_one_person_s_walks_do() -> None:
    import numpy as np

    chosen = np.arange(0, 4000, 2)
    enrolled, seen = bench_matcher._bodies(4000, len(chosen), chosen, seed=3)
    assert enrolled.shape == (4000, 2) and seen.shape == (2000, 2)
    assert (enrolled[:, 0] > enrolled[:, 1]).mean() > 0.99  # shoulders above hips
    spread = np.std(seen - enrolled[chosen], axis=0)
    assert 0.02 < spread[0] < 0.1 and 0.02 < spread[1] < 0.1  # centimetres, as the body model's within spread
