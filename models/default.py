"""The kit's own trained default model: what the converters convert when no source is given, and what the
runtimes run when no model is given (its verified artifacts ship in models/shipped/, made by
`python -m converters.ship` from the committed weights)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SHIPPED_KINDS = ("onnx", "tflite-int8")  # the artifacts that ship: the reference and what a Pi runs
RUN_KIND = "tflite-int8"  # what runtimes.run, runtimes.detect and Detector.default() load


@dataclass(frozen=True)
class DefaultModel:
    name: str
    model: str
    weights: Path
    shipped_hw: tuple[int, int]

    @property
    def weights_label(self) -> str:
        return f"models/weights/{self.weights.name}"

    @property
    def shipped_dir(self) -> Path:
        """The folder of the shipped artifacts, one sub-folder per kind, as a converter lays them out."""
        h, w = self.shipped_hw
        return Path(__file__).parent / "shipped" / f"{self.name}_{h}x{w}"

    @property
    def shipped_label(self) -> str:
        return f"models/shipped/{self.shipped_dir.name}/{RUN_KIND}"

    def artifact(self, kind: str = RUN_KIND) -> Path:
        """The shipped artifact folder of `kind`; missing files mean a damaged install, and say how to remake them."""
        if kind not in SHIPPED_KINDS:
            raise ValueError(f"{kind!r} is not a shipped artifact of {self.name}; shipped: {', '.join(SHIPPED_KINDS)}")
        folder = self.shipped_dir / kind
        if not (folder / "model.json").is_file():
            raise FileNotFoundError(f"{folder}: the shipped default model is missing (a damaged checkout or "
                                    "install?); pass --model ARTIFACT, or remake it with python -m converters.ship")
        return folder


# Trained from scratch by train_light on the 1,297 shared WIDER train images; how and how well: models/weights/README.md
DEFAULT_MODEL = DefaultModel("facekit_slim", "ultraface_slim", Path(__file__).parent / "weights" / "facekit_slim.pth",
                             (480, 640))
