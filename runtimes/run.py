"""python -m runtimes.run SOURCE [--model ARTIFACT]: faces in a video, an image sequence or a camera, tracked.

Thin over runtimes.video.loop: opens the source and outputs (every bad path fails before any work), runs the
pipelined loop with a progress bar or a window, and writes the summary. Ctrl-C or SIGTERM stops cleanly: the
frames in flight are finished, the outputs closed with what was processed, the summary written, and the exit code
is 130 (143 for SIGTERM).
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from models.default import DEFAULT_MODEL
from runtimes.cli import (
    add_detector_arguments,
    add_model_argument,
    detector_options,
    non_negative_int,
    non_negative_number,
    positive_int,
    positive_number,
    run_cli,
    score_argument,
    stop_exit_code,
    stop_name,
)
from runtimes.detection.detector import Detector
from runtimes.files import atomic_write_text, prepare_output
from runtimes.video.loop import VideoRun
from runtimes.video.sinks import VIDEO_CODECS, JsonlSink, VideoSink
from runtimes.video.smooth import SmootherConfig
from runtimes.video.sources import open_source
from runtimes.video.track import TrackerConfig

WINDOW = "facekit (q or Esc to stop)"


def parser() -> argparse.ArgumentParser:
    tracker, smoother = TrackerConfig(), SmootherConfig()
    p = argparse.ArgumentParser(prog="python -m runtimes.run", description=(
        "Detect, track and smooth faces in a video file, an image folder or glob, or a camera, with any converted "
        "artifact (ONNX, TFLite, NCNN, MNN). Decoding and preprocessing run ahead of the model, tracking, drawing "
        "and writing behind it, on threads. Ctrl-C stops and keeps what was processed."))
    p.add_argument("source", help="video file, image file, folder of images, glob in quotes ('frames/*.jpg'), or a "
                                  "camera index such as 0")
    add_model_argument(p)
    add_detector_arguments(p, tracker.high_score, "score that starts a track and is matched first")
    p.add_argument("--out", type=Path, help=f"annotated video to write ({', '.join(VIDEO_CODECS)}); boxes, "
                                            "landmarks, track ids and an FPS line are drawn")
    p.add_argument("--json", type=Path, help="JSON Lines file, one record per frame (schema in the README)")
    p.add_argument("--summary", type=Path, help="summary JSON path (default: <out or json>.summary.json beside "
                                                "the first output; none without outputs)")
    p.add_argument("--every", type=positive_int, default=1, help="detect on every K-th frame and let the tracker "
                   "predict the others (default 1: every frame); for slow devices")
    p.add_argument("--low-score-thr", type=score_argument, default=tracker.low_score,
                   help=f"weaker detections down to this score only keep existing tracks alive, e.g. half-hidden "
                        f"faces (default {tracker.low_score})")
    p.add_argument("--min-hits", type=positive_int, default=tracker.min_hits,
                   help=f"detections before a track gets an id and is shown (default {tracker.min_hits})")
    p.add_argument("--max-misses", type=non_negative_int, default=tracker.max_misses,
                   help=f"detection frames without a match before a track dies (default {tracker.max_misses})")
    p.add_argument("--no-smooth", action="store_true", help="show tracked boxes as detected, without temporal "
                                                            "smoothing")
    p.add_argument("--smooth-min-cutoff", type=positive_number, default=smoother.min_cutoff,
                   help=f"smoothing of still faces, cycles per frame: lower is steadier (default "
                        f"{smoother.min_cutoff})")
    p.add_argument("--smooth-beta", type=non_negative_number, default=smoother.beta,
                   help=f"how quickly smoothing lets go as a face moves: higher lags less (default {smoother.beta})")
    p.add_argument("--no-scene-cuts", action="store_true", help="do not reset tracks at scene cuts (a cut "
                   "normally gives every face a new id and forces a detection)")
    p.add_argument("--reference-runs", type=non_negative_int, default=10,
                   help="backend-alone runs (x3 blocks) timed on the first frame, the reference the summary's "
                        "efficiency is judged against (default 10; 0 skips it, e.g. under emulation)")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--fps", type=positive_number, default=25.0, help="frame rate of image sequences, and of videos or "
                                                           "cameras that report none (default 25)")
    p.add_argument("--show", action="store_true", help="show the annotated frames in a window (needs an OpenCV "
                                                       "build with a GUI); q or Esc stops")
    return p


def check_window_support() -> None:
    """--show needs OpenCV's GUI; the headless build the kit installs has none: say so before any work."""
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error as err:
        raise ValueError("--show needs an OpenCV build with a GUI (this one is headless: pip install "
                         "opencv-python in place of opencv-python-headless), or drop --show and use --out") from err


def refuse_overwriting_the_source(source: str, outputs: list[Path | None]) -> None:
    """An output that resolves to the source (or to one of its images) would destroy what is being read."""
    path = Path(source)
    read = (list(path.iterdir()) if path.is_dir() else [path] if path.is_file()
            else [Path(p) for p in glob.glob(source)])
    inputs = {p.resolve() for p in read}
    for output in outputs:
        if output is not None and output.resolve() in inputs:
            raise ValueError(f"{output}: is what {source} reads; choose another output path (nothing was written)")


def summary_path(args) -> Path | None:
    if args.summary:
        return args.summary
    first = args.out or args.json
    return first.with_name(f"{first.stem}.summary.json") if first else None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    model = args.model or DEFAULT_MODEL.artifact()
    tracker = TrackerConfig(high_score=args.score_thr, low_score=args.low_score_thr, min_hits=args.min_hits,
                            max_misses=args.max_misses)
    smoother = SmootherConfig(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta)
    summary_file = summary_path(args)
    refuse_overwriting_the_source(args.source, [args.out, args.json, summary_file])
    for path, suffixes in ((args.out, tuple(VIDEO_CODECS)), (args.json, None), (summary_file, None)):
        if path is not None:
            prepare_output(path, suffixes)
    detector = Detector.from_artifact(model, threads=args.threads, runtime=args.runtime,
                                      score_threshold=tracker.low_score,
                                      **detector_options(args))
    if args.show:
        check_window_support()
    source = open_source(args.source, fps=args.fps)
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        video = VideoSink(args.out, source.fps) if args.out else None
        jsonl = JsonlSink(args.json) if args.json else None
        run = VideoRun(detector, every=args.every, tracker=tracker, smoother=smoother, smooth=not args.no_smooth,
                       video=video, jsonl=jsonl, draw=args.show, scene_cuts=not args.no_scene_cuts,
                       reference_runs=args.reference_runs)
        interrupted, stopped = None, False
        total = min(filter(None, (source.frame_count, args.max_frames)), default=None)
        try:
            with contextlib.closing(run.frames(source, args.max_frames)) as results:
                progress = tqdm(results, total=total, unit="frame", desc="faces", disable=args.show or None)
                for result in progress:
                    if args.show:
                        cv2.imshow(WINDOW, result.annotated)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            stopped = True
                            break
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM (see runtimes.cli.run_cli)
            interrupted = stop
        finally:
            for sink in (video, jsonl):
                if sink is not None:
                    sink.close(commit=run.frames_done > 0)
        if run.frames_done == 0:
            raise ValueError(f"{source.name}: no frame could be read ({source.corrupt} unreadable); nothing "
                             "was written")
    summary = {"source": source.name, "model": str(model), "threads": args.threads,
               **run.summary(), "corrupt_frames": source.corrupt, "declared_frames": source.frame_count,
               "ended_early": source.ended_early() and not (interrupted or stopped) and (
                   args.max_frames is None or run.frames_done < args.max_frames),
               "interrupted": interrupted is not None, "stopped_by": interrupted and stop_name(interrupted),
               "stopped_by_user": stopped,
               "outputs": {k: str(v) for k, v in (("video", args.out), ("json", args.json)) if v}}
    if summary_file is not None:
        atomic_write_text(summary_file, json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary), file=sys.stderr)
    return stop_exit_code(interrupted) if interrupted else 0


def format_summary(summary: dict) -> str:
    """The summary as a few readable lines: speed against the backend-alone bound, then each stage."""
    reference = (f"backend alone {summary['forward_alone_ms']:.2f} ms/frame -> bound "
                 f"{summary['forward_bound_fps']:.1f} FPS, efficiency {summary['efficiency']:.2f}"
                 if summary["efficiency"] else "no backend-alone reference (--reference-runs 0)")
    lines = [f"{summary['frames']} frames ({summary['detected_frames']} detected, {summary['corrupt_frames']} "
             f"unreadable skipped) in {summary['wall_s']:.1f} s: {summary['fps']:.1f} FPS; {reference}",
             f"{summary['faces_per_frame']:.2f} faces per frame, {summary['tracks']} tracks, "
             f"{summary['scene_cuts']} scene cuts",
             "stage        mean ms   p90 ms"]
    lines += [f"{stage:<12} {t['mean_ms']:>7.2f}  {t['p90_ms']:>7.2f}" for stage, t in summary["stages"].items()]
    if summary["ended_early"]:
        lines.append(f"the stream ended early: {summary['frames'] + summary['corrupt_frames']} of the "
                     f"{summary['declared_frames']} frames its container declares could be read (a truncated or "
                     "damaged file?)")
    if summary["interrupted"]:
        lines.append(f"interrupted: outputs hold the frames processed until {summary['stopped_by']}")
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
