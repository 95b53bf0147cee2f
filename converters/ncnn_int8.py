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

from converters.keep_float import Fingerprint, matching_name
from runtimes.backends.ncnn import NcnnLayer, graph_io, param_text, read_param

QUANTIZABLE = ("Convolution", "ConvolutionDepthWise")
WEIGHTLESS = ("Input", "Split", "Concat", "Permute", "Reshape", "Sigmoid", "Softmax", "Interp", "BinaryOp",
              "ReLU", "Flatten", "Crop", "Slice", "Eltwise", "Pooling", "Clip", "Noop", "UnaryOp")
FP32_FLAG = 0
METHODS = ("minmax", "percentile", "kl")
PERCENTILE = 99.99
KL_BINS = 2048  # ncnn2table's histogram
HIST_BINS = 4 * KL_BINS  # finer for the percentile; KL sums groups of four


@dataclass(frozen=True)
class Int8Table:
    """Per quantized layer: weight scales (num_output or group,) and its input blob scale."""

    weight_scales: dict[str, np.ndarray]
    input_scales: dict[str, float]

    def without(self, layers: set[str]) -> Int8Table:
        """The same scales minus `layers`, which the rewrite then leaves in float."""
        return Int8Table({k: v for k, v in self.weight_scales.items() if k not in layers},
                         {k: v for k, v in self.input_scales.items() if k not in layers})

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


def float_layers(param: Path, weights: Path, kept: dict[str, Fingerprint]) -> set[str]:
    """The ncnn layers holding the kept hub convolutions, found by their weights; all must be found."""
    layers = {layer.name: layer for layer in read_param(param)}
    data = Path(weights).read_bytes()
    found = {name for name, (start, _) in split_bin(list(layers.values()), data).items()
             if matching_name(kept, np.frombuffer(data, np.float32, layers[name].int_param("6"), start + 4))}
    if len(found) != len(kept):
        raise RuntimeError(f"--keep-float: found {len(found)} of the {len(kept)} convolutions in the ncnn model")
    return found


def weight_scales(layer: NcnnLayer, data: bytes, start: int) -> np.ndarray:
    """127 / max|w| per output channel (per group for depthwise), 1 where a channel is all zero."""
    weights = np.frombuffer(data, np.float32, layer.int_param("6"), start + 4)
    channels = layer.int_param("7") if layer.type == "ConvolutionDepthWise" else layer.int_param("0")
    absmax = np.abs(weights.reshape(channels, -1)).max(axis=1)
    return np.where(absmax > 0, 127.0 / np.maximum(absmax, 1e-12), 1.0).astype(np.float32)


def activation_threshold(hist: np.ndarray, top: float, method: str, zeros: int = 0) -> float:
    """The |x| clipping threshold of one blob from the histogram of its non-zero |values| over (0, top] and the
    count of its zeros. KL ignores the zeros, as ncnn2table does: after a ReLU they are most of the values and
    would pull the threshold towards 0."""
    if method == "minmax" or top == 0:
        return top
    if method == "percentile":
        cumulative = (zeros + np.cumsum(hist)) / (zeros + hist.sum())
        return float(np.searchsorted(cumulative, PERCENTILE / 100) + 1) * top / len(hist)
    if method == "kl":
        return kl_threshold(hist.reshape(KL_BINS, -1).sum(axis=1), top)
    raise ValueError(f"calibration method {method!r} must be one of {METHODS}")


def kl_threshold(hist: np.ndarray, top: float, levels: int = 128) -> float:
    """ncnn2table's KL method: the clip threshold whose 128-level quantized histogram diverges least."""
    hist = hist.astype(np.float64)
    bins = len(hist)
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
    """Run the fp32 model on samples (N,3,H,W) and derive every quantizable layer's scales.

    Two passes as ncnn2table does (the max of each blob, then the histogram of |x| up to it), so memory does
    not grow with the number of calibration images; min-max needs only the first.
    """
    import ncnn

    if method not in METHODS:
        raise ValueError(f"calibration method {method!r} must be one of {METHODS}")
    layers = read_param(param)
    data = Path(weights).read_bytes()
    ranges = split_bin(layers, data)
    targets = [layer for layer in layers if layer.type in QUANTIZABLE]
    input_name, _ = graph_io(layers)
    net = ncnn.Net()
    net.opt.use_int8_inference = False
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise ValueError(f"{param}: ncnn cannot load the fp32 model to calibrate it")

    def blobs():
        for sample in samples:
            with net.create_extractor() as extractor:
                extractor.input(input_name, ncnn.Mat(np.ascontiguousarray(sample)))
                yield {layer.name: np.abs(np.array(extractor.extract(layer.bottoms[0])[1])) for layer in targets}

    top = {layer.name: 0.0 for layer in targets}
    for values in blobs():
        top = {name: max(top[name], float(v.max())) for name, v in values.items()}
    hists, zeros = {name: np.zeros(HIST_BINS) for name in top}, dict.fromkeys(top, 0)
    if method != "minmax":
        for values in blobs():
            for name, v in values.items():
                nonzero = v[v > 0]
                zeros[name] += v.size - nonzero.size
                hists[name] += np.histogram(nonzero, bins=HIST_BINS, range=(0, top[name] or 1.0))[0]
    thresholds = {name: activation_threshold(hists[name], top[name], method, zeros[name]) for name in top}
    return Int8Table({layer.name: weight_scales(layer, data, ranges[layer.name][0]) for layer in targets},
                     {name: 127.0 / t if t > 0 else 1.0 for name, t in thresholds.items()})


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
