"""gait.quantize: an INT8 copy of the embedder that agrees with the float model, carries
what the services need (its own version, the head norm), and keeps its stem in float."""

from __future__ import annotations

import json
import re
import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from gait.embedder import DEFAULT_MODEL, Embedder, model_version
from gait.quantize import QuantizeConfig, QuantizeError, agreement, quantize, same_length_features, synthetic_walks

SMALL = QuantizeConfig(persons=16, walks_per_person=2)


@pytest.fixture(scope="module")
def float_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model before quantization: its PyTorch twin (the float ensemble) exported,
    with a card as `gaitpay train` writes one."""
    pytest.importorskip("torch")
    from gait.model import load_checkpoint
    from gait.train import export_onnx

    folder = tmp_path_factory.mktemp("float")
    export_onnx(load_checkpoint(DEFAULT_MODEL.with_name("gait-embedder.pt")), folder / "gait-embedder.onnx")
    shipped = json.loads(DEFAULT_MODEL.with_name("model-card.json").read_text())
    card = {**shipped, "version": shipped["quantized"]["float_version"], "metrics": shipped["float_metrics"],
            "sha256": hashlib.sha256((folder / "gait-embedder.onnx").read_bytes()).hexdigest()}
    for key in ("quantized", "float_metrics"):
        card.pop(key)
    (folder / "model-card.json").write_text(json.dumps(card))
    return folder / "gait-embedder.onnx"


@pytest.fixture(scope="module")
def quantized(float_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantize(float_model, tmp_path_factory.mktemp("int8"), SMALL)


def test_the_shipped_model_is_its_pytorch_twin_quantized(float_model: Path) -> None:
    """What `gaitpay bench embed` and the issue's ONNX/PyTorch agreement rest on: the shipped
    INT8 file is the float twin's weights (its version names them), and agrees with them."""
    from gait.model import load_checkpoint
    from gait.train import weights_fingerprint

    card = json.loads(DEFAULT_MODEL.with_name("model-card.json").read_text())
    twin = load_checkpoint(DEFAULT_MODEL.with_name("gait-embedder.pt"))
    assert card["quantized"]["float_version"].endswith("-" + weights_fingerprint(twin.state_dict())[:8])
    cosines = agreement(float_model, DEFAULT_MODEL, same_length_features(synthetic_walks(64, seed=2027)))
    assert np.median(cosines) > 0.995 and cosines.min() > 0.9, (np.median(cosines), cosines.min())


def test_quantized_model_agrees_with_the_float_model_on_unseen_walks(float_model: Path, quantized: Path) -> None:
    features = same_length_features(synthetic_walks(64, seed=2026))
    cosines = agreement(float_model, quantized, features)
    assert np.median(cosines) > 0.995 and cosines.min() > 0.9, (np.median(cosines), cosines.min())
    # Not the float model by another name: int8 arithmetic moves every embedding a little.
    assert cosines.max() < 1 - 1e-6
    card = json.loads(quantized.with_name("model-card.json").read_text())
    assert card["metrics"]["cosine_to_float_median"] > 0.995
    assert "onnx_max_abs_diff" in card["float_metrics"]  # the float model's figures, named as such


def test_quantized_model_has_its_own_version_and_keeps_the_head_norm(float_model: Path, quantized: Path) -> None:
    card = json.loads(quantized.with_name("model-card.json").read_text())
    assert card["sha256"] == hashlib.sha256(quantized.read_bytes()).hexdigest()
    # Named after the float model and its own int8 weights: SMALL calibrates on fewer walks,
    # so its ranges, weights and name differ from the shipped file's.
    float_version = model_version(float_model)
    assert model_version(quantized) == f"{float_version[:-8]}{card['quantized']['weights_sha256'][:8]}-int8"
    assert card["quantized"]["float_version"] == float_version
    assert model_version(quantized) != model_version(DEFAULT_MODEL)
    assert card["former_versions"] == []  # float templates are not this model's
    embedder = Embedder(quantized)
    float_norm = Embedder(float_model).head_norm
    assert embedder.head_norm is not None and float_norm is not None
    assert embedder.head_norm.to_metadata() == float_norm.to_metadata()
    walk = synthetic_walks(1, seed=7)[0]
    vector, projection = embedder.vector_and_projection(walk)
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5) and projection.shape == (embedder.dim,)


def test_the_shipped_settings_reproduce_the_shipped_file(float_model: Path, tmp_path: Path) -> None:
    """`gaitpay train` ends with this step: the same float weights and settings give the
    shipped int8 model again. On this machine the bytes and the version are the same; on a
    CPU whose float kernels round otherwise the calibration ranges can move by a rounding,
    so what is asserted is the embeddings."""
    out = quantize(float_model, tmp_path / "again")
    cosines = agreement(DEFAULT_MODEL, out, same_length_features(synthetic_walks(64, seed=2028)))
    assert cosines.min() > 0.995, cosines.min()
    assert re.fullmatch(re.escape(model_version(float_model)[:-8]) + r"[0-9a-f]{8}-int8", model_version(out))


def test_weights_use_seven_bits_so_no_x86_pair_sum_can_saturate(quantized: Path) -> None:
    # VPMADDUBSW (x86 without VNNI) adds two uint8 x int8 products into int16 and saturates:
    # 255 * 64 * 2 = 32,640 fits, 255 * 127 * 2 would not.
    weights = [onnx.numpy_helper.to_array(t) for t in onnx.load(str(quantized)).graph.initializer
               if t.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    assert 255 * 64 * 2 <= np.iinfo(np.int16).max


def test_the_stem_stays_float_and_the_other_convolutions_are_int8(quantized: Path) -> None:
    graph = onnx.load(str(quantized)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    float_convs = [n.name for n in convs if n.input[1] not in dequantized]
    kept = json.loads(quantized.with_name("model-card.json").read_text())["quantized"]["kept_float"]
    # One stem per network of the ensemble.
    assert float_convs == kept and len(kept) == 3 and all("stem" in name for name in kept)
    assert len(convs) - len(float_convs) >= 3 * 8


def test_a_quantized_model_is_not_quantized_again(quantized: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="quantized already"):
        quantize(DEFAULT_MODEL, tmp_path / "shipped", SMALL)
    with pytest.raises(QuantizeError, match="quantized already"):
        quantize(quantized, tmp_path / "twice", SMALL)
    assert not (tmp_path / "twice").exists()


def test_calibration_features_of_varying_lengths_are_refused(float_model: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="one length"):
        quantize(float_model, tmp_path / "q", SMALL, features=np.zeros((4, 79), np.float32))
    assert not (tmp_path / "q").exists()
