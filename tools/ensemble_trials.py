"""Score trained models, their ensembles and an LDA back-end on the three real trials.

The eleventh round (docs/gait.md) asked whether averaging seeds, or a back-end learned on
synthetic walkers, moves normal -> abnormal rank-1 more than the seed alone does. Every row
of its tables comes from this script:

    .venv/bin/python tools/ensemble_trials.py gait/models /tmp/abnormal-walker-trials/limp-p0.3-s7 \\
        /tmp/abnormal-walker-trials/limp-p0.3-s11 --ensemble --lda 16 24 32 40 48

Each argument is a model folder (`gaitpay train --out`, or tools/abnormal_walker_trials.py's).
An ensemble's score is the mean of its members' cosines (their L2-normalised embeddings
concatenated and scaled by 1/sqrt(n)), each member normalised with its own camera statistics.
The LDA back-end is fitted per model on its embeddings of 800 synthetic people x 8 walks (seed
4242, the shipped walker: limp, 30% of walks abnormal), keeping k directions; real walkers are
only scored, never fitted on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gait.datasets import ucalgary  # noqa: E402
from gait.evaluation import Trial, summarise  # noqa: E402

TRIALS = ("real normal walk 1 -> walk 2", "real normal walk 2 -> walk 1", "real normal -> abnormal gait")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def row(trials: list[dict[str, Trial]], transform=lambda x: x) -> str:  # type: ignore[no-untyped-def]
    """rank-1 / EER of each trial, camera-adapted (one file) then each side adapted."""
    from gait.eval_suite import ADAPTED, EACH_SIDE_ADAPTED

    cells = []
    for suffix in (ADAPTED, EACH_SIDE_ADAPTED):
        for name in TRIALS:
            members = [t[name + suffix] for t in trials]
            scale = np.sqrt(len(members))
            joined = Trial(np.concatenate([_unit(transform(m.gallery)) for m in members], 1) / scale,
                           members[0].gallery_ids,
                           np.concatenate([_unit(transform(m.probes)) for m in members], 1) / scale,
                           members[0].probe_ids)
            s = summarise(joined)
            cells.append(f"{s['rank1']:.2f} / {s['eer']:.3f}")
    return f"one file: {' | '.join(cells[:3])}   each side: {' | '.join(cells[3:])}"


def lda(model: Path, k: int, cache: dict[Path, tuple[np.ndarray, np.ndarray]]):  # type: ignore[no-untyped-def]
    """x -> its first k LDA directions, fitted on the model's synthetic embeddings."""
    import scipy.linalg

    from gait.embedder import Embedder
    from gait.train import build_pool

    if model not in cache:
        features, labels = build_pool(800, 8, 4242, 2)
        embedder = Embedder(model / "gait-embedder.onnx")
        cache[model] = (np.concatenate([embedder.run(f.astype(np.float32)[None]) for f in features]), labels)
    e, labels = cache[model]
    mu = e.mean(0)
    within = np.zeros((e.shape[1],) * 2)
    means = []
    for person in np.unique(labels):
        x = e[labels == person]
        means.append(x.mean(0))
        within += (x - means[-1]).T @ (x - means[-1])
    within /= len(e)
    between = np.cov((np.stack(means) - mu).T)
    _, vectors = scipy.linalg.eigh(between, within + 1e-3 * np.trace(within) / len(within) * np.eye(len(within)))
    keep = vectors[:, ::-1][:, :k]
    return lambda x: (x - mu) @ keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="model folders (gait-embedder.onnx with its card)")
    parser.add_argument("--ensemble", action="store_true", help="also all the models as one ensemble")
    parser.add_argument("--lda", type=int, nargs="*", default=[], help="LDA back-end dimensions to try per model")
    parser.add_argument("--real", type=Path, default=ucalgary.default_root())
    args = parser.parse_args()

    from gait.embedder import Embedder
    from gait.eval_suite import real_trials

    walks = ucalgary.load(args.real)
    trials = {m: real_trials(Embedder(m / "gait-embedder.onnx"), args.real, walks=walks) for m in args.models}
    print("rank-1 / EER: normal walk 1 -> 2 | 2 -> 1 | normal -> abnormal")
    cache: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
    for model, t in trials.items():
        print(f"{str(model):50s} {row([t])}")
        for k in args.lda:
            print(f"{'  + LDA k=' + str(k):50s} {row([t], lda(model, k, cache))}")
        sys.stdout.flush()
    if args.ensemble and len(trials) > 1:
        print(f"{'ensemble of all ' + str(len(trials)):50s} {row(list(trials.values()))}")


if __name__ == "__main__":
    main()
