"""python -m converters.all: every backend × precision in one run, one summary table (Markdown and JSON).

The hub ONNX, calibration set and verification reference are made once and shared. A backend that fails is
reported and the others carry on; the exit code is 0 only if every artifact was written and passed.
"""
from __future__ import annotations

import argparse
import json
import traceback
from dataclasses import asdict

from converters.api import BACKENDS
from converters.options import ConvertOptions
from converters.pipeline import ArtifactResult, add_backend_arguments, prepare_shared, run_backend, summary_table
from runtimes.cli import run_cli
from runtimes.files import atomic_write_text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m converters.all", description=(
        "Convert to TFLite, NCNN and MNN (fp32, fp16, with --int INT8; MNN also 8-bit weights) and, with --int, "
        "ONNX Runtime static INT8, in one run, and "
        "verify every artifact against the ONNX. Writes <out>/summary.md and summary.json."))
    add_backend_arguments(p)
    for backend in BACKENDS.values():
        backend.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    options = ConvertOptions.from_args(parser().parse_args(argv))
    shared = prepare_shared(options)
    results: list[ArtifactResult] = []
    failures: dict[str, str] = {}
    for backend in [b for b in BACKENDS.values() if options.int8 or not b.int8_only]:
        try:
            results += run_backend(backend, options, shared)
        except Exception as err:  # one backend's failure must not stop the others; it is reported below
            failures[backend.name] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
    table = summary_table(results)
    if failures:
        table += "\n\nBackends that failed:\n" + "\n".join(f"- {name}: {why}" for name, why in failures.items())
    out = options.out_dir
    atomic_write_text(out / "summary.md", table + "\n")
    atomic_write_text(out / "summary.json", json.dumps({
        "artifacts": [{"folder": str(r.folder), "precision": r.precision, "size_bytes": r.size_bytes,
                       "conversion_s": round(r.seconds, 2), "score_cosine": r.report.score_cosine,
                       "agreement": asdict(r.report.agreement), "score_shift": r.report.score_shift,
                       "passed": r.report.passed,
                       "failures": r.report.failures} for r in results],
        "failed_backends": failures}, indent=2) + "\n")
    print(table)
    return 0 if results and not failures and all(r.report.passed for r in results) else 1


if __name__ == "__main__":
    run_cli(main)
