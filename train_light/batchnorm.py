"""BatchNorms of imported weights that were folded into their convolutions, made trainable again.

insightface's SCRFD ONNX files have every BatchNorm folded: imported, each becomes an identity carrying the
conv's bias (mean 0, variance 1, scale 1). In training mode such a BatchNorm normalises by the batch's
statistics instead, which changes the function: six SGD steps at a learning rate of 0.0005 took SCRFD-500M-KPS
from 87 to 0 AP Easy. So before training, each one's input statistics are measured on training batches and
moved into it with the scale and shift that keep it the same function.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import torch
from torch import nn

log = logging.getLogger("facekit.train")


def folded(bn: nn.BatchNorm2d) -> bool:
    """Whether `bn` is an identity as a folded import leaves it (scale 1, mean 0, variance 1 − eps)."""
    return (bool(torch.all(bn.weight == 1)) and bool(torch.all(bn.running_mean == 0))
            and torch.equal(bn.running_var, torch.full_like(bn.running_var, 1.0 - bn.eps)))


def unfold_batchnorms(model: nn.Module, batches: Callable[[], Iterable], forward: Callable) -> int:
    """Give every folded BatchNorm of `model` the mean and variance of its input over the batches `batches()`
    yields (each passed to `forward`; called only when a BatchNorm is folded), with scale √(var + eps) and shift
    mean + its bias: the same function in eval mode, and close to it in training mode. Returns how many it
    changed."""
    targets = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and folded(m)]
    if not targets:
        return 0
    sums: dict[nn.Module, list] = {bn: [0.0, 0.0, 0] for bn in targets}

    def record(bn, inputs, _output):
        x = inputs[0].detach().float()
        total = sums[bn]
        total[0] = total[0] + x.sum(dim=(0, 2, 3))
        total[1] = total[1] + (x * x).sum(dim=(0, 2, 3))
        total[2] += x.numel() // x.shape[1]

    hooks = [bn.register_forward_hook(record) for bn in targets]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for images in batches():
            forward(images)
    for hook in hooks:
        hook.remove()
    model.train(was_training)
    with torch.no_grad():
        for bn, (total, squares, count) in sums.items():
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.bias.add_(mean)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
    log.info("%d BatchNorms of the initial weights were folded: their statistics were measured on training "
             "batches so that training keeps their function", len(targets))
    return len(targets)
