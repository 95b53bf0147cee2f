"""NCNN INT8 without C++ tools: calibrate on the fp32 model, then rewrite .param/.bin for load-time quantization.

A Convolution / ConvolutionDepthWise whose param has 8=1 (int8_scale_term) reads, after its weights and bias,
per-output-channel weight scales (one per group for depthwise) and one input-blob scale, and quantizes its float
weights to int8 when the model loads (ncnn src/layer/convolution.cpp, load_model). Scales are 127 / threshold.
The same scales are also written as an ncnn2table-format table for users of the C++ tools.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.ncnn import NcnnLayer, graph_io, param_text, read_param

QUANTIZABLE = ("Convolution", "ConvolutionDepthWise")
WEIGHTLESS = ("Input", "Split", "Concat", "Permute", "Reshape", "Sigmoid", "Softmax", "Interp", "BinaryOp",
              "ReLU", "Flatten", "Crop", "Slice", "Eltwise", "Pooling", "Clip", "Noop", "UnaryOp")
FP32_FLAG = 0
METHODS = ("minmax", "percentile", "kl")


@dataclass(frozen=True)
class Int8Table:
    """Per quantized layer: weight scales (num_output or group,) and its input blob scale."""

    weight_scales: dict[str, np.ndarray]
    input_scales: dict[str, float]

    def ncnn2table_text(self) -> str:
        lines = [f"{name}_param_0 " + " ".join(f"{v:f}" for v in scales) for name, scales in self.weight_scales.items()]
        lines += [f"{name} {scale:f}" for name, scale in self.input_scales.items()]
        return "\n".join(lines) + "\n"


def split_bin(layers: list[NcnnLayer], data: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges (start, end) of each quantizable layer's weights+bias in an fp32 .bin; other weights refuse."""
    ranges, offset = {}, 0
    for layer in layers:
        if layer.type in QUANTIZABLE:
            count = layer.int_param("6")
            flag = struct.unpack_from("<I", data, offset)[0]
            if flag != FP32_FLAG:
                raise ValueError(f"layer {layer.name}: weights are not stored as float32 (flag {flag:#x}); "
                                 "convert with pnnx fp16=0 before INT8")
            size = 4 + 4 * count + (4 * layer.int_param("0") if layer.int_param("5") else 0)
            ranges[layer.name] = (offset, offset + size)
            offset += size
        elif layer.type not in WEIGHTLESS:
            raise ValueError(f"layer {layer.name} of type {layer.type}: the INT8 rewrite does not know its weights")
    if offset != len(data):
        raise ValueError(f".bin has {len(data)} bytes, the .param describes {offset}")
    return ranges


def weight_scales(layer: NcnnLayer, data: bytes, start: int) -> np.ndarray:
    """127 / max|w| per output channel (per group for depthwise), 1 where a channel is all zero."""
    weights = np.frombuffer(data, np.float32, layer.int_param("6"), start + 4)
    channels = layer.int_param("7") if layer.type == "ConvolutionDepthWise" else layer.int_param("0")
    absmax = np.abs(weights.reshape(channels, -1)).max(axis=1)
    return np.where(absmax > 0, 127.0 / np.maximum(absmax, 1e-12), 1.0).astype(np.float32)


def activation_threshold(values: np.ndarray, method: str) -> float:
    """The |x| clipping threshold of one blob's calibration values."""
    values = np.abs(values.ravel())
    if method == "minmax":
        return float(values.max())
    if method == "percentile":
        return float(np.percentile(values, 99.99))
    if method == "kl":
        return kl_threshold(values)
    raise ValueError(f"calibration method {method!r} must be one of {METHODS}")


def kl_threshold(values: np.ndarray, bins: int = 2048, levels: int = 128) -> float:
    """ncnn2table's KL method: the clip threshold whose 128-level quantized histogram diverges least."""
    top = float(values.max())
    if top == 0:
        return 0.0
    hist = np.histogram(values, bins=bins, range=(0, top))[0].astype(np.float64)
    best, best_kl = bins, np.inf
    for threshold in range(levels, bins + 1):
        p = hist[:threshold].copy()
        p[-1] += hist[threshold:].sum()
        chunks = np.array_split(hist[:threshold], levels)
        q = np.concatenate([np.where(c > 0, c.sum() / max((c > 0).sum(), 1), 0) for c in chunks])
        p, q = p / p.sum(), q / max(q.sum(), 1e-12)
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-12))))
        if kl < best_kl:
            best, best_kl = threshold, kl
    return (best + 0.5) * top / bins


def calibrate(param: Path, weights: Path, samples: np.ndarray, method: str) -> Int8Table:
    """Run the fp32 model on samples (N,3,H,W) and derive every quantizable layer's scales."""
    import ncnn

    layers = read_param(param)
    data = Path(weights).read_bytes()
    ranges = split_bin(layers, data)
    targets = [layer for layer in layers if layer.type in QUANTIZABLE]
    input_name, _ = graph_io(layers)
    collected: dict[str, list[np.ndarray]] = {layer.name: [] for layer in targets}
    net = ncnn.Net()
    net.opt.use_int8_inference = False
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise ValueError(f"{param}: ncnn cannot load the fp32 model to calibrate it")
    for sample in samples:
        with net.create_extractor() as extractor:
            extractor.input(input_name, ncnn.Mat(np.ascontiguousarray(sample)))
            for layer in targets:
                collected[layer.name].append(np.array(extractor.extract(layer.bottoms[0])[1]))
    input_scales = {}
    for layer in targets:
        threshold = activation_threshold(np.concatenate([v.ravel() for v in collected[layer.name]]), method)
        input_scales[layer.name] = 127.0 / threshold if threshold > 0 else 1.0
    return Int8Table({layer.name: weight_scales(layer, data, ranges[layer.name][0]) for layer in targets},
                     input_scales)


def rewrite_int8(param: Path, weights: Path, table: Int8Table, out_param: Path, out_weights: Path) -> None:
    """Write a .param/.bin pair that stock ncnn loads as INT8 (weights stay float in the file)."""
    layers = read_param(param)
    data = Path(weights).read_bytes()
    ranges = split_bin(layers, data)
    chunks, cursor = [], 0
    for layer in layers:
        if layer.name not in table.input_scales:
            continue
        start, end = ranges[layer.name]
        chunks.append(data[cursor:end])
        chunks.append(table.weight_scales[layer.name].astype("<f4").tobytes())
        chunks.append(np.float32(table.input_scales[layer.name]).astype("<f4").tobytes())
        layer.params["8"] = "1"
        cursor = end
    chunks.append(data[cursor:])
    Path(out_weights).write_bytes(b"".join(chunks))
    Path(out_param).write_text(param_text(layers))
