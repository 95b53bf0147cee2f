"""python -m eval: WIDER FACE protocol evaluation of converted models or existing predictions.

  python -m eval --model ARTIFACT [--model ARTIFACT ...] [--data DIR] [--out DIR] [options]
  python -m eval --model A --model B --degrade all --gallery 6 --out DIR   hard conditions and pictures too
  python -m eval --pred DIR [--pred DIR ...]                 score submission-format folders from any tool
  python -m eval merge --out DIR SHARD_OUT [SHARD_OUT ...]   join --shard runs and score them
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.degrade import DEGRADATIONS, KINDS, parse_degradations
from eval.evaluate import Protocol, Scoring, merge_shards, run_model, score
from eval.gallery import write_gallery
from eval.groundtruth import load_ground_truth
from eval.predictions import parse_shard
from eval.report import write_reports
from runtimes.cli import add_detector_arguments, hw_argument, iou_argument, parsed_by, run_cli, score_argument
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
    p.add_argument("--iou", type=iou_argument, default=0.5,
                   help="IoU a detection needs to find a face (default 0.5, the official protocol; 0.3 for rough "
                        "detection, where a loose box is good enough; recorded in the report)")
    p.add_argument("--operating-score", type=score_argument, default=0.5,
                   help="the score you will deploy with: precision, recall and F1 there (and at the F1-best score) "
                        "per face set, and recall per face size (default 0.5, the runtimes' default)")
    p.add_argument("--gallery", type=nonnegative_int, default=0, metavar="N",
                   help="draw N val images side by side, one column per model (the images where the models "
                        "disagree most at the operating score): ground truth, true and false positives, misses; "
                        "PNGs under OUT/gallery/ (default 0: none)")


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text}")
    return value



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
    p.add_argument("--shard", type=parsed_by(parse_shard),
                   help="i/n: predict only every n-th image from the i-th (1-based); join with `merge`")
    p.add_argument("--degrade", type=parsed_by(parse_degradations), default=[], metavar="LIST",
                   help="also predict on degraded copies of every image, made on the fly and seeded per image: "
                        f"'all', kinds ({', '.join(KINDS)}: each at its severities) or names ("
                        f"{', '.join(DEGRADATIONS)}), comma-separated; AP per condition in the report and "
                        "degradations.png (with --model only)")
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
        return finish([score(f, truth, scoring=scoring(args), degradations=None) for f in folders], truth, data,
                      args)
    args = parser().parse_args(argv)
    prepare_output_dir(args.out)
    if args.score_thr > 0.1:
        print(f"warning: --score-thr {args.score_thr} drops low-scoring detections and lowers AP (the protocol "
              "sweeps thresholds itself; 0.02 is usual)", file=sys.stderr)
    if args.pred and args.degrade:
        raise ValueError("--degrade needs --model: existing predictions (--pred) were made on the clean images")
    if args.operating_score < args.score_thr:
        raise ValueError(f"--operating-score {args.operating_score} is below --score-thr {args.score_thr}: the "
                         "detections between them are not kept, so the operating point cannot be measured")
    truth, data = load(args)
    if args.pred:
        return finish([score(folder, truth, label=folder.name, source=str(folder), scoring=scoring(args))
                       for folder in args.pred], truth, data, args)
    protocol = Protocol(args.hw, args.resize, args.score_thr, args.nms, args.max_det, args.threads,
                        args.pre_nms_top_k, args.runtime)
    images_dir = data / f"WIDER_{args.split}" / "images"
    folders = [run_model(m, truth, images_dir, args.out, protocol, args.overwrite, args.shard, args.degrade)
               for m in args.model]
    if args.shard:
        print(f"shard {args.shard[0]}/{args.shard[1]} written to {args.out}; "
              f"score all shards with: python -m eval merge --out DIR <each shard's --out>")
        return 0
    names = [d.name for d in args.degrade]
    return finish([score(f, truth, scoring=scoring(args), degradations=names) for f in folders], truth, data, args)


def scoring(args) -> Scoring:
    return Scoring(args.iou, args.operating_score)


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
    write_reports(models, truth, data, out, scoring(args))
    print((out / "report.md").read_text().split("## Operating point")[0].strip())
    written = [out / "report.md", out / "report.json", out / "pr_curves.png"]
    if any(m.degradations for m in models):
        written.append(out / "degradations.png")
    if args.gallery:
        pictures = write_gallery(models, truth.images, data / f"WIDER_{args.split}" / "images", out / "gallery",
                                 args.gallery, args.operating_score, args.iou)
        written.append(f"{out / 'gallery'}/ ({len(pictures)} images)")
    print("\nreports: " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    run_cli(main)
