"""How few walks camera statistics (gait.adaptation) can be taken from.

A gallery and its probes are each normalised with the head-norm statistics of their own
walks, for N people drawn at random (many draws), against the shipped (synthetic)
statistics. Prints mean EER and rank-1 per N:
- synthetic walkers (gait.eval_suite.synthetic_walks, an evaluation seed): the camera the
  model was trained for, where the shipped statistics are right;
- the real UCalgary walkers where a copy is found (evaluation only: this reads figures,
  nothing here trains or ships): normal walk 1 -> walk 2, and normal walk 1 -> the same
  people's abnormal walks.

    .venv/bin/python tools/few_walk_statistics.py [--real PATH] [--draws 30]

`gait.adaptation.MIN_CAMERA_WALKS` is set from this table; figures: docs/gait.md, "Seventh
round".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # real_scoring, when imported by a test

from gait.adaptation import CameraStatistics, HeadNorm  # noqa: E402
from gait.datasets import ucalgary  # noqa: E402
from gait.embedder import Embedder  # noqa: E402
from gait.eval_suite import synthetic_walks  # noqa: E402
from real_scoring import exact_eer, rank1  # noqa: E402  (tools/, beside this file)

SYNTHETIC_SEED = 424_242  # an evaluation seed, never a training one
SIZES = (3, 5, 8, 12, 20)


def own_statistics(projections: np.ndarray) -> CameraStatistics:
    """Statistics of exactly these walks, however few (the tool asks what few walks do)."""
    return CameraStatistics.of(projections, min_walks=1)


def trial(head: HeadNorm, gallery: np.ndarray, gallery_ids: np.ndarray, probes: np.ndarray,
          probe_ids: np.ndarray, own: bool) -> tuple[float, float]:
    """(EER, rank-1) with each side normalised by its own statistics, or both by the shipped."""
    g = head.embed(gallery, own_statistics(gallery) if own else None)
    p = head.embed(probes, own_statistics(probes) if own else None)
    scores = p @ g.T
    return exact_eer(scores, probe_ids[:, None] == gallery_ids[None, :]), rank1(scores, probe_ids, gallery_ids)


def sweep(head: HeadNorm, title: str, draw_trial, people: int, draws: int, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    print(f"\n{title} ({people} people; mean over {draws} draws of N)")
    print(f"{'N':>4}  {'shipped EER':>11} {'rank-1':>6}  {'own EER':>8} {'rank-1':>6}")
    for n in [s for s in SIZES if s < people] + [people]:
        figures = {own: [] for own in (False, True)}
        for _ in range(draws if n < people else 1):
            chosen = rng.choice(people, n, replace=False)
            for own in figures:
                figures[own].append(trial(head, *draw_trial(chosen), own=own))
        (se, sr), (oe, orr) = (np.mean(figures[o], axis=0) for o in (False, True))
        print(f"{n:>4}  {se:>11.3f} {sr:>6.2f}  {oe:>8.3f} {orr:>6.2f}")


def projections(embedder: Embedder, walks: list) -> list[np.ndarray | None]:  # type: ignore[type-arg]
    done, _ = embedder.embed_many({str(i): w for i, w in enumerate(walks)}, projections=True)
    return [done[str(i)].projection if str(i) in done else None for i in range(len(walks))]


def synthetic(embedder: Embedder, head: HeadNorm, draws: int, rng: np.random.Generator) -> None:
    walks = synthetic_walks(300, 2, seed=SYNTHETIC_SEED)
    by_person: dict[int, list[np.ndarray]] = {}
    for walk, projection in zip(walks, projections(embedder, [w.walk for w in walks])):
        if projection is not None:
            by_person.setdefault(walk.person, []).append(projection)
    pairs = [v[:2] for v in by_person.values() if len(v) >= 2]

    def draw(chosen: np.ndarray) -> tuple[np.ndarray, ...]:
        return (np.stack([pairs[c][0] for c in chosen]), chosen, np.stack([pairs[c][1] for c in chosen]), chosen)

    sweep(head, "synthetic walkers: walk 1 -> walk 2", draw, len(pairs), draws, rng)


def real_projections(embedder: Embedder, walks: list) -> tuple[dict, dict, list]:  # type: ignore[type-arg]
    """Projections of the real walks that embed: subject -> normal walk 1, subject -> normal
    walk 2, and (subject, projection) of every abnormal walk."""
    projected = projections(embedder, [w.walk for w in walks])
    first = {w.subject: p for w, p in zip(walks, projected) if p is not None and w.run == 1 and w.condition == "normal"}
    second = {w.subject: p for w, p in zip(walks, projected) if p is not None and w.run == 2 and w.condition == "normal"}
    abnormal = [(w.subject, p) for w, p in zip(walks, projected) if p is not None and w.condition != "normal"]
    return first, second, abnormal


def real(embedder: Embedder, head: HeadNorm, root: Path, draws: int, rng: np.random.Generator) -> None:
    first, second, abnormal = real_projections(embedder, ucalgary.load(root))

    both = sorted(set(first) & set(second))

    def normal(chosen: np.ndarray) -> tuple[np.ndarray, ...]:
        ids = np.asarray([both[c] for c in chosen])
        return np.stack([first[s] for s in ids]), ids, np.stack([second[s] for s in ids]), ids

    sweep(head, "real walkers: normal walk 1 -> walk 2", normal, len(both), draws, rng)
    gallery = sorted(set(first) & {s for s, _ in abnormal})

    def to_abnormal(chosen: np.ndarray) -> tuple[np.ndarray, ...]:
        ids = [gallery[c] for c in chosen]
        probes = [(s, p) for s, p in abnormal if s in ids]
        return (np.stack([first[s] for s in ids]), np.asarray(ids), np.stack([p for _, p in probes]),
                np.asarray([s for s, _ in probes]))

    sweep(head, "real walkers: normal walk 1 -> abnormal walks", to_abnormal, len(gallery), draws, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=None, help="UCalgary copy (default: beside the checkout)")
    parser.add_argument("--draws", type=int, default=30)
    args = parser.parse_args()
    embedder = Embedder()
    if embedder.head_norm is None:
        raise SystemExit(f"{embedder.model_path} has no projection output: export it again (gait.train.reexport)")
    rng = np.random.default_rng(0)
    synthetic(embedder, embedder.head_norm, args.draws, rng)
    root = args.real or ucalgary.default_root()
    if root is not None and Path(root).exists():
        real(embedder, embedder.head_norm, Path(root), args.draws, rng)
    else:
        print("\nno real walkers found: pass --real PATH for their tables")


if __name__ == "__main__":
    main()
