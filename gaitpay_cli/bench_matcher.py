"""`gaitpay bench matcher`: enrol N synthetic customers in Milvus, drive the identification
stream, and time each window from arrival to decision, beside an exact numpy search over the
same templates in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


def _walk_config():  # type: ignore[no-untyped-def]
    """The bench's walks: 3.5-4.5 s towards an entrance camera, no limps."""
    from gait.synth.dataset import SynthConfig

    return SynthConfig(entrance_probability=1.0, seconds=(3.5, 4.5), limp_probability=0.0)


def _embed_chunk(args: tuple[int, int, int]) -> np.ndarray:
    """Embeddings of two walks (enrolment, probe) for each person in a chunk."""
    first, count, seed = args
    from gait.embedder import Embedder
    from gait.synth.dataset import people, render_walk

    embedder = Embedder(threads=1)
    persons = people(first + count, seed)[first:]
    rng = np.random.default_rng(seed + first)
    cfg = _walk_config()
    out = np.zeros((count, 2, embedder.dim), dtype=np.float32)
    for i, person in enumerate(persons):
        for j in range(2):
            while True:
                try:
                    out[i, j] = embedder.embed(render_walk(person, rng, cfg)).vector
                    break
                except ValueError:
                    continue
    return out


def _cache_file(n: int, seed: int) -> Path:
    """Where the embeddings of this model, size and seed are kept between runs: rendering and
    embedding 2 x 100k walks takes about 7 minutes on two cores, the measurement a minute."""
    import hashlib
    import os

    from gait.embedder import resolve_model_path

    digest = hashlib.sha256(resolve_model_path().read_bytes()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gaitpay" / "bench-matcher"
    return root / f"{digest}-{n}-{seed}.npy"


def synthetic_embeddings(n: int, seed: int, progress: Callable[[int], None]) -> np.ndarray:
    cached = _cache_file(n, seed)
    if cached.exists():
        embeddings = np.load(cached)
        progress(n)
        return embeddings
    embeddings = _render_embeddings(n, seed, progress)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial.npy")
    np.save(partial, embeddings)
    partial.replace(cached)  # a run cut short leaves no half-written cache behind
    return embeddings


def _render_embeddings(n: int, seed: int, progress: Callable[[int], None]) -> np.ndarray:
    chunk = 500
    jobs = [(f, min(chunk, n - f), seed) for f in range(0, n, chunk)]
    parts = []
    with mp.get_context("fork").Pool(2) as pool:
        for part in pool.imap(_embed_chunk, jobs):
            parts.append(part)
            progress(sum(len(p) for p in parts))  # walks done so far (the bar's position)
    return np.concatenate(parts)


def ivf_params(n: int) -> tuple[int, int]:
    """IVF lists and lists probed for n templates (what the bench builds and searches)."""
    nlist = max(64, min(4096, n // 40))
    return nlist, max(32, nlist // 24)


@dataclass(frozen=True)
class MatcherBench:
    index: str
    payload: str
    engine: str
    consistency: str
    customers: int
    windows: int
    p50_ms: float
    p99_ms: float
    windows_per_s: float
    recall5_milvus: float
    recall5_exact: float
    exact_p50_ms: float
    exact_p99_ms: float
    body_measures: bool = False  # customers and windows carried them, and the matcher weighed them


# Where the bench's bodies come from: shoulder and hip heights (m) about a population mean,
# spread as the shipped body model's population and, window to enrolment, as one person's walks.
_BODY_MEAN = np.array([1.42, 0.92])


def _bodies(n: int, windows: int, chosen: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Customers' enrolment bodies [n, 2] and the chosen customers' windows' [windows, 2]."""
    from gait.body import load_body_model

    model = load_body_model()
    if model is None:
        raise RuntimeError("no body model is shipped (gait/models/body-measures.json)")
    rng = np.random.default_rng(seed)
    enrolled = rng.multivariate_normal(_BODY_MEAN, model.population, size=n)
    seen = enrolled[chosen[:windows]] + rng.multivariate_normal(np.zeros(2), 2 * model.within, size=windows)
    return enrolled.astype(np.float32), seen.astype(np.float32)


def _probe_walks(n: int, seed: int, chosen: np.ndarray) -> tuple[list, np.ndarray]:
    """Fresh walks of the chosen customers, as an edge sends them (COCO-17 keypoints), and
    their embeddings (for the recall figures). A walk the matcher would refuse (a walker
    rendered partly outside the frame) or cannot embed is walked again."""
    from gait.embedder import Embedder
    from gait.synth.dataset import people, render_walk
    from gait.walk import Walk
    from gaitpay_cli.walk_messages import in_frame

    embedder = Embedder()
    persons = people(n, seed)
    rng = np.random.default_rng(seed + 1)
    cfg = _walk_config()
    walks, vectors = [], []
    for i in chosen:
        while True:
            rendered = render_walk(persons[int(i)], rng, cfg)
            walk = Walk(rendered.keypoints[:, :17], rendered.fps)
            if not in_frame(walk):
                continue
            try:
                vectors.append(embedder.embed(walk).vector)
            except ValueError:
                continue
            walks.append(walk)
            break
    return walks, np.stack(vectors)


async def _drive(settings, windows: list, tracks: int) \
        -> tuple[list[float], float, int]:  # type: ignore[no-untyped-def]
    """Send each window on its own track; measure arrival-to-decision per window (one
    window in flight per link) and throughput (several links at once)."""
    from edge.adapters.matcher_link import MatcherLink
    from gaitpay.matcher.v1 import matcher_pb2

    def window(i: int, track: str) -> matcher_pb2.KeypointWindow:
        w = matcher_pb2.KeypointWindow()
        w.CopyFrom(windows[i])
        w.track.track_id = track
        return w

    latencies: list[float] = []
    answered = 0

    async def one_link(indices: list[int], name: str) -> None:
        nonlocal answered
        link = MatcherLink(settings)
        call = link.open()
        for i in indices:
            t0 = time.perf_counter()
            await link.send(window(i, f"{name}-{i}"))
            reply = await call.read()
            latencies.append(time.perf_counter() - t0)
            answered += reply.WhichOneof("result") == "decision"
        await link.finish()
        await link.close()

    chunks = [list(range(k, len(windows), tracks)) for k in range(tracks)]
    t0 = time.perf_counter()
    await asyncio.gather(*(one_link(c, f"l{k}") for k, c in enumerate(chunks)))
    elapsed = time.perf_counter() - t0
    return latencies, len(windows) / elapsed, answered


def _edges(settings, windows: list) -> tuple[list[float], float, int]:  # type: ignore[no-untyped-def]
    """The load, from a process of its own as edges are: a warm-up (connections, caches),
    then eight tracks in flight at once, as at a busy door. In the matcher's process the
    driver would take its interpreter lock from the matcher and be measured as the matcher."""
    asyncio.run(_drive(settings, windows[:50], 1))
    return asyncio.run(_drive(settings, windows, 8))


def run(n: int, windows: int, progress: Callable[[str, int, int], None], milvus_uri: str | None = None,
        index_type: str = "IVF_FLAT", payload: str = "features", engine: str = "lite",
        consistency: str = "Bounded", body_measures: bool = False) -> MatcherBench:
    """payload "features": windows carry embeddings (an edge with the model on board);
    "keypoints": raw COCO-17 keypoints that the matcher embeds (what our edge sends).
    engine "lite": embedded milvus-lite (the local default); "server": an embedded Milvus
    standalone server (time ticks, consistency levels and HNSW, as production has them).
    consistency: the matcher's template search consistency (Bounded, its default, or Strong).
    body_measures: customers are enrolled with body measures and windows carry them (a store
    with calibrated cameras), so the matcher weighs them on every window."""
    from gaitpay_cli import milvus_server, stack
    from mesh import dependencies

    seed = 4040 + n
    embeddings = synthetic_embeddings(n, seed=seed, progress=lambda k: progress("embedding walks", k, n))
    customers = [f"c{i:07d}" for i in range(n)]
    home = Path(tempfile.mkdtemp(prefix="gaitpay-bench-"))
    with contextlib.ExitStack() as components:
        if milvus_uri is None and engine == "server":
            progress("starting a Milvus server", 0, 1)
            milvus_uri = components.enter_context(milvus_server.running(home / "milvus-server"))
            progress("starting a Milvus server", 1, 1)
        elif milvus_uri is None:
            record, milvus_uri = stack.start_milvus(home)
            components.callback(_stop_group, record.pgid or record.pid)
            asyncio.run(dependencies.wait_ready({"milvus": dependencies.milvus(milvus_uri)}))
        return _measure(n, windows, progress, milvus_uri, index_type, payload, engine, consistency, embeddings,
                        customers, seed, home, body_measures)


def _stop_group(pgid: int) -> None:
    import os
    import signal

    os.killpg(pgid, signal.SIGTERM)


def _measure(n: int, windows: int, progress: Callable[[str, int, int], None], milvus_uri: str, index_type: str,
             payload: str, engine: str, consistency: str, embeddings: np.ndarray, customers: list[str], seed: int,
             home: Path, body_measures: bool = False) -> MatcherBench:
    from edge.adapters.matcher_link import keypoint_window
    from gait.embedder import model_version
    from gaitpay.matcher.v1 import matcher_pb2
    from gaitpay_cli import stack
    from matcher import bootstrap
    from matcher.adapters.milvus_index import MilvusConfig, MilvusTemplateIndex
    from mesh import body_measures as body_measures_proto
    from mesh import config, server

    collection = f"bench_{uuid.uuid4().hex[:8]}"
    nlist, nprobe = ivf_params(n)
    index = MilvusTemplateIndex(MilvusConfig(uri=milvus_uri, collection=collection, dim=embeddings.shape[2],
                                             nlist=nlist, nprobe=nprobe, index_type=index_type))
    rng = np.random.default_rng(1)
    chosen = rng.choice(n, size=min(windows, n), replace=False)
    enrolled_bodies, window_bodies = _bodies(n, len(chosen), chosen, seed) if body_measures else (None, None)
    progress("enrolling in Milvus", 0, n)
    # Of the matcher's model: its search returns no other model's templates.
    index.bulk_insert(customers, embeddings[:, 0], model_version(), bodies=enrolled_bodies)
    progress("enrolling in Milvus", n, n)
    progress("building the index", 0, n)
    index.wait_indexed(lambda done: progress("building the index", done, n), timeout_s=1800)
    progress("building the index", n, n)
    truth = [customers[i] for i in chosen]
    if payload == "keypoints":
        progress("walking the probes", 0, len(chosen))
        walks, probes = _probe_walks(n, seed, chosen)
        messages = [keypoint_window("bench", "c", "", i, w.keypoints, w.fps) for i, w in enumerate(walks)]
        progress("walking the probes", len(chosen), len(chosen))
    else:
        probes, model = embeddings[chosen, 1], model_version()
        messages = []
        for i, vector in enumerate(probes):
            track = matcher_pb2.TrackRef(store_id="bench", camera_id="c", track_id="-")
            w = matcher_pb2.KeypointWindow(track=track, sequence=i, quality=1.0)
            w.features.values.extend(vector.tolist())
            w.features.model_version = model  # as an edge with the model on board labels them (checked)
            messages.append(w)
    if window_bodies is not None:
        for message, body in zip(messages, window_bodies):
            body_measures_proto.to_proto(body, message)

    addrs = {f"{svc}_addr": f"127.0.0.1:{stack.free_port()}" for svc in config.SERVICES}
    settings = config.load(home=home, metrics_port_offset=0, milvus_uri=milvus_uri, milvus_collection=collection,
                           milvus_nprobe=nprobe, milvus_index=index_type, milvus_search_consistency=consistency,
                           trace_dir_override=str(home / "traces"), **addrs)

    async def measure() -> tuple[list[float], float, int]:
        running = await server.start(bootstrap.build(settings), settings)
        try:
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as edges:
                return await asyncio.wrap_future(edges.submit(_edges, settings, messages))
        finally:
            await running.stop(grace=1)  # a graceful GOAWAY: grpc logs an abrupt one at INFO per connection

    progress("streaming windows", 0, len(probes))
    latencies, rate, answered = asyncio.run(measure())
    progress("streaming windows", len(probes), len(probes))
    if answered != len(probes):
        raise RuntimeError(f"only {answered} of {len(probes)} windows got a decision")

    # Recall of the true customer in the top 5: Milvus (as the matcher searches) vs exact.
    milvus_top = index.search_many(probes, "bench", 5, all_stores=True)
    milvus_hits = sum(truth[i] in [c for c, _ in top] for i, top in enumerate(milvus_top))
    gallery = embeddings[:, 0]
    exact_times, exact_hits = [], 0
    for i, p in enumerate(probes):
        t0 = time.perf_counter()
        top = np.argpartition(-(gallery @ p), 5)[:5]
        exact_times.append(time.perf_counter() - t0)
        exact_hits += int(chosen[i] in top)
    index.drop()  # a server keeps every loaded collection in memory
    index.close()
    return MatcherBench(
        index=index_type, payload=payload, engine=engine, consistency=consistency, customers=n, windows=len(probes),
        p50_ms=float(np.percentile(latencies, 50) * 1e3), p99_ms=float(np.percentile(latencies, 99) * 1e3),
        windows_per_s=rate, recall5_milvus=milvus_hits / len(probes), recall5_exact=exact_hits / len(probes),
        exact_p50_ms=float(np.percentile(exact_times, 50) * 1e3),
        exact_p99_ms=float(np.percentile(exact_times, 99) * 1e3), body_measures=body_measures,
    )

