"""The Backend interface, the table of runtimes (adapter by artifact file), and the mapping of raw outputs to
canonical order."""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.families import family
from models.spec import ModelSpec


@dataclass(frozen=True)
class Runtime:
    """An inference engine: what --runtime and reports call it, the artifact file it runs, its adapter."""

    name: str
    suffix: str
    adapter: str  # "module:Class"
    package: str  # what it imports: the benchmarks count the memory of that import


# Adding a backend: one adapter module and one line here. The first runtime of a suffix is the one it gets
# unless --runtime names another.
RUNTIMES = {r.name: r for r in (
    Runtime("onnxruntime", ".onnx", "runtimes.backends.onnxruntime:OnnxBackend", "onnxruntime"),
    Runtime("litert", ".tflite", "runtimes.backends.tflite:TFLiteBackend", "ai_edge_litert"),
    Runtime("ncnn", ".param", "runtimes.backends.ncnn:NcnnBackend", "ncnn"),
    Runtime("mnn", ".mnn", "runtimes.backends.mnn:MnnBackend", "MNN"),
    Runtime("opencv", ".onnx", "runtimes.backends.opencv:OpenCVBackend", "cv2"),
)}
SUFFIXES = tuple(dict.fromkeys(r.suffix for r in RUNTIMES.values()))  # the artifact files a folder may hold


def runtime_for(model_path: Path, name: str | None = None) -> Runtime:
    """The runtime called `name` (it must run this file type), else the file type's own."""
    if name is None:
        return next(r for r in RUNTIMES.values() if r.suffix == model_path.suffix)
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    if RUNTIMES[name].suffix != model_path.suffix:
        able = [r.name for r in RUNTIMES.values() if r.suffix == model_path.suffix]
        raise ValueError(f"{model_path}: {name} runs {RUNTIMES[name].suffix} files, not {model_path.suffix} "
                         f"(this one runs with {', '.join(able)})")
    return RUNTIMES[name]


class Backend(ABC):
    """A loaded artifact: takes the preprocessed blob, returns the canonical raw outputs as (N,C) float32 arrays."""

    def __init__(self, path: Path, spec: ModelSpec, threads: int | None = None):
        self.path, self.spec, self.threads = Path(path), spec, threads
        self._order: list[int] | None = None  # found on the first run: shapes are fixed per model
        self._head_maps = False  # whether the outputs are in a layout the family turns into rows (first run)
        self._family = family(spec.family)

    @abstractmethod
    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the artifact once; outputs in whatever order and naming the format produced."""

    def recorded_hw(self) -> tuple[int, int] | None:
        """The fixed input H,W the file itself records, where its format records one (ncnn's does not)."""
        return None

    def __call__(self, blob: np.ndarray) -> list[np.ndarray]:
        outputs = self.forward(blob)
        if self._order is None:
            rows = self._family.rows(outputs, self.spec)
            self._head_maps = any(r is not o for r, o in zip(rows, outputs))
            self._order = canonical_order([np.shape(o) for o in rows], self.spec)
            self._shapes = self.spec.output_shapes()
        if self._head_maps:
            outputs = self._family.rows(outputs, self.spec)
        return [np.asarray(outputs[i], np.float32).reshape(shape) for i, shape in zip(self._order, self._shapes)]


def canonical_order(shapes: list[tuple[int, ...]], spec: ModelSpec) -> list[int]:
    """For each canonical output, the index of the raw output whose (N,C) shape it has.

    Formats rename (pnnx: out0..) or shuffle (onnx2tf quantized files) outputs; shapes survive every format,
    and a mismatch is an error. Outputs of equal shapes (YuNet's cls and obj of one stride) are taken in file
    order: their family's decode treats them alike (a product), so no order between them is ever guessed.
    """
    flat = [(int(np.prod(s[:-1], dtype=np.int64)), int(s[-1])) if len(s) else (0, 0) for s in shapes]
    expected = list(spec.output_shapes())
    if sorted(flat) != sorted(expected):
        raise ValueError(f"outputs of shapes {[tuple(s) for s in shapes]} do not match {spec.family} "
                         f"at {spec.input_h}x{spec.input_w}, which has {list(zip(spec.output_names, expected))} "
                         "(does model.json describe this file: its family and the input_h, input_w it was "
                         "converted at?)")
    order: list[int] = []
    for shape in expected:
        order.append(next(i for i, s in enumerate(flat) if s == shape and i not in order))
    return order


def canonical_outputs(outputs: list[np.ndarray], spec: ModelSpec) -> list[np.ndarray]:
    """Raw outputs in any order → (N,C) float32 arrays in the spec's canonical order."""
    order = canonical_order([np.shape(o) for o in outputs], spec)
    return [np.asarray(outputs[i], np.float32).reshape(shape) for i, shape in zip(order, spec.output_shapes())]


def resolve_artifact(path: str | Path) -> tuple[Path, Path]:
    """An artifact file or its folder → (model file, model.json beside it)."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
        if len(candidates) != 1:
            raise FileNotFoundError(f"{path}: expected one model file ({', '.join(SUFFIXES)}) in the folder, "
                                    f"found {[p.name for p in candidates]}")
        path = candidates[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown artifact type {path.suffix!r}; supported: {', '.join(SUFFIXES)}")
    return path, path.parent / "model.json"


def load_backend(path: str | Path, threads: int | None = None, spec: ModelSpec | None = None,
                 runtime: str | None = None) -> Backend:
    """Load any artifact through its runtime (the file type's own unless `runtime` names another that runs it,
    e.g. opencv for .onnx); the spec comes from its model.json unless given."""
    model_path, spec_path = resolve_artifact(path)
    chosen = runtime_for(model_path, runtime)
    spec = spec or ModelSpec.load(spec_path)
    module_name, class_name = chosen.adapter.split(":")
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
