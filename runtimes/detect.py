"""python -m runtimes.detect IMAGE [--model ARTIFACT]: detect faces in one image, print them, save an annotated copy."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from models.default import DEFAULT_MODEL
from runtimes.cli import add_detector_arguments, add_model_argument, detector_options, run_cli
from runtimes.detection.detector import Detector
from runtimes.files import atomic_write_bytes, prepare_output
from runtimes.video.anonymise import DEFAULT_MARGIN, STYLES, anonymise
from runtimes.video.draw import draw_detections


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes.detect", description=(
        "Detect faces in an image with the kit's shipped model or any converted artifact (ONNX, TFLite, NCNN, "
        "MNN; its model.json beside it), print the detections as JSON lines and write an annotated image."))
    p.add_argument("image", type=Path, help="the image to run on")
    add_model_argument(p)
    p.add_argument("--out", type=Path, help="annotated image path (default <image>_faces.jpg beside the image)")
    add_detector_arguments(p, 0.5, "minimum face score")
    p.add_argument("--anonymise", choices=STYLES, help="blur or pixelate every detected face in the written image")
    p.add_argument("--blur-margin", type=float, default=DEFAULT_MARGIN,
                   help=f"share of a box's size added on each side of what is hidden (default {DEFAULT_MARGIN})")
    p.add_argument("--no-boxes", action="store_true", help="draw no boxes or landmarks in the written image")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = check_out(args.out or args.image.with_name(f"{args.image.stem}_faces.jpg"), args.image)
    image = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{args.image}: cannot be read as an image")
    detector = Detector.from_artifact(args.model or DEFAULT_MODEL.artifact(), threads=args.threads,
                                      runtime=args.runtime, score_threshold=args.score_thr, **detector_options(args))
    detections = detector(image)
    for record in detections.to_records():
        print(json.dumps(record))
    if args.anonymise:
        anonymise(image, detections.boxes, args.anonymise, args.blur_margin)
    ok, encoded = cv2.imencode(out.suffix, image if args.no_boxes else draw_detections(image, detections))
    if not ok:
        raise ValueError(f"{out}: OpenCV could not encode the annotated image")
    atomic_write_bytes(out, encoded.tobytes())
    print(f"{len(detections)} faces; annotated image: {out}", file=sys.stderr)
    return 0


def check_out(out: Path, image: Path) -> Path:
    """Before any work: an image format OpenCV writes, a writable place, and never the input image itself."""
    if not out.suffix or not cv2.haveImageWriter(str(out)):
        raise ValueError(f"{out}: OpenCV writes no image format called {out.suffix or '(no suffix)'!r}; use .jpg, "
                         ".png, .bmp or .webp")
    if image.exists() and out.resolve() == image.resolve():
        raise ValueError(f"{out}: is the input image; choose another --out (nothing was written)")
    return prepare_output(out)


if __name__ == "__main__":
    run_cli(main)
