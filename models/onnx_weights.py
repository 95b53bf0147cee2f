"""Import the weights of an official insightface SCRFD ONNX (BatchNorm folded into the convs) into our SCRFD.

The ONNX's distinct convolutions, in graph order, map one to one onto the model's convolutions in forward
order; every shape is checked. A conv that our model follows with BatchNorm gets the folded weight and bias,
and that BatchNorm becomes the identity. Matching outputs afterwards prove the topology is insightface's.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def onnx_convs(path: Path) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(weight, bias) of each distinct Conv in graph order (shared head convs appear once)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs, seen = [], set()
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] in seen:
            continue
        seen.add(node.input[1])
        bias = torch.from_numpy(tensors[node.input[2]].copy()) if len(node.input) > 2 else None
        convs.append((torch.from_numpy(tensors[node.input[1]].copy()), bias))
    return convs


def forward_order(model: nn.Module, h: int = 64, w: int = 64) -> list[nn.Module]:
    """Conv2d and norm modules in the order a forward pass first runs them."""
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, *_: order.append(mod) if mod not in order else None)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm))]
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w))
    for hook in hooks:
        hook.remove()
    return order


def load_scrfd_onnx_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Copy an insightface SCRFD ONNX's weights into `model` (BatchNorm variants only: GroupNorm does not fold)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    modules = forward_order(model.eval())
    if any(isinstance(m, nn.GroupNorm) for m in modules):
        raise ValueError(f"{path}: GroupNorm heads cannot take folded ONNX weights; use scrfd_500m_kps (BatchNorm)")
    convs = [(i, m) for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
    weights = onnx_convs(path)
    if len(weights) != len(convs):
        raise ValueError(f"{path}: {len(weights)} distinct convolutions, the model has {len(convs)}")
    with torch.no_grad():
        for (i, conv), (weight, bias) in zip(convs, weights):
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: conv weight {tuple(weight.shape)} where the model has "
                                 f"{tuple(conv.weight.shape)}: not this architecture")
            conv.weight.copy_(weight)
            norm = modules[i + 1] if i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm2d) else None
            if norm is None:
                conv.bias.copy_(bias)
                continue
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
    return model
