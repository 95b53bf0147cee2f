"""python -m converters.describe: give a third-party artifact (.onnx, .tflite, ncnn .param/.bin, .mnn) a model.json.

The artifact is copied into --out with its spec (never written beside the original): family and input size
come from the user, landmarks/anchors are read from the artifact's real output shapes and checked, exactly as
the ONNX hub does. SCRFD files whose heads are raw (A·C, H, W) maps (published ncnn conversions) are read through
the same mapping the runtimes apply. Then eval and the runtimes take it like any artifact the kit made.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from models.families import FAMILIES, family, family_help
from models.spec import ModelSpec, Provenance
from runtimes.backends.base import SUFFIXES, load_backend, resolve_artifact
from runtimes.cli import float_range, positive_int, positive_number, run_cli
from runtimes.files import atomic_output_dir, prepare_output_dir, sha256_file


def companions(model_path: Path) -> list[Path]:
    """The files an artifact consists of (ncnn: .param and .bin)."""
    return [model_path, model_path.with_suffix(".bin")] if model_path.suffix == ".param" else [model_path]


def describe(model_path: Path, family_name: str, h: int, w: int, layout: str, precision: str, resize: str,
             mean: float | None = None, std: float | None = None, channel_order: str | None = None) -> ModelSpec:
    """A spec for the artifact, its outputs checked against the family at h×w; preprocessing not given is the
    family's own."""
    known = family(family_name)
    provisional = known.default_spec(model_path.stem, h, w).with_changes(layout=layout)
    backend = load_backend(model_path, spec=provisional)
    shape = (1, 3, h, w) if layout == "NCHW" else (1, h, w, 3)
    spec = known.spec_from_raw(model_path.stem, h, w, backend.forward(np.zeros(shape, np.float32)))
    return spec.with_changes(
        layout=layout, mean=(mean,) * 3 if mean is not None else spec.mean, std=(std,) * 3 if std is not None
        else spec.std, channel_order=channel_order or spec.channel_order, resize=resize,
        provenance=Provenance(source=str(model_path), source_sha256=sha256_file(model_path),
                              converter="third-party (described by converters.describe)", precision=precision))


def size_argument(text: str) -> tuple[int, int]:
    """argparse type for a third-party artifact's H,W: any positive sizes (it was converted elsewhere)."""
    try:
        h, w = (positive_int(v) for v in text.split(","))
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected H,W such as 240,320, got {text!r}") from None
    return h, w


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m converters.describe", description=(
        "Copy a third-party face-detector artifact into --out with a model.json, its family checked against its "
        f"output shapes, so `python -m eval` and the runtimes can use it. Artifacts: {', '.join(SUFFIXES)}."))
    p.add_argument("artifact", type=Path, help="the model file (for ncnn the .param, its .bin beside it)")
    p.add_argument("--family", required=True, choices=tuple(FAMILIES), help=f"detector family ({family_help()})")
    p.add_argument("--hw", required=True, type=size_argument,
                   help="input H,W the artifact runs at (e.g. 480,640; Ultra-Light's own 240,320)")
    p.add_argument("--layout", choices=("NCHW", "NHWC"), default="NCHW",
                   help="input layout the artifact expects (TFLite files are usually NHWC)")
    defaults = ", ".join(f"{name} {s.channel_order} mean {s.mean[0]:g} std {s.std[0]:g}" for name, s in
                         ((name, known.default_spec(name, 32, 32)) for name, known in FAMILIES.items()))
    p.add_argument("--mean", type=float_range(0, 255, "a pixel value"), help="pixel mean, 0 to 255 (default: the "
                                                                              f"family's: {defaults})")
    p.add_argument("--std", type=positive_number, help="pixel std, above 0 (default: the family's)")
    p.add_argument("--channel-order", choices=("RGB", "BGR"), help="the artifact's input channels (default: the "
                                                                   "family's)")
    p.add_argument("--resize", choices=("letterbox", "stretch"), default="letterbox", help="default resize mode")
    p.add_argument("--precision", default="fp32", help="what the artifact stores, for the report (default fp32)")
    p.add_argument("--out", type=Path, required=True, help="folder to copy the artifact and its model.json into")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    h, w = args.hw
    prepare_output_dir(args.out)
    model_path, _ = resolve_artifact(args.artifact)
    spec = describe(model_path, args.family, h, w, args.layout, args.precision, args.resize, args.mean, args.std,
                    args.channel_order)
    with atomic_output_dir(args.out) as tmp:
        for file in companions(model_path):
            shutil.copyfile(file, tmp / f"model{file.suffix}")
        spec.save(tmp / "model.json")
    print(f"wrote {args.out} ({spec.family}, {h}x{w}, outputs {list(spec.output_shapes())})")
    return 0


if __name__ == "__main__":
    run_cli(main)
