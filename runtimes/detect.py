"""python -m runtimes.detect IMAGE --model ARTIFACT: detect faces in one image, print them, save an annotated copy."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from runtimes.cli import run_cli
from runtimes.detector import Detector
from runtimes.draw import draw_detections
from runtimes.files import atomic_write_bytes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes.detect", description=(
        "Detect faces in an image with any converted artifact (.onnx, .tflite; its model.json beside it), "
        "print the detections as JSON lines and write an annotated image."))
    p.add_argument("image", type=Path, help="the image to run on")
    p.add_argument("--model", required=True, type=Path, help="artifact file or folder (e.g. artifacts/x/tflite-int8)")
    p.add_argument("--out", type=Path, help="annotated image path (default <image>_faces.jpg beside the image)")
    p.add_argument("--score-thr", type=float, default=0.5, help="minimum face score (default 0.5)")
    p.add_argument("--nms", type=float, default=0.4, help="NMS IoU threshold (default 0.4)")
    p.add_argument("--resize", choices=("letterbox", "stretch"), help="override the spec's resize mode")
    p.add_argument("--threads", type=int, help="inference threads (default: the runtime's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    image = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{args.image}: cannot be read as an image")
    detector = Detector.from_artifact(args.model, threads=args.threads, score_threshold=args.score_thr,
                                      nms_threshold=args.nms, resize=args.resize)
    detections = detector(image)
    for i in range(len(detections)):
        record = {"box": [round(float(v), 1) for v in detections.boxes[i]],
                  "score": round(float(detections.scores[i]), 4)}
        if detections.landmarks is not None:
            record["landmarks"] = [[round(float(v), 1) for v in p] for p in detections.landmarks[i]]
        print(json.dumps(record))
    out = args.out or args.image.with_name(f"{args.image.stem}_faces.jpg")
    ok, encoded = cv2.imencode(out.suffix or ".jpg", draw_detections(image, detections))
    if not ok:
        raise ValueError(f"{out}: cannot encode an image with this suffix")
    atomic_write_bytes(out, encoded.tobytes())
    print(f"{len(detections)} faces; annotated image: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
