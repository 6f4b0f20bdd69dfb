"""Train the embedding with another walker abnormality, at several seeds, and score each
model on all three real trials together (camera-adapted, as `gaitpay eval` reports them).

The sixth round (docs/gait.md) found the walker's limp unlike the real abnormal walks and a
calibrated one that trades a normal probe for abnormal ones at two seeds; its script was not
kept. This one is, so that every row of the ninth round's table can be reproduced:

    .venv/bin/python tools/abnormal_walker_trials.py --variant stiff --seeds 20261125 7 11

Variants (the two that gait.synth.walker.ABNORMALITIES holds, and two that this script adds
to it, in this process and the pool's forked workers; 30% of training walks abnormal, as
`gaitpay train`):
- `limp`: the shipped model's walker (the baseline, trained again at each seed);
- `stiff`: the real pattern of tools/walker_calibration.py (`with_stiffness`, `gaitpay train
  --abnormality stiff`): both knees bend and both hips swing less, the affected side a little
  more, cadence about the same;
- `stiff-person`: `stiff`, with the side and the stiffness drawn once per person (a person's
  abnormal walks alike), each walk varying a little around them;
- `mixed`: half of the abnormal walks `limp`, half `stiff-person`.

Real walkers are used to score, never to train or to choose a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import astuple
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gait.datasets import ucalgary  # noqa: E402
from gait.synth import walker  # noqa: E402
from gait.synth.walker import Person, Stiffness, stiffened  # noqa: E402


def _person_rng(person: Person) -> np.random.Generator:
    # Bones do not change between walks, so the thigh's length names the person (the
    # walk's own rng cannot: it differs for every walk).
    return np.random.default_rng(int(np.float64(person.thigh).view(np.uint64)))


def stiff_person(person: Person, side: str, rng: np.random.Generator) -> Person:
    own = _person_rng(person)
    own_side = "right" if own.random() < 0.5 else "left"
    theirs = Stiffness(own.uniform(0.70, 0.88), own.uniform(0.72, 0.90), own.uniform(0.0, 0.15),
                       own.uniform(0.90, 1.00), own.uniform(0.0, 0.03))
    this_walk = Stiffness(*(value * rng.lognormal(0.0, 0.04) for value in astuple(theirs)))
    return stiffened(person, own_side, this_walk)


def mixed(person: Person, side: str, rng: np.random.Generator) -> Person:
    return walker.with_limp(person, side, rng) if rng.random() < 0.5 else stiff_person(person, side, rng)


# Beside the walker's own ("limp", "stiff"), for training data only.
EXTRA_VARIANTS = {"stiff-person": stiff_person, "mixed": mixed}
TRIALS = ("real normal walk 1 -> walk 2", "real normal walk 2 -> walk 1", "real normal -> abnormal gait")


def score(model_dir: Path, walks: list[ucalgary.RealWalk], root: Path) -> dict[str, dict[str, float]]:
    from gait.embedder import Embedder
    from gait.eval_suite import ADAPTED, EACH_SIDE_ADAPTED, real_trials
    from gait.evaluation import summarise

    trials = real_trials(Embedder(model_dir / "gait-embedder.onnx"), root, walks=walks)
    out = {}
    for name in TRIALS:
        for suffix, tag in (("", "shipped stats"), (ADAPTED, "adapted"), (EACH_SIDE_ADAPTED, "each side")):
            s = summarise(trials[name + suffix])
            out[f"{name} | {tag}"] = {"rank1": float(s["rank1"] or 0), "eer": float(s["eer"] or 0)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=sorted(walker.ABNORMALITIES | EXTRA_VARIANTS), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[20261125, 7, 11])
    parser.add_argument("--out", type=Path, default=Path("/tmp/abnormal-walker-trials"))
    parser.add_argument("--real", type=Path, default=ucalgary.default_root())
    args = parser.parse_args()

    from gait.train import TrainConfig, train

    walker.ABNORMALITIES.update(EXTRA_VARIANTS)  # the dict gait.synth.dataset draws from (forked workers too)
    walks = ucalgary.load(args.real)
    rows = []
    for seed in args.seeds:
        tag = f"{args.variant}-s{seed}"
        out = args.out / tag
        t0 = time.time()
        card = train(TrainConfig(seed=seed, abnormality=args.variant), out, lambda stage, fraction, metrics: None)
        figures = score(out, walks, args.real)
        rows.append(figures)
        (out / "real-figures.json").write_text(json.dumps(
            {**figures, "synthetic val EER": card["metrics"]["synthetic_val_eer"]}, indent=1) + "\n")
        print(f"== {tag}  ({time.time() - t0:.0f} s)  synthetic val EER {card['metrics']['synthetic_val_eer']:.3f}")
        for name, f in figures.items():
            print(f"   {name:55s} rank-1 {f['rank1']:.2f}  EER {f['eer']:.3f}")
        sys.stdout.flush()
    print(f"== {args.variant}, mean over seeds {args.seeds}")
    for name in rows[0]:
        print(f"   {name:55s} rank-1 {statistics.mean(r[name]['rank1'] for r in rows):.3f}"
              f"  EER {statistics.mean(r[name]['eer'] for r in rows):.3f}")


if __name__ == "__main__":
    main()
