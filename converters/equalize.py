"""Activation equalization before INT8: give every channel feeding a depthwise convolution the same range.

Light detectors (SCRFD, Ultra-Light) alternate conv → ReLU → depthwise conv. INT8 activations use one scale per
tensor, so a channel whose values span 0…0.3 next to one spanning 0…12 keeps a handful of levels. Scaling the
producer's output channel i by s_i (weights and bias, ReLU commutes with s_i > 0) and the depthwise consumer's
weights of channel i by 1/s_i leaves the float model's outputs unchanged, while each channel's range reaches the
tensor's maximum. Per-channel weight quantization of the depthwise conv is untouched by the 1/s_i factor (one
scale per channel), so only the activations change. The ranges come from the calibration images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

MAX_SCALE = 64.0  # bounds the gain of a near-dead channel (its range tiny but not zero)


@dataclass(frozen=True)
class Pair:
    """A producer Conv whose output (through an optional Relu) feeds only a depthwise Conv."""

    producer: onnx.NodeProto
    consumer: onnx.NodeProto
    activation: str  # the tensor INT8 quantizes: the Relu's output (or the producer's, without a Relu)


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def equalizable_pairs(model: onnx.ModelProto) -> list[Pair]:
    """Conv (→ Relu) → depthwise Conv chains where nothing else reads the intermediate tensors."""
    graph, weights = model.graph, {i.name for i in model.graph.initializer}
    users, outputs = _consumers(graph), {o.name for o in graph.output}
    pairs = []
    for node in graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        tensor, next_users = node.output[0], users.get(node.output[0], [])
        if len(next_users) == 1 and next_users[0].op_type == "Relu" and tensor not in outputs:
            tensor, next_users = next_users[0].output[0], users.get(next_users[0].output[0], [])
        if len(next_users) != 1 or tensor in outputs:
            continue
        consumer = next_users[0]
        channels = _initializer(model, node.input[1]).shape[0]
        if (consumer.op_type == "Conv" and consumer.input[0] == tensor and _group(consumer) == channels > 1
                and consumer.input[1] in weights):
            pairs.append(Pair(node, consumer, tensor))
    return pairs


def _initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == name)


def _set_initializer(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
            return
    raise KeyError(name)


def channel_ranges(model: onnx.ModelProto, tensors: list[str], blobs: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel max |value| of `tensors` over the calibration blobs (N,3,H,W), with onnxruntime."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in tensors)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    ranges = {t: 0.0 for t in tensors}
    for blob in blobs:
        for name, value in zip(tensors, session.run(tensors, {input_name: blob[None]})):
            ranges[name] = np.maximum(ranges[name], np.abs(value[0]).reshape(value.shape[1], -1).max(axis=1))
    return ranges


def equalize(model: onnx.ModelProto, blobs: np.ndarray) -> tuple[onnx.ModelProto, list[str]]:
    """A float-equivalent copy of `model` with equalized depthwise inputs, and the producer convs it rescaled."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    pairs = equalizable_pairs(result)
    if not pairs:
        return result, []
    ranges = channel_ranges(result, [p.activation for p in pairs], blobs)
    for pair in pairs:
        r = ranges[pair.activation]
        scale = np.where(r > 0, np.clip(r.max() / np.maximum(r, 1e-12), 1.0, MAX_SCALE), 1.0)
        w = _initializer(result, pair.producer.input[1])
        _set_initializer(result, pair.producer.input[1], w * scale.reshape(-1, 1, 1, 1))
        if len(pair.producer.input) > 2:
            _set_initializer(result, pair.producer.input[2], _initializer(result, pair.producer.input[2]) * scale)
        dw = _initializer(result, pair.consumer.input[1])
        _set_initializer(result, pair.consumer.input[1], dw / scale.reshape(-1, 1, 1, 1))
    return result, [p.producer.name for p in pairs]
