"""The evaluation `gaitpay eval` runs: synthetic galleries of several sizes and the real
UCalgary walkers, each summarised with intervals, plus a DET plot."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gait.datasets import ucalgary
from gait.embedder import Embedder
from gait.evaluation import Trial, bootstrap, det_curve, summarise
from gait.protection import CancelableTransform
from gait.synth.dataset import SynthConfig, people, render_walk
from gait.walk import Walk

EVAL_SEED = 777_000  # never a training seed


def _render(args: tuple[int, int, int, int]) -> list[tuple[int, Walk]]:
    first, count, walks_per_person, seed = args
    persons = people(first + count, seed)[first:]
    rng = np.random.default_rng(seed * 7 + first)
    return [(first + i, render_walk(p, rng, SynthConfig())) for i, p in enumerate(persons)
            for _ in range(walks_per_person)]


def synthetic_walks(persons: int, walks_per_person: int, seed: int, workers: int = 2) -> list[tuple[int, Walk]]:
    jobs = [(f, min(100, persons - f), walks_per_person, seed) for f in range(0, persons, 100)]
    with mp.get_context("fork").Pool(workers) as pool:
        return [item for chunk in pool.imap(_render, jobs) for item in chunk]


def _embed(embedder: Embedder, walks: list[tuple[int, Walk]]) -> tuple[np.ndarray, np.ndarray]:
    keyed = {str(i): w for i, (_, w) in enumerate(walks)}
    result, errors = embedder.embed_many(keyed)
    keep = [i for i in range(len(walks)) if str(i) in result]
    vectors = np.stack([result[str(i)].vector for i in keep])
    return vectors, np.asarray([walks[i][0] for i in keep])


@dataclass(frozen=True)
class SuiteResult:
    rows: dict[str, dict[str, object]]
    det_path: Path
    notes: tuple[str, ...] = ()


def synthetic_trial(embedder: Embedder, size: int, seed: int = EVAL_SEED) -> Trial:
    """`size` enrolled people (one gallery walk, one probe walk each) and `size` strangers
    (one probe walk each)."""
    walks = synthetic_walks(2 * size, 2, seed)
    vectors, ids = _embed(embedder, walks)
    enrolled = ids < size
    first = np.zeros(len(ids), dtype=bool)
    seen: set[int] = set()
    for i, pid in enumerate(ids):
        if pid not in seen:
            first[i] = True
            seen.add(int(pid))
    gallery = enrolled & first
    probes = (enrolled & ~first) | (~enrolled & first)
    return Trial(vectors[gallery], ids[gallery], vectors[probes], ids[probes])


def real_trials(embedder: Embedder, root: Path, duplicates: list[ucalgary.Duplicate] | None = None,
                not_walks: list[ucalgary.NotAWalk] | None = None) -> dict[str, Trial]:
    walks = ucalgary.load(root, duplicates, not_walks)
    keyed = {str(i): w.walk for i, w in enumerate(walks)}
    result, _ = embedder.embed_many(keyed)
    vec = {i: result[str(i)].vector for i in range(len(walks)) if str(i) in result}

    def pick(cond: Callable[[ucalgary.RealWalk], bool]) -> tuple[np.ndarray, np.ndarray]:
        chosen = [i for i, w in enumerate(walks) if cond(w) and i in vec]
        return np.stack([vec[i] for i in chosen]), np.asarray([walks[i].subject for i in chosen])

    n1 = pick(lambda w: w.run == 1)
    n2 = pick(lambda w: w.run == 2)
    abnormal = pick(lambda w: w.condition != "normal")
    normal = pick(lambda w: w.condition == "normal")
    return {
        "real normal walk 1 -> walk 2": Trial(n1[0], n1[1], n2[0], n2[1]),
        "real normal walk 2 -> walk 1": Trial(n2[0], n2[1], n1[0], n1[1]),
        "real normal -> abnormal gait": Trial(normal[0], normal[1], abnormal[0], abnormal[1]),
    }


def duplicate_notes(duplicates: list[ucalgary.Duplicate]) -> list[str]:
    """One line per pair of folders: 'sub10: 6 recordings byte-identical to sub4's, counted once'."""
    pairs = Counter((d.dropped.parent.parent.name, d.same_as.parent.parent.name) for d in duplicates)
    return [f"{dropped}: {n} recording{'s' if n > 1 else ''} byte-identical to {kept}'s, counted once"
            for (dropped, kept), n in pairs.items()]


def not_walk_notes(not_walks: list[ucalgary.NotAWalk]) -> list[str]:
    """One line per recording: 'sub7 run 1 (normal): the skeleton follows someone 1.80 m
    to the side who moves 0.29 m away, not the walker; skipped'."""
    def motion(metres: float) -> str:
        return f"comes {metres:.2f} m closer" if metres >= 0 else f"moves {-metres:.2f} m away"
    return [f"{n.label}: the skeleton follows someone {abs(n.side_m):.2f} m to the side who {motion(n.approach_m)}, "
            "not the walker; skipped" for n in not_walks]


def protected(trial: Trial, secret: bytes = b"gaitpay-eval-transform-secret!!") -> Trial:
    """The same trial as the matcher's index sees it: gallery and probes through the
    cancelable template transform (gait.protection). Its accuracy cost is the difference
    between this trial's row and the unprotected one's."""
    transform = CancelableTransform(secret, 1, trial.gallery.shape[1])
    return Trial(transform.apply(trial.gallery), trial.gallery_ids, transform.apply(trial.probes), trial.probe_ids)


def run(embedder: Embedder, sizes: list[int], real_root: Path | None, out_dir: Path,
        progress: Callable[[str], None] = lambda s: None) -> SuiteResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    trials: dict[str, Trial] = {}
    notes: list[str] = []
    for size in sizes:
        progress(f"synthetic gallery of {size}")
        trials[f"synthetic {size}"] = synthetic_trial(embedder, size)
    if sizes:  # the transform's accuracy cost, on the largest gallery up to 1,000
        size = max([s for s in sizes if s <= 1000] or [min(sizes)])
        trials[f"synthetic {size}, protected"] = protected(trials[f"synthetic {size}"])
    if real_root is not None and real_root.exists():
        progress("real walkers (UCalgary)")
        duplicates: list[ucalgary.Duplicate] = []
        not_walks: list[ucalgary.NotAWalk] = []
        trials.update(real_trials(embedder, real_root, duplicates, not_walks))
        notes.extend(duplicate_notes(duplicates) + not_walk_notes(not_walks))
    rows: dict[str, dict[str, object]] = {}
    for name, trial in trials.items():
        progress(f"scoring {name}")
        summary = summarise(trial)
        intervals = bootstrap(trial)
        rows[name] = {**summary, "rank1_ci": intervals["rank1"], "eer_ci": intervals["eer"],
                      "gallery": len(trial.gallery), "probes": len(trial.probes)}
    det_path = out_dir / "det.png"
    det_curve(trials, str(det_path))
    return SuiteResult(rows, det_path, tuple(notes))
