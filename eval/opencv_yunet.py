"""python -m eval.opencv_yunet: OpenCV's own face detector (cv2.FaceDetectorYN) on the WIDER val images, written as
a submission folder that `python -m eval --pred` scores beside the kit's artifacts: what a user would run instead.

Each image is letterboxed into H×W exactly as the kit's Detector does (so the two see the same pixels), detected
at the same score threshold, NMS IoU and candidate cap as eval's defaults, and mapped back to image pixels.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from eval.groundtruth import load_ground_truth
from eval.predictions import write_prediction
from runtimes.cli import hw_argument, iou_argument, positive_int, run_cli, score_argument
from runtimes.detection.detector import PRE_NMS_TOP_K
from runtimes.detection.preprocess import resize_to_canvas
from runtimes.files import prepare_output_dir, shared_dir


def detect(detector, image: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N,4) xyxy in image pixels and scores (N,) of cv2.FaceDetectorYN on the letterboxed image."""
    resized = resize_to_canvas(image, h, w, "letterbox", rgb=False)  # YuNet takes BGR
    _, faces = detector.detect(resized.canvas)
    if faces is None:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    boxes = np.c_[faces[:, :2], faces[:, :2] + faces[:, 2:4]] / np.array([resized.scale_x, resized.scale_y] * 2)
    return boxes.astype(np.float32), faces[:, 14].astype(np.float32)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.opencv_yunet", description=__doc__.split(": ", 1)[1])
    p.add_argument("--onnx", type=Path, required=True, help="the YuNet ONNX cv2.FaceDetectorYN loads (e.g. "
                                                             "../shared/weights/yunet/face_detection_yunet_2023mar.onnx)")
    p.add_argument("--data", type=Path, help="WIDER FACE root (default ../shared/data/widerface)")
    p.add_argument("--hw", type=hw_argument, default=(480, 640), help="letterbox H,W (default 480,640)")
    p.add_argument("--score-thr", type=score_argument, default=0.02, help="score threshold (default 0.02, eval's)")
    p.add_argument("--nms", type=iou_argument, default=0.4, help="NMS IoU (default 0.4, eval's)")
    p.add_argument("--top-k", type=positive_int, default=PRE_NMS_TOP_K,
                   help=f"candidates into NMS (default {PRE_NMS_TOP_K}, the kit's Detector's)")
    p.add_argument("--out", type=Path, required=True, help="submission folder to write (<event>/<image>.txt)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    prepare_output_dir(args.out)
    if not args.onnx.is_file():
        raise FileNotFoundError(f"{args.onnx}: no such ONNX file")
    data = args.data or shared_dir() / "data" / "widerface"
    truth = load_ground_truth(data)
    h, w = args.hw
    try:
        detector = cv2.FaceDetectorYN.create(str(args.onnx), "", (w, h), args.score_thr, args.nms, args.top_k)
    except cv2.error as err:
        raise ValueError(f"{args.onnx}: cv2.FaceDetectorYN cannot load it ({str(err).strip()})") from err
    images = data / "WIDER_val" / "images"
    for item in tqdm(truth.images, desc="FaceDetectorYN", unit="image", disable=None):
        image = cv2.imread(str(images / f"{item.key}.jpg"), cv2.IMREAD_COLOR)
        if image is None:
            print(f"warning: {item.key}.jpg cannot be read; no prediction written", file=sys.stderr)
            continue
        write_prediction(args.out, item.key, *detect(detector, image, h, w))
    print(f"wrote {len(truth.images)} prediction files to {args.out}; score them with: python -m eval --pred "
          f"{args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_cli(main)
