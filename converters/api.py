"""converters.convert: from Python, what `python -m converters.<backend>` and `converters.all` do from a shell.

    from converters import convert
    results = convert(hw=(480, 640), backends=("tflite",), int8=True)             # the kit's default model
    results = convert("scrfd_500m_kps.onnx", family="scrfd", backends=("ncnn", "mnn"), out="artifacts/scrfd")
    [(r.folder, r.report.passed) for r in results]
"""
from __future__ import annotations

from pathlib import Path

from converters.mnn import MNN
from converters.ncnn import NCNN
from converters.options import ConvertOptions, Source
from converters.ort import ORT
from converters.pipeline import ArtifactResult, BackendConverter, prepare_shared, run_backend
from converters.tflite import TFLITE

BACKENDS: dict[str, BackendConverter] = {b.name: b for b in (TFLITE, NCNN, MNN, ORT)}


def convert(source: Source | str | Path | None = None, *, family: str | None = None, weights: str | Path | None = None,
            hw: tuple[int, int] = (480, 640), backends: tuple[str, ...] = ("tflite",), int8: bool = False,
            out: str | Path | None = None, **settings) -> list[ArtifactResult]:
    """Convert `source` (an ONNX file with `family`, a registered model name with `weights`, a Source, or None for
    the kit's default model) at `hw` to each of `backends`, verify every artifact and write it under `out`.

    `settings` are any other ConvertOptions fields (calib, calib_count, keep_float, min_agreement, ncnn_calib, ...).
    Returns every artifact with its verification report: one that fails is in `<folder>.rejected/` and has
    `report.passed` False. Bad input raises ValueError or FileNotFoundError before any work, as the CLIs print it.
    """
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ValueError(f"unknown backends {unknown}; known: {', '.join(BACKENDS)}")
    if isinstance(source, Source):
        chosen = source
    elif source is None:
        chosen = Source()
    elif Path(source).suffix == ".onnx":
        chosen = Source(onnx=Path(source), family=family)
    else:
        chosen = Source(model=str(source), weights=Path(weights) if weights else None)
    options = ConvertOptions(source=chosen.resolved(), hw=tuple(hw), int8=int8, out=Path(out) if out else None,
                             **settings)
    writes_nothing = [b for b in backends if BACKENDS[b].int8_only and not int8]
    if writes_nothing:
        raise ValueError(f"{', '.join(writes_nothing)} writes only INT8 (its float model is the hub): pass int8=True")
    shared = prepare_shared(options)
    return [result for name in backends for result in run_backend(BACKENDS[name], options, shared)]
