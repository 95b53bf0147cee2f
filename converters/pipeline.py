"""One flow for every backend: hub ONNX → calibration (INT8) → backend conversion → stage, verify, commit.

A backend module supplies a BackendConverter (its suffix, layout and a `convert` function); everything else,
from argument parsing to the verification report and the exit code, is shared here.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from calibration_data.calibration import (
    DEFAULT_COUNT,
    CalibrationSet,
    build_calibration_set,
    default_calibration_dir,
)
from converters.common import add_source_arguments, held_out_images, log, output_dir, step
from converters.onnx import HubModel, build_hub
from converters.verify import INT8_MIN_AGREEMENT, Verifier, VerifyReport
from models.spec import ModelSpec, installed_versions
from runtimes.backend import load_backend
from runtimes.files import atomic_write_text, replace_dir, staging_dir


@dataclass(frozen=True)
class ConvertJob:
    """What a backend's convert function gets: the hub model, a scratch folder, the calibration set (with --int),
    held-out canvases, and the CLI options (options.int8, options.int_io, options.verbose, backend flags)."""

    hub: HubModel
    work: Path
    calibration: CalibrationSet | None
    sample_canvases: np.ndarray  # (N,H,W,3) uint8 held-out canvases, for tools that want sample data of their own
    options: argparse.Namespace


@dataclass(frozen=True)
class Produced:
    """One artifact a backend wrote: its files and how long making it took."""

    files: list[Path]
    seconds: float


@dataclass(frozen=True)
class BackendConverter:
    """A backend: name, artifact suffix, the layout its artifacts expect, convert(job) → {precision: Produced},
    and the CLI options of its own."""

    name: str
    suffix: str
    layout: str
    convert: Callable[[ConvertJob], dict[str, Produced]]
    tools: tuple[str, ...]
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    rejection_hints: dict[str, str] = field(default_factory=dict)  # precision → what to use when it is rejected
    int8_only: bool = False  # writes nothing without --int (its float model is the hub itself)


@dataclass(frozen=True)
class ArtifactResult:
    precision: str
    folder: Path
    size_bytes: int
    seconds: float
    report: VerifyReport


@dataclass(frozen=True)
class Shared:
    """What every backend of one run shares: the hub, the calibration set and the verification reference."""

    hub: HubModel
    calibration: CalibrationSet | None
    verifier: Verifier


class Timer:
    """Times a block: `with Timer() as t: ...; t.seconds`."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    q = parser.add_argument_group("INT8")
    q.add_argument("--int", dest="int8", action="store_true",
                   help="also write a full INT8 artifact (int8 weights and activations, per-channel)")
    q.add_argument("--int-io", action="store_true",
                   help="with --int: int8 input and output tensors too (default float I/O)")
    q.add_argument("--calib", type=Path,
                   help="folder of calibration images (default: the shared WIDER train images, else the "
                        "repo's calibration_data/samples/calibration)")
    q.add_argument("--calib-count", type=int, default=DEFAULT_COUNT,
                   help=f"how many calibration images to sample (default {DEFAULT_COUNT})")
    parser.add_argument("--keep-failed", action="store_true",
                        help="write an artifact that fails verification to its final folder anyway (default: to "
                             "<folder>.rejected/ with its verify.json, and exit 1)")
    q.add_argument("--min-agreement", type=float, default=INT8_MIN_AGREEMENT,
                   help=f"fail an INT8 artifact whose detection agreement with the ONNX is below this, "
                        f"either way (default {INT8_MIN_AGREEMENT})")


def backend_parser(backend: BackendConverter) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m converters.{backend.name}",
        description=(f"Convert a face detector to {backend.name} (fp32, fp16 and with --int INT8), then verify "
                     "every artifact against the ONNX on held-out real images. Each artifact folder gets the "
                     "model file, model.json and verify.json; the exit code is 1 if any artifact fails."))
    add_backend_arguments(parser)
    backend.add_arguments(parser)
    return parser


def prepare_shared(args: argparse.Namespace) -> Shared:
    """Hub ONNX, calibration set (with --int) and verification reference, made once per run."""
    if args.int_io and not args.int8:
        raise ValueError("--int-io needs --int")
    hub = build_hub(args)
    verify_paths = held_out_images(args.verify_images, args.verify_count)
    calibration = None
    if args.int8:
        with step(f"calibration set: up to {args.calib_count} images from {args.calib or default_calibration_dir()}"):
            calibration = build_calibration_set(args.calib, hub.spec, args.calib_count,
                                                exclude={p.resolve() for p in verify_paths})
    with step(f"verification reference: ONNX on {len(verify_paths)} held-out images"):
        verifier = Verifier(load_backend(hub.path), verify_paths)
    return Shared(hub, calibration, verifier)


def run_backend(backend: BackendConverter, args: argparse.Namespace, shared: Shared) -> list[ArtifactResult]:
    """Convert and verify; artifacts land in <out>/<backend>-<precision>/ atomically, verify.json inside."""
    results = []
    with tempfile.TemporaryDirectory(prefix=f"facekit-{backend.name}-") as work:
        job = ConvertJob(shared.hub, Path(work), shared.calibration,
                         np.stack([r.canvas for r in shared.verifier.resized]), args)
        with step(f"convert to {backend.name}"):
            produced = backend.convert(job)
        for precision, made in produced.items():
            spec = artifact_spec(shared.hub.spec, backend, precision, shared.calibration)
            results.append(commit_artifact(output_dir(args) / f"{backend.name}-{precision}", made, spec,
                                           backend, shared.verifier, args.min_agreement, args.keep_failed))
    return results


def artifact_spec(hub_spec: ModelSpec, backend: BackendConverter, precision: str,
                  calibration: CalibrationSet | None) -> ModelSpec:
    provenance = replace(
        hub_spec.provenance, converter=f"converters.{backend.name}", precision=precision,
        calibration_sha256=calibration.sha256 if calibration and "int8" in precision else "",
        tool_versions={**hub_spec.provenance.tool_versions, **installed_versions(*backend.tools)})
    return hub_spec.with_changes(layout=backend.layout, provenance=provenance)


def commit_artifact(final: Path, made: Produced, spec: ModelSpec, backend: BackendConverter,
                    verifier: Verifier, min_agreement: float, keep_failed: bool = False) -> ArtifactResult:
    """Stage model files + model.json, verify the staged copy, add verify.json, then rename into place.

    An artifact that fails verification never lands in `final`: it goes to `<final>.rejected/` (with its
    verify.json saying why), or into `final` only with keep_failed. A folder from an earlier run stays as it was.
    """
    rejected = final.with_name(final.name + ".rejected")
    with staging_dir(final) as tmp:
        for file in made.files:
            shutil.copyfile(file, tmp / f"model{file.suffix}")
        spec.save(tmp / "model.json")
        staged = tmp / f"model{backend.suffix}"
        with step(f"verify {final.name}"):
            report = verifier.check(load_backend(staged, spec=spec), spec.provenance.precision, min_agreement)
        destination = final if report.passed or keep_failed else rejected
        report.artifact = str(destination / staged.name)
        atomic_write_text(tmp / "verify.json", json.dumps(report.to_dict(), indent=2) + "\n")
        replace_dir(tmp, destination)
    if destination == final:
        shutil.rmtree(rejected, ignore_errors=True)  # a rejection from an earlier run no longer applies
    else:
        log.error("%s failed verification (%s): written to %s, not to %s%s%s", final.name, "; ".join(report.failures),
                  rejected, final, " (which still holds an earlier run's artifact)" if final.exists() else "",
                  f". {backend.rejection_hints[spec.provenance.precision]}"
                  if spec.provenance.precision in backend.rejection_hints else "")
    size = sum((destination / f"model{f.suffix}").stat().st_size for f in made.files)
    return ArtifactResult(spec.provenance.precision, destination, size, made.seconds, report)


def summary_table(results: list[ArtifactResult]) -> str:
    """A Markdown table: artifact, size, score cosine, detection agreement both ways, pass/fail."""
    lines = ["| artifact | size (MB) | conversion (s) | score cosine | ONNX dets matched | artifact dets matched "
             "| score shift | result |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        a = r.report.agreement
        verdict = "pass" if r.report.passed else "FAIL (" + "; ".join(r.report.failures) + ")" + (
            ", rejected: not in its final folder" if r.folder.name.endswith(".rejected") else ", kept (--keep-failed)")
        lines.append(f"| {r.folder} | {r.size_bytes / 1e6:.2f} | {r.seconds:.1f} | {r.report.score_cosine:.6f} | "
                     f"{a.reference_matched:.3f} ({a.reference_detections}) | "
                     f"{a.artifact_matched:.3f} ({a.artifact_detections}) | {r.report.score_shift:.3f} | {verdict} |")
    return "\n".join(lines)


def backend_main(backend: BackendConverter, argv: list[str] | None = None) -> int:
    args = backend_parser(backend).parse_args(argv)
    if backend.int8_only and not args.int8:
        raise ValueError(f"converters.{backend.name} writes only INT8 (its float model is the hub onnx/): pass --int")
    results = run_backend(backend, args, prepare_shared(args))
    print(summary_table(results))
    return 0 if all(r.report.passed for r in results) else 1
