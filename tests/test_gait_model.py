"""The embedding model: ONNX/PyTorch agreement, the shipped model separates people, and the
command-line contract of `gaitpay embed` and `gaitpay train`."""

from __future__ import annotations

import json
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gait.embedder import DEFAULT_MODEL, Embedder, ModelCardMismatch, model_version
from gait.encoding import CHANNELS
from gait.evaluation import summarise
from gait.eval_suite import synthetic_trial
from gait.synth.dataset import people, render_walk
from gait.walk import Walk

torch = pytest.importorskip("torch")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gaitpay_cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def test_onnx_runtime_agrees_with_pytorch(tmp_path: Path) -> None:
    from gait.model import GaitEmbedder
    from gait.train import export_onnx, onnx_agreement

    torch.manual_seed(0)
    model = GaitEmbedder()
    model.eval()
    export_onnx(model, tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    samples = [rng.normal(0, 1, (frames, CHANNELS)).astype(np.float32) for frames in (40, 72, 150)]
    assert onnx_agreement(model, tmp_path / "m.onnx", samples) < 1e-4


def test_the_shipped_model_separates_synthetic_people(tmp_path: Path) -> None:
    from gait.model import GaitEmbedder
    from gait.train import export_onnx

    trained = summarise(synthetic_trial(Embedder(), 100, seed=4242))
    # The same network with untrained weights, on the same people: what chance looks like.
    torch.manual_seed(0)
    export_onnx(GaitEmbedder().eval(), tmp_path / "untrained.onnx")
    untrained = summarise(synthetic_trial(Embedder(tmp_path / "untrained.onnx"), 100, seed=4242))
    # 100 enrolled people and 100 strangers; gallery and probe walks come from different
    # cameras (entrance vs overhead, mirrored or not): rank-1 by chance is 0.01.
    assert trained["rank1"] > 0.25 and trained["rank1"] > 3 * untrained["rank1"]
    assert trained["eer"] < 0.22 and trained["eer"] < untrained["eer"] - 0.1
    trial = synthetic_trial(Embedder(), 20, seed=1)
    np.testing.assert_allclose(np.linalg.norm(trial.gallery, axis=1), 1.0, atol=1e-4)


def test_embed_command_contract(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    crowd = people(3, 5)
    walks = {str(i): render_walk(p, rng) for i, p in enumerate(crowd)}
    walks = {k: Walk(w.keypoints[:, :17], w.fps) for k, w in walks.items()}
    fps = 30.0
    arrays = {f"seq_{k}": w.keypoints for k, w in walks.items()}
    arrays["seq_tooshort"] = walks["0"].keypoints[:5]
    arrays["seq_badshape"] = np.zeros((50, 12, 3), dtype=np.float32)
    np.savez(tmp_path / "in.npz", fps=np.float32(fps), **arrays)
    result = cli("embed", str(tmp_path / "in.npz"), str(tmp_path / "out.npz"))
    assert result.returncode == 0, result.stderr
    out = np.load(tmp_path / "out.npz")
    for key in walks:
        vector = out[f"emb_{key}"]
        assert vector.dtype == np.float32 and vector.ndim == 1
        assert abs(float(np.linalg.norm(vector)) - 1) < 1e-4
        assert 0 <= float(out[f"quality_{key}"]) <= 1
    assert "emb_tooshort" not in out.files and "emb_badshape" not in out.files
    assert "walk tooshort" in result.stderr and "walk badshape" in result.stderr


def test_embed_refuses_an_unusable_file(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    result = cli("embed", str(tmp_path / "junk.npz"), str(tmp_path / "out.npz"))
    assert result.returncode == 2
    assert "unusable input" in result.stderr
    assert not (tmp_path / "out.npz").exists()


def test_train_command_produces_a_model_and_card(tmp_path: Path) -> None:
    # The shipped recipe, shortened: three seeds joined into one ensemble, quantized to INT8.
    result = cli("train", "--out", str(tmp_path), "--steps", "30", "--persons", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    card = json.loads((tmp_path / "model-card.json").read_text())
    shipped = json.loads(DEFAULT_MODEL.with_name("model-card.json").read_text())
    model = tmp_path / card["file"]
    assert card["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert card["settings"]["seeds"] == shipped["settings"]["seeds"] == [20261125, 7, 11]
    for version in (card["version"], shipped["version"]):
        assert re.fullmatch(r"synthetic-20261125\+7\+11-[0-9a-f]{8}-int8", version), version
    assert card["float_metrics"]["onnx_max_abs_diff"] < 1e-4  # the float ensemble against its PyTorch twin
    assert card["metrics"]["cosine_to_float_median"] > 0.99
    float_card = json.loads((tmp_path / card["quantized"]["float_model"]).with_name("model-card.json").read_text())
    assert float_card["version"] == card["quantized"]["float_version"]
    assert [(tmp_path / "float" / m["folder"] / "gait-embedder.onnx").exists() for m in float_card["members"]] == \
        [True] * 3
    assert "synthetic" in card["training_data"]
    embedding = Embedder(model).embed(render_walk(people(1, 9)[0], np.random.default_rng(0)))
    assert embedding.vector.shape == (card["embedding_dim"],) == (384,)


def test_train_with_several_seeds_joins_them_into_one_ensemble_model(tmp_path: Path) -> None:
    result = cli("train", "--out", str(tmp_path), "--steps", "20", "--persons", "40", "--seed", "5", "--seed", "6",
                 "--no-int8")
    assert result.returncode == 0, result.stdout + result.stderr
    card = json.loads((tmp_path / "model-card.json").read_text())
    assert re.fullmatch(r"synthetic-5\+6-[0-9a-f]{8}", card["version"]), card["version"]
    assert card["settings"]["seeds"] == [5, 6] and card["embedding_dim"] == 256
    assert card["metrics"]["onnx_max_abs_diff"] < 1e-4
    members = [Embedder(tmp_path / m["folder"] / "gait-embedder.onnx") for m in card["members"]]
    assert [m.version for m in members] == [m["version"] for m in card["members"]]
    ensemble = Embedder(tmp_path / card["file"])
    assert ensemble.version == card["version"] and ensemble.head_norm is not None
    assert ensemble.head_norm.blocks == 2
    walks = [render_walk(p, np.random.default_rng(i)) for i, p in enumerate(people(2, 9))]
    vectors = [ensemble.vector_and_projection(w) for w in walks]
    # Its own head norm gives back its embedding (what camera statistics start from) ...
    for vector, projection in vectors:
        assert np.allclose(ensemble.head_norm.embed(projection), vector, atol=1e-5)
    # ... and its cosine is the mean of the members' cosines.
    cosines = [float(np.dot(m.vector(walks[0]), m.vector(walks[1]))) for m in members]
    assert np.isclose(float(np.dot(vectors[0][0], vectors[1][0])), np.mean(cosines), atol=1e-5)
    refused = cli("train", "--out", str(tmp_path / "other"), "--seed", "5", "--seed", "5")
    assert refused.returncode == 2 and "repeat one" in refused.stdout + refused.stderr
    assert not (tmp_path / "other").exists()


def test_train_names_the_walker_it_trained_on_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    result = cli("train", "--out", str(tmp_path), "--steps", "20", "--persons", "40", "--seed", "5",
                 "--abnormality", "stiff", "--no-int8")
    assert result.returncode == 0, result.stdout + result.stderr
    card = json.loads((tmp_path / "model-card.json").read_text())
    # Another walker is another model: templates must never be compared across the two. And
    # the version ends in the weights' fingerprint, so that the same recipe rounded otherwise
    # on another CPU is another model too.
    assert re.fullmatch(r"synthetic-5-stiff-[0-9a-f]{8}", card["version"]), card["version"]
    assert card["version"].endswith(card["weights_sha256"][:8]) and card["settings"]["abnormality"] == "stiff"
    assert Embedder(tmp_path / card["file"]).version == card["version"]
    refused = cli("train", "--out", str(tmp_path / "other"), "--abnormality", "hop")
    assert refused.returncode == 2 and "'hop' is not one of limp, stiff" in refused.stdout + refused.stderr
    assert not (tmp_path / "other").exists()


def test_shipped_model_card_matches_the_file() -> None:
    card = json.loads(DEFAULT_MODEL.with_name("model-card.json").read_text())
    assert card["sha256"] == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()
    assert DEFAULT_MODEL.stat().st_size < 5 * 2**20
    from gait.train import weights_fingerprint

    twin = torch.load(DEFAULT_MODEL.with_name("gait-embedder.pt"), map_location="cpu")
    assert card["weights_sha256"] == weights_fingerprint(twin)
    # The INT8 file is named after the float weights it was quantized from, and says so.
    assert card["version"] == f"synthetic-20261125+7+11-{card['quantized']['weights_sha256'][:8]}-int8"
    assert card["quantized"]["float_version"].endswith("-" + card["weights_sha256"][:8])
    # A template's tag is "<model>/t<transform version>+s<10 hex>" within 64 characters
    # (matcher.proto, Milvus): room for a transform version of four digits.
    assert len(f"{card['version']}/t9999+s0123456789") <= 64
    calibration = json.loads(DEFAULT_MODEL.with_name("policy-calibration.json").read_text())
    assert calibration["model_version"] == card["version"]  # else the matcher falls back to defaults


def test_a_model_is_named_by_its_own_card_only(tmp_path: Path) -> None:
    model = tmp_path / DEFAULT_MODEL.name
    model.write_bytes(DEFAULT_MODEL.read_bytes())
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert model_version(model) == f"unknown-{digest[:8]}"  # no card: named by its bytes
    card = json.loads(DEFAULT_MODEL.with_name("model-card.json").read_text())
    (tmp_path / "model-card.json").write_text(json.dumps(card))
    assert Embedder(model).version == card["version"]
    renamed = model.rename(tmp_path / "other.onnx")
    assert model_version(renamed) == f"unknown-{digest[:8]}"  # the card names another file
    renamed.rename(model)
    # A card beside other weights (say, a retrain copied over the model alone) would lend them
    # its version, and with it the calibration and templates of other weights: refused.
    (tmp_path / "model-card.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(ModelCardMismatch, match="describes other weights"):
        Embedder(model)


def test_bench_embed_prints_both_runtimes() -> None:
    result = cli("bench", "embed", "--walks", "64", "--runs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "64 walks of 120 frames" in result.stdout
    assert "ONNX Runtime" in result.stdout and "PyTorch (same weights)" in result.stdout
    assert "ONNX Runtime, INT8" in result.stdout
    agreement = re.search(r"cosine between the INT8 and the float model's embeddings of these walks: min ([\d.]+), "
                          r"median ([\d.]+)",
                          " ".join(result.stdout.split()))
    assert agreement and float(agreement.group(2)) > 0.99, result.stdout
    assert re.search(r"one walk: p50 [\d.]+ ms, p99 [\d.]+ ms", result.stdout.replace("\n", " "))


def test_eval_refuses_gallery_sizes_it_cannot_read(tmp_path: Path) -> None:
    for sizes, why in (("100,abc", "whole numbers, comma-separated"), ("1", "at least 2 people")):
        result = cli("eval", "--sizes", sizes, "--out", str(tmp_path / "out"))
        assert result.returncode == 2, result.stdout
        assert why in " ".join(result.stderr.split()), result.stderr  # folded by the error box
        assert not (tmp_path / "out").exists()  # nothing evaluated, nothing written


def test_eval_writing_a_calibration_replays_and_fuses_with_the_one_it_wrote(monkeypatch, tmp_path: Path) -> None:
    """`gaitpay eval --write-calibration` for a model with no calibration yet: the real-walker
    replay and the body-measure fusion must use the calibration it writes, not the policy's
    defaults (as they did until 2026-12-07). The measurement and the suite are faked here:
    what is tested is the order of the command's steps."""
    from gait import calibration, eval_suite
    from gait.eval_suite import SuiteResult
    from gaitpay_cli import gait_commands

    stored: dict[str, calibration.Calibration] = {}

    def measure_and_write(embedder, write: bool, body_model) -> dict:  # type: ignore[no-untyped-def]
        assert write
        stored[embedder.version] = calibration.Calibration(embedder.version, 4, 0.21, 0.11, 0.61, 0.12, 0.5, 0.5,
                                                           100, 100)
        return {"calibration": {}, "visits": []}

    seen = {}

    def suite(embedder, sizes, root, out, progress, fusion, score_model):  # type: ignore[no-untyped-def]
        seen.update(scores=score_model, fusion=fusion)
        return SuiteResult(rows={}, det_path=out / "det.png")

    monkeypatch.setattr(gait_commands, "_body_model", lambda write: "body model")
    monkeypatch.setattr(gait_commands, "_policy_calibration", measure_and_write)
    monkeypatch.setattr(calibration, "load", lambda version: stored.get(version))
    monkeypatch.setattr(eval_suite, "run", suite)
    gait_commands.evaluate(model=None, sizes="100", real=tmp_path, out=tmp_path, write_calibration=True)
    assert (seen["scores"].impostor_mean, seen["scores"].genuine_std) == (0.21, 0.12)
    assert seen["fusion"].body == "body model" and seen["fusion"].embedding[0] == 0.21
    assert json.loads((tmp_path / "report.json").read_text())["model"] in stored


def test_eval_tables_give_every_trial_its_ranks_and_operating_points(capsys) -> None:  # type: ignore[no-untyped-def]
    from gaitpay_cli import gait_commands

    rows = {"real normal walk 1 -> walk 2, camera-centred, with body measures": {
        "rank1": 1.0, "rank1_ci": (1.0, 1.0), "rank5": 1.0, "eer": 0.015, "eer_ci": (0.0, 0.076),
        "fnmr_at_fmr_0.01": None, "gallery": 12, "probes": 12}}
    gait_commands.console.width = 200
    gait_commands._print_trials(rows, "m1")
    out = capsys.readouterr().out
    assert "ranks and EER" in out and "error rates at operating points" in out
    assert "1.0000 [1.000, 1.000]" in out and "0.0150 [0.000, 0.076]" in out
    assert out.count("real normal walk 1 -> walk 2, camera-centred, with body measures") == 2
    assert "n/a" in out  # a rate the comparisons cannot support
