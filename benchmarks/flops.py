"""Multiply-accumulates, FLOPs and parameters of an ONNX graph, counted per node from its inferred shapes.

Convention (stated in every report): MACs count Conv (grouped and depthwise included: Cin/groups × kH × kW per
output element), ConvTranspose, Gemm and MatMul; FLOPs = 2 × MACs + one operation per output element of
everything else that computes (elementwise, activations, normalisation, pooling: kernel area per output, resize,
softmax), while reshapes, concatenations and transposes count 0. Papers mostly report MACs and call them FLOPs
(insightface's "0.5 GFLOPs" for SCRFD-500M is mmcv's MAC count), so compare their figures with our MACs.
Needs the `onnx` package (the convert extra); nothing else in benchmarks/ does.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MOVES = {"Reshape", "Flatten", "Concat", "Transpose", "Squeeze", "Unsqueeze", "Shape", "Gather", "Slice",
         "Identity", "Constant", "Split", "Cast", "Expand", "Pad", "Dropout"}


@dataclass
class GraphCost:
    macs: int = 0
    other_ops: int = 0  # non-MAC operations, each counted once
    params: int = 0
    macs_by_op: Counter = field(default_factory=Counter)

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_ops


def count(path: str | Path) -> GraphCost:
    """The cost of one forward pass of the ONNX model at `path` (input shapes must be fixed, as the hub's are)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*graph.input, *graph.value_info, *graph.output]}
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    shapes.update({name: list(array.shape) for name, array in initializers.items()})
    cost = GraphCost(params=int(sum(a.size for a in initializers.values() if a.dtype.kind == "f")))
    unknown = [f"{node.op_type} → {node.output[0]}" for node in graph.node if node.op_type not in MOVES
               and (node.output[0] not in shapes or not all(d > 0 for d in shapes[node.output[0]]))]
    if unknown:
        raise ValueError(f"{path}: the shapes of {len(unknown)} nodes cannot be inferred (e.g. {unknown[0]}), so "
                         "their cost cannot be counted; count the hub ONNX that converters.onnx writes (fixed "
                         "1x3xHxW, simplified)")
    for node in graph.node:
        if node.op_type in MOVES:
            continue
        out = shapes[node.output[0]]
        out_elements = int(np.prod(out))
        macs = _macs(node, shapes, out_elements)
        if macs:
            cost.macs += macs
            cost.macs_by_op[node.op_type] += macs
        else:
            cost.other_ops += out_elements * _kernel_area(node)
    return cost


def _macs(node, shapes: dict, out_elements: int) -> int:
    if node.op_type in ("Conv", "ConvTranspose"):
        weight = shapes[node.input[1]]  # Conv: (Cout, Cin/groups, kH, kW); ConvTranspose: (Cin, Cout/groups, …)
        per_output = int(np.prod(weight[1:])) if node.op_type == "Conv" else weight[0] * int(np.prod(weight[2:]))
        return out_elements * per_output // (1 if node.op_type == "Conv" else _attribute(node, "group", 1))
    if node.op_type in ("Gemm", "MatMul"):
        a = shapes[node.input[0]]
        inner = a[0] if node.op_type == "Gemm" and _attribute(node, "transA", 0) else a[-1]
        return out_elements * inner
    return 0


def _kernel_area(node) -> int:
    if node.op_type in ("MaxPool", "AveragePool"):
        return int(np.prod(_attribute(node, "kernel_shape", [1])))
    return 1


def _attribute(node, name: str, default):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default
