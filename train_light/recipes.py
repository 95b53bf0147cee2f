"""The published training recipe of each family: size, augmentation, schedule, targets and loss."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from models.spec import ModelSpec
from train_light.atss import init_heads, scrfd_loss, scrfd_targets
from train_light.ssd import init_face_prior, multibox_loss, ssd_targets


@dataclass(frozen=True)
class Recipe:
    """Defaults of one family; the CLI may override size, batch and learning rate.

    milestones are fractions of the epochs asked for (SCRFD's 440 and 544 of 640 epochs, Ultra-Light's 95 and
    150 of 200), so a short run decays at the same relative points as the published long one.
    """

    train_hw: tuple[int, int]
    crop_scale: tuple[float, float]
    min_face: float
    batch: int
    lr: float
    milestones: tuple[float, ...]
    warmup_epochs: float
    targets: Callable[[object, object, ModelSpec], dict]
    loss: Callable[[object, dict, ModelSpec], dict]  # the model's raw outputs, the targets → named losses
    init: Callable[[torch.nn.Module], None] | None = None  # weights for training from scratch, if not PyTorch's
    momentum: float = 0.9
    weight_decay: float = 5e-4
    gamma: float = 0.1


def _scrfd_loss(outputs, targets, spec):
    return scrfd_loss(outputs, targets, spec)


def _ssd_targets(boxes, landmarks, spec):
    return ssd_targets(boxes, spec)


def _ssd_loss(outputs, targets, spec):
    logits, locations = outputs
    return multibox_loss(logits, locations, targets)


RECIPES = {
    # insightface scrfd_500m(_bnkps): 640 crops at 0.3–2.0 of the short side, SGD 0.01, warm-up, steps 440/544 of 640
    "scrfd": Recipe(train_hw=(640, 640), crop_scale=(0.3, 2.0), min_face=2.0, batch=8, lr=0.01,
                    milestones=(440 / 640, 544 / 640), warmup_epochs=3, targets=scrfd_targets, loss=_scrfd_loss,
                    init=init_heads),
    # Ultra-Light train.py: 320×240 crops, SGD 0.01 batch 24, multistep 95/150 of 200 epochs
    "ultraface": Recipe(train_hw=(240, 320), crop_scale=(0.3, 1.0), min_face=2.0, batch=24, lr=0.01,
                        milestones=(95 / 200, 150 / 200), warmup_epochs=0, targets=_ssd_targets, loss=_ssd_loss,
                        init=init_face_prior),
}


def learning_rate(recipe: Recipe, base_lr: float, epoch: float, epochs: int) -> float:
    """The rate at a fractional epoch: linear warm-up from 0.1% (capped at a tenth of the run), then steps."""
    warmup = min(recipe.warmup_epochs, epochs / 10)
    if epoch < warmup:
        return base_lr * (0.001 + 0.999 * epoch / warmup)
    return base_lr * recipe.gamma ** sum(epoch >= m * epochs for m in recipe.milestones)
