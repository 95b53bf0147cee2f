"""python -m runtimes.run SOURCE [--model ARTIFACT]: faces in a video, an image sequence, a camera or a network
stream, tracked, optionally blurred, served to a browser and written as JSON Lines.

Thin over runtimes.video.loop: opens the source and outputs (every bad path fails before any work), runs the
pipelined loop with a progress bar or a window, and writes the summary. Ctrl-C or SIGTERM stops cleanly: the
frames in flight are finished, the outputs closed with what was processed, the summary written, and the exit code
is 130 (143 for SIGTERM); a live stream lost for good exits 3 after the same.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
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
    parsed_by,
    positive_int,
    positive_number,
    run_cli,
    score_argument,
    stop_exit_code,
    stop_name,
)
from runtimes.detection.detector import Detector
from runtimes.files import atomic_write_text, prepare_output
from runtimes.video.anonymise import DEFAULT_MARGIN
from runtimes.video.loop import Anonymiser, VideoRun
from runtimes.video.preview import PreviewServer, parse_address
from runtimes.video.sinks import VIDEO_CODECS, JsonlSink, StdoutJsonl, VideoSink
from runtimes.video.smooth import SmootherConfig
from runtimes.video.sources import open_source
from runtimes.video.stream import is_stream_url, parse_stream_option
from runtimes.video.track import TrackerConfig

WINDOW = "facekit (q or Esc to stop)"
STREAM_LOST_EXIT = 3  # a live stream went away and did not come back within --reconnect tries
EPILOG = """live sources (cameras, rtsp:// http(s):// udp:// ... URLs) are read on their own thread and only the newest
frame is processed: frames the model has no time for are dropped and counted, never queued. Exit codes: 0 done,
2 bad input, 3 a live stream lost for good, 130 Ctrl-C, 143 SIGTERM."""



def parser() -> argparse.ArgumentParser:
    tracker, smoother = TrackerConfig(), SmootherConfig()
    p = argparse.ArgumentParser(prog="python -m runtimes.run", epilog=EPILOG, description=(
        "Detect, track and smooth faces in a video file, an image folder or glob, a camera or a network stream, "
        "with any converted artifact (ONNX, TFLite, NCNN, MNN). Decoding and preprocessing run ahead of the model, "
        "tracking, drawing and writing behind it, on threads. Ctrl-C stops and keeps what was processed."))
    p.add_argument("source", help="video file, image file, folder of images, glob in quotes ('frames/*.jpg'), a "
                                  "camera index such as 0, or a stream URL (rtsp://, rtsps://, http(s)://, udp://)")
    add_model_argument(p)
    add_detector_arguments(p, tracker.high_score, "score that starts a track and is matched first")
    p.add_argument("--out", type=Path, help=f"annotated video to write ({', '.join(VIDEO_CODECS)}); boxes, "
                                            "landmarks, track ids and an FPS line are drawn")
    p.add_argument("--json", type=Path, help="JSON Lines file, one record per frame (schema in the README); - for "
                                             "standard output, flushed per frame, to pipe into another program")
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
    live = p.add_argument_group("live sources and headless devices")
    live.add_argument("--serve", type=parsed_by(parse_address), metavar="[HOST:]PORT",
                      help="serve a preview page (annotated MJPEG stream, FPS, faces, stage times) and /stats.json; "
                           "PORT alone listens on 127.0.0.1 only, give HOST (e.g. 0.0.0.0) to let other machines in")
    live.add_argument("--serve-fps", type=positive_number, default=15.0,
                      help="most frames per second sent to each preview viewer (default 15); JPEG encoding for "
                           "viewers costs CPU the model would otherwise get")
    live.add_argument("--stream-option", type=parsed_by(parse_stream_option), action="append", default=[],
                      metavar="KEY=VALUE",
                      help="an FFmpeg option for stream URLs, repeatable, e.g. rtsp_transport=tcp (RTSP defaults "
                           "to TCP, then UDP if the server refuses TCP), or buffer_size=1048576 for udp://")
    live.add_argument("--read-timeout", type=positive_number, default=5.0,
                      help="seconds a stream may stay silent (and opening may take) before it counts as dropped "
                           "(default 5)")
    live.add_argument("--reconnect", type=non_negative_int, default=10,
                      help="reconnection tries after a live source drops, waiting 0.5, 1, 2, 4 then 8 s between "
                           "them (default 10; 0 ends the run at the first drop); the summary counts reconnections "
                           "and the seconds lost")
    privacy = p.add_argument_group("anonymisation (the video, the preview and the window; not the JSON)")
    hide = privacy.add_mutually_exclusive_group()
    hide.add_argument("--blur", dest="anonymise", action="store_const", const="blur",
                      help="blur every face the run knows of: shown, newly seen and tracked between keyframes")
    hide.add_argument("--pixelate", dest="anonymise", action="store_const", const="pixelate",
                      help="pixelate them instead (about six cells across a face)")
    privacy.add_argument("--blur-margin", type=non_negative_number, default=DEFAULT_MARGIN,
                         help=f"share of a face box's size added on each side of what is hidden (default "
                              f"{DEFAULT_MARGIN})")
    privacy.add_argument("--no-boxes", action="store_true", help="draw no boxes, ids, landmarks or status line")
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
    if is_stream_url(source):
        return
    path = Path(source)
    read = (list(path.iterdir()) if path.is_dir() else [path] if path.is_file()
            else [Path(p) for p in glob.glob(source)])
    inputs = {p.resolve() for p in read}
    for output in outputs:
        if output is not None and output.resolve() in inputs:
            raise ValueError(f"{output}: is what {source} reads; choose another output path (nothing was written)")


def to_stdout(path: Path | None) -> bool:
    return path is not None and str(path) == "-"


def summary_path(args) -> Path | None:
    if args.summary:
        return args.summary
    first = args.out or (None if to_stdout(args.json) else args.json)
    return first.with_name(f"{first.stem}.summary.json") if first else None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    model = args.model or DEFAULT_MODEL.artifact()
    tracker = TrackerConfig(high_score=args.score_thr, low_score=args.low_score_thr, min_hits=args.min_hits,
                            max_misses=args.max_misses)
    smoother = SmootherConfig(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta)
    summary_file = summary_path(args)
    json_file = None if to_stdout(args.json) else args.json
    refuse_overwriting_the_source(args.source, [args.out, json_file, summary_file])
    for path, suffixes in ((args.out, tuple(VIDEO_CODECS)), (json_file, None), (summary_file, None)):
        if path is not None:
            prepare_output(path, suffixes)
    detector = Detector.from_artifact(model, threads=args.threads, runtime=args.runtime,
                                      score_threshold=tracker.low_score,
                                      **detector_options(args))
    if args.show:
        check_window_support()
    source = open_source(args.source, fps=args.fps, stream_options=dict(args.stream_option),
                         read_timeout_s=args.read_timeout, reconnect=args.reconnect)
    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        video = VideoSink(args.out, source.fps) if args.out else None
        jsonl = StdoutJsonl() if to_stdout(args.json) else JsonlSink(args.json) if args.json else None
        run = VideoRun(detector, every=args.every, tracker=tracker, smoother=smoother, smooth=not args.no_smooth,
                       video=video, jsonl=jsonl, draw=args.show, scene_cuts=not args.no_scene_cuts,
                       reference_runs=args.reference_runs, boxes=not args.no_boxes,
                       anonymiser=Anonymiser(args.anonymise, args.blur_margin) if args.anonymise else None)
        if args.serve:
            run.preview = PreviewServer(args.serve, run.live_stats, source.name, max_fps=args.serve_fps)
            run.draw = True
            stack.callback(run.preview.close)
            print(f"preview: {run.preview.url}", file=sys.stderr)
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
        except BrokenPipeError:  # --json - into a reader that went away (| head): a normal end
            sys.stdout = open(os.devnull, "w")
            stopped = True
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
    if args.serve:
        summary["preview"] = {"url": run.preview.url, "frames_encoded": run.preview.encoded}
    if summary_file is not None:
        atomic_write_text(summary_file, json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary), file=sys.stderr)
    if interrupted:
        return stop_exit_code(interrupted)
    return STREAM_LOST_EXIT if summary.get("stream_lost") else 0


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
    if summary["latency_ms"]:
        latency = summary["latency_ms"]
        lines.append(f"latency, capture to written: median {latency['p50']:.1f} ms, p90 {latency['p90']:.1f} ms, "
                     f"max {latency['max']:.1f} ms")
    if "dropped_frames" in summary:
        lines.append(f"live: {summary['dropped_frames']} frames dropped (the newest is always taken), "
                     f"{summary['reconnects']} reconnections, {summary['seconds_lost']:.1f} s without frames")
    if summary.get("stream_lost"):
        lines.append("the stream was lost and did not come back within --reconnect tries")
    if summary["ended_early"]:
        lines.append(f"the stream ended early: {summary['frames'] + summary['corrupt_frames']} of the "
                     f"{summary['declared_frames']} frames its container declares could be read (a truncated or "
                     "damaged file?)")
    if summary["interrupted"]:
        lines.append(f"interrupted: outputs hold the frames processed until {summary['stopped_by']}")
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
