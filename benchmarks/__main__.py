"""python -m benchmarks: FLOPs, size, latency per thread count, end-to-end time and peak memory of artifacts.

    python -m benchmarks --artifacts artifacts/scrfd_500m_kps_480x640 --threads 1,2 --out benchmarks/results
    python -m benchmarks --model artifacts/x/tflite-int8 --model artifacts/x/onnx --threads 1,2,4
    python -m benchmarks --onnx model.onnx --family scrfd --hw 480,640        # the hub only (needs the convert extra)
    python -m benchmarks merge --out report_dir pi4/results.json pi5/results.json x86/results.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.device import device_record
from benchmarks.harness import default_images, run, targets_in
from benchmarks.measure import FACE_DETECTOR_YN
from benchmarks.report import write_report
from calibration_data.images import read_image
from models.families import FAMILIES
from runtimes.backends.base import RUNTIMES
from runtimes.cli import hw_argument, non_negative_int, positive_int, run_cli
from runtimes.files import prepare_output_dir


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=(
        "Benchmark converted artifacts: each (artifact, thread count) in a fresh process pinned to that many cores; "
        "forward time alone and end to end (Detector on a 640x480 and a large image), median/p90/spread, peak RSS, "
        "size, MACs/FLOPs/params counted on the ONNX graph. Writes results.json, results.csv, report.md and plots. "
        "`python -m benchmarks merge --out DIR RESULTS.json ...` joins several devices into one report."))
    p.add_argument("--model", type=Path, action="append", default=[], help="an artifact folder (repeatable)")
    p.add_argument("--artifacts", type=Path, action="append", default=[],
                   help="a folder of artifact folders, as python -m converters.all writes (repeatable)")
    p.add_argument("--onnx", type=Path, help="benchmark an ONNX file: its hub artifact is made first with "
                                             "converters.onnx (needs --family and --hw; the convert extra)")
    p.add_argument("--family", choices=tuple(FAMILIES), help="with --onnx: its detector family")
    p.add_argument("--hw", type=hw_argument, help="with --onnx: H,W of the fixed input (divisible by 32)")
    p.add_argument("--threads", type=threads_argument, default=[1, 2], help="thread counts, comma-separated "
                   "(default 1,2); counts above the usable cores are skipped with a note")
    p.add_argument("--runs", type=positive_int, default=60, help="timed runs per measurement (default 60)")
    p.add_argument("--warmup", type=non_negative_int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--repeat", type=positive_int, default=1, help="fresh processes per configuration, to see how "
                                                                  "far their medians agree (default 1)")
    p.add_argument("--image", type=Path, action="append", default=[], help="images for end to end (twice: a "
                   "640x480 one, then a large one; default: cut from the shared WIDER val image 0_Parade_Parade_0_611)")
    p.add_argument("--eval", type=Path, action="append", default=[], help="python -m eval report.json files: adds "
                                                                          "the AP-vs-latency plot")
    p.add_argument("--runtime", action="append", default=[], choices=(*RUNTIMES, FACE_DETECTOR_YN),
                   help="run the artifacts of its file type with this runtime (repeat to measure each, e.g. "
                        "--runtime onnxruntime --runtime opencv for the .onnx files); default: each file type's own. "
                        f"{FACE_DETECTOR_YN}: also time OpenCV's own cv2.FaceDetectorYN on YuNet ONNX artifacts, "
                        "letterboxed alike (its decode and NMS run inside its forward)")
    p.add_argument("--device-label", help="name of this device in reports (default: CPU, architecture, cores)")
    p.add_argument("--out", type=Path, default=Path("benchmark_results"), help="output folder")
    return p


def threads_argument(text: str) -> list[int]:
    """argparse type for thread counts such as 1,2,4."""
    try:
        counts = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"expected thread counts of 1 or more such as 1,2,4, got {text!r}")
    return counts


def hub_from_onnx(args) -> Path:
    if not (args.family and args.hw):
        raise ValueError("--onnx needs --family and --hw (the hub ONNX has a fixed input size)")
    out = args.out / "hub"
    done = subprocess.run([sys.executable, "-m", "converters.onnx", "--onnx", str(args.onnx), "--family",
                           args.family, "--hw", ",".join(map(str, args.hw)), "--out", str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"{args.onnx}: converters.onnx could not make the hub ONNX: "
                         f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return out / "onnx"


def graph_costs(targets) -> tuple[dict[Path, dict], list[str]]:
    """MACs, FLOPs and params per hub ONNX, and a note for each artifact whose cost could not be counted: no
    float ONNX of its size beside it, an unreadable one, or no onnx package (a bare device)."""
    notes = [f"MACs/FLOPs not counted for {t.label}: no hub onnx/ of its input size beside it"
             for t in targets if t.onnx is None]
    graphs = sorted({t.onnx for t in targets if t.onnx is not None})
    if graphs and importlib.util.find_spec("onnx") is None:
        return {}, [*notes, "MACs/FLOPs not counted: the onnx package is not installed here (pip install onnx)"]
    from benchmarks.flops import count

    costs = {}
    for onnx in graphs:
        try:
            cost = count(onnx)
        except Exception as err:  # onnx raises protobuf's DecodeError and others for damaged files
            notes.append(f"MACs/FLOPs not counted for {onnx}: it cannot be read as ONNX ({type(err).__name__})")
            continue
        costs[onnx] = {"macs": cost.macs, "flops": cost.flops, "params": cost.params}
    return costs, notes


def benchmark(args) -> int:
    threads = args.threads
    prepare_output_dir(args.out)
    models = list(args.model) + ([hub_from_onnx(args)] if args.onnx else [])
    targets = targets_in(models, args.artifacts, args.runtime)
    if not targets:
        raise ValueError("nothing to benchmark: pass --model ARTIFACT, --artifacts DIR or --onnx FILE")
    if args.image and len(args.image) != 2:
        raise ValueError("--image takes two images: a 640x480 one, then a large one")
    for image in args.image:
        read_image(image)  # each measurement process would fail on it, one after another
    for report in args.eval:
        if not report.is_file():
            raise FileNotFoundError(f"--eval {report}: no such python -m eval report.json")
    images = args.image or default_images()
    device = device_record(args.device_label)
    costs, cost_notes = graph_costs(targets)
    rows, notes = run(targets, threads, args.runs, args.warmup, images, args.repeat, device["label"])
    notes += cost_notes
    by_folder = {t.label: costs.get(t.onnx, {}) for t in targets}
    for row in rows:
        row.update(by_folder[row["artifact"]])
    result = {"device": device, "rows": rows, "notes": notes,
              "settings": {"runs": args.runs, "warmup": args.warmup, "repeat": args.repeat,
                           "images": [str(i) for i in images]}}
    written = write_report([result], args.out, args.eval)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{len(rows)} measurements; " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0 if rows else 1


def merge(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks merge",
                                description="Join results.json files from several devices into one report.")
    p.add_argument("results", type=Path, nargs="+", help="results.json files written by python -m benchmarks")
    p.add_argument("--eval", type=Path, action="append", default=[], help="eval report.json files for AP plots")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    args = p.parse_args(argv)
    results = []
    for path in args.results:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such results file")
        results += json.loads(path.read_text())
    written = write_report(results, args.out, args.eval)
    print(", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        return merge(argv[1:])
    return benchmark(parser().parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
