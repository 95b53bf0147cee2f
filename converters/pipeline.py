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
import onnx

from calibration_data.calibration import (
    DEFAULT_COUNT,
    CalibrationSet,
    build_calibration_set,
    calibration_images,
    default_calibration_dir,
)
from converters.common import add_source_arguments, held_out_images, log, step
from converters.equalize import equalize
from converters.keep_float import (
    AUTO,
    AUTO_MAX_LAYERS,
    NONE,
    STEM,
    Fingerprint,
    check_names,
    next_auto_layers,
    parse_keep_float,
    stem_convs,
)
from converters.onnx import HubModel, build_hub
from converters.options import ConvertOptions
from converters.verify import INT8_MIN_AGREEMENT, Verifier, VerifyReport
from models.spec import ModelSpec, installed_versions
from runtimes.backends.base import load_backend
from runtimes.cli import fraction_argument, positive_int
from runtimes.files import atomic_write_text, replace_dir, staging_dir


@dataclass(frozen=True)
class ConvertJob:
    """What a backend's convert and quantize functions get: the hub model, a scratch folder, the calibration set
    and the ONNX to quantize (with --int: the hub, activation-equalized unless --no-equalize), held-out canvases,
    and the run's options (options.int8, options.int_io, options.verbose, backend settings)."""

    hub: HubModel
    work: Path
    calibration: CalibrationSet | None
    int8_source: Path | None
    sample_canvases: np.ndarray  # (N,H,W,3) uint8 held-out canvases, for tools that want sample data of their own
    options: ConvertOptions


@dataclass(frozen=True)
class Produced:
    """One artifact a backend wrote: its files, how long making it took, and how it was quantized."""

    files: list[Path]
    seconds: float
    quantization: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BackendConverter:
    """A backend: name, artifact suffix, the layout its artifacts expect, convert(job) → {precision: Produced} for
    the float artifacts, quantize(job, kept convolutions) → the INT8 one, and the CLI options of its own."""

    name: str
    suffix: str
    layout: str
    convert: Callable[[ConvertJob], dict[str, Produced]]
    quantize: Callable[[ConvertJob, dict[str, Fingerprint]], Produced]
    tools: tuple[str, ...]
    keeps_float: bool = True  # honours --keep-float
    default_keep_float: str = STEM  # --keep-float when not given (measured per backend: accuracy and latency)
    int_io: bool = False  # honours --int-io (its INT8 artifact is then called int8io)
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    rejection_hints: dict[str, str] = field(default_factory=dict)  # precision → what to use when it is rejected
    int8_opt_in: str = ""  # a flag of its own that --int also needs for its INT8 artifact (e.g. --mnn-full-int8)

    def wants_int8(self, options: ConvertOptions) -> bool:
        """Whether the options ask for its INT8 artifact."""
        flag = self.int8_opt_in.lstrip("-").replace("-", "_")
        return options.int8 and (not flag or getattr(options, flag))

    @property
    def int8_only(self) -> bool:
        """Writes nothing without --int (its float model is the hub itself)."""
        return self.convert is no_float_artifacts


@dataclass(frozen=True)
class ArtifactResult:
    precision: str
    folder: Path
    size_bytes: int
    seconds: float
    report: VerifyReport


@dataclass(frozen=True)
class Shared:
    """What every backend of one run shares: the hub, the calibration set, the model to quantize (the hub,
    equalized) and the verification reference."""

    hub: HubModel
    calibration: CalibrationSet | None
    int8_model: onnx.ModelProto | None
    equalized: tuple[str, ...]
    verifier: Verifier


def no_float_artifacts(job: ConvertJob) -> dict[str, Produced]:
    """The convert step of a backend whose float model is the hub itself."""
    return {}


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
    q.add_argument("--calib-count", type=positive_int, default=DEFAULT_COUNT,
                   help=f"how many calibration images to sample (default {DEFAULT_COUNT})")
    q.add_argument("--keep-float", type=parse_keep_float, metavar="stem|none|auto|CONV[,CONV...]",
                   help="convolutions the INT8 artifact computes in float, named as in the hub ONNX (list them: "
                        "python -m converters.keep_float <out>/onnx); stem: those reading at least half the "
                        "input's resolution (the first 4 in SCRFD and Ultra-Light); none; auto: none unless "
                        "verification fails, then 1, 2, 4, ... of the first convolutions until it passes. Default: "
                        "stem for ncnn and ONNX Runtime (0.1-0.4 AP Hard back, and faster), none for TFLite (its "
                        "float stem cost +63%% latency for 0.03 AP); MNN has no such mechanism")
    q.add_argument("--int8-tail", action="store_true",
                   help="quantize the output tail too: the score convolutions and the reshapes, concatenations "
                        "and score Softmax/Sigmoid after the last convolutions. By default TFLite and ONNX Runtime "
                        "INT8 keep it in float: int8 scores in steps of 1/256 tie every confident detection, and "
                        "concatenated score heads share one coarse logit range (measured on the default model's "
                        "TFLite INT8: 0.84 AP Easy for the activations, then 0.16 to 0.34 AP for the score "
                        "convolutions). Pass it for a graph that must be integer throughout (an NPU or Edge TPU "
                        "delegate)")
    q.add_argument("--no-equalize", dest="equalize", action="store_false",
                   help="quantize the hub as it is, without equalizing the channels that feed depthwise "
                        "convolutions first (the float model is unchanged either way)")
    parser.add_argument("--keep-failed", action="store_true",
                        help="write an artifact that fails verification to its final folder anyway (default: to "
                             "<folder>.rejected/ with its verify.json, and exit 1)")
    q.add_argument("--min-agreement", type=fraction_argument, default=INT8_MIN_AGREEMENT,
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


def prepare_shared(options: ConvertOptions) -> Shared:
    """Hub ONNX, calibration set (with --int) and verification reference, made once per run; every image folder
    is checked before the export."""
    if options.int_io and not options.int8:
        raise ValueError("--int-io needs --int")
    verify_paths = held_out_images(options.verify_images, options.verify_count)
    exclude = {p.resolve() for p in verify_paths}
    calibration_paths = calibration_images(options.calib, options.calib_count, exclude=exclude) if options.int8 else []
    hub = build_hub(options, verify_paths)
    calibration, int8_model, equalized = None, None, ()
    if options.int8:
        with step(f"calibration set: {len(calibration_paths)} images from "
                  f"{options.calib or default_calibration_dir()}"):
            calibration = build_calibration_set(calibration_paths, hub.spec)
        int8_model = onnx.load(str(hub.path))
        if options.keep_float not in (None, NONE, AUTO, STEM):
            check_names(options.keep_float, int8_model)
        if options.equalize:
            with step("equalizing the channels that feed depthwise convolutions"):
                int8_model, names = equalize(int8_model, calibration.normalized(hub.spec, "NCHW"))
                equalized = tuple(names)
    with step(f"verification reference: ONNX on {len(verify_paths)} held-out images"):
        verifier = Verifier(load_backend(hub.path), verify_paths)
    return Shared(hub, calibration, int8_model, equalized, verifier)


def run_backend(backend: BackendConverter, options: ConvertOptions, shared: Shared) -> list[ArtifactResult]:
    """Convert and verify; artifacts land in <out>/<backend>-<precision>/ atomically, verify.json inside."""
    results = []
    with tempfile.TemporaryDirectory(prefix=f"facekit-{backend.name}-") as work:
        int8_source = shared.hub.path if shared.int8_model is not None else None
        if shared.equalized:
            int8_source = Path(work) / "equalized.onnx"
            onnx.save(shared.int8_model, str(int8_source))
        job = ConvertJob(shared.hub, Path(work), shared.calibration, int8_source,
                         np.stack([r.canvas for r in shared.verifier.resized]), options)
        with step(f"convert to {backend.name}"):
            produced = backend.convert(job)
        for precision, made in produced.items():
            spec = artifact_spec(shared.hub.spec, backend, precision, shared.calibration)
            results.append(commit_artifact(options.out_dir / f"{backend.name}-{precision}", made, spec,
                                           backend, shared.verifier, options.min_agreement, options.keep_failed))
        if backend.wants_int8(options):
            results.append(quantize_and_commit(backend, job, shared))
        elif options.int8:
            log.info("%s: no INT8 artifact without %s (%s)", backend.name, backend.int8_opt_in,
                     backend.rejection_hints.get("int8", "it is made only when asked"))
    return results


def quantize_and_commit(backend: BackendConverter, job: ConvertJob, shared: Shared) -> ArtifactResult:
    """The INT8 artifact with the asked float layers; with --keep-float auto, more of them while it fails."""
    options = job.options
    precision = "int8io" if options.int_io and backend.int_io else "int8"
    policy = options.keep_float or backend.default_keep_float
    names = {NONE: (), AUTO: (), STEM: stem_convs(shared.int8_model)}.get(policy, policy)
    if policy == STEM and not backend.keeps_float:
        log.warning("%s cannot keep layers in float: its INT8 artifact quantizes the stem too", backend.name)
        names = ()
    while True:
        with step(f"quantize {backend.name}" + (f" keeping {', '.join(names)} in float" if names else "")):
            made = backend.quantize(job, check_names(names, shared.int8_model))
        quantization = {**made.quantization, "calibration_images": len(shared.calibration.canvases),
                        "equalized": list(shared.equalized), "float_layers": list(names)}
        spec = artifact_spec(shared.hub.spec, backend, precision, shared.calibration, quantization)
        result = commit_artifact(options.out_dir / f"{backend.name}-{precision}", made, spec, backend,
                                 shared.verifier, options.min_agreement, options.keep_failed)
        more = ()
        if policy == AUTO and not result.report.passed and backend.keeps_float:
            more = next_auto_layers(shared.int8_model, names)
        if not more or len(names) + len(more) > AUTO_MAX_LAYERS:
            return result
        log.info("--keep-float auto: %s failed; converting again with %s in float", result.folder.name,
                 ", ".join(more))
        names += more


def artifact_spec(hub_spec: ModelSpec, backend: BackendConverter, precision: str,
                  calibration: CalibrationSet | None, quantization: dict | None = None) -> ModelSpec:
    provenance = replace(
        hub_spec.provenance, converter=f"converters.{backend.name}", precision=precision,
        calibration_sha256=calibration.sha256 if calibration and "int8" in precision else "",
        quantization=quantization or {},
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
    options = ConvertOptions.from_args(backend_parser(backend).parse_args(argv))
    if backend.int8_only and not options.int8:
        raise ValueError(f"converters.{backend.name} writes only INT8 (its float model is the hub onnx/): pass --int")
    results = run_backend(backend, options, prepare_shared(options))
    print(summary_table(results))
    return 0 if all(r.report.passed for r in results) else 1
