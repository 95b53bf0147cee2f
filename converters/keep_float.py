"""--keep-float: convolutions an INT8 artifact leaves in float, named once for every backend.

A name is a Conv node of the hub ONNX (`python -m converters.keep_float <out>/onnx` lists them). Each backend
finds its own layer for a name by the weights (count, Σw, Σw²: the same whatever the layout), so one name means
the same convolution in TFLite, NCNN and ONNX Runtime although each tool renames its layers.
`auto` starts with none and, while the INT8 artifact fails verification, keeps more convolutions in float from
the input on (1, 2, 4, ... up to AUTO_MAX_LAYERS), converting again each time.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from runtimes.cli import run_cli

NONE, AUTO, STEM = "none", "auto", "stem"
AUTO_MAX_LAYERS = 16  # beyond this the file is mostly float: use fp16 instead
Fingerprint = tuple[int, float, float]


def parse_keep_float(text: str) -> str | tuple[str, ...]:
    """`none`, `auto`, `stem` or a comma-separated tuple of hub Conv names."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("--keep-float needs none, auto, stem or Conv node names")
    if len(names) == 1 and names[0] in (NONE, AUTO, STEM):
        return names[0]
    return names


def fingerprint(weights: np.ndarray) -> Fingerprint:
    w = np.asarray(weights, np.float64).ravel()
    return w.size, float(w.sum()), float((w * w).sum())


def same_weights(a: Fingerprint, b: Fingerprint) -> bool:
    """Equal size and sums within float32 summation error (layouts sum in different orders)."""
    return a[0] == b[0] and all(abs(x - y) <= 1e-4 * max(1.0, abs(x), abs(y)) for x, y in zip(a[1:], b[1:]))


def conv_weights(model: onnx.ModelProto) -> dict[str, Fingerprint]:
    """Every Conv node with a constant weight, by name, in graph order."""
    initializers = {i.name: i for i in model.graph.initializer}
    return {node.name: fingerprint(numpy_helper.to_array(initializers[node.input[1]]))
            for node in model.graph.node if node.op_type == "Conv" and node.input[1] in initializers}


def check_names(names: Iterable[str], model: onnx.ModelProto) -> dict[str, Fingerprint]:
    """The fingerprints of `names`; ValueError naming the unknown ones and the valid choices."""
    convs = conv_weights(model)
    unknown = [n for n in names if n not in convs]
    if unknown:
        raise ValueError(f"--keep-float: {unknown} are not Conv nodes of the hub ONNX; its convolutions are "
                         f"{', '.join(convs)}")
    return {n: convs[n] for n in names}


def matching_name(kept: dict[str, Fingerprint], weights: np.ndarray) -> str | None:
    """The kept hub Conv whose weights these are, or None."""
    wanted = fingerprint(weights)
    return next((name for name, fp in kept.items() if same_weights(fp, wanted)), None)


def stem_convs(model: onnx.ModelProto) -> tuple[str, ...]:
    """The convolutions reading a tensor at least half the input's height: the first few, full- and half-resolution
    layers (4 in SCRFD-500M and both Ultra-Light models), where INT8 costs the most accuracy per MAC."""
    inferred = shape_inference.infer_shapes(model)
    heights = {v.name: v.type.tensor_type.shape.dim[2].dim_value
               for v in [*inferred.graph.input, *inferred.graph.value_info] if len(v.type.tensor_type.shape.dim) == 4}
    input_height = heights[inferred.graph.input[0].name]
    return tuple(node.name for node in inferred.graph.node
                 if node.op_type == "Conv" and 2 * heights.get(node.input[0], 0) >= input_height)


def producing_convs(model: onnx.ModelProto, output: str) -> list[str]:
    """The Conv nodes nearest to `output`, walking back through the reshapes, activations and concats between."""
    producer = {o: node for node in model.graph.node for o in node.output}
    found, pending, seen = [], [output], set()
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.append(node.name)
        else:
            pending.extend(node.input)
    return sorted(found)


SCORE_ACTIVATIONS = {"Softmax", "Sigmoid", "SOFTMAX", "LOGISTIC"}  # ONNX and TFLite op names
MOVES = {"Reshape", "Transpose", "Concat", "Flatten", "Squeeze", "Unsqueeze", "Identity", "RESHAPE", "TRANSPOSE",
         "CONCATENATION", "SQUEEZE", "EXPAND_DIMS", "DEQUANTIZE", "QUANTIZE"}  # ops that only move values
Op = tuple[str, str, list[str], list[str]]  # name, type, input tensors, output tensors


CONVOLUTIONS = {"Conv", "CONV_2D", "DEPTHWISE_CONV_2D"}


def output_tail(ops: list[Op], outputs: set[str]) -> list[str]:
    """The ops after the last computing layers (reshapes, transposes, concatenations, the score activations
    Softmax/Sigmoid, from which only more of them lead to the graph outputs) and the score convolutions that
    feed those activations. INT8 artifacts keep them in float unless --int8-tail.

    TFLite and ONNX Runtime store a softmax's or sigmoid's int8 output in steps of 1/256, which ties the scores
    of every confident detection: on the default model at 640x640 that grid cost 1.07 / 0.71 / 0.43 AP Easy /
    Medium / Hard (simulated in PyTorch, 200 val images), and keeping the tail float took its TFLite INT8 from
    −1.02 / −0.71 / −0.53 to −0.18 / −0.24 / −0.32 (578 images). The score convolutions' int8 outputs are the
    same grid one step earlier, in logits: where heads are concatenated they share one range (the QAT default
    model's TFLite file: steps of 0.067 over −10..7), and computing them in float took that file at 480x640 from
    −0.23 / −0.07 / −0.30 to −0.07 / +0.11 / +0.04 (issue 20). The tail costs time: the shipped 480x640 TFLite
    INT8 forward went from 2.95 to 3.34 ms at 1 thread on this x86 VM without the score convolutions (+13%); they add
    3-7% more (interleaved timing in one pinned process).
    """
    readers: dict[str, list[Op]] = {}
    for op in ops:
        for tensor in op[2]:
            readers.setdefault(tensor, []).append(op)
    tail_ops = MOVES | SCORE_ACTIVATIONS

    def tail_only(tensor: str, seen: frozenset[str]) -> bool:
        after = readers.get(tensor, [])
        return all(op[1] in tail_ops and op[0] not in seen and all(tail_only(t, seen | {op[0]}) for t in op[3])
                   for op in after) if after else tensor in outputs

    def reaches_score(tensor: str) -> bool:
        """Through value-moving ops only, to a Softmax/Sigmoid."""
        after = readers.get(tensor, [])
        return any(op[1] in SCORE_ACTIVATIONS or (op[1] in MOVES and any(map(reaches_score, op[3]))) for op in after)

    tail = [op[0] for op in ops if op[1] in tail_ops and all(tail_only(t, frozenset({op[0]})) for t in op[3])]
    scores = [op[0] for op in ops if op[1] in CONVOLUTIONS and all(map(reaches_score, op[3]))
              and all(tail_only(t, frozenset({op[0]})) for t in op[3])]
    return scores + tail


def onnx_ops(model: onnx.ModelProto) -> tuple[list[Op], set[str]]:
    """The ONNX graph as output_tail takes it."""
    return ([(n.name, n.op_type, list(n.input), list(n.output)) for n in model.graph.node],
            {o.name for o in model.graph.output})


def next_auto_layers(model: onnx.ModelProto, kept: tuple[str, ...]) -> tuple[str, ...]:
    """The next convolutions `auto` keeps in float: twice as many as now (1, 2, 4, ...), from the input on.

    Measured on SCRFD-500M-KPS (ncnn, one layer in float at a time, 60 layers): the four that raised the score
    outputs' SQNR most were among the first five; the nine head convolutions that produce the outputs, all in
    float, moved the score shift by 0.001. So the first layers come first, not the heads of the worst output.
    """
    order = [name for name in conv_weights(model) if name not in kept]
    return tuple(order[:max(1, len(kept))])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m converters.keep_float",
                                description="List the hub ONNX's convolutions: the names --keep-float takes.")
    p.add_argument("hub", type=Path, help="the hub ONNX (file, or the <out>/onnx folder)")
    args = p.parse_args(argv)
    path = args.hub / "model.onnx" if args.hub.is_dir() else args.hub
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such hub ONNX (converters write it to <out>/onnx/model.onnx)")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf's DecodeError and others for a damaged file
        raise ValueError(f"{path}: cannot be read as ONNX ({type(err).__name__})") from err
    outputs = {conv: o.name for o in model.graph.output for conv in producing_convs(model, o.name)}
    for name, (count, _, _) in conv_weights(model).items():
        print(f"{name:<16} {count:>8} weights{'  → ' + outputs[name] if name in outputs else ''}")
    return 0


if __name__ == "__main__":
    run_cli(main)
