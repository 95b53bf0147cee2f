"""Distillation: a converted model teaches the model being trained, prior by prior, on the same crops.

The teacher is any artifact the kit runs (ONNX, TFLite, ncnn, MNN) made at the training size with the
student's prior layout (the same family and output shapes: Ultra-Light RFB teaching slim, a model teaching its
pruned self). The stated loss, added to the recipe's: `kd_cls`, the KL divergence of the student's face
probabilities from the teacher's (soft targets), averaged over every prior and weighted 10 as the background
term of the recipes; `kd_box`, an L1 loss on the box (and landmark) regressions of the priors the teacher is
confident on (probability ≥ 0.5), summed and divided by their number + 1, as the recipes normalise by positives.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.spec import SIZE_MULTIPLE, ModelSpec, nearest_multiples
from runtimes.backends.base import load_backend

CONFIDENT = 0.5  # teacher probability from which its boxes are targets
SCORE_WEIGHT = 10.0  # of the mean KL per prior (the weight of the recipes' background term)


class Teacher:
    """An artifact run by its runtime on normalised training batches; returns its canonical raw outputs."""

    def __init__(self, artifact: str | Path, student: ModelSpec, threads: int | None = None):
        self.backend = load_backend(artifact, threads)
        self.spec, self.student = self.backend.spec, student
        if self.spec.family != student.family or self.spec.output_shapes() != student.output_shapes():
            h, w = (v if v % SIZE_MULTIPLE == 0 else nearest_multiples(v)[-1] for v in student.hw)
            make = (f"python -m converters.onnx --model M --weights W --hw {h},{w}" if (h, w) == student.hw else
                    f"train with --size {h},{w} (the converters take sizes divisible by {SIZE_MULTIPLE}) and "
                    f"convert the teacher with --hw {h},{w}")
            raise ValueError(
                f"{artifact}: a {self.spec.family} model at {self.spec.input_h}x{self.spec.input_w} cannot teach "
                f"{student.name} at {student.input_h}x{student.input_w}: a teacher needs the student's family and "
                f"priors, i.e. the training size ({make})")

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B,3,H,W) in the student's normalisation → each canonical output stacked over the batch, (B,N,C)."""
        pixels = images.detach().float().cpu().numpy() * np.float32(self.student.std).reshape(1, 3, 1, 1) \
            + np.float32(self.student.mean).reshape(1, 3, 1, 1)
        if self.spec.channel_order != self.student.channel_order:
            pixels = pixels[:, ::-1]
        blob = (pixels - np.float32(self.spec.mean).reshape(1, 3, 1, 1)) / np.float32(self.spec.std).reshape(1, 3, 1, 1)
        if self.spec.layout == "NHWC":
            blob = blob.transpose(0, 2, 3, 1)
        per_image = [self.backend(np.ascontiguousarray(one[None], np.float32)) for one in blob]
        return [torch.from_numpy(np.stack([outputs[k] for outputs in per_image])).to(images.device)
                for k in range(len(per_image[0]))]


def soft_kl(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ student) of each prior, for softmax logits (..,C) against probabilities (..,C)."""
    teacher_probs = teacher_probs.clamp_min(1e-7)
    return (teacher_probs * (teacher_probs.log() - F.log_softmax(student_logits, -1))).sum(-1)


def ultraface_distill(outputs, teacher: list[torch.Tensor], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """Student (logits (B,N,2), SSD regressions (B,N,4)) against the teacher's (softmax scores, regressions)."""
    logits, locations = outputs
    scores, boxes = teacher
    confident = scores[..., 1] >= CONFIDENT
    norm = confident.sum() + 1
    return {"kd_cls": SCORE_WEIGHT * soft_kl(logits.float(), scores).mean(),
            "kd_box": F.l1_loss(locations.float()[confident], boxes[confident], reduction="sum") / norm}


def scrfd_distill(outputs, teacher: list[torch.Tensor], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """Per stride: student (score logits, distances[, landmarks]) against the teacher's sigmoid scores and the
    same regressions (the canonical order: each stride's score, boxes[, landmarks], stride after stride)."""
    kl, box = [], torch.zeros(())
    confident_total = 0
    for i, head in enumerate(outputs):
        score, *regressions = teacher[i * len(head):(i + 1) * len(head)]
        logits = head[0].float()
        two_class = torch.cat([-logits, logits], -1) / 2  # sigmoid(x) = softmax([-x/2, x/2])[1]
        kl.append(soft_kl(two_class, torch.cat([1 - score, score], -1)).flatten())
        confident = score[..., 0] >= CONFIDENT
        confident_total = confident_total + confident.sum()
        for student, target in zip(head[1:], regressions):
            box = box + F.l1_loss(student.float()[confident], target[confident], reduction="sum")
    norm = confident_total + 1
    return {"kd_cls": SCORE_WEIGHT * torch.cat(kl).mean(), "kd_box": box / norm}


DISTILL_LOSSES = {"ultraface": ultraface_distill, "scrfd": scrfd_distill}


def distill_loss(outputs, teacher: list[torch.Tensor], spec: ModelSpec) -> dict[str, torch.Tensor]:
    if spec.family not in DISTILL_LOSSES:
        raise ValueError(f"distillation is defined for {', '.join(DISTILL_LOSSES)} students, not {spec.family}")
    return DISTILL_LOSSES[spec.family](outputs, teacher, spec)
