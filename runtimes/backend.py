"""The Backend interface, the table of adapters by file suffix, and the mapping of raw outputs to canonical order."""
from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from models.spec import ModelSpec

# Adding a backend: one adapter module and one line here (artifact suffix -> "module:Class").
BACKENDS = {
    ".onnx": "runtimes.onnxruntime:OnnxBackend",
    ".tflite": "runtimes.tflite:TFLiteBackend",
    ".param": "runtimes.ncnn:NcnnBackend",
    ".mnn": "runtimes.mnn:MnnBackend",
}


class Backend(ABC):
    """A loaded artifact: takes the preprocessed blob, returns the canonical raw outputs as (N,C) float32 arrays."""

    def __init__(self, path: Path, spec: ModelSpec, threads: int | None = None):
        self.path, self.spec, self.threads = Path(path), spec, threads
        self._order: list[int] | None = None  # found on the first run: shapes are fixed per model
        self._head_maps = False  # whether the outputs are raw SCRFD head maps (also found on the first run)

    @abstractmethod
    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the artifact once; outputs in whatever order and naming the format produced."""

    def recorded_hw(self) -> tuple[int, int] | None:
        """The fixed input H,W the file itself records, where its format records one (ncnn's does not)."""
        return None

    def __call__(self, blob: np.ndarray) -> list[np.ndarray]:
        outputs = self.forward(blob)
        if self._order is None:
            rows = rows_from_head_maps(outputs, self.spec)
            self._head_maps = any(r is not o for r, o in zip(rows, outputs))
            self._order = canonical_order([np.shape(o) for o in rows], self.spec)
            self._shapes = self.spec.output_shapes()
        if self._head_maps:
            outputs = rows_from_head_maps(outputs, self.spec)
        return [np.asarray(outputs[i], np.float32).reshape(shape) for i, shape in zip(self._order, self._shapes)]


def canonical_order(shapes: list[tuple[int, ...]], spec: ModelSpec) -> list[int]:
    """For each canonical output, the index of the raw output whose (N,C) shape it has.

    Formats rename (pnnx: out0..) or shuffle (onnx2tf quantized files) outputs; shapes survive every format,
    and the spec makes them unique, so this never guesses: a mismatch is an error.
    """
    flat = [(int(np.prod(s[:-1], dtype=np.int64)), int(s[-1])) if len(s) else (0, 0) for s in shapes]
    expected = list(spec.output_shapes())
    if sorted(flat) != sorted(expected):
        raise ValueError(f"outputs of shapes {[tuple(s) for s in shapes]} do not match {spec.family} "
                         f"at {spec.input_h}x{spec.input_w}, which has {list(zip(spec.output_names, expected))} "
                         "(does model.json describe this file: its family and the input_h, input_w it was "
                         "converted at?)")
    return [flat.index(shape) for shape in expected]


def head_map_grids(spec: ModelSpec) -> set[tuple[int, int]]:
    """The (H/s, W/s) grid of every stride of an SCRFD spec."""
    return {(math.ceil(spec.input_h / s), math.ceil(spec.input_w / s)) for s in spec.strides}


def rows_from_head_maps(outputs: list[np.ndarray], spec: ModelSpec) -> list[np.ndarray]:
    """SCRFD heads that some third-party files emit as raw (A·C, H/s, W/s) maps (e.g. the published ncnn
    conversions) → the (H/s·W/s·A, C) rows every other artifact gives (row-major cells, anchors within a cell,
    as the head's permute + reshape does); other outputs pass unchanged."""
    if spec.family != "scrfd":
        return outputs
    grids, anchors = head_map_grids(spec), spec.anchors_per_location
    rows = []
    for output in outputs:
        shape = np.shape(output)
        if len(shape) == 4 and shape[0] == 1:
            output, shape = output[0], shape[1:]
        if len(shape) == 3 and shape[1:] in grids and shape[0] % anchors == 0:
            output = np.asarray(output).transpose(1, 2, 0).reshape(-1, shape[0] // anchors)
        rows.append(output)
    return rows


def canonical_outputs(outputs: list[np.ndarray], spec: ModelSpec) -> list[np.ndarray]:
    """Raw outputs in any order → (N,C) float32 arrays in the spec's canonical order."""
    order = canonical_order([np.shape(o) for o in outputs], spec)
    return [np.asarray(outputs[i], np.float32).reshape(shape) for i, shape in zip(order, spec.output_shapes())]


def resolve_artifact(path: str | Path) -> tuple[Path, Path]:
    """An artifact file or its folder → (model file, model.json beside it)."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.suffix in BACKENDS)
        if len(candidates) != 1:
            raise FileNotFoundError(f"{path}: expected one model file ({', '.join(BACKENDS)}) in the folder, "
                                    f"found {[p.name for p in candidates]}")
        path = candidates[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix not in BACKENDS:
        raise ValueError(f"{path}: unknown artifact type {path.suffix!r}; supported: {', '.join(BACKENDS)}")
    return path, path.parent / "model.json"


def load_backend(path: str | Path, threads: int | None = None, spec: ModelSpec | None = None) -> Backend:
    """Load any artifact through the adapter its suffix names; the spec comes from its model.json unless given."""
    model_path, spec_path = resolve_artifact(path)
    spec = spec or ModelSpec.load(spec_path)
    module_name, class_name = BACKENDS[model_path.suffix].split(":")
    backend = getattr(importlib.import_module(module_name), class_name)(model_path, spec, threads)
    recorded = backend.recorded_hw()
    if recorded is not None and recorded != spec.hw:
        raise ValueError(f"{spec_path} says the input is {spec.input_h}x{spec.input_w}, but {model_path.name} takes "
                         f"{recorded[0]}x{recorded[1]}: that model.json does not describe this file (restore the "
                         f"one its converter wrote, with input_h {recorded[0]} and input_w {recorded[1]})")
    return backend


def fixed_hw(dims) -> tuple[int, int] | None:
    """(H, W) from a file's two spatial input dims, or None when either is dynamic (a name, None or -1)."""
    h, w = dims
    return (h, w) if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0 else None
