"""python -m converters.inspect ARTIFACT --against ONNX: where a converted (INT8) model departs from its float source.

Runs both on the same images and reports, per canonical output (the tensors every runtime exposes under the same
name), the signal-to-quantization-noise ratio, cosine, max abs difference and both value ranges, score heads
first: a score head whose range the artifact clips, or whose SQNR falls far below the others', is where AP goes.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from calibration_data.calibration import default_verification_dir, sample_representative
from calibration_data.images import list_images, read_images
from converters.verify import cosine
from models.families import family
from runtimes.backends.base import load_backend
from runtimes.cli import positive_int, run_cli
from runtimes.detection.preprocess import normalize, resize_to_canvas
from runtimes.files import atomic_write_text


@dataclass(frozen=True)
class TensorError:
    name: str
    sqnr_db: float
    cosine: float
    max_abs_diff: float
    float_range: tuple[float, float]
    artifact_range: tuple[float, float]


def tensor_error(name: str, reference: np.ndarray, test: np.ndarray) -> TensorError:
    """SQNR = 10·log10(Σref² / Σ(ref−test)²); cosine; ranges as (min, max)."""
    ref, got = reference.astype(np.float64).ravel(), test.astype(np.float64).ravel()
    noise = float(np.sum((ref - got) ** 2))
    sqnr = float("inf") if noise == 0 else float(10 * np.log10(max(float(np.sum(ref ** 2)), 1e-30) / noise))
    return TensorError(name, round(sqnr, 2), cosine(ref, got), float(np.abs(ref - got).max()),
                       (float(ref.min()), float(ref.max())), (float(got.min()), float(got.max())))


def inspect(artifact: Path, reference: Path, images: list[Path]) -> list[TensorError]:
    """Per-output errors of `artifact` against `reference` over `images`, score outputs first."""
    ref_backend, test_backend = load_backend(reference), load_backend(artifact)
    spec = ref_backend.spec
    if test_backend.spec.hw != spec.hw or test_backend.spec.family != spec.family:
        raise ValueError(f"{artifact} ({test_backend.spec.family} {test_backend.spec.hw}) and {reference} "
                         f"({spec.family} {spec.hw}) are not the same model at the same size")
    outputs: dict[str, tuple[list, list]] = {name: ([], []) for name in spec.output_names}
    for image in read_images(images):
        canvas = resize_to_canvas(image, *spec.hw, spec.resize, spec.channel_order == "RGB").canvas[None]
        for name, a, b in zip(spec.output_names, ref_backend(normalize(canvas, spec)),
                              test_backend(normalize(canvas, test_backend.spec))):
            outputs[name][0].append(a)
            outputs[name][1].append(b)
    errors = [tensor_error(name, np.concatenate(a), np.concatenate(b)) for name, (a, b) in outputs.items()]
    scores = family(spec.family).score_outputs(spec)
    return sorted(errors, key=lambda e: (e.name not in scores, e.name))


def markdown(errors: list[TensorError]) -> str:
    lines = ["| output | SQNR dB | cosine | max abs diff | float range | artifact range |", "|---|---|---|---|---|---|"]
    for e in errors:
        lines.append(f"| {e.name} | {e.sqnr_db:.1f} | {e.cosine:.6f} | {e.max_abs_diff:.4f} | "
                     f"{e.float_range[0]:.3g} … {e.float_range[1]:.3g} | "
                     f"{e.artifact_range[0]:.3g} … {e.artifact_range[1]:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m converters.inspect", description=__doc__.split(":", 1)[1].strip())
    p.add_argument("artifact", type=Path, help="the converted artifact (file or folder with its model.json)")
    p.add_argument("--against", type=Path, required=True, help="its float source (e.g. <out>/onnx)")
    p.add_argument("--images", type=Path, help="image folder (default: the verification images)")
    p.add_argument("--count", type=positive_int, default=32, help="images sampled from the folder (default 32)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    images = sample_representative(list_images(args.images or default_verification_dir()), args.count, seed=1)
    errors = inspect(args.artifact, args.against, images)
    print(markdown(errors))
    if args.json:
        atomic_write_text(args.json, json.dumps([asdict(e) for e in errors], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main)
