"""What a detector family is to the kit: its canonical outputs, how its spec is made, which outputs are scores,
and its decoder. One subclass per family module; nothing here imports torch."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from models.spec import ModelSpec

Decoded = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # boxes (M,4) xyxy, scores (M,), landmarks (M,5,2)


class Family(ABC):
    name: str
    summary: str  # one line for --help: what the family is and where its models come from

    @abstractmethod
    def default_spec(self, name: str, h: int, w: int) -> ModelSpec:
        """The spec of the family's usual model at h×w: outputs, preprocessing, priors."""

    @abstractmethod
    def output_shapes(self, spec: ModelSpec) -> tuple[tuple[int, int], ...]:
        """The (N, C) shape of each canonical output, in canonical order."""

    @abstractmethod
    def face_scores(self, outputs: list[np.ndarray], spec: ModelSpec) -> np.ndarray:
        """Every prior's face score of one image's canonical outputs, as one vector (what verification compares)."""

    @abstractmethod
    def decode(self, outputs: list[np.ndarray], spec: ModelSpec, score_threshold: float) -> Decoded:
        """Canonical outputs → the candidates scoring at least the threshold, in model-input pixels."""

    def spec_from_outputs(self, name: str, h: int, w: int, shapes: list[tuple[int, ...]]) -> ModelSpec:
        """The spec of a file whose raw outputs have `shapes` (variants such as landmarks are read from them);
        ValueError when they are not this family's at h×w."""
        return self.checked(self.default_spec(name, h, w), shapes)

    def checked(self, spec: ModelSpec, shapes: list[tuple[int, ...]]) -> ModelSpec:
        """`spec`, once raw outputs of `shapes` are shown to be its canonical outputs in some order."""
        flat = sorted((int(np.prod(s[:-1])), int(s[-1])) for s in shapes)
        if flat != sorted(self.output_shapes(spec)):
            raise ValueError(f"outputs {[tuple(s) for s in shapes]} are not {self.name} outputs at "
                             f"{spec.input_h}x{spec.input_w} (expected {list(self.output_shapes(spec))})")
        return spec

    def spec_from_raw(self, name: str, h: int, w: int, raw: list[np.ndarray]) -> ModelSpec:
        """The spec of a third-party file from what it returned for one input (converters.describe)."""
        return self.spec_from_outputs(name, h, w, [np.shape(o) for o in raw])

    def rows(self, outputs: list[np.ndarray], spec: ModelSpec) -> list[np.ndarray]:
        """Raw outputs in a layout some third-party files use → the (N, C) rows; most families have none."""
        return outputs

    def score_outputs(self, spec: ModelSpec) -> tuple[str, ...]:
        """The names of the canonical outputs that hold scores (inspect lists them first)."""
        return tuple(n for n in spec.output_names if n.startswith("score"))


def grid_cells(h: int, w: int, stride: int) -> int:
    return -(-h // stride) * -(-w // stride)
