"""The kit's own trained default model: what the converters convert when no source is given."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DefaultModel:
    name: str
    model: str
    weights: Path

    @property
    def weights_label(self) -> str:
        return f"models/weights/{self.weights.name}"


# Trained from scratch by train_light on the 1,297 shared WIDER train images; how and how well: models/weights/README.md
DEFAULT_MODEL = DefaultModel("facekit_slim", "ultraface_slim", Path(__file__).parent / "weights" / "facekit_slim.pth")
