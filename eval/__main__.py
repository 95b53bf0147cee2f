"""python -m eval: WIDER FACE protocol evaluation of converted models or existing predictions.

  python -m eval --model ARTIFACT [--model ARTIFACT ...] [--data DIR] [--out DIR] [options]
  python -m eval --pred DIR [--pred DIR ...]                 score submission-format folders from any tool
  python -m eval merge --out DIR SHARD_OUT [SHARD_OUT ...]   join --shard runs and score them
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.evaluate import Protocol, merge_shards, run_model, score
from eval.groundtruth import load_ground_truth
from eval.predictions import parse_shard
from eval.report import write_reports
from runtimes.cli import add_detector_arguments, hw_argument, run_cli
from runtimes.files import prepare_output_dir, shared_dir


def default_data() -> Path:
    return shared_dir() / "data" / "widerface"


def common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="WIDER FACE root in the official layout (default ../shared/data/widerface)")
    p.add_argument("--split", default="val", help="split to evaluate (only val has official ground truth)")
    p.add_argument("--out", type=Path, default=Path("eval_results"), help="output folder (default eval_results)")
    p.add_argument("--allow-missing", action="store_true",
                   help="score images without a prediction file as images without detections (default: an error, "
                        "since each one lowers AP)")


def shard_argument(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval", description=(
        "Evaluate face detectors with the official WIDER FACE protocol (Easy/Medium/Hard AP at IoU 0.5) on the "
        "images present under DATA/WIDER_val/images. Writes submission-format predictions, report.json, report.md "
        "and pr_curves.png. `python -m eval merge --help` joins sharded runs."))
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", type=Path, action="append",
                      help="artifact file or folder with its model.json (ONNX, TFLite, NCNN, MNN); repeat to "
                           "compare")
    what.add_argument("--pred", type=Path, action="append",
                      help="a folder of existing predictions (<event>/<image>.txt) to score; repeat to compare")
    common_arguments(p)
    p.add_argument("--hw", type=hw_argument, help="input H,W (default: the artifact's own; must match it)")
    add_detector_arguments(p, 0.02, "keep detections scoring at least this (the protocol sweeps thresholds "
                                    "itself: higher values cut AP)")
    p.add_argument("--overwrite", action="store_true", help="predict again even where prediction files exist")
    p.add_argument("--shard", type=shard_argument,
                   help="i/n: predict only every n-th image from the i-th (1-based); join with `merge`")
    return p


def merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval merge", description=(
        "Join the outputs of `python -m eval --shard i/n` runs (each machine's --out) and score them together."))
    p.add_argument("shards", type=Path, nargs="+", help="the --out folders of the shard runs")
    common_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        args = merge_parser().parse_args(argv[1:])
        prepare_output_dir(args.out)
        truth, data = load(args)
        folders = merge_shards(args.shards, args.out)
        return finish([score(f, truth) for f in folders], truth, data, args)
    args = parser().parse_args(argv)
    prepare_output_dir(args.out)
    if args.score_thr > 0.1:
        print(f"warning: --score-thr {args.score_thr} drops low-scoring detections and lowers AP (the protocol "
              "sweeps thresholds itself; 0.02 is usual)", file=sys.stderr)
    truth, data = load(args)
    if args.pred:
        return finish([score(folder, truth, label=folder.name, source=str(folder)) for folder in args.pred],
                      truth, data, args)
    protocol = Protocol(args.hw, args.resize, args.score_thr, args.nms, args.max_det, args.threads,
                        args.pre_nms_top_k, args.runtime)
    images_dir = data / f"WIDER_{args.split}" / "images"
    folders = [run_model(m, truth, images_dir, args.out, protocol, args.overwrite, args.shard) for m in args.model]
    if args.shard:
        print(f"shard {args.shard[0]}/{args.shard[1]} written to {args.out}; "
              f"score all shards with: python -m eval merge --out DIR <each shard's --out>")
        return 0
    return finish([score(f, truth) for f in folders], truth, data, args)


def load(args):
    data = args.data or default_data()
    if args.data is None and not data.is_dir():
        raise FileNotFoundError(f"no WIDER FACE data at {data}: pass --data DIR, a root holding WIDER_val/images/ "
                                "and ground_truth/*.mat as the official release lays them out")
    start = time.perf_counter()
    truth = load_ground_truth(data, args.split)
    print(f"{len(truth.images)} of {truth.listed_images} listed {args.split} images present "
          f"({time.perf_counter() - start:.1f} s to load the ground truth)", file=sys.stderr)
    return truth, data


def finish(models, truth, data, args) -> int:
    """Refuse (or, with --allow-missing, announce) images without predictions, then write and print the reports."""
    for model in models:
        if model.missing:
            shown = ", ".join(model.missing[:3]) + (" …" if len(model.missing) > 3 else "")
            what = (f"{model.label}: {len(model.missing)} of {len(truth.images)} evaluated images have no "
                    f"prediction file ({shown})")
            if not args.allow_missing:
                raise ValueError(f"{what}; each lowers AP: pass --allow-missing to score them as images without "
                                 "detections")
            print(f"warning: {what}, scored as images without detections", file=sys.stderr)
    out = args.out
    write_reports(models, truth, data, out)
    print((out / "report.md").read_text().split("## Protocol")[0].strip())
    print(f"\nreports: {out / 'report.md'}, {out / 'report.json'}, {out / 'pr_curves.png'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
