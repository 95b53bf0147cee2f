"""Quantization-aware training: the INT8 arithmetic of a backend simulated in the float forward pass.

Every convolution's BatchNorm is folded into it as the exporters fold it (the BatchNorm stays, as an identity
with the folded bias, so checkpoints keep the model's own layout), its folded weights are fake-quantized per
output channel, symmetric int8, and the network input and every convolution group's output (after its ReLU,
where the runtimes fuse it) per tensor with min-max ranges, as the converters calibrate them. Gradients pass
straight through inside the range. The trained model is a plain float checkpoint: the converters quantize it
as before and their calibration lands on ranges the weights were trained for.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Scheme:
    """How one backend rounds and stores INT8 activations (weights are per-channel symmetric ±127 everywhere)."""

    name: str
    symmetric: bool  # activations: zero point 0 and ±127 (ncnn), or asymmetric −128..127 with a zero point
    half_even: bool  # rounding of x/scale: half to even (QuantizeLinear, TFLite's QUANTIZE) or half away

    def activation_grid(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """(scale, zero point, qmin, qmax) for a tensor observed in [low, high]; the range always holds 0."""
        low, high = torch.clamp(low, max=0.0), torch.clamp(high, min=0.0)
        if self.symmetric:
            return torch.clamp(torch.maximum(-low, high), min=1e-8) / 127, torch.zeros(()), -127, 127
        scale = torch.clamp(high - low, min=1e-8) / 255
        zero_point = torch.clamp(self.round(-128 - low / scale), -128, 127)
        return scale, zero_point, -128, 127

    def round(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x) if self.half_even else torch.sign(x) * torch.floor(x.abs() + 0.5)


SCHEMES = {
    "tflite": Scheme("tflite", symmetric=False, half_even=True),  # TFLite int8: asymmetric activations
    "onnxruntime": Scheme("onnxruntime", symmetric=False, half_even=True),  # QDQ QInt8, QuantizeLinear
    "ncnn": Scheme("ncnn", symmetric=True, half_even=False),  # ncnn int8: symmetric per-tensor scales
}


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
                  scheme: Scheme) -> torch.Tensor:
    """x quantized to the int grid and back; the gradient is 1 where x is inside the range, 0 where clipped."""
    q = scheme.round(x / scale) + zero_point
    inside = (q >= qmin) & (q <= qmax)
    y = (torch.clamp(q, qmin, qmax) - zero_point) * scale
    return torch.where(inside, x + (y - x).detach(), y.detach())


def fake_quantize_weight(weight: torch.Tensor, scheme: Scheme) -> torch.Tensor:
    """Per-output-channel symmetric int8 (scale = max |w| / 127), as every converter stores conv weights."""
    absmax = weight.detach().abs().amax(dim=tuple(range(1, weight.dim())), keepdim=True)
    scale = torch.clamp(absmax, min=1e-8) / 127
    return fake_quantize(weight, scale, torch.zeros(()), -127, 127, scheme)


class QatConv2d(nn.Conv2d):
    """A Conv2d whose weights are fake-quantized while training (the instance's class is swapped; no new keys)."""

    scheme: Scheme

    def forward(self, x):
        weight = fake_quantize_weight(self.weight, self.scheme) if self.training else self.weight
        return self._conv_forward(x, weight, self.bias)


class FoldedBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm folded into its convolution: identity scale and statistics, frozen in eval mode for good."""

    def train(self, mode: bool = True):
        return super().train(False)


class RangeObserver(nn.Module):
    """The running min and max of one tensor (min-max calibration over everything trained on)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("low", torch.tensor(float("inf")))
        self.register_buffer("high", torch.tensor(float("-inf")))

    def __call__(self, x: torch.Tensor, scheme: Scheme) -> torch.Tensor:
        with torch.no_grad():
            self.low.copy_(torch.minimum(self.low, x.min()))
            self.high.copy_(torch.maximum(self.high, x.max()))
        return fake_quantize(x, *scheme.activation_grid(self.low, self.high), scheme)


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Move bn's affine map into conv's weights and bn's bias, leaving bn an identity (the function unchanged)."""
    with torch.no_grad():
        factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(factor.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.bias)
        bn.bias.copy_((bias - bn.running_mean) * factor + bn.bias)
        if conv.bias is not None:
            conv.bias.zero_()
        bn.weight.fill_(1.0)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
    bn.weight.requires_grad_(False)
    bn.__class__ = FoldedBatchNorm2d


def conv_groups(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None, nn.Module]]:
    """Each convolution with its BatchNorm (if the next sibling) and the module whose output the runtimes store
    (its ReLU if one follows), in the order the modules are registered."""
    groups = []
    for parent in model.modules():
        children = list(parent.children())
        for i, child in enumerate(children):
            if type(child) not in (nn.Conv2d, QatConv2d):
                continue
            bn, last = None, child
            rest = children[i + 1:i + 3]
            if rest and isinstance(rest[0], nn.BatchNorm2d):
                bn, last, rest = rest[0], rest[0], rest[1:]
            if rest and isinstance(rest[0], nn.ReLU):
                last = rest[0]
            groups.append((child, bn, last))
    return groups


class Qat(nn.Module):
    """The fake quantizers of one prepared model; its state (the observed ranges) resumes a QAT run."""

    def __init__(self, model: nn.Module, scheme: Scheme):
        super().__init__()
        self.scheme = scheme
        groups = conv_groups(model)
        if not groups:
            raise ValueError(f"{type(model).__name__} has no Conv2d to quantize")
        self.observers = nn.ModuleList(RangeObserver() for _ in range(len(groups) + 1))
        for index, (conv, bn, last) in enumerate(groups, start=1):
            if bn is not None:
                fold_batchnorm(conv, bn)
            conv.__class__ = QatConv2d
            conv.scheme = scheme
            last.register_forward_hook(self._output_hook(conv, self.observers[index]))
        groups[0][0].register_forward_pre_hook(self._input_hook(groups[0][0], self.observers[0]))

    def _output_hook(self, conv: nn.Module, observer: RangeObserver):
        def hook(_module, _inputs, output):
            return observer(output, self.scheme) if conv.training else output
        return hook

    def _input_hook(self, conv: nn.Module, observer: RangeObserver):
        def hook(_module, inputs):
            return (observer(inputs[0], self.scheme), *inputs[1:]) if conv.training else None
        return hook


def prepare_qat(model: nn.Module, scheme: str) -> Qat:
    """Fold the BatchNorms of `model` and fake-quantize it (in training mode; eval mode runs it in float)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown QAT scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    return Qat(model, SCHEMES[scheme])
