"""Run every artifact on every image through Detector and print one JSON document: the device record and the
detections. Runs on the host for the reference and inside the emulated root for each core (one process, since
Python's imports alone take seconds there)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from benchmarks.device import device_record
from runtimes.detection.detector import Detector


def detections(artifact: Path, images: list[Path], threads: int) -> dict[str, list[dict]]:
    detector = Detector.from_artifact(artifact, threads=threads, score_threshold=0.5)
    found = {}
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: cannot be read as an image")
        faces = detector(image)
        found[path.name] = faces.to_records(pixel_digits=2, score_digits=5)
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.aarch64.probe", description=__doc__)
    p.add_argument("--model", type=Path, action="append", required=True, help="artifact folder (repeatable)")
    p.add_argument("--image", type=Path, action="append", required=True, help="image (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    result = {"device": device_record(), "artifacts": {}}
    for artifact in args.model:
        try:
            result["artifacts"][artifact.name] = detections(artifact, args.image, args.threads)
        except (ValueError, FileNotFoundError, RuntimeError) as err:
            result["artifacts"][artifact.name] = {"error": str(err)}
        print(f"probed {artifact.name}", file=sys.stderr, flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
