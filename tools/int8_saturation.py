"""How many of a quantized gait model's integer pair sums an x86 CPU without VNNI would clip.

ONNX Runtime runs a uint8-activation x int8-weight convolution on AVX2 with VPMADDUBSW, which
adds the products of two neighbouring input channels into an int16 and saturates there (a
CPU with VNNI, or ARM dot products, adds into int32 and does not). This tool emulates that
pair sum for every quantized convolution of a QDQ model (gait.quantize's output), at every
kernel tap and output position, on synthetic walks, and counts the sums outside int16. It
reads the uint8 activations from the model itself (each QuantizeLinear's output made a graph
output, with graph optimisations off so that none is fused away).

    python tools/int8_saturation.py [MODEL] [--walks 64]

docs/gait.md, "Thirteenth round": 2.5e-6 of the pair sums of the 8-bit file overflowed;
none of the shipped 7-bit file's can.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from gait.embedder import DEFAULT_MODEL
from gait.quantize import same_length_features, synthetic_walks

INT16_MAX = int(np.iinfo(np.int16).max)


@dataclass(frozen=True)
class QuantizedConv:
    name: str
    activation: str  # the uint8 tensor (a QuantizeLinear's output) the convolution reads
    weights: np.ndarray  # int8 [out, in, taps]
    activation_zero: int
    dilation: int
    pads: tuple[int, int]


def quantized_convs(model: onnx.ModelProto) -> list[QuantizedConv]:
    """The 1-D convolutions whose input and weights both come through DequantizeLinear."""
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        x, w = producer.get(node.input[0]), producer.get(node.input[1])
        if not (x and w and x.op_type == w.op_type == "DequantizeLinear"):
            continue  # kept in float (the stems)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        zero = int(tensors[x.input[2]]) if len(x.input) > 2 else 0
        pads = tuple(attrs.get("pads", [0, 0]))
        convs.append(QuantizedConv(node.name, x.input[0], tensors[w.input[0]], zero,
                                   int(attrs.get("dilations", [1])[0]), (int(pads[0]), int(pads[1]))))
    return convs


def pair_sums_outside_int16(conv: QuantizedConv, activation: np.ndarray) -> tuple[int, int, int]:
    """(sums outside int16, sums, largest |sum|) for uint8 activations [N, C, T]."""
    x = np.pad(activation.astype(np.int32), ((0, 0), (0, 0), conv.pads), constant_values=conv.activation_zero)
    w = conv.weights.astype(np.int32)
    if x.shape[1] % 2:  # an odd channel pairs with a zero
        x, w = np.pad(x, ((0, 0), (0, 1), (0, 0))), np.pad(w, ((0, 0), (0, 1), (0, 0)))
    n, channels, length = x.shape
    positions = length - conv.dilation * (w.shape[2] - 1)
    outside = total = largest = 0
    for tap in range(w.shape[2]):
        window = x[:, :, tap * conv.dilation: tap * conv.dilation + positions].reshape(n, channels // 2, 2, positions)
        pairs = np.einsum("npkt,opk->nopt", window, w[:, :, tap].reshape(w.shape[0], channels // 2, 2), optimize=True)
        outside += int((np.abs(pairs) > INT16_MAX).sum())
        total += pairs.size
        largest = max(largest, int(np.abs(pairs).max()))
    return outside, total, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--walks", type=int, default=64)
    args = parser.parse_args()
    model = onnx.load(str(args.model))
    convs = quantized_convs(model)
    if not convs:
        raise SystemExit(f"{args.model}: no quantized convolution (is it a gait.quantize model?)")
    for conv in convs:
        model.graph.output.append(onnx.helper.make_tensor_value_info(conv.activation, onnx.TensorProto.UINT8, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    features = same_length_features(synthetic_walks(args.walks, seed=555))
    activations = session.run([c.activation for c in convs], {"features": features})
    outside = total = largest = affected = 0
    for conv, activation in zip(convs, activations):
        o, t, m = pair_sums_outside_int16(conv, activation)
        outside, total, largest, affected = outside + o, total + t, max(largest, m), affected + bool(o)
        if o:
            print(f"  {conv.name}: {o:,} of {t:,} pair sums outside int16, largest {m:,}")
    print(f"{args.model}: {outside:,} of {total:,} pair sums outside int16 ({outside / total:.1e}) in {affected} of "
          f"{len(convs)} quantized convolutions; largest |sum| {largest:,} (int16 holds {INT16_MAX:,})")


if __name__ == "__main__":
    main()
