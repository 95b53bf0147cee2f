"""python -m benchmarks.aarch64: run the artifacts on emulated Raspberry Pi 4 and Pi 5 cores and compare every
detection with this machine's. Writes report.md and results.json; emulated times are never reported as timings.
Exit 0: every artifact agrees on every core; 1: the report shows differences or artifacts that failed; 2: it could
not run (setup, or a step other than an artifact's own run failed)."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2

from benchmarks.aarch64.compare import Agreement, agreement, combine, outliers
from benchmarks.aarch64.root import DEFAULT_ROOT, check_host, chroot, ensure_root, install_project, mounted
from benchmarks.harness import LARGE_IMAGE
from runtimes.cli import run_cli
from runtimes.files import atomic_write_text, shared_dir

REPO = Path(__file__).resolve().parents[2]
CORES = {"cortex-a72": "Raspberry Pi 4 (Cortex-A72: NEON)", "cortex-a76": "Raspberry Pi 5 (Cortex-A76: NEON, "
                                                                          "dotprod, fp16)"}
# every artifact converters.all --int writes, except mnn-int8 (refused by verification)
DEFAULT_ARTIFACTS = "onnx,tflite-fp32,tflite-int8,ncnn-fp32,ncnn-int8,mnn-fp32,mnn-int8w,ort-int8"
IMAGES = (LARGE_IMAGE, LARGE_IMAGE.parents[1] / "12--Group" / "12_Group_Group_12_Group_Group_12_144.jpg")
CLIP = Path("data/video/interview_854x480.mp4")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.aarch64", description=(
        "Prove the artifacts run on Raspberry Pi cores: an arm64 Debian root (built once with mmdebstrap and "
        "cached) runs under qemu-user as a Cortex-A72 (Pi 4) and a Cortex-A76 (Pi 5); the project is installed "
        "into it from this working tree (base install, no torch or TensorFlow); every artifact's detections on a "
        "few val images are compared with this machine's; runtimes.detect, runtimes.run (a short clip) and "
        "benchmarks run there too. Needs root, qemu-user-static, binfmt and mmdebstrap."))
    p.add_argument("--artifacts", type=Path, default=Path("artifacts/scrfd_500m_kps_480x640"),
                   help="a converters.all output folder (default artifacts/scrfd_500m_kps_480x640)")
    p.add_argument("--only", default=DEFAULT_ARTIFACTS, help=f"artifact folders to run (default {DEFAULT_ARTIFACTS})")
    p.add_argument("--cores", default=",".join(CORES), help="QEMU cores (default cortex-a72,cortex-a76)")
    p.add_argument("--clip-frames", type=int, default=6, help="frames of the shared interview clip for runtimes.run "
                                                              "(default 6; each costs seconds emulated)")
    p.add_argument("--min-iou", type=float, default=0.9, help="box match for agreement (default 0.9)")
    p.add_argument("--max-score-diff", type=float, default=0.02, help="score tolerance (default 0.02)")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"the arm64 root, reused (default {DEFAULT_ROOT})")
    p.add_argument("--out", type=Path, default=Path("aarch64_results"), help="output folder")
    return p


def stage_inputs(args, root: Path) -> tuple[list[str], list[str]]:
    """Copy the artifacts, images and a short clip into the root; their paths as the root sees them."""
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    missing = [n for n in names if not (args.artifacts / n / "model.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{args.artifacts}: no artifact folder {missing} (make them with converters.all)")
    inside = root / "opt" / "work"
    shutil.rmtree(inside, ignore_errors=True)
    for name in names:
        shutil.copytree(args.artifacts / name, inside / "artifacts" / name)
    images = []
    for key in IMAGES:
        source = shared_dir() / key
        if not source.is_file():
            raise FileNotFoundError(f"{source}: the shared val images are needed")
        (inside / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(source, inside / "images" / source.name)
        images.append(source)
    capture, writer = cv2.VideoCapture(str(shared_dir() / CLIP)), None
    for _ in range(args.clip_frames):
        ok, frame = capture.read()
        if not ok:
            break
        writer = writer or cv2.VideoWriter(str(inside / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                           frame.shape[1::-1])
        writer.write(frame)
    if writer is None:
        raise FileNotFoundError(f"{shared_dir() / CLIP}: the shared clip is needed for runtimes.run")
    writer.release()
    return names, [p.name for p in images]


def last_json(stdout: str) -> dict:
    """The probe's JSON: its last line (runtimes print banners to stdout, e.g. MNN's 'The device supports')."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the probe printed no JSON: {stdout[-500:]!r}")
    return json.loads(lines[-1])


def probe_args(artifact_root: str, names: list[str], image_root: str, images: list[str]) -> list[str]:
    return ([a for n in names for a in ("--model", f"{artifact_root}/{n}")]
            + [a for i in images for a in ("--image", f"{image_root}/{i}")])


def run_core(root: Path, core: str, names: list[str], images: list[str], frames: int, log: Path) -> dict:
    """Everything a user would run on the Pi, on one emulated core; the probe's JSON plus the benchmark's."""
    work = "/opt/work"
    result = {"artifacts": {}}
    for name in names:  # one process each: a runtime that crashes on this core takes only its own row down
        try:
            probed = last_json(chroot(root, ["python", "-m", "benchmarks.aarch64.probe", *probe_args(
                f"{work}/artifacts", [name], f"{work}/images", images)], log, core))
        except RuntimeError as err:
            result["artifacts"][name] = {"error": f"crashed or failed ({err.args[0].split('(', 1)[-1]}"}
            continue
        result["device"] = probed["device"]
        result["artifacts"].update(probed["artifacts"])
    first = f"{work}/artifacts/{names[0]}"
    chroot(root, ["python", "-m", "runtimes.detect", f"{work}/images/{images[0]}", "--model", first,
                  "--out", f"{work}/{core}_faces.jpg"], log, core)
    chroot(root, ["python", "-m", "runtimes.run", f"{work}/clip.mp4", "--model", first, "--max-frames", str(frames),
                  "--reference-runs", "0", "--json", f"{work}/{core}_clip.jsonl"], log, core)
    chroot(root, ["python", "-m", "benchmarks", "--model", first, "--threads", "1", "--runs", "2", "--warmup", "1",
                  "--image", f"{work}/images/{images[0]}", "--image", f"{work}/images/{images[1]}",
                  "--out", f"{work}/{core}_benchmark"], log, core)
    result["clip_frames"] = len((root / "opt" / "work" / f"{core}_clip.jsonl").read_text().splitlines())
    result["benchmark"] = json.loads((root / "opt" / "work" / f"{core}_benchmark" / "results.json").read_text())
    return result


def report(reference: dict, cores: dict[str, dict], names: list[str], args) -> str:
    lines = ["# Artifacts on emulated Raspberry Pi cores (qemu-user)", "",
             f"Each artifact's detections (score ≥ 0.5) on {len(next(iter(reference['artifacts'].values())))} WIDER "
             f"val images, on this machine ({reference['device']['label']}) and under each emulated core, matched one "
             f"to one: agree = every box matched at IoU ≥ {args.min_iou} with a score within "
             f"{args.max_score_diff}. **Emulated: these are correctness runs; no time here is a timing.**", ""]
    for core, result in cores.items():
        device = result.get("device") or {"label": "none: no artifact ran", "simd": [], "emulated": None}
        lines += [f"- {core} = {CORES.get(core, core)}: device record `{device['label']}`, features "
                  f"{', '.join(device['simd']) or 'none'}, emulated: {device['emulated']}; runtimes.run processed "
                  f"{result['clip_frames']} clip frames; python -m benchmarks wrote an emulated record"]
    lines += ["", "| artifact | " + " | ".join(f"{core}: matched / x86 / emulated, worst IoU, worst Δscore" for core in
                                              cores) + " |", "|---|" + "---|" * len(cores)]
    for name in names:
        cells = []
        for result in cores.values():
            found = result["artifacts"].get(name, {})
            if "error" in found or name not in result["artifacts"]:
                cells.append(f"**failed**: {found.get('error', 'not run')}")
                continue
            total = combine([agreement(reference["artifacts"][name][image], found[image], args.min_iou,
                                       args.max_score_diff) for image in found])
            cells.append(cell(total))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    details = [f"- {name} on {core}, {image}: " + "; ".join(found)
               for core, result in cores.items() for name in names if "error" not in result["artifacts"].get(name, {})
               for image, dets in result["artifacts"].get(name, {}).items()
               if (found := outliers(reference["artifacts"][name][image], dets, args.min_iou, args.max_score_diff))]
    if details:
        lines += ["", "Detections out of tolerance (x86 score → emulated score):", "", *details]
    return "\n".join(lines) + "\n"


def cell(total: Agreement) -> str:
    verdict = "agrees" if total.agrees else "**differs**"
    return (f"{verdict}: {total.matched} / {total.reference} / {total.other}, IoU {total.min_iou:.3f}, "
            f"Δ {total.max_score_diff:.4f}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return emulate(args)
    except RuntimeError as err:  # a step inside the root failed: its command and the log that holds its output
        print(f"error: {err}", file=sys.stderr)
        return 2


def emulate(args) -> int:
    check_host()
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.root.parent / "emulation.log"  # pip and tool output, beside the cached root
    print(f"arm64 root: {args.root} (log: {log})", file=sys.stderr)
    ensure_root(args.root, log)
    with mounted(args.root):
        install_project(args.root, REPO, log)
        names, images = stage_inputs(args, args.root)
        work = args.root / "opt" / "work"
        reference = last_json(subprocess.run(
            [sys.executable, "-m", "benchmarks.aarch64.probe",
             *probe_args(str(work / "artifacts"), names, str(work / "images"), images)],
            capture_output=True, text=True, check=True, cwd=REPO).stdout)
        cores = {}
        for core in [c.strip() for c in args.cores.split(",") if c.strip()]:
            print(f"running on emulated {core} ...", file=sys.stderr, flush=True)
            cores[core] = run_core(args.root, core, names, images, args.clip_frames, log)
    atomic_write_text(args.out / "results.json", json.dumps({"reference": reference, "cores": cores}, indent=1))
    text = report(reference, cores, names, args)
    atomic_write_text(args.out / "report.md", text)
    print(text)
    return 0 if all(combine_ok(reference, r, names, args) for r in cores.values()) else 1


def combine_ok(reference: dict, result: dict, names: list[str], args) -> bool:
    for name in names:
        found = result["artifacts"].get(name, {})
        if "error" in found or not combine([agreement(reference["artifacts"][name][i], found[i], args.min_iou,
                                                      args.max_score_diff) for i in found]).agrees:
            return False
    return True


if __name__ == "__main__":
    run_cli(main)
