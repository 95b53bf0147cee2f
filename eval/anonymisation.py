"""python -m eval.anonymisation: how many faces an anonymised video still shows, by a stronger reference model.

Videos come without face labels, so a reference detector (e.g. SCRFD at full size) finds the faces on each frame
of the original; a face counts as shown when the anonymised frame kept its fine detail: the correlation of the
central half of the face's high-pass (image minus its 2 px blur) with the original's is at least `threshold`
(measured on the shared clips through MJPG: faces left alone 0.98 to 1.0, blurred ones at most 0.38). A face too flat
to tell (no detail in the original either) is counted apart. Works on what any tool wrote, frame for frame.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from eval.breakdown import SIZE_BUCKETS  # face heights: the deployer's report's buckets; <16 is not judged
from runtimes.cli import add_detector_arguments, detector_options, fraction_argument, positive_int, run_cli
from runtimes.detection.detector import Detector
from runtimes.files import atomic_write_text, prepare_output

SHOWN = 0.5  # kept-detail correlation from which a face counts as shown
FLAT = 2.0  # high-pass standard deviation (grey levels) under which the original face has no detail to keep
DETAIL_PX = 48  # regions are compared at most this many pixels across, so detail means the same at every face size


def high_pass(image_bgr: np.ndarray) -> np.ndarray:
    """The region (scaled down to DETAIL_PX across) minus its 2 px blur, in grey levels."""
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float64)
    scale = DETAIL_PX / max(gray.shape)
    if scale < 1:
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    return gray - cv2.GaussianBlur(gray, (0, 0), 2)


def kept_detail(written_bgr: np.ndarray, original_bgr: np.ndarray) -> float:
    """Correlation of the fine detail of a written region with the original's: near 1 for a face shown (codec loss
    aside), near 0 once blurred, whatever edges the blurred boxes leave."""
    written, original = high_pass(written_bgr).ravel(), high_pass(original_bgr).ravel()
    if written.std() == 0 or original.std() == 0:
        return 0.0
    return float(np.corrcoef(written, original)[0, 1])


def centre_region(box: np.ndarray, width: int, height: int) -> tuple[slice, slice]:
    """The middle half of a face box (eyes, nose, mouth), clipped to the frame: what anonymisation must hide."""
    x1, y1, x2, y2 = box
    cx, cy, half_w, half_h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
    return (slice(max(int(cy - half_h), 0), min(int(np.ceil(cy + half_h)), height)),
            slice(max(int(cx - half_w), 0), min(int(np.ceil(cx + half_w)), width)))


def size_bucket(face_height: float) -> str:
    return next(name for low, high, name in SIZE_BUCKETS if low <= face_height < high)


@dataclass
class Audit:
    """Reference faces per size bucket: judged (big enough, with detail), shown (detail kept), flat (not judged)."""

    frames: int = 0
    frames_showing_a_face: int = 0
    judged: dict[str, int] = field(default_factory=dict)
    shown: dict[str, int] = field(default_factory=dict)
    flat: int = 0
    too_small: int = 0
    shown_faces: list[dict] = field(default_factory=list)  # frame, box, reference score, kept detail

    @property
    def miss_rate(self) -> float:
        """Share of judged reference faces the anonymised video still shows."""
        judged = sum(self.judged.values())
        return sum(self.shown.values()) / judged if judged else 0.0

    def table(self) -> str:
        rows = ["| face height px | reference faces | shown | shown % |", "|---|---|---|---|"]
        for _, _, bucket in SIZE_BUCKETS:
            judged, shown = self.judged.get(bucket, 0), self.shown.get(bucket, 0)
            if judged:
                rows.append(f"| {bucket} | {judged} | {shown} | {100 * shown / judged:.1f} |")
        total = sum(self.judged.values())
        rows.append(f"| all | {total} | {sum(self.shown.values())} | {100 * self.miss_rate:.1f} |")
        return "\n".join(rows) + (f"\n\n{self.frames} frames, {self.frames_showing_a_face} showing at least one "
                                  f"face; not judged: {self.too_small} faces under {SIZE_BUCKETS[1][0]} px, "
                                  f"{self.flat} without detail in the original")


def audit(original: Path, anonymised: Path, reference: Detector, threshold: float = SHOWN,
          max_frames: int | None = None) -> Audit:
    """Compare `anonymised` with `original` frame for frame at the faces `reference` finds on the original."""
    sources = [cv2.VideoCapture(str(path)) for path in (original, anonymised)]
    for path, capture in zip((original, anonymised), sources):
        if not capture.isOpened():
            raise ValueError(f"{path}: cannot be read as a video")
    counts = [int(c.get(cv2.CAP_PROP_FRAME_COUNT)) for c in sources]
    if abs(counts[0] - counts[1]) > 2:  # containers' counts are estimates; a real mismatch means other frames
        raise ValueError(f"{anonymised} has {counts[1]} frames, {original} {counts[0]}: not a frame-for-frame copy")
    result = Audit()
    total = min(counts + ([max_frames] if max_frames else []))
    try:
        for _ in tqdm(range(total), desc="audit", unit="frame", leave=False):
            (ok_a, frame), (ok_b, written) = (c.read() for c in sources)
            if not (ok_a and ok_b):
                break
            if frame.shape != written.shape:
                raise ValueError(f"{anonymised} is {written.shape[1]}x{written.shape[0]}, the original "
                                 f"{frame.shape[1]}x{frame.shape[0]}: not a frame-for-frame copy")
            shown_here = audit_frame(result, frame, written, reference(frame), threshold)
            result.frames_showing_a_face += shown_here > 0
            result.frames += 1
    finally:
        for capture in sources:
            capture.release()
    return result


def audit_frame(result: Audit, frame: np.ndarray, written: np.ndarray, faces, threshold: float) -> int:
    """Judge each reference face of one frame into `result`; returns how many the written frame shows."""
    height, width = frame.shape[:2]
    shown = 0
    for box, score in zip(faces.boxes, faces.scores):
        bucket = size_bucket(box[3] - box[1])
        if bucket == SIZE_BUCKETS[0][2]:
            result.too_small += 1
            continue
        region = centre_region(box, width, height)
        if high_pass(frame[region]).std() < FLAT:
            result.flat += 1
            continue
        kept = kept_detail(written[region], frame[region])
        result.judged[bucket] = result.judged.get(bucket, 0) + 1
        if kept >= threshold:
            result.shown[bucket] = result.shown.get(bucket, 0) + 1
            result.shown_faces.append({"frame": result.frames, "box": [round(float(v), 1) for v in box],
                                       "score": round(float(score), 3), "kept_detail": round(kept, 3)})
            shown += 1
    return shown


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.anonymisation", description=(
        "How many faces an anonymised video still shows (e.g. one written by python -m runtimes.run VIDEO --blur "
        "--out OUT), measured against a reference model's faces on the original: a face is shown when its centre "
        "kept its fine detail. Use a stronger model than the one that blurred (SCRFD at full size, say): faces "
        "neither finds are not counted. Writes a JSON report with every shown face's frame and box."))
    p.add_argument("original", type=Path, help="the video as it came in")
    p.add_argument("anonymised", type=Path, help="the same video as written by the anonymiser, frame for frame "
                   "(a near-lossless codec such as MJPG .avi keeps the measure clean)")
    p.add_argument("--reference", type=Path, required=True, help="artifact of the reference detector")
    add_detector_arguments(p, 0.5, "reference faces: score at least this")
    p.add_argument("--threshold", type=fraction_argument, default=SHOWN,
                   help=f"kept-detail correlation from which a face counts as shown (default {SHOWN})")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--out", type=Path, help="JSON report (default: <anonymised>.audit.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for path in (args.original, args.anonymised):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such video")
    out = prepare_output(args.out or args.anonymised.with_name(args.anonymised.name + ".audit.json"), (".json",))
    reference = Detector.from_artifact(args.reference, args.threads, runtime=args.runtime,
                                       score_threshold=args.score_thr, **detector_options(args))
    result = audit(args.original, args.anonymised, reference, args.threshold, args.max_frames)
    report = {**asdict(result), "miss_rate": result.miss_rate, "threshold": args.threshold,
              "reference": str(args.reference), "reference_score": args.score_thr}
    atomic_write_text(out, json.dumps(report, indent=1) + "\n")
    print(result.table())
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
