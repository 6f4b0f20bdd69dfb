"""How the real walkers score, and what centring and cohort normalisation do to it.

Prints, for the shipped model on the real UCalgary walkers (evaluation only: nothing here
trains or tunes anything that ships):
- the impostor and genuine cosine scores of the normal walk 1 -> walk 2 trial beside the
  score model the matcher's policy uses (measured on synthetic walkers);
- EER and rank-1 under four centring rules;
- EER and rank-1 under cosine, T-norm and S-norm, whose cohort for a walk is the walks of
  the *other* subjects (a store's cohort would be other people seen by the same camera);
- EER and rank-1 with the head's batch norm re-estimated on the camera's walks (AdaBN, Li et
  al. 2016), computed with the shipped model's PyTorch twin (gait-embedder.pt).

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


class TwinHead:
    """The shipped model's PyTorch twin, split at the head's batch norm: project walks, then
    normalise their projections with the synthetic walkers' running statistics (as shipped)
    or with a camera's own."""

    def __init__(self, embedder: Embedder) -> None:
        import torch

        from gait.model import GaitEmbedder

        self.embedder = embedder
        self.model = GaitEmbedder()
        self.model.load_state_dict(torch.load(embedder.model_path.with_name("gait-embedder.pt"), map_location="cpu"))
        self.model.eval()
        norm = self.model.head[1]
        self.gain, self.bias, self.eps = norm.weight.detach().numpy(), norm.bias.detach().numpy(), norm.eps
        self.shipped = (norm.running_mean.numpy(), norm.running_var.numpy())

    def project(self, walks: list) -> np.ndarray:  # type: ignore[type-arg]
        import torch

        with torch.no_grad():
            return np.concatenate([self.model.projected(torch.from_numpy(self.embedder.prepare(w)[0][None])).numpy()
                                   for w in walks])

    def embed(self, projected: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        y = (projected - stats[0]) / np.sqrt(stats[1] + self.eps) * self.gain + self.bias
        return y / np.linalg.norm(y, axis=-1, keepdims=True)

    def variants(self, projected: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {"as shipped (synthetic statistics)": self.shipped,
                "the camera's mean": (projected.mean(axis=0), self.shipped[1]),
                "the camera's mean and variance": (projected.mean(axis=0), projected.var(axis=0))}


def replay_adapted(twin: TwinHead, walks: list, score_model: object) -> None:  # type: ignore[type-arg]
    """The policy replay of `gaitpay eval` (gait.eval_suite.real_visits) with the head's batch
    norm as shipped and re-estimated: windows with the statistics of every real window (the
    camera's), templates with those of every real walk (the enrolment source's)."""
    from gait.eval_suite import _replay, _windows
    from matcher.domain.policy import PolicyConfig

    budget = PolicyConfig().max_windows
    usable = [i for i, w in enumerate(walks) if _windows(w.walk)]
    windows = {i: twin.project(_windows(walks[i].walk)[:budget]) for i in usable}
    enrolled = {w.subject: i for i, w in enumerate(walks) if w.run == 1 and w.condition == "normal"}
    whole = twin.project([walks[i].walk for i in enrolled.values()])
    every_walk = twin.project([w.walk for w in walks])
    every_window = np.concatenate(list(windows.values()))
    print("\npolicy over the real walkers, head batch norm: genuine identified, strangers charged")
    for name, window_stats in twin.variants(every_window).items():
        walk_stats = twin.variants(every_walk)[name]
        adapted = {i: twin.embed(v, window_stats) for i, v in windows.items()}
        templates = dict(zip(enrolled, twin.embed(whole, walk_stats)))
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
    twin = TwinHead(embedder)
    projected = twin.project([walks[i].walk for i in kept])
    adapted = {name: twin.embed(projected, stats) for name, stats in twin.variants(projected).items()}
    for name, adapted_vectors in adapted.items():
        print(f"{name}: strength {np.linalg.norm(adapted_vectors.mean(axis=0)):.3f}")
    row_of = {v.tobytes(): k for k, v in enumerate(vectors)}  # a walk's row, from its shipped embedding

    def by_adaptation(variant, gallery, gallery_ids, probes, probe_ids):  # type: ignore[no-untyped-def]
        pick = adapted[variant]
        return pick[[row_of[v.tobytes()] for v in probes]] @ pick[[row_of[v.tobytes()] for v in gallery]].T

    print_table("head batch norm (PyTorch twin)", tuple(adapted), by_adaptation)
    print_table("scoring (cohort: the other subjects' walks)",
                ("cosine", "T-norm", "S-norm", "camera-centred, then T-norm"), by_cohort)
    if cal is not None:
        from matcher.domain.policy import ScoreModel

        replay_adapted(twin, walks, ScoreModel(cal.impostor_mean, cal.impostor_std, cal.genuine_mean,
                                               cal.genuine_std, cal.window_correlation))

if __name__ == "__main__":
    main()
