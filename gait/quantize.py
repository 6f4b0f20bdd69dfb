"""An INT8 copy of a gait embedder (ONNX Runtime static quantization), and how far it agrees.

On a CPU with int8 dot products (AVX512-VNNI here, ARMv8.2 dot products on a Jetson Orin) the
INT8 network runs 2.3-2.7x the float one's walks per second, and three of them in one graph
(the shipped ensemble of seeds) run faster than one float network (docs/gait.md, "Twelfth
round"). The shipped model is this module's output; `gaitpay train` ends with it.

What the measurements chose, each against a cosine of 0.05-0.9 to the float model's
embeddings where it was done otherwise:
- the stem (the first convolution, which reads the features) stays in float: the features
  span about +-11 while most channels move by 0.1-0.6, so 8 bits over the whole span erase
  them (median cosine 0.92 with the stem quantized, 0.999 without);
- only convolutions are quantized (attention pooling, the head and its norm stay float);
- the calibration walks all have one length (4 s at 30 fps): calibrating on walks of
  varying lengths gave a median cosine of 0.1, every other setting equal;
- activation ranges are the 99.999th percentile of a histogram, not the min and max;
- weights use 7 bits (reduce_range): an x86 CPU without VNNI multiplies uint8 activations by
  int8 weights with VPMADDUBSW, which adds two products into int16 and saturates. With 8-bit
  weights 2.5e-6 of those pair sums overflowed on synthetic walks (up to 58,140 against
  32,767); with 7 bits none can (255 * 64 * 2 = 32,640), for a median cosine to the float
  model of 0.9996 instead of 0.9998 (docs/gait.md, "Thirteenth round").
Calibration walks are synthetic (gait.synth), never the real walkers, which are for
evaluation only.

A quantized model's version is its float model's recipe, the first 8 hex digits of a
fingerprint of its own (quantized) tensors in place of the float weights', and `-int8`:
other calibration settings give other weights, and so another name, as a retrain does. The
float model it came from is on its card (`quantized.float_version`). The name stays as long
as the float one (38 characters for the shipped model): a template's tag adds the transform
and statistics labels to it within 64.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gait.encoding import encode
from gait.synth.dataset import SynthConfig, people, render_walk
from gait.track import bodies
from gait.walk import Walk

QUANTIZED_KEY = "gaitpay.quantized"  # ONNX metadata: this config, as JSON
INT8_SUFFIX = "-int8"
AGREEMENT_SEED = 99  # other synthetic people than the calibration's


@dataclass(frozen=True)
class QuantizeConfig:
    persons: int = 96
    walks_per_person: int = 3
    seed: int = 4343  # not a training or evaluation seed: these people are nobody's
    seconds: float = 4.0
    fps: float = 30.0
    percentile: float = 99.999
    reduce_range: bool = True  # 7-bit weights: no int16 saturation on x86 CPUs without VNNI


class QuantizeError(ValueError):
    """A model this module cannot quantize; the message says why."""


def synthetic_walks(count: int, seed: int, seconds: float = 4.0, fps: float = 30.0,
                    people_seed: int | None = None) -> list[Walk]:
    """`count` synthetic walks of one length, over 64 people at most (drawn with `people_seed`,
    else `seed`); what calibration, agreement and `gaitpay bench embed` run on. A walk
    gait.track would cut (a swap to a bystander) is drawn again, so that every walk keeps its
    length."""
    rng = np.random.default_rng(seed)
    crowd = people(min(count, 64), seed if people_seed is None else people_seed)
    cfg = SynthConfig(seconds=(seconds, seconds), fps_choices=(fps,))
    walks: list[Walk] = []
    while len(walks) < count:
        walk = render_walk(crowd[len(walks) % len(crowd)], rng, cfg)
        if not bodies(walk).any():
            walks.append(walk)
    return walks


def same_length_features(walks: list[Walk]) -> np.ndarray:
    """float32 [N, T, C]: the walks' model input, cut to the shortest one's frames."""
    encoded = [encode(w) for w in walks]
    frames = min(e.shape[0] for e in encoded)
    return np.stack([e[:frames] for e in encoded]).astype(np.float32)


def calibration_features(cfg: QuantizeConfig = QuantizeConfig()) -> np.ndarray:
    return same_length_features(synthetic_walks(cfg.persons * cfg.walks_per_person, cfg.seed, cfg.seconds, cfg.fps))


def _stems(model) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of the convolutions that read the graph's input, through any layout change
    (the export transposes [B, T, C] to [B, C, T] first): one per network in the graph."""
    inputs = {i.name for i in model.graph.input}
    reached, stems = set(inputs), []
    for node in model.graph.node:  # ONNX graphs are stored in topological order
        if not any(name in reached for name in node.input):
            continue
        if node.op_type == "Conv":
            stems.append(node.name)
        else:
            reached.update(node.output)
    return stems


def quantize(source: Path, target: Path, cfg: QuantizeConfig = QuantizeConfig(),
             features: np.ndarray | None = None) -> Path:
    """Write an INT8 copy of the model file `source` to the folder `target`, with a model
    card: version `<source recipe>-<fingerprint>-int8` (its embeddings differ slightly from
    the float model's, so templates must not be shared), the file's sha256, and this config.
    The source's metadata (the head norm, for camera statistics) is kept."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from gait.embedder import model_names

    names = model_names(source)
    if is_quantized(source):
        raise QuantizeError(f"{source} is quantized already: quantize the float model it came from")
    batch = calibration_features(cfg) if features is None else features
    if batch.ndim != 3:
        raise QuantizeError(f"calibration features must be [walks, frames, channels] of one length, not {batch.shape}")

    class Walks(CalibrationDataReader):
        def __init__(self) -> None:
            self._rows = iter(range(batch.shape[0]))

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self._rows, None)
            return None if row is None else {"features": batch[row:row + 1]}

    target.mkdir(parents=True, exist_ok=True)
    out = target / "gait-embedder.onnx"
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        stems = _stems(onnx.load(str(prepared)))
        if not stems:
            raise QuantizeError(f"{source}: no convolution reads the model's input; not a gait embedder this "
                                "module knows")
        quantize_static(str(prepared), str(out), Walks(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=stems, reduce_range=cfg.reduce_range,
                        extra_options={"CalibPercentile": cfg.percentile})
    cosines = agreement(source, out, same_length_features(synthetic_walks(256, AGREEMENT_SEED, cfg.seconds, cfg.fps)))
    model = onnx.load(str(out))
    fingerprint = quantized_fingerprint(model)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                        QUANTIZED_KEY: json.dumps({**asdict(cfg), "float_version": names.version})})
    onnx.save(model, str(out))
    data = out.read_bytes()
    card_path = source.with_name("model-card.json")
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    card["float_metrics"] = card.pop("metrics", {})  # measured on the float model, not this file
    card.update(metrics={"cosine_to_float_min": round(float(cosines.min()), 5),
                         "cosine_to_float_median": round(float(np.median(cosines)), 5),
                         "agreement_walks": int(cosines.size)},
                version=quantized_version(names.version, fingerprint), former_versions=[], file=out.name,
                sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
                quantized={**asdict(cfg), "float_version": names.version, "kept_float": stems,
                           "weights_sha256": fingerprint,
                           "float_model": os.path.relpath(source, target),
                           "method": "ONNX Runtime static QDQ: convolutions int8 (weights per channel, 7 bits "
                                     "with reduce_range), activations uint8 at the percentile"})
    (target / "model-card.json").write_text(json.dumps(card, indent=1) + "\n")
    checkpoint = source.with_name("gait-embedder.pt")
    if checkpoint.exists():  # the float twin, for `gaitpay bench embed`'s PyTorch row
        shutil.copy(checkpoint, target / checkpoint.name)
    return out


def quantized_version(float_version: str, fingerprint: str) -> str:
    """`synthetic-20261125+7+11-ba64593a` and its int8 tensors' fingerprint 9da40991… ->
    `synthetic-20261125+7+11-9da40991-int8` (see the module's note on names)."""
    recipe = re.sub(r"-[0-9a-f]{8}$", "", float_version)
    return f"{recipe}-{fingerprint[:8]}{INT8_SUFFIX}"


def quantized_fingerprint(model) -> str:  # type: ignore[no-untyped-def]
    """sha256 over the graph's tensors (the int8 weights, their scales and zero points, and
    what stayed float), by value in name order: the same weights exported again, or with
    other metadata, have the same fingerprint."""
    from onnx import numpy_helper

    digest = hashlib.sha256()
    for tensor in sorted(model.graph.initializer, key=lambda t: t.name):
        array = numpy_helper.to_array(tensor)
        digest.update(f"{tensor.name}:{array.dtype}:{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def is_quantized(path: Path) -> bool:
    """Whether the model file is one this module wrote."""
    from gait.embedder import open_session

    return QUANTIZED_KEY in open_session(path, ["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map


def agreement(reference: Path, quantized: Path, features: np.ndarray) -> np.ndarray:
    """Cosine between the two models' embeddings of each walk in `features` [N, T, C]."""
    from gait.embedder import open_session

    vectors = []
    for path in (reference, quantized):
        session = open_session(path, ["CPUExecutionProvider"])
        output = session.get_outputs()[0].name
        vectors.append(np.concatenate([session.run([output], {"features": features[i:i + 64]})[0]
                                       for i in range(0, len(features), 64)]))
    return np.sum(vectors[0] * vectors[1], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write an INT8 copy of a gait model and say how far it agrees.")
    parser.add_argument("model", type=Path, help="the float model file (gait-embedder.onnx, its card beside it)")
    parser.add_argument("out", type=Path, help="folder for the INT8 file and its card")
    args = parser.parse_args()
    out = quantize(args.model, args.out)
    metrics = json.loads((args.out / "model-card.json").read_text())["metrics"]
    print(f"wrote {out}; cosine to the float model on {metrics['agreement_walks']} other synthetic walks: "
          f"min {metrics['cosine_to_float_min']:.4f}, median {metrics['cosine_to_float_median']:.4f}")


if __name__ == "__main__":
    main()
