"""Convert a float TFLite model (the MediaPipe BlazePose ones) to ONNX.

Why our own: `tflite2onnx` stops on these models (no DENSIFY, a PAD bug), and `tf2onnx`
needs all of TensorFlow. BlazePose uses eleven TFLite ops, all plain, so the mapping is
short. Constant tensors produced by DEQUANTIZE and DENSIFY (fp16 and sparse weights) are
not re-implemented: LiteRT's own kernels compute them once and we read the result, stored
back as fp16 (they were fp16) behind a Cast.

Layout: TFLite tensors are NHWC. Every tensor keeps its TFLite layout in the ONNX graph;
ops that ONNX defines on NCHW (Conv, MaxPool, Resize, DepthToSpace) are wrapped in a pair of
Transposes, which ONNX Runtime's layout optimiser cancels between neighbours.

Build-time only: needs `tflite` (the flatbuffer schema) and `ai-edge-litert`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]
_TFLITE_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


def _op_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {value: name for name, value in vars(BuiltinOperator).items() if not name.startswith("_")}


def _options(op, cls):
    table = op.BuiltinOptions()
    options = cls()
    if table is not None:
        options.Init(table.Bytes, table.Pos)
    return options


def _folded_constants(path: Path, producers: set[int]) -> dict[int, np.ndarray]:
    """Values of the tensors DEQUANTIZE and DENSIFY produce, computed by LiteRT itself."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=np.float32))
    interpreter.invoke()
    return {index: np.array(interpreter.get_tensor(index)) for index in producers}


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}__{self._count}"

    def constant(self, name: str, value: np.ndarray) -> str:
        if value.dtype in (np.float32, np.float16):
            # Weights were fp16 in the TFLite file: keep them fp16, cast once at load.
            half = self.fresh(name + "_fp16")
            self.initializers.append(numpy_helper.from_array(value.astype(np.float16), half))
            self.nodes.append(helper.make_node("Cast", [half], [name], to=TensorProto.FLOAT))
        else:
            self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        return output

    def nchw(self, op_type: str, source: str, output: str, inputs: list[str] | None = None, **attrs) -> str:
        """An NCHW-only ONNX op applied to an NHWC tensor."""
        inner = self.node("Transpose", [source], perm=TO_NCHW)
        result = self.node(op_type, [inner, *(inputs or [])], **attrs)
        return self.node("Transpose", [result], output, perm=TO_NHWC)

    def activation(self, code: int, source: str, output: str) -> str:
        if code == 0:
            return self.node("Identity", [source], output)
        if code == 1:
            return self.node("Relu", [source], output)
        if code == 3:
            low = self.constant(self.fresh("zero"), np.array(0.0, np.float32))
            high = self.constant(self.fresh("six"), np.array(6.0, np.float32))
            return self.node("Clip", [source, low, high], output)
        raise NotImplementedError(f"fused activation {code}")


def convert(path: Path) -> onnx.ModelProto:
    import tflite

    buffer = path.read_bytes()
    model = tflite.Model.GetRootAsModel(buffer, 0)
    graph_tf = model.Subgraphs(0)
    names = _op_names()

    def op_name(op) -> str:
        code = model.OperatorCodes(op.OpcodeIndex())
        return names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]

    def tensor_name(index: int) -> str:
        return graph_tf.Tensors(index).Name().decode()

    def stored(index: int) -> np.ndarray | None:
        tensor = graph_tf.Tensors(index)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data is None or len(data) == 0:
            return None
        return np.frombuffer(data.tobytes(), dtype=_TFLITE_DTYPES[tensor.Type()]).reshape(tensor.ShapeAsNumpy())

    operators = [graph_tf.Operators(i) for i in range(graph_tf.OperatorsLength())]
    folded_ops = {"DEQUANTIZE", "DENSIFY"}
    folded = _folded_constants(path, {op.Outputs(0) for op in operators if op_name(op) in folded_ops})
    constants: dict[int, np.ndarray] = dict(folded)

    def value(index: int) -> np.ndarray:
        if index not in constants:
            array = stored(index)
            if array is None:
                raise ValueError(f"tensor {tensor_name(index)} is not constant")
            constants[index] = array
        return constants[index]

    graph = _Graph()
    emitted_names: set[str] = set()

    def constant_input(index: int, array: np.ndarray | None = None) -> str:
        name = tensor_name(index) + ("" if array is None else "_onnx")
        if name not in emitted_names:
            graph.constant(name, value(index) if array is None else array)
            emitted_names.add(name)
        return name

    for op in operators:
        kind = op_name(op)
        if kind in folded_ops:
            continue
        ins = [op.Inputs(i) for i in range(op.InputsLength())]
        out = tensor_name(op.Outputs(0))
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weight = value(ins[1])
            bias = constant_input(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
            if kind == "CONV_2D":
                from tflite.Conv2DOptions import Conv2DOptions

                opts = _options(op, Conv2DOptions)
                onnx_weight = weight.transpose(0, 3, 1, 2)  # O,KH,KW,I -> O,I,KH,KW
                group = 1
            else:
                from tflite.DepthwiseConv2DOptions import DepthwiseConv2DOptions

                opts = _options(op, DepthwiseConv2DOptions)
                onnx_weight = weight.transpose(3, 0, 1, 2)  # 1,KH,KW,C -> C,1,KH,KW
                group = weight.shape[3] // opts.DepthMultiplier()
            inputs = [constant_input(ins[1], onnx_weight)] + ([bias] if bias else [])
            conv = graph.nchw(
                "Conv",
                tensor_name(ins[0]),
                graph.fresh(out + "_linear"),
                inputs,
                auto_pad="SAME_UPPER" if opts.Padding() == 0 else "VALID",
                strides=[opts.StrideH(), opts.StrideW()],
                dilations=[opts.DilationHFactor(), opts.DilationWFactor()],
                group=group,
            )
            graph.activation(opts.FusedActivationFunction(), conv, out)
        elif kind == "ADD":
            from tflite.AddOptions import AddOptions

            operands = [constant_input(i) if stored(i) is not None or i in constants else tensor_name(i) for i in ins]
            added = graph.node("Add", operands)
            graph.activation(_options(op, AddOptions).FusedActivationFunction(), added, out)
        elif kind == "PAD":
            pads = value(ins[1]).astype(np.int64)
            onnx_pads = np.concatenate([pads[:, 0], pads[:, 1]])
            graph.node("Pad", [tensor_name(ins[0]), constant_input(ins[1], onnx_pads)], out, mode="constant")
        elif kind == "MAX_POOL_2D":
            from tflite.Pool2DOptions import Pool2DOptions

            opts = _options(op, Pool2DOptions)
            pooled = graph.nchw(
                "MaxPool",
                tensor_name(ins[0]),
                graph.fresh(out + "_linear"),
                kernel_shape=[opts.FilterHeight(), opts.FilterWidth()],
                strides=[opts.StrideH(), opts.StrideW()],
                auto_pad="SAME_UPPER" if opts.Padding() == 0 else "VALID",
            )
            graph.activation(opts.FusedActivationFunction(), pooled, out)
        elif kind == "RESIZE_BILINEAR":
            from tflite.ResizeBilinearOptions import ResizeBilinearOptions

            opts = _options(op, ResizeBilinearOptions)
            size = value(ins[1]).astype(np.int64)
            shape = graph_tf.Tensors(ins[0]).ShapeAsNumpy()
            sizes = np.array([shape[0], shape[3], size[0], size[1]], np.int64)
            mode = "half_pixel" if opts.HalfPixelCenters() else "align_corners" if opts.AlignCorners() else "asymmetric"
            sizes_name = constant_input(ins[1], sizes)
            graph.nchw(
                "Resize", tensor_name(ins[0]), out, ["", "", sizes_name], mode="linear", coordinate_transformation_mode=mode
            )
        elif kind == "DEPTH_TO_SPACE":
            from tflite.DepthToSpaceOptions import DepthToSpaceOptions

            block = _options(op, DepthToSpaceOptions).BlockSize()
            graph.nchw("DepthToSpace", tensor_name(ins[0]), out, blocksize=block, mode="DCR")
        elif kind == "RESHAPE":
            shape = graph_tf.Tensors(op.Outputs(0)).ShapeAsNumpy().astype(np.int64)
            graph.node("Reshape", [tensor_name(ins[0]), constant_input(op.Outputs(0), shape)], out)
        elif kind == "CONCATENATION":
            from tflite.ConcatenationOptions import ConcatenationOptions

            opts = _options(op, ConcatenationOptions)
            joined = graph.node("Concat", [tensor_name(i) for i in ins], axis=opts.Axis())
            graph.activation(opts.FusedActivationFunction(), joined, out)
        elif kind == "LOGISTIC":
            graph.node("Sigmoid", [tensor_name(ins[0])], out)
        else:
            raise NotImplementedError(f"TFLite op {kind}")

    def value_info(index: int) -> onnx.ValueInfoProto:
        shape = [int(d) for d in graph_tf.Tensors(index).ShapeAsNumpy()]
        return helper.make_tensor_value_info(tensor_name(index), TensorProto.FLOAT, shape)

    inputs = [value_info(graph_tf.Inputs(i)) for i in range(graph_tf.InputsLength())]
    outputs = [value_info(graph_tf.Outputs(i)) for i in range(graph_tf.OutputsLength())]
    onnx_graph = helper.make_graph(graph.nodes, path.stem, inputs, outputs, graph.initializers)
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="gaitpay-tflite2onnx")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    return onnx_model
