"""Pruned weights: resize a model's convolutions and norms to the channel counts a state dict holds.

A structurally pruned model (train_light.prune) is its family's model with fewer channels inside; the forward
code never names a width, so resizing the modules to the file's shapes rebuilds it exactly.
"""
from __future__ import annotations

import torch
from torch import nn


def fit_widths(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Resize every Conv2d, BatchNorm2d and GroupNorm of `model` whose tensors in `state` have other channel
    counts (kernel sizes must agree); returns the names of the resized modules."""
    resized = []
    for name, module in model.named_modules():
        weight = state.get(f"{name}.weight")
        if (not isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm)) or weight is None
                or weight.shape == module.weight.shape):
            continue
        if isinstance(module, nn.Conv2d):
            if tuple(weight.shape[2:]) != tuple(module.weight.shape[2:]):
                raise ValueError(f"{name}: kernel {tuple(weight.shape[2:])} in the weights, "
                                 f"{tuple(module.weight.shape[2:])} in the model")
            depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
            module.out_channels = weight.shape[0]
            module.in_channels = weight.shape[0] if depthwise else weight.shape[1] * module.groups
            module.groups = weight.shape[0] if depthwise else module.groups
            module.weight = nn.Parameter(torch.empty_like(weight))
            if module.bias is not None:
                module.bias = nn.Parameter(torch.empty(weight.shape[0]))
        elif isinstance(module, nn.BatchNorm2d):
            channels = weight.shape[0]
            module.num_features = channels
            module.weight, module.bias = nn.Parameter(torch.empty(channels)), nn.Parameter(torch.empty(channels))
            module.running_mean, module.running_var = torch.zeros(channels), torch.ones(channels)
        else:
            module.num_channels = weight.shape[0]
            module.weight = nn.Parameter(torch.empty(weight.shape[0]))
            module.bias = nn.Parameter(torch.empty(weight.shape[0]))
        resized.append(name)
    return resized
