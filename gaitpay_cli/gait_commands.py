"""`gaitpay train | eval | embed | bench embed`: the gait engine from the command line."""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:
    from matcher.domain.policy import ScoreModel

console = Console()
err = Console(stderr=True)


def embed(
    input_path: Path = typer.Argument(..., help="npz with seq_<id> float32 [T, 17, 3] arrays and a scalar fps"),
    output_path: Path = typer.Argument(..., help="npz to write emb_<id> and quality_<id> into"),
    model: Optional[Path] = typer.Option(None, help="ONNX model (default: the shipped one)"),
    statistics: str = typer.Option(
        "camera", help="camera: normalise the model's head with the statistics of this file's own walks, "
        "taken as one camera's walks of many people, when at least 8 embed (gait/adaptation.py); "
        "shipped: the synthetic walkers' statistics, as the matcher does today"),
    statistics_file: Optional[Path] = typer.Option(
        None, help="Normalise every walk with these camera statistics (written by --write-statistics from "
        "many walks of the same camera) instead of this file's own: for few walks, or one person's"),
    write_statistics: Optional[Path] = typer.Option(
        None, help="Also write the camera statistics this file's walks gave (at least 8 must embed), to embed "
        "later walks of the same camera with --statistics-file"),
) -> None:
    """Embed every walk in INPUT; walks that can't be embedded are named on stderr.

    By default the model's head is normalised with the statistics of the file's own walks
    (camera statistics, AdaBN): real cameras' walks sit away from the synthetic walkers the
    model was trained on, and every embedding then points one way. Then a walk's embedding
    depends on the other walks in the file: embed one camera's walks of many people together,
    and use --statistics shipped for embeddings to compare with the matcher's templates.
    Walks of one person, or too few walks, take a camera's statistics measured before:
    --write-statistics keeps them from a file of many walks, --statistics-file applies them."""
    from gait.adaptation import MIN_CAMERA_WALKS, AdaptationError
    from gait.embedder import Embedder
    from gait.track import foreign_frames
    from gait.walk import WalkFormatError, iter_walks, load_npz

    if statistics not in ("camera", "shipped"):
        raise typer.BadParameter(f"{statistics!r}: choose camera or shipped", param_hint="--statistics")
    if statistics == "shipped" and (statistics_file or write_statistics):
        raise typer.BadParameter("--statistics shipped takes no camera statistics: leave out --statistics-file "
                                 "and --write-statistics", param_hint="--statistics")
    if statistics_file and write_statistics:
        raise typer.BadParameter("--statistics-file applies statistics measured before; --write-statistics "
                                 "measures new ones: give one of them", param_hint="--write-statistics")
    try:
        sequences, fps = load_npz(input_path)
        if not 1 <= fps <= 240:
            raise WalkFormatError(f"{input_path}: fps {fps} is outside [1, 240]")
    except WalkFormatError as exc:
        err.print(f"[red]unusable input:[/red] {exc}")
        raise typer.Exit(2) from None
    walks, problems = {}, {}
    for key, walk in iter_walks(sequences, fps):
        if isinstance(walk, Exception):
            problems[key] = str(walk)
        else:
            walks[key] = walk
    try:
        embedder = Embedder(model)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    known = None
    if statistics_file:
        try:
            known = embedder.load_statistics(statistics_file)
        except AdaptationError as exc:
            err.print(f"[red]unusable statistics:[/red] {exc}")
            raise typer.Exit(2) from None
    adapt = statistics == "camera" and embedder.head_norm is not None
    result, errors = embedder.embed_many(walks, projections=adapt)
    problems.update(errors)
    how, measured = "shipped statistics", None
    if statistics == "camera" and embedder.head_norm is None:
        how = "shipped statistics: the model has no projection output to adapt"
    elif known is not None:
        result = embedder.with_statistics(result, known)
        how = f"camera statistics of {known.walks} walks from {statistics_file}"
    elif adapt and len(result) < MIN_CAMERA_WALKS:
        how = f"shipped statistics: {len(result)} walks embed, camera statistics need {MIN_CAMERA_WALKS}"
    elif adapt:
        result, measured = embedder.camera_adapted(result)
        how = (f"camera statistics of these {measured.walks} walks, taken as one camera's walks of many people; "
               "--statistics shipped or --statistics-file for walks of one person")
    arrays: dict[str, np.ndarray] = {}
    for key, e in result.items():
        arrays[f"emb_{key}"] = e.vector.astype(np.float32)
        arrays[f"quality_{key}"] = np.float32(e.quality)
    np.savez(output_path, **arrays)
    for key, reason in sorted(problems.items()):
        print(f"walk {key}: not embedded: {reason}", file=sys.stderr)
    for key in sorted(result):
        if (swap := foreign_frames(walks[key])) is not None:
            print(f"walk {key}: {swap} (a tracker swap), embedded without them", file=sys.stderr)
    err.print(f"embedded {len(result)} of {len(sequences)} walks into {output_path} "
              f"(model {embedder.version}, {how})")
    if write_statistics:
        if measured is None:  # the embeddings stand; only the statistics asked for are missing
            err.print(f"[red]no statistics written to {write_statistics}:[/red] {how}")
            raise typer.Exit(1)
        measured.save(write_statistics, embedder.version)
        err.print(f"camera statistics of {measured.walks} walks written to {write_statistics}")


SHIPPED_SEEDS = (20261125, 7, 11)  # the shipped ensemble's members (docs/gait.md, "Twelfth round")


def train(
    out: Path = typer.Option(Path("gait/models"), help="Folder for the ONNX model and its model card."),
    steps: int = typer.Option(2000, help="Optimiser steps."),
    persons: int = typer.Option(5000, help="Synthetic people to train on."),
    seed: list[int] = typer.Option(
        list(SHIPPED_SEEDS), help="Seed of everything random. Given more than once, one model per seed, joined into "
                                  "one ensemble (docs/gait.md, \"Twelfth round\"); the members are kept under "
                                  "OUT/members (OUT/float/members with --int8). The shipped model: 20261125, 7 and 11."),
    abnormality: str = typer.Option(
        "limp", help="How the walker's abnormal walks differ: limp (the shipped model's) or stiff (both legs, "
                     "as the real walkers simulate it; docs/gait.md, \"Ninth round\")."),
    int8: bool = typer.Option(
        True, help="Quantize the trained model to INT8 (gait.quantize): the float model goes to OUT/float, the "
                    "INT8 one (its own version, ending -int8) to OUT."),
) -> None:
    """Train the gait embedding from scratch on synthetic walkers and export it to ONNX."""
    from gait.synth.walker import ABNORMALITIES
    from gait.train import TrainConfig, train_ensemble
    from gait.train import train as run_training

    if abnormality not in ABNORMALITIES:
        raise typer.BadParameter(f"{abnormality!r} is not one of {', '.join(sorted(ABNORMALITIES))}",
                                 param_hint="--abnormality")
    if len(set(seed)) != len(seed):
        raise typer.BadParameter(f"the seeds {seed} repeat one: an ensemble's members need different seeds",
                                 param_hint="--seed")
    cfg = TrainConfig(persons=persons, steps=steps, seed=seed[0], abnormality=abnormality)
    last: dict[str, float] = {}
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        data = progress.add_task("synthetic walks", total=1.0, info="")
        fit = progress.add_task("training", total=1.0, info="")

        def report(stage: str, fraction: float, metrics: dict[str, float]) -> None:
            last.update(metrics)
            info = "  ".join(f"{k} {v:.3f}" for k, v in last.items())
            progress.update(data if stage == "data" else fit, completed=fraction, info=info)

        trained = out / "float" if int8 else out
        card = run_training(cfg, trained, report) if len(seed) == 1 else train_ensemble(cfg, seed, trained, report)
    if int8:
        from gait.quantize import quantize

        with console.status("quantizing to INT8 (gait.quantize) ..."):
            quantize(trained / card["file"], out)
        card = json.loads((out / "model-card.json").read_text())
    table = Table(title=f"model {card['version']} -> {out / card['file']}")
    table.add_column("metric")
    table.add_column("value")
    for key, value in {**card.get("float_metrics", {}), **card["metrics"]}.items():
        table.add_row(key, f"{value:.4g}")
    table.add_row("size", f"{card['bytes'] / 1024:.0f} KiB")
    table.add_row("sha256", card["sha256"][:16] + "…")
    table.add_row("time", f"data {card['seconds']['data']} s, training {card['seconds']['train']} s")
    console.print(table)


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, tuple):
        return f"[{value[0]:.3f}, {value[1]:.3f}]"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def evaluate(
    model: Optional[Path] = typer.Option(None, help="ONNX model (default: the shipped one)"),
    sizes: str = typer.Option("100,1000,10000", help="Synthetic gallery sizes, comma-separated."),
    real: Optional[Path] = typer.Option(None, help="UCalgary folder (default: ../shared/data/ucalgary-dev)"),
    out: Path = typer.Option(Path("eval-report"), help="Folder for report.json and det.png."),
    write_calibration: bool = typer.Option(
        False, help="Also write the matcher's score calibration for this model (gait/models/policy-calibration.json)."),
) -> None:
    """Ranks, EER, FNMR@FMR, FNIR@FPIR with 95% intervals; the matcher policy replayed over
    synthetic visits and over the real walkers."""
    from gait import eval_suite
    from gait.datasets import ucalgary
    from gait.embedder import Embedder
    from gait.evaluation import Fusion

    embedder = Embedder(model)
    try:
        chosen = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"{sizes!r}: give gallery sizes as whole numbers, comma-separated (e.g. 100,1000)",
                                 param_hint="--sizes") from None
    if any(size < 2 for size in chosen):
        raise typer.BadParameter(f"{sizes!r}: a synthetic gallery needs at least 2 people", param_hint="--sizes")
    root = real or ucalgary.default_root()
    body_model = _body_model(write_calibration)
    # A calibration being written is measured first, so that the replays and the body-measure
    # fusion below use the score model the matcher will load, not the one it replaces.
    policy = _policy_calibration(embedder, True, body_model) if write_calibration else None
    scores = _score_model(embedder)
    fusion = Fusion(body_model, (scores.impostor_mean, scores.impostor_std, scores.genuine_mean, scores.genuine_std))
    with console.status("evaluating") as status:
        result = eval_suite.run(embedder, chosen, root, out, progress=lambda s: status.update(s), fusion=fusion,
                                score_model=scores)
    _print_trials(result.rows, embedder.version)
    for note in result.notes:
        console.print(f"[yellow]data:[/] {note}")
    _print_real_visits(result.visits)
    if policy is None:
        policy = _policy_calibration(embedder, False, body_model)
    (out / "report.json").write_text(json.dumps({"model": embedder.version, "trials": result.rows,
                                                 "data_notes": list(result.notes), "policy": policy,
                                                 "real_visits": [asdict(v) for v in result.visits]},
                                                indent=2, default=list) + "\n")
    console.print(f"report: {out / 'report.json'}, DET curve: {result.det_path}")


def _print_trials(rows: dict[str, dict[str, object]], version: str) -> None:
    """Two tables, so each fits a terminal: ranks and EER with intervals, then the error rates
    at fixed operating points."""
    def cell(row: dict[str, object], value: str, interval: str | None = None) -> str:
        return _fmt(row.get(value)) + (f" {_fmt(row.get(interval))}" if interval else "")

    ranks = Table(title=f"gait evaluation, model {version}: ranks and EER, 95% intervals")
    for column in ("trial", "rank-1", "rank-5", "EER", "gallery", "probes"):
        ranks.add_column(column, overflow="fold")
    for name, row in rows.items():
        ranks.add_row(name, cell(row, "rank1", "rank1_ci"), cell(row, "rank5"), cell(row, "eer", "eer_ci"),
                      cell(row, "gallery"), cell(row, "probes"))
    console.print(ranks)
    points = Table(title="error rates at operating points (n/a: too few comparisons for that rate)")
    columns = ["fnmr_at_fmr_0.01", "fnmr_at_fmr_0.001", "fnmr_at_fmr_0.0001", "fnir_at_fpir_0.01", "fnir_at_fpir_0.001"]
    points.add_column("trial", overflow="fold")
    for c in columns:
        points.add_column(c.replace("_at_", "@").replace("fnmr", "FNMR").replace("fnir", "FNIR").replace("_", " "))
    for name, row in rows.items():
        points.add_row(name, *[cell(row, c) for c in columns])
    console.print(points)


def _print_real_visits(visits: tuple[object, ...]) -> None:
    """The policy over the real walkers: raw embeddings against camera-centred and camera-adapted ones."""
    if not visits:
        return
    table = Table(title="matcher policy over the real walkers (2 s windows; each walker also a stranger, "
                        "left out of the gallery)")
    for column in ("evidence", "false-match bound", "genuine identified", "identified wrongly", "strangers charged"):
        table.add_column(column)
    for v in visits:
        table.add_row(v.evidence, f"{v.bound:g}", f"{v.identified}/{v.genuine_visits}", str(v.identified_wrongly),
                      f"[{'red' if v.strangers_charged else 'green'}]{v.strangers_charged}/{v.stranger_visits}[/]")
    console.print(table)


def _body_model(write: bool):  # type: ignore[no-untyped-def]
    """The shipped body model (gait/body.py), or one fitted anew from synthetic walkers only,
    with --write-calibration or when none is shipped (and written with the former)."""
    from gait import body
    from gait.eval_suite import fit_body_model

    model = None if write else body.load_body_model()
    if model is None:
        with console.status("fitting the body model (synthetic walkers, installed cameras)"):
            model = fit_body_model()
        if write:
            body.BODY_MODEL_FILE.write_text(json.dumps(model.to_dict(), indent=2) + "\n")
            console.print(f"body model written to {body.BODY_MODEL_FILE}")
    return model


def _score_model(embedder: object) -> "ScoreModel":
    """The score model the matcher loads for this gait model (its shipped calibration, or the
    matcher's defaults where none is shipped)."""
    from gait import calibration
    from matcher.domain.policy import ScoreModel

    cal = calibration.load(getattr(embedder, "version", ""))
    return ScoreModel() if cal is None else ScoreModel(cal.impostor_mean, cal.impostor_std, cal.genuine_mean,
                                                       cal.genuine_std, cal.window_correlation)


def _policy_calibration(embedder: object, write: bool, body_model: object) -> dict[str, object]:
    """Measure best-of-templates score statistics, replay the policy over synthetic visits at
    several bounds, by the embedding alone and with body measures, print both, and optionally
    write the calibration the matcher loads."""
    from gait import calibration
    from matcher.domain.policy import PolicyConfig, ScoreModel

    enrolled = 300
    with console.status("calibrating the matcher policy (synthetic visits)"):
        cal, per_window, bodies = calibration.measure(embedder, enrolled=enrolled, body_model=body_model)
    scores = ScoreModel(cal.impostor_mean, cal.impostor_std, cal.genuine_mean, cal.genuine_std,
                        cal.window_correlation)
    table = Table(title=f"matcher policy over synthetic visits: {enrolled} enrolled ({cal.enrol_walks} walks each), "
                        f"{len(per_window) - enrolled} strangers, up to {PolicyConfig().max_windows} windows")
    asked = f"asked in app, fmp <= {PolicyConfig().probable_false_match:g} (right / wrong / stranger)"
    for column in ("evidence", "false-match bound", "identified", "wrongly identified", "strangers identified",
                   "median windows", asked):
        table.add_column(column)
    rows = []
    for evidence, visit_bodies in (("embedding", None), ("+ body measures", bodies)):
        for bound in (1e-4, 1e-3, 1e-2, 1e-1):
            sim = calibration.simulate_visits(per_window, enrolled, PolicyConfig(max_false_match=bound), scores,
                                              bodies=visit_bodies)
            rows.append({"evidence": evidence, "bound": bound, **asdict(sim)})
            table.add_row(evidence, f"{bound:g}",
                          f"{sim.identified_correctly}/{sim.enrolled_visits} ({sim.identification_rate:.0%})",
                          str(sim.identified_wrongly), f"{sim.strangers_identified}/{sim.strangers}",
                          "-" if sim.median_windows_to_identify is None else f"{sim.median_windows_to_identify:g}",
                          f"{sim.probable_right} / {sim.probable_wrong} / {sim.strangers_probable}")
    console.print(f"score model: impostor {cal.impostor_mean} +/- {cal.impostor_std}, genuine {cal.genuine_mean} "
                  f"+/- {cal.genuine_std}, window correlation {cal.window_correlation} (measured ICC {cal.measured_icc})")
    console.print(table)
    if write:
        calibration.CALIBRATION_FILE.write_text(cal.to_json())
        console.print(f"calibration written to {calibration.CALIBRATION_FILE}")
    return {"calibration": asdict(cal), "visits": rows}


def bench_embed(
    walks: int = typer.Option(1024, help="Walks in the batch test."),
    runs: int = typer.Option(5, help="Repetitions (medians are reported)."),
    model: Optional[Path] = typer.Option(None),
    int8: bool = typer.Option(True, help="Also an INT8 copy of the model (gait.quantize), made in this run."),
) -> None:
    """Walks per second (batched) and one-walk latency, ONNX Runtime beside PyTorch (and the
    model quantized to INT8, whose embeddings the services do not use yet)."""
    import tempfile

    from gait.embedder import Embedder
    from gait.quantize import agreement, is_quantized, same_length_features, synthetic_walks

    embedder = Embedder(model)
    sample = synthetic_walks(walks, seed=5, people_seed=99)  # 4 s at 30 fps, one shape
    features = same_length_features(sample)
    frames = features.shape[1]

    def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
        out = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    def row(name: str, run, singles: int) -> tuple[str, float, float, float]:  # type: ignore[no-untyped-def]
        """walks/s batched (median of `runs`), and p50 / p99 ms of `singles` one-walk runs."""
        batch = statistics.median(timed(lambda: run(features), runs))
        one = features[:1]
        single = timed(lambda: run(one), singles)
        return name, walks / batch, np.percentile(single, 50) * 1e3, np.percentile(single, 99) * 1e3

    prep = statistics.median(timed(lambda: [embedder.prepare(w) for w in sample[:256]], runs)) / 256
    single_e2e = timed(lambda: embedder.embed(sample[0]), 200)
    quantized = is_quantized(embedder.model_path)
    rows = [row("ONNX Runtime" + (", INT8" if quantized else ""), embedder.run, 500)]
    cosines = None
    with tempfile.TemporaryDirectory() as scratch:
        other = _other_precision(embedder, Path(scratch), quantized) if quantized or int8 else None
        if other is not None:
            name, path = other
            rows.append(row(name, Embedder(path).run, 500))
            cosines = agreement(embedder.model_path, path, features)
    try:
        import torch

        torch.set_num_threads(2)
        torch_model = _torch_from_checkpoint(embedder)
        if torch_model is not None:
            with torch.no_grad():
                rows.append(row("PyTorch (same weights)", lambda x: torch_model(torch.from_numpy(x)), 200))
    except ImportError:
        pass
    table = Table(title=f"gait embedding: {walks} walks of {frames} frames (4 s at 30 fps), providers "
                        f"{embedder.providers}")
    for c in ("runtime", "walks/s (batch)", "p50 ms (1 walk)", "p99 ms (1 walk)"):
        table.add_column(c)
    for name, rate, p50, p99 in rows:
        table.add_row(name, f"{rate:,.0f}", f"{p50:.2f}", f"{p99:.2f}")
    console.print(table)
    if cosines is not None:
        console.print(f"cosine between the INT8 and the float model's embeddings of these walks: "
                      f"min {cosines.min():.4f}, median {np.median(cosines):.4f}")
    console.print(f"end to end from pixel keypoints (normalise + features + model), one walk: "
                  f"p50 {np.percentile(single_e2e, 50) * 1e3:.2f} ms, p99 {np.percentile(single_e2e, 99) * 1e3:.2f} ms;"
                  f" preparation alone {prep * 1e3:.2f} ms a walk")


def _other_precision(embedder, scratch: Path, quantized: bool) -> tuple[str, Path] | None:  # type: ignore[no-untyped-def]
    """The bench's other model, written into `scratch`: for an INT8 model the float one it was
    quantized from (exported from its PyTorch twin; None without one), for a float model an
    INT8 copy (gait.quantize, a few seconds)."""
    if quantized:
        from gait.train import export_onnx

        twin = _torch_from_checkpoint(embedder)
        if twin is None:
            return None
        export_onnx(twin, scratch / "gait-embedder.onnx")
        return "ONNX Runtime, float (before quantization)", scratch / "gait-embedder.onnx"
    from gait.quantize import quantize

    with console.status("quantizing the model to INT8 (gait.quantize) ..."):
        return "ONNX Runtime, INT8", quantize(embedder.model_path, scratch)


def _torch_from_checkpoint(embedder):  # type: ignore[no-untyped-def]
    """The PyTorch twin of the ONNX model (one network or an ensemble), from the checkpoint
    saved beside it."""
    from gait.model import load_checkpoint

    checkpoint = embedder.model_path.with_name("gait-embedder.pt")
    return load_checkpoint(checkpoint) if checkpoint.exists() else None
