"""How the real walkers score, and what centring and cohort normalisation do to it.

Prints, for the shipped model on the real UCalgary walkers (evaluation only: nothing here
trains or tunes anything that ships):
- the impostor and genuine cosine scores of the normal walk 1 -> walk 2 trial beside the
  score model the matcher's policy uses (measured on synthetic walkers);
- EER and rank-1 under four centring rules;
- EER and rank-1 under cosine, T-norm and S-norm, whose cohort for a walk is the walks of
  the *other* subjects (a store's cohort would be other people seen by the same camera).

    .venv/bin/python tools/real_scoring.py [--real PATH]

Figures: docs/gait.md, "Fourth round".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gait import calibration  # noqa: E402
from gait.centring import centred  # noqa: E402
from gait.datasets import ucalgary  # noqa: E402
from gait.embedder import Embedder  # noqa: E402

TRIALS = {"normal walk 1 -> 2": (lambda w: w.run == 1, lambda w: w.run == 2),
          "normal -> abnormal": (lambda w: w.condition == "normal", lambda w: w.condition != "normal")}


def exact_eer(scores: np.ndarray, same: np.ndarray) -> float:
    """The error rate where FNMR and FMR cross, from every threshold the scores offer."""
    genuine, impostor = np.sort(scores[same]), np.sort(scores[~same])
    thresholds = np.concatenate([genuine, impostor])
    fnmr = np.searchsorted(genuine, thresholds, side="left") / len(genuine)
    fmr = 1.0 - np.searchsorted(impostor, thresholds, side="left") / len(impostor)
    k = int(np.argmin(np.abs(fnmr - fmr)))
    return float((fnmr[k] + fmr[k]) / 2)


def rank1(scores: np.ndarray, probe_ids: np.ndarray, gallery_ids: np.ndarray) -> float:
    mated = np.isin(probe_ids, gallery_ids)
    return float((gallery_ids[np.argmax(scores[mated], axis=1)] == probe_ids[mated]).mean())


def cohort_z(scores: np.ndarray, vectors: np.ndarray, owners: np.ndarray, cohort: np.ndarray,
             cohort_owners: np.ndarray, axis: int) -> np.ndarray:
    """Scores standardised by each vector's scores against the cohort walks of other people
    (axis 0: vectors are the probes, rows; axis 1: the gallery, columns)."""
    out = np.empty_like(scores)
    for i, (vector, owner) in enumerate(zip(vectors, owners)):
        against = cohort[cohort_owners != owner] @ vector
        if axis == 0:
            out[i] = (scores[i] - against.mean()) / against.std()
        else:
            out[:, i] = (scores[:, i] - against.mean()) / against.std()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, default=ucalgary.default_root())
    args = parser.parse_args()
    embedder = Embedder()
    walks = ucalgary.load(args.real)
    embedded, _ = embedder.embed_many({str(i): w.walk for i, w in enumerate(walks)})
    kept = [i for i in range(len(walks)) if str(i) in embedded]
    vectors = np.stack([embedded[str(i)].vector for i in kept])
    owners = np.asarray([walks[i].subject for i in kept])
    camera_centre = vectors.mean(axis=0)
    print(f"{len(vectors)} real walks of {len(set(owners))} people; camera centre strength "
          f"{np.linalg.norm(camera_centre):.3f}")

    def side(pick) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
        rows = [k for k, i in enumerate(kept) if pick(walks[i])]
        return vectors[rows], owners[rows]

    cal = calibration.load(embedder.version)
    if cal is not None:
        gallery, gallery_ids = side(TRIALS["normal walk 1 -> 2"][0])
        probes, probe_ids = side(TRIALS["normal walk 1 -> 2"][1])
        scores = probes @ gallery.T
        same = probe_ids[:, None] == gallery_ids[None]
        impostor = scores[~same]
        print(f"\nnormal walk 1 -> 2: impostor {impostor.mean():.3f} +/- {impostor.std():.3f}, genuine "
              f"{scores[same].mean():.3f} +/- {scores[same].std():.3f}; the policy's score model: impostor "
              f"{cal.impostor_mean} +/- {cal.impostor_std}, genuine {cal.genuine_mean} +/- {cal.genuine_std}")
        z = (impostor - cal.impostor_mean) / cal.impostor_std
        print(f"  real impostors above the model's genuine mean: {(impostor > cal.genuine_mean).mean():.0%}; "
              f"their median is {np.median(z):.1f} model standard deviations above its impostor mean")

    def print_table(title: str, variants: tuple[str, ...], scorer) -> None:  # type: ignore[no-untyped-def]
        """One row per variant: EER and rank-1 of each trial under scorer(variant, gallery, ids, probes, ids)."""
        print(f"\n{title:43s} | " + " | ".join(f"{t}: EER, rank-1" for t in TRIALS))
        for variant in variants:
            cells = []
            for gallery_of, probes_of in TRIALS.values():
                (gallery, gallery_ids), (probes, probe_ids) = side(gallery_of), side(probes_of)
                scores = scorer(variant, gallery, gallery_ids, probes, probe_ids)
                same = probe_ids[:, None] == gallery_ids[None]
                cells.append(f"{exact_eer(scores, same):.3f}, {rank1(scores, probe_ids, gallery_ids):.2f}")
            print(f"{variant:43s} | " + " | ".join(f"{c:>31s}" for c in cells))

    def others_mean(vs: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return np.stack([centred(v, vectors[owners != o].mean(axis=0)) for v, o in zip(vs, ids)])

    def by_centring(rule, gallery, gallery_ids, probes, probe_ids):  # type: ignore[no-untyped-def]
        if rule == "one camera centre":
            gallery, probes = centred(gallery, camera_centre), centred(probes, camera_centre)
        elif rule == "each side its own mean":
            gallery, probes = centred(gallery, gallery.mean(axis=0)), centred(probes, probes.mean(axis=0))
        elif rule == "other subjects' mean":
            gallery, probes = others_mean(gallery, gallery_ids), others_mean(probes, probe_ids)
        return probes @ gallery.T

    def by_cohort(scoring, gallery, gallery_ids, probes, probe_ids):  # type: ignore[no-untyped-def]
        cohort = vectors
        if scoring.startswith("camera-centred"):
            gallery, probes = centred(gallery, camera_centre), centred(probes, camera_centre)
            cohort = centred(vectors, camera_centre)
        scores = probes @ gallery.T
        if scoring == "cosine":
            return scores
        by_probe = cohort_z(scores, probes, probe_ids, cohort, owners, axis=0)
        if scoring != "S-norm":
            return by_probe
        return (by_probe + cohort_z(scores, gallery, gallery_ids, cohort, owners, axis=1)) / 2

    print_table("centring rule", ("none", "one camera centre", "each side its own mean", "other subjects' mean"),
                by_centring)
    print_table("scoring (cohort: the other subjects' walks)",
                ("cosine", "T-norm", "S-norm", "camera-centred, then T-norm"), by_cohort)

if __name__ == "__main__":
    main()
