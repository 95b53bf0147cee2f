"""The evaluation hook: a PyTorch model scored with the WIDER protocol through eval/, as any artifact is."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eval.evaluate import score
from eval.groundtruth import GroundTruth, load_ground_truth
from eval.inference import predict_images
from models.spec import ModelSpec
from runtimes.backends.base import Backend
from runtimes.detection.detector import Detector


class TorchBackend(Backend):
    """A Backend over an in-memory PyTorch model, so training evaluates through the same Detector and protocol."""

    def __init__(self, model: torch.nn.Module, spec: ModelSpec):
        super().__init__(Path(f"<torch {spec.name}>"), spec)
        self.model = model

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return [o.numpy() for o in self.model(torch.from_numpy(blob))]


def validation_subset(truth: GroundTruth, limit: int | None) -> GroundTruth:
    """`limit` images spread evenly over the list (all when None)."""
    if not limit or limit >= len(truth.images):
        return truth
    picks = np.linspace(0, len(truth.images) - 1, limit).round().astype(int)
    return GroundTruth([truth.images[i] for i in picks], truth.listed_images, truth.listed_faces)


def evaluate_model(model: torch.nn.Module, spec: ModelSpec, val_data: Path, out: Path,
                   limit: int | None = None) -> dict[str, float]:
    """Easy/Medium/Hard AP of `model` at spec's input size on the WIDER val images under val_data."""
    truth = validation_subset(load_ground_truth(val_data), limit)
    detector = Detector(TorchBackend(model.eval(), spec), score_threshold=0.02, nms_threshold=0.4)
    predict_images(detector, Path(val_data) / "WIDER_val" / "images", [t.key for t in truth.images],
                   out / "predictions", overwrite=True, label=f"eval {spec.name}")
    return score(out, truth).ap()
