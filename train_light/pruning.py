"""Structured pruning: remove whole channels that the runtimes then never compute.

The model's graph (torch.fx) says which channels must go together: a channel made by a convolution lives on
through its BatchNorm, ReLUs and depthwise convolutions until convolutions read it (all of them: a feature map
shared by several heads is pruned for all at once). Channels that reach anything else (a residual add, a
concatenation, the outputs) are left whole. Within a group the channels with the smallest L1 norm of the
producing filter, after folding its BatchNorm's scale, go first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn

from train_light.engine import RawOutputs

CHANNEL_MULTIPLE = 8  # kept channels per group: a multiple of the runtimes' SIMD packing (ncnn packs 4 or 8)


@dataclass
class ChannelGroup:
    """Channels made by `producer`, carried by `carriers` (norms, depthwise convs), read by `consumers`."""

    producer: str
    channels: int
    carriers: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)


def _depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels \
        == module.out_channels


CHANNELWISE = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6)
SHAPE_READS = ("getattr",)  # x.shape feeding a reshape or an interpolation size: reads no channel


def channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """The prunable channel groups of `model` (one per convolution whose every channel path ends in convs)."""
    graph = fx.symbolic_trace(RawOutputs(model))
    modules = dict(graph.named_modules())
    groups = []
    for node in graph.graph.nodes:
        module = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(module, nn.Conv2d) or module.groups != 1:
            continue
        group, frontier, prunable = ChannelGroup(_name(node), module.out_channels), [node], True
        while frontier and prunable:
            for user in frontier.pop().users:
                target = modules.get(user.target) if user.op == "call_module" else None
                if isinstance(target, CHANNELWISE) or _depthwise(target):
                    group.carriers.append(_name(user))
                    frontier.append(user)
                elif isinstance(target, nn.Conv2d) and target.groups == 1:
                    group.consumers.append(_name(user))
                elif user.op == "call_function" and getattr(user.target, "__name__", "") in SHAPE_READS:
                    continue
                else:
                    prunable = False
                    break
        if prunable and group.consumers:
            groups.append(group)
    return groups


def _name(node: fx.Node) -> str:
    return str(node.target).removeprefix("model.")


def kept_count(channels: int, ratio: float) -> int:
    """Channels a group keeps when `ratio` of them are pruned, rounded to the SIMD multiple (never below it)."""
    return max(CHANNEL_MULTIPLE, CHANNEL_MULTIPLE * round((1 - ratio) * channels / CHANNEL_MULTIPLE)) \
        if channels > CHANNEL_MULTIPLE else channels


def importance(model: nn.Module, group: ChannelGroup) -> torch.Tensor:
    """L1 norm of each producing filter, scaled by its BatchNorm (the first carrier, when it is one)."""
    modules = dict(model.named_modules())
    weight = modules[group.producer].weight.detach()
    score = weight.abs().flatten(1).sum(1)
    first = modules[group.carriers[0]] if group.carriers else None
    if isinstance(first, nn.BatchNorm2d):
        score = score * (first.weight.detach().abs() / torch.sqrt(first.running_var + first.eps))
    return score


def prune(model: nn.Module, ratio: float) -> dict[str, tuple[int, int]]:
    """Remove `ratio` of the channels of every prunable group of `model`, in place; returns, per producer,
    (channels before, channels kept)."""
    if not 0 <= ratio < 1:
        raise ValueError(f"the pruning ratio must be at least 0 and below 1, got {ratio}")
    modules = dict(model.named_modules())
    plan = {}
    for group in channel_groups(model):
        keep_count = kept_count(group.channels, ratio)
        if keep_count == group.channels:
            continue
        keep = torch.sort(torch.topk(importance(model, group), keep_count).indices).values
        _slice_outputs(modules[group.producer], keep)
        for name in group.carriers:
            _slice_outputs(modules[name], keep)
        for name in group.consumers:
            conv = modules[name]
            conv.weight = nn.Parameter(conv.weight.detach()[:, keep].clone())
            conv.in_channels = keep_count
        plan[group.producer] = (group.channels, keep_count)
    return plan


def _slice_outputs(module: nn.Module, keep: torch.Tensor) -> None:
    """Keep the channels `keep` of a conv's outputs (a depthwise conv's inputs too), a norm's or nothing (ReLU)."""
    if isinstance(module, nn.Conv2d):
        if _depthwise(module):
            module.in_channels = module.groups = len(keep)
        module.weight = nn.Parameter(module.weight.detach()[keep].clone())
        if module.bias is not None:
            module.bias = nn.Parameter(module.bias.detach()[keep].clone())
        module.out_channels = len(keep)
    elif isinstance(module, nn.BatchNorm2d):
        module.weight = nn.Parameter(module.weight.detach()[keep].clone())
        module.bias = nn.Parameter(module.bias.detach()[keep].clone())
        module.running_mean = module.running_mean[keep].clone()
        module.running_var = module.running_var[keep].clone()
        module.num_features = len(keep)
