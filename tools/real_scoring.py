"""How the real walkers score, and what centring and cohort normalisation do to it.

Prints, for the shipped model on the real UCalgary walkers (evaluation only: nothing here
trains or tunes anything that ships):
- the impostor and genuine cosine scores of the normal walk 1 -> walk 2 trial beside the
  score model the matcher's policy uses (measured on synthetic walkers);
- EER and rank-1 under four centring rules;
- EER and rank-1 under cosine, T-norm and S-norm, whose cohort for a walk is the walks of
  the *other* subjects (a store's cohort would be other people seen by the same camera);
- EER and rank-1 with the head's batch norm statistics re-estimated on the camera's walks
  (AdaBN, Li et al. 2016; gait.adaptation), and the policy replayed with them.

    .venv/bin/python tools/real_scoring.py [--real PATH]

Figures: docs/gait.md, "Fourth round".
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gait import calibration  # noqa: E402
from gait.adaptation import CameraStatistics  # noqa: E402
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


class HeadStatistics:
    """The shipped model's head batch norm (gait.adaptation) with the synthetic walkers'
    running statistics (as shipped) or a camera's own: projections from the ONNX model."""

    def __init__(self, embedder: Embedder) -> None:
        if embedder.head_norm is None:
            raise SystemExit(f"{embedder.model_path} has no projection output: export it again (gait.train.reexport)")
        self.embedder = embedder
        self.head = embedder.head_norm

    def project(self, walks: list) -> np.ndarray:  # type: ignore[type-arg]
        """[N, D] projections of walks that must all embed."""
        embedded, errors = self.embedder.embed_many({str(i): w for i, w in enumerate(walks)}, projections=True)
        if errors:
            raise ValueError(f"walks that do not embed: {errors}")
        return np.stack([embedded[str(i)].projection for i in range(len(walks))])

    def embed(self, projected: np.ndarray, stats: CameraStatistics) -> np.ndarray:
        return self.head.embed(projected, stats)

    def variants(self, projected: np.ndarray) -> dict[str, CameraStatistics]:
        camera = CameraStatistics.of(projected, min_walks=1)
        return {"as shipped (synthetic statistics)": self.head.shipped,
                "the camera's mean": replace(self.head.shipped, mean=camera.mean),
                "the camera's mean and variance": camera}


EACH_SIDE = "each side its own mean and variance"


def replay_adapted(statistics: HeadStatistics, walks: list, score_model: object) -> None:  # type: ignore[type-arg]
    """The policy replay of `gaitpay eval` (gait.eval_suite.real_visits) with the head's batch
    norm as shipped and re-estimated: windows with the statistics of every real window (the
    camera's), templates with those of every real walk (the enrolment source's)."""
    from gait.eval_suite import _replay, _windows
    from matcher.domain.policy import PolicyConfig

    budget = PolicyConfig().max_windows
    usable = [i for i, w in enumerate(walks) if _windows(w.walk)]
    windows = {i: statistics.project(_windows(walks[i].walk)[:budget]) for i in usable}
    enrolled = {w.subject: i for i, w in enumerate(walks) if w.run == 1 and w.condition == "normal"}
    whole = statistics.project([walks[i].walk for i in enrolled.values()])
    every_walk = statistics.project([w.walk for w in walks])
    every_window = np.concatenate(list(windows.values()))
    print("\npolicy over the real walkers, head batch norm: genuine identified, strangers charged")
    for name, window_stats in statistics.variants(every_window).items():
        walk_stats = statistics.variants(every_walk)[name]
        adapted = {i: statistics.embed(v, window_stats) for i, v in windows.items()}
        templates = dict(zip(enrolled, statistics.embed(whole, walk_stats)))
        cells = []
        for bound in (1e-4, 1e-3, 1e-2):
            genuine, right, _, strangers, charged = _replay(adapted, templates, walks,
                                                            PolicyConfig(max_false_match=bound), score_model)
            cells.append(f"{bound:g}: {right}/{genuine}, {charged}/{strangers}")
        print(f"{name:43s} | " + " | ".join(cells))


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
    statistics = HeadStatistics(embedder)
    projected = statistics.project([walks[i].walk for i in kept])
    adapted = {name: statistics.embed(projected, stats) for name, stats in statistics.variants(projected).items()}
    for name, adapted_vectors in adapted.items():
        print(f"{name}: strength {np.linalg.norm(adapted_vectors.mean(axis=0)):.3f}")
    row_of = {v.tobytes(): k for k, v in enumerate(vectors)}  # a walk's row, from its shipped embedding

    def by_adaptation(variant, gallery, gallery_ids, probes, probe_ids):  # type: ignore[no-untyped-def]
        probe_rows, gallery_rows = [row_of[v.tobytes()] for v in probes], [row_of[v.tobytes()] for v in gallery]
        if variant == EACH_SIDE:  # gallery: the enrolment source's statistics; probes: the store camera's
            return (statistics.embed(projected[probe_rows], CameraStatistics.of(projected[probe_rows], 1))
                    @ statistics.embed(projected[gallery_rows], CameraStatistics.of(projected[gallery_rows], 1)).T)
        return adapted[variant][probe_rows] @ adapted[variant][gallery_rows].T

    print_table("head batch norm statistics", (*adapted, EACH_SIDE), by_adaptation)
    print_table("scoring (cohort: the other subjects' walks)",
                ("cosine", "T-norm", "S-norm", "camera-centred, then T-norm"), by_cohort)
    if cal is not None:
        from matcher.domain.policy import ScoreModel

        replay_adapted(statistics, walks, ScoreModel(cal.impostor_mean, cal.impostor_std, cal.genuine_mean,
                                                     cal.genuine_std, cal.window_correlation))


if __name__ == "__main__":
    main()
