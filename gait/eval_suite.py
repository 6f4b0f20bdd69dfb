"""The evaluation `gaitpay eval` runs: synthetic galleries of several sizes and the real
UCalgary walkers, each summarised with intervals, plus a DET plot."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from gait.datasets import ucalgary
from gait.embedder import Embedder
from gait.body import MEASURES, BodyModel, measure
from gait.adaptation import MIN_CAMERA_WALKS, AdaptationError, CameraStatistics
from gait.centring import MIN_CENTRE_WALKS, CameraCentre, CentreError
from gait.calibration import replay_visit
from gait.evaluation import Fusion, Trial, bootstrap, det_curve, summarise
from gait.protection import CancelableTransform
from gait.synth.dataset import SynthConfig, people, render_seen
from gait.synth.installation import measured
from gait.walk import Walk

if TYPE_CHECKING:
    from matcher.domain.policy import ScoreModel

EVAL_SEED = 777_000  # never a training seed


class SynthWalk(NamedTuple):
    person: int
    walk: Walk
    body: np.ndarray | None  # measures from an installed (imperfectly calibrated) camera


def _render(args: tuple[int, int, int, int]) -> list[SynthWalk]:
    first, count, walks_per_person, seed = args
    persons = people(first + count, seed)[first:]
    rng = np.random.default_rng(seed * 7 + first)
    out = []
    for i, p in enumerate(persons):
        for j in range(walks_per_person):
            seen = render_seen(p, rng, SynthConfig())
            # Calibration errors and shoes come from a generator of their own (the walks stay the same).
            out.append(SynthWalk(first + i, seen.walk, measured(seen, np.random.default_rng((seed, first + i, j)))))
    return out


def synthetic_walks(persons: int, walks_per_person: int, seed: int, workers: int = 2) -> list[SynthWalk]:
    jobs = [(f, min(100, persons - f), walks_per_person, seed) for f in range(0, persons, 100)]
    # Not fork: a process that already runs threads (gRPC's, ONNX Runtime's, a BLAS pool)
    # can hand a forked child a lock that no thread will release; tests and services embed
    # here after such threads started, and one such hang was seen. The fork server costs
    # about a second a call and draws the same walks.
    with mp.get_context("forkserver").Pool(workers) as pool:
        return [item for chunk in pool.imap(_render, jobs) for item in chunk]


def _embed(embedder: Embedder, walks: list[SynthWalk],
           adapt: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Embeddings, people and body measures (NaN rows where none) of the walks that embed;
    with `adapt`, also the embeddings with camera statistics of all of them (None where the
    model cannot adapt or too few walks embed)."""
    keyed = {str(i): w.walk for i, w in enumerate(walks)}
    adapt = adapt and embedder.head_norm is not None
    result, errors = embedder.embed_many(keyed, projections=adapt)
    keep = [i for i in range(len(walks)) if str(i) in result]
    vectors = np.stack([result[str(i)].vector for i in keep])
    adapted = None
    if adapt and len(keep) >= MIN_CAMERA_WALKS:
        renormalised, _ = embedder.camera_adapted(result)
        adapted = np.stack([renormalised[str(i)].vector for i in keep])
    return vectors, np.asarray([walks[i].person for i in keep]), _bodies([walks[i].body for i in keep]), adapted


def _bodies(measures: list[np.ndarray | None]) -> np.ndarray:
    return np.stack([np.full(len(MEASURES), np.nan) if m is None else np.asarray(m, dtype=np.float64)
                     for m in measures])


BODY_FIT_SEED = 881_000  # synthetic people for the body model, never an evaluation or training seed


def fit_body_model(persons: int = 400, walks_per_person: int = 4, seed: int = BODY_FIT_SEED) -> BodyModel:
    """The body model from synthetic walkers seen by installed cameras (gait.synth.installation)."""
    walks = [w for w in synthetic_walks(persons, walks_per_person, seed) if w.body is not None]
    return BodyModel.fit(np.stack([w.body for w in walks]), np.asarray([w.person for w in walks]))


@dataclass(frozen=True)
class SuiteResult:
    rows: dict[str, dict[str, object]]
    det_path: Path
    notes: tuple[str, ...] = ()
    # The matcher's policy replayed over the real walkers' windows (real_visits), where run.
    visits: tuple["VisitRow", ...] = field(default=())


def synthetic_trial(embedder: Embedder, size: int, seed: int = EVAL_SEED) -> Trial:
    """`size` enrolled people (one gallery walk, one probe walk each) and `size` strangers
    (one probe walk each), with their body measures."""
    return synthetic_trials(embedder, size, seed)[""]


def synthetic_trials(embedder: Embedder, size: int, seed: int = EVAL_SEED, adapt: bool = False) -> dict[str, Trial]:
    """synthetic_trial's trial (key ""), and with `adapt` the same walks with camera statistics
    of all of them (key ADAPTED) where the model can adapt."""
    walks = synthetic_walks(2 * size, 2, seed)
    vectors, ids, bodies, adapted = _embed(embedder, walks, adapt)
    enrolled = ids < size
    first = np.zeros(len(ids), dtype=bool)
    seen: set[int] = set()
    for i, pid in enumerate(ids):
        if pid not in seen:
            first[i] = True
            seen.add(int(pid))
    gallery = enrolled & first
    probes = (enrolled & ~first) | (~enrolled & first)
    trial = Trial(vectors[gallery], ids[gallery], vectors[probes], ids[probes], bodies[gallery], bodies[probes])
    if adapted is None:
        return {"": trial}
    return {"": trial, ADAPTED: replace(trial, gallery=adapted[gallery], probes=adapted[probes])}


def camera_centred(trial: Trial, gallery_centre: CameraCentre, probe_centre: CameraCentre) -> Trial:
    """The trial with each side minus its camera's centre (gait.centring), as a matcher that
    centres would compare them; body measures are untouched."""
    return replace(trial, gallery=gallery_centre.apply(trial.gallery), probes=probe_centre.apply(trial.probes))


def self_centred(trial: Trial) -> Trial:
    """A synthetic trial centred on its own walks (one camera mix: gallery and probes together)."""
    centre = CameraCentre.of(np.concatenate([trial.gallery, trial.probes]))
    return camera_centred(trial, centre, centre)


CENTRED = ", camera-centred"
ADAPTED = ", camera-adapted"
# Gallery and probes each with the statistics of their own walks, as two `gaitpay embed`
# files would be (docs/gait.md, "Seventh round"). It flatters the abnormal trial, whose
# probes are all abnormal walks: their shared difference is normalised away.
EACH_SIDE_ADAPTED = ", each side adapted"


def real_trials(embedder: Embedder, root: Path, duplicates: list[ucalgary.Duplicate] | None = None,
                not_walks: list[ucalgary.NotAWalk] | None = None,
                walks: list[ucalgary.RealWalk] | None = None) -> dict[str, Trial]:
    """Walk 1 -> walk 2, the reverse, and normal -> abnormal; each also camera-centred (rows
    named '..., camera-centred') and camera-adapted ('..., camera-adapted': the head norm with
    camera statistics, gait.adaptation) where the set holds enough walks: one camera recorded
    them all, so its centre and its statistics are those of every walk it recorded, normal and
    abnormal, gallery and probes alike (no labels are used). Rows '..., each side adapted'
    give the gallery and the probes the statistics of their own walks instead."""
    walks = ucalgary.load(root, duplicates, not_walks) if walks is None else walks
    keyed = {str(i): w.walk for i, w in enumerate(walks)}
    result, _ = embedder.embed_many(keyed, projections=embedder.head_norm is not None)
    vec = {i: result[str(i)].vector for i in range(len(walks)) if str(i) in result}
    camera = ucalgary.installation_camera(root)
    bodies = _bodies([None if (m := measure(w.walk, camera)) is None else m.values for w in walks])

    def trials_of(vectors: dict[int, np.ndarray],
                  side: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, Trial]:
        """side: what is done to one side's stacked vectors (gallery or probes) as a whole."""
        def pick(cond: Callable[[ucalgary.RealWalk], bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            chosen = [i for i, w in enumerate(walks) if cond(w) and i in vectors]
            stacked = np.stack([vectors[i] for i in chosen])
            return (side(stacked) if side else stacked), np.asarray([walks[i].subject for i in chosen]), bodies[chosen]

        n1 = pick(lambda w: w.run == 1)
        n2 = pick(lambda w: w.run == 2)
        abnormal = pick(lambda w: w.condition != "normal")
        normal = pick(lambda w: w.condition == "normal")
        return {
            "real normal walk 1 -> walk 2": Trial(n1[0], n1[1], n2[0], n2[1], n1[2], n2[2]),
            "real normal walk 2 -> walk 1": Trial(n2[0], n2[1], n1[0], n1[1], n2[2], n1[2]),
            "real normal -> abnormal gait": Trial(normal[0], normal[1], abnormal[0], abnormal[1], normal[2], abnormal[2]),
        }

    trials = trials_of(vec)
    try:
        centre = CameraCentre.of(np.stack(list(vec.values())))
    except CentreError:
        return trials  # too few walks for a camera centre or statistics: the plain trials only
    trials.update({name + CENTRED: camera_centred(t, centre, centre) for name, t in list(trials.items())})
    if embedder.head_norm is not None:
        adapted, _ = embedder.camera_adapted(result)
        keys = {str(i): i for i in vec}
        trials.update({name + ADAPTED: t for name, t in
                       trials_of({keys[k]: e.vector for k, e in adapted.items()}).items()})
        head = embedder.head_norm
        projections = {i: result[str(i)].projection for i in vec}
        try:
            trials.update({name + EACH_SIDE_ADAPTED: t for name, t in trials_of(
                projections, lambda side: head.embed(side, CameraStatistics.of(side))).items()})
        except AdaptationError:
            pass  # a side with too few walks for statistics of its own
    return trials


@dataclass(frozen=True)
class VisitRow:
    """The policy replayed over real visits at one false-match bound: genuine visits (an
    enrolled walker's normal walk 2) identified rightly or wrongly, and stranger visits
    (every walk of a walker left out of the gallery) identified as someone: charged."""

    evidence: str  # one of VISIT_EVIDENCE's names
    bound: float
    genuine_visits: int
    identified: int
    identified_wrongly: int
    stranger_visits: int
    strangers_charged: int


# (name, what is done to the embeddings: "", "centred" or "adapted" to the camera, impostor
# score model measured on the camera)
VISIT_EVIDENCE = (("embedding", "", False), ("camera-centred", "centred", False),
                  ("camera-adapted", "adapted", False), ("camera's impostor model", "", True),
                  ("camera-centred, camera's impostor model", "centred", True),
                  ("camera-adapted, camera's impostor model", "adapted", True))
WINDOW_S, WINDOW_OVERLAP = 2.0, 0.5  # as the edge cuts them (edge.domain.windows.WindowSpec)


def _windows(walk: Walk) -> list[Walk]:
    length = max(8, round(WINDOW_S * walk.fps))
    step = max(1, round(length * (1 - WINDOW_OVERLAP)))
    return [Walk(walk.keypoints[a:a + length], walk.fps) for a in range(0, len(walk.keypoints) - length + 1, step)]


def _camera_impostor_model(windows: dict[int, np.ndarray], templates: dict[str, np.ndarray],
                           walks: list[ucalgary.RealWalk], score_model: "ScoreModel") -> "ScoreModel":
    """The score model with its impostor mean and spread measured on this camera: every
    window against the templates of everyone else. (A store needs no labels for it: against
    randomly drawn templates from a gallery of G, all but 1 in G comparisons are impostors.)"""
    scores = np.concatenate([(windows[i] @ np.stack([t for s, t in templates.items() if s != walks[i].subject]).T).ravel()
                             for i in windows])
    return replace(score_model, impostor_mean=float(scores.mean()), impostor_std=float(scores.std()))


def real_visits(embedder: Embedder, walks: list[ucalgary.RealWalk], score_model: "ScoreModel",
                bounds: tuple[float, ...] = (1e-4, 1e-3, 1e-2)) -> list[VisitRow]:
    """The matcher's open-set policy over the real walkers, as a store would meet them: each
    walker with a normal walk 1 enrolled with it (one template), each recording cut into the
    edge's 2 s windows, up to the policy's window budget. A walker is a genuine visitor on
    their normal walk 2, and a stranger on every recording once left out of the gallery.
    Scored six ways (VISIT_EVIDENCE): raw embeddings, camera-centred ones (windows minus the
    mean of every real window, templates minus the mean of every real walk: the camera's
    centre and the enrolment source's) or camera-adapted ones (the head norm with the
    statistics of every real window, and of every real walk for the templates), with the
    shipped score model or with its impostor side measured on the camera. Empty where the set
    is too small for a centre."""
    from matcher.domain.policy import PolicyConfig  # the policy the matcher runs, not a copy

    adapt = embedder.head_norm is not None
    whole, _ = embedder.embed_many({str(i): w.walk for i, w in enumerate(walks)}, projections=adapt)
    cut = {f"{i}:{j}": window for i, w in enumerate(walks) for j, window in enumerate(_windows(w.walk))}
    pieces, _ = embedder.embed_many(cut, projections=adapt)
    enrolled = {w.subject: i for i, w in enumerate(walks) if w.run == 1 and w.condition == "normal" and str(i) in whole}
    try:
        window_centre = CameraCentre.of(np.stack([p.vector for p in pieces.values()]))
        walk_centre = CameraCentre.of(np.stack([e.vector for e in whole.values()]))
    except CentreError:
        return []
    by_transform = {"": (pieces, whole), "centred": (pieces, whole)}
    if adapt:
        by_transform["adapted"] = (embedder.camera_adapted(pieces)[0], embedder.camera_adapted(whole)[0])
    budget = PolicyConfig().max_windows
    rows = []
    for evidence, transform, own_model in VISIT_EVIDENCE:
        if transform not in by_transform:
            continue
        window_vectors, walk_vectors = by_transform[transform]
        per_walk: dict[int, list[np.ndarray]] = {}
        for key in sorted(window_vectors, key=lambda k: tuple(map(int, k.split(":")))):
            per_walk.setdefault(int(key.split(":")[0]), []).append(window_vectors[key].vector)
        windows = {i: np.stack(v[:budget]) for i, v in per_walk.items()}
        templates = {s: walk_vectors[str(i)].vector for s, i in enrolled.items()}
        if transform == "centred":
            windows = {i: window_centre.apply(v) for i, v in windows.items()}
            templates = {s: walk_centre.apply(t) for s, t in templates.items()}
        model = _camera_impostor_model(windows, templates, walks, score_model) if own_model else score_model
        for bound in bounds:
            rows.append(VisitRow(evidence, bound, *_replay(windows, templates, walks,
                                                           PolicyConfig(max_false_match=bound), model)))
    return rows


def _replay(windows: dict[int, np.ndarray], templates: dict[str, np.ndarray], walks: list[ucalgary.RealWalk],
            policy: object, model: "ScoreModel") -> tuple[int, int, int, int, int]:
    """(genuine visits, identified rightly, wrongly, stranger visits, strangers charged)."""
    genuine = right = wrong = strangers = charged = 0
    for i, walk in enumerate(walks):
        if i not in windows:
            continue
        if walk.run == 2 and walk.condition == "normal" and walk.subject in templates:
            customers = list(templates)
            outcome = replay_visit(windows[i] @ np.stack([templates[c] for c in customers]).T, policy, model)
            genuine += 1
            if outcome.verdict.value == "identified":
                hit = customers[int(outcome.customer_id)] == walk.subject
                right, wrong = right + hit, wrong + (not hit)
        others = [c for c in templates if c != walk.subject]
        outcome = replay_visit(windows[i] @ np.stack([templates[c] for c in others]).T, policy, model)
        strangers += 1
        charged += outcome.verdict.value == "identified"
    return genuine, right, wrong, strangers, charged


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
        progress: Callable[[str], None] = lambda s: None, fusion: Fusion | None = None,
        score_model: "ScoreModel | None" = None) -> SuiteResult:
    """With `fusion`, every trial is scored twice: the embedding alone, and with body
    measures (rows named '..., with body measures'). With `score_model` (the matcher's for
    this model), the policy is also replayed over the real walkers (SuiteResult.visits)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trials: dict[str, Trial] = {}
    notes: list[str] = []
    visits: list[VisitRow] = []
    # The transform's, the centring's and the camera statistics' accuracy cost, on the largest
    # gallery up to 1,000.
    focus = max([s for s in sizes if s <= 1000] or [min(sizes)]) if sizes else None
    for size in sizes:
        progress(f"synthetic gallery of {size}")
        for suffix, trial in synthetic_trials(embedder, size, adapt=size == focus).items():
            trials[f"synthetic {size}{suffix}"] = trial
    if focus is not None:
        size = focus
        trials[f"synthetic {size}, protected"] = protected(trials[f"synthetic {size}"])
        try:
            trials[f"synthetic {size}{CENTRED}"] = self_centred(trials[f"synthetic {size}"])
        except CentreError as exc:
            notes.append(f"synthetic {size}: no camera-centred row ({exc})")
    if real_root is not None and real_root.exists():
        progress("real walkers (UCalgary)")
        duplicates: list[ucalgary.Duplicate] = []
        not_walks: list[ucalgary.NotAWalk] = []
        walks = ucalgary.load(real_root, duplicates, not_walks)
        trials.update(real_trials(embedder, real_root, walks=walks))
        notes.extend(duplicate_notes(duplicates) + not_walk_notes(not_walks))
        if not any(name.endswith(CENTRED) and name.startswith("real") for name in trials):
            notes.append(f"real walkers: fewer than {MIN_CENTRE_WALKS} walks embed, too few for a camera centre "
                         "or statistics; no camera-centred or camera-adapted rows")
        elif embedder.head_norm is not None and not any(name.endswith(EACH_SIDE_ADAPTED) for name in trials):
            notes.append(f"real walkers: a gallery or probe side has fewer than {MIN_CAMERA_WALKS} walks, too few "
                         "for statistics of its own; no each-side-adapted rows")
        if score_model is not None:
            progress("the matcher policy over the real walkers' windows")
            visits = real_visits(embedder, walks, score_model)
    if fusion is not None:
        for name, trial in list(trials.items()):
            if trial.gallery_body is not None:
                trials[f"{name}, with body measures"] = trial.with_fusion(fusion)
    rows: dict[str, dict[str, object]] = {}
    for name, trial in trials.items():
        progress(f"scoring {name}")
        summary = summarise(trial)
        intervals = bootstrap(trial)
        rows[name] = {**summary, "rank1_ci": intervals["rank1"], "eer_ci": intervals["eer"],
                      "gallery": len(trial.gallery), "probes": len(trial.probes)}
    det_path = out_dir / "det.png"
    det_curve(trials, str(det_path))
    return SuiteResult(rows, det_path, tuple(notes), tuple(visits))
