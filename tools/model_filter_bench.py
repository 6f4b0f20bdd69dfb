"""What keeping to one model costs a search: the same milvus-lite collection searched with the
store filter alone (`store_key`, the search before schema 4), with the store and model
filters side by side (`store_key` and `model_key`, the first try), and with the one key of
both (`search_key`, what the matcher does now), alternating, in one run. Random unit vectors
of the shipped model's size; a tenth of the rows belong to another model, as after a model
change.

    .venv/bin/python tools/model_filter_bench.py --rows 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gaitpay_cli import stack  # noqa: E402
from matcher.adapters import milvus_index  # noqa: E402
from matcher.adapters.milvus_index import MilvusConfig, MilvusTemplateIndex  # noqa: E402
from mesh import dependencies  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.rows, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as home:
        record, uri = stack.start_milvus(Path(home))  # milvus-lite's server, as the local stack runs it
        try:
            measure(args, uri, vectors)
        finally:
            os.killpg(record.pgid or record.pid, signal.SIGTERM)


def measure(args: argparse.Namespace, uri: str, vectors: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    customers = [f"c{i:07d}" for i in range(args.rows)]
    deadline = time.monotonic() + 60
    while True:
        try:
            dependencies.milvus(uri, timeout_s=2)()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    config = MilvusConfig(uri=uri, collection=f"b_{uuid.uuid4().hex[:8]}", dim=args.dim, nlist=1024, nprobe=32)
    plain = MilvusTemplateIndex(config)
    other = args.rows // 10
    plain.bulk_insert(customers[:other], vectors[:other], "old-model")
    plain.bulk_insert(customers[other:], vectors[other:], "this-model")
    plain.wait_indexed()
    models = ("this-model", "this-model-former-name")
    filtered = MilvusTemplateIndex(replace(config, model_versions=models))
    queries = vectors[rng.choice(np.arange(other, args.rows), args.queries, replace=False)]
    both = f"{milvus_index._scope_filter('s1')} and {milvus_index._models_filter(models)}"
    filters = {"store_key (before)": milvus_index._scope_filter("s1"), "store_key and model_key": both,
               "search_key (now)": milvus_index._search_filter("s1", False, models)}
    # The matcher's index keeps to its model: no row of the other model comes back.
    assert all(int(c[1:]) >= other for q in queries[:20] for c, _ in filtered.search(q, "s1", 5))
    timings: dict[str, list[float]] = {name: [] for name in filters}
    for _ in range(args.rounds):
        for name, flt in filters.items():
            t0 = time.perf_counter()
            for q in queries:
                plain._client.search(plain.collection, data=[q.tolist()], limit=20, filter=flt,
                                     output_fields=["customer_id"], search_params=plain._search_params(),
                                     consistency_level="Bounded")
            timings[name].append((time.perf_counter() - t0) / len(queries) * 1e3)
    base = statistics.median(timings["store_key (before)"])
    print(f"{args.rows:,} rows x {args.dim} (a tenth of another model), {args.queries} single searches, "
          f"{args.rounds} rounds alternating; ms a search, median [min-max]:")
    for name, values in timings.items():
        m = statistics.median(values)
        print(f"  {name:26s} {m:.3f} [{min(values):.3f}-{max(values):.3f}]  x{m / base:.2f}")


if __name__ == "__main__":
    main()
