"""Biometric evaluation in the ISO/IEC 19795 manner: closed-set ranks, verification error
trade-offs and open-set identification, with bootstrap confidence intervals.

Scores are cosine similarities, or, for a trial with body measures (gait.body), the log
likelihood ratio of the embedding and the body together, divided by 10. Error rates come from score histograms
(fine bins over [-1, 4]) so galleries of 10,000 people need no 10^8-element arrays. An error rate at an
operating point that the number of comparisons cannot support (fewer than 3 / rate
impostor comparisons, the rule of three) is reported as None rather than as a number.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gait.body import BodyModel, fused_scores

BINS = np.linspace(-1.0, 4.0, 10001)
COARSE_BINS = np.linspace(-1.0, 4.0, 1001)


@dataclass(frozen=True)
class Fusion:
    """Body measures beside the embedding: the body model and the embedding's Gaussian score
    models (impostor mean, std, genuine mean, std) that put the two on one scale, the log
    likelihood ratio."""

    body: BodyModel
    embedding: tuple[float, float, float, float]


@dataclass(frozen=True)
class Trial:
    """Gallery and probe embeddings with their identities; probes whose identity is not in
    the gallery are strangers (non-mated). With `fusion`, each side's body measures ([N, M],
    NaN rows where a walk has none) join the embedding in every score."""

    gallery: np.ndarray
    gallery_ids: np.ndarray
    probes: np.ndarray
    probe_ids: np.ndarray
    gallery_body: np.ndarray | None = None
    probe_body: np.ndarray | None = None
    fusion: Fusion | None = None

    def scores(self, start: int, stop: int) -> np.ndarray:
        """[probes start:stop, gallery] scores."""
        cosines = self.probes[start:stop] @ self.gallery.T
        if self.fusion is None or self.gallery_body is None or self.probe_body is None:
            return cosines
        f = self.fusion
        return fused_scores(cosines, self.probe_body[start:stop], self.gallery_body, f.body, f.embedding)

    def with_fusion(self, fusion: Fusion) -> "Trial":
        return replace(self, fusion=fusion)


def _hist(scores: np.ndarray) -> np.ndarray:
    return np.histogram(np.clip(scores, BINS[0], BINS[-1]), BINS)[0].astype(np.float64)


def score_histograms(trial: Trial, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Genuine and impostor score histograms of every probe-gallery comparison."""
    genuine, impostor = np.zeros(len(BINS) - 1), np.zeros(len(BINS) - 1)
    n_gen = n_imp = 0
    for start in range(0, len(trial.probes), chunk):
        sims = trial.scores(start, start + chunk)
        same = trial.probe_ids[start:start + chunk, None] == trial.gallery_ids[None, :]
        genuine += _hist(sims[same])
        impostor += _hist(sims[~same])
        n_gen += int(same.sum())
        n_imp += int((~same).sum())
    return genuine, impostor, n_gen, n_imp


def rates(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FNMR and FMR at each bin edge used as threshold (accept when score >= edge)."""
    fnmr = np.concatenate([[0.0], np.cumsum(genuine)]) / max(genuine.sum(), 1)
    fmr = 1.0 - np.concatenate([[0.0], np.cumsum(impostor)]) / max(impostor.sum(), 1)
    return fnmr, fmr


def eer(fnmr: np.ndarray, fmr: np.ndarray) -> float:
    i = int(np.argmin(np.abs(fnmr - fmr)))
    return float((fnmr[i] + fmr[i]) / 2)


def fnmr_at_fmr(fnmr: np.ndarray, fmr: np.ndarray, target: float, impostors: int) -> float | None:
    if impostors < 3 / target:
        return None
    ok = np.where(fmr <= target)[0]
    return float(fnmr[ok[0]]) if len(ok) else 1.0


def rank_k(trial: Trial, ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    mated = np.isin(trial.probe_ids, trial.gallery_ids)
    hits = {k: 0 for k in ks}
    for start in range(0, len(trial.probes), 2048):
        chunk = mated[start:start + 2048]
        sims = trial.scores(start, start + 2048)[chunk]
        order = np.argsort(-sims, axis=1)[:, : max(ks)]
        found = trial.gallery_ids[order] == trial.probe_ids[start:start + 2048][chunk, None]
        for k in ks:
            hits[k] += int(found[:, :k].any(axis=1).sum())
    return {k: hits[k] / max(int(mated.sum()), 1) for k in ks}


def open_set(trial: Trial, fpir_targets: tuple[float, ...] = (1e-2, 1e-3)) -> dict[str, float | None]:
    """FNIR at FPIR: strangers (non-mated probes) must not match anyone above the threshold;
    mated probes must have their own identity at rank 1 and above it."""
    mated = np.isin(trial.probe_ids, trial.gallery_ids)
    top_score = np.empty(len(trial.probes))
    top_right = np.zeros(len(trial.probes), dtype=bool)
    for start in range(0, len(trial.probes), 2048):
        sims = trial.scores(start, start + 2048)
        best = sims.argmax(axis=1)
        top_score[start:start + 2048] = sims[np.arange(len(best)), best]
        top_right[start:start + 2048] = trial.gallery_ids[best] == trial.probe_ids[start:start + 2048]
    strangers = top_score[~mated]
    out: dict[str, float | None] = {}
    for target in fpir_targets:
        key = f"fnir_at_fpir_{target:g}"
        if len(strangers) < 3 / target:
            out[key] = None
            continue
        threshold = float(np.quantile(strangers, 1 - target)) + 1e-9
        found = top_right[mated] & (top_score[mated] >= threshold)
        out[key] = float(1 - found.mean())
    return out


def summarise(trial: Trial) -> dict[str, float | None]:
    genuine, impostor, _, n_imp = score_histograms(trial)
    fnmr, fmr = rates(genuine, impostor)
    ranks = rank_k(trial)
    result: dict[str, float | None] = {"rank1": ranks[1], "rank5": ranks[5], "eer": eer(fnmr, fmr)}
    for target in (1e-2, 1e-3, 1e-4):
        result[f"fnmr_at_fmr_{target:g}"] = fnmr_at_fmr(fnmr, fmr, target, n_imp)
    result.update(open_set(trial))
    return result


def bootstrap(trial: Trial, rounds: int = 300, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% intervals for rank-1 and EER, resampling probe people with replacement (each
    person's probes move together, so correlated walks are not counted as independent).
    Per-probe score histograms are computed once (coarse bins), so a round is cheap."""
    rng = np.random.default_rng(seed)
    coarse = COARSE_BINS
    n = len(trial.probes)
    gen_hist = np.zeros((n, len(coarse) - 1), dtype=np.float32)
    imp_hist = np.zeros((n, len(coarse) - 1), dtype=np.float32)
    correct = np.zeros(n)
    mated = np.isin(trial.probe_ids, trial.gallery_ids)
    for start in range(0, n, 1024):
        sims = trial.scores(start, start + 1024)
        same = trial.probe_ids[start:start + 1024, None] == trial.gallery_ids[None, :]
        idx = np.clip(np.digitize(sims, coarse) - 1, 0, len(coarse) - 2)
        for row in range(sims.shape[0]):
            gen_hist[start + row] = np.bincount(idx[row][same[row]], minlength=len(coarse) - 1)
            imp_hist[start + row] = np.bincount(idx[row][~same[row]], minlength=len(coarse) - 1)
        correct[start:start + 1024] = trial.gallery_ids[sims.argmax(axis=1)] == trial.probe_ids[start:start + 1024]
    people = np.unique(trial.probe_ids)
    members = {p: np.where(trial.probe_ids == p)[0] for p in people}
    values: dict[str, list[float]] = {"rank1": [], "eer": []}
    for _ in range(rounds):
        chosen = np.concatenate([members[p] for p in rng.choice(people, len(people), replace=True)])
        genuine, impostor = gen_hist[chosen].sum(axis=0), imp_hist[chosen].sum(axis=0)
        values["eer"].append(eer(*rates(genuine, impostor)))
        hits = correct[chosen][mated[chosen]]
        values["rank1"].append(float(hits.mean()) if len(hits) else float("nan"))
    return {k: (float(np.nanquantile(v, 0.025)), float(np.nanquantile(v, 0.975))) for k, v in values.items()}


def det_curve(trials: dict[str, Trial], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    # One colour per trial, one line style per way of scoring it ("trial, variant, variant");
    # camera-adapted curves are drawn thick, each-side-adapted ones half as thick, densely dashed.
    styles = {"": "-", "camera-centred": ":", "with body measures": "--",
              "camera-centred, with body measures": "-.", "protected": (0, (1, 4)),
              "camera-adapted": "-", "camera-adapted, with body measures": "--",
              "each side adapted": (0, (3, 1, 1, 1)), "each side adapted, with body measures": (0, (5, 1))}
    widths = {"camera-adapted": 2.6, "each side adapted": 1.8}
    bases = list(dict.fromkeys(name.split(", ")[0] for name in trials))
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(10, 6))
    for name, trial in trials.items():
        base, _, variant = name.partition(", ")
        genuine, impostor, _, _ = score_histograms(trial)
        fnmr, fmr = rates(genuine, impostor)
        keep = (fmr > 1e-5) & (fmr < 0.5) & (fnmr > 1e-4) & (fnmr < 0.5)
        ax.plot(norm.ppf(fmr[keep]), norm.ppf(fnmr[keep]), label=name,
                color=colours(bases.index(base) % 10), linestyle=styles.get(variant, "-"),
                linewidth=next((w for v, w in widths.items() if variant.startswith(v)), 1.2))
    ticks = [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5]
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.set_title("DET (normal-deviate axes)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
