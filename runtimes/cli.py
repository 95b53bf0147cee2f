"""What every facekit command shares: one exit path (user errors print one line and exit 2, never a traceback;
Ctrl-C and SIGTERM unwind the same way, so no command leaves partial files or temp folders) and the arguments
that pick a model and set up its Detector, each value range-checked by the parser."""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from runtimes.detection.detector import MAX_DET, PRE_NMS_TOP_K


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, systemd and docker stop send) raised in the main thread, so every `finally` and
    every handler of Ctrl-C runs for it too; exits 143 where Ctrl-C exits 130."""

    exit_code = 143


def stop_exit_code(stop: KeyboardInterrupt) -> int:
    return getattr(stop, "exit_code", 130)


def stop_name(stop: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"


def _terminate(signum, frame):
    raise Terminated


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a command's main; FileNotFoundError/ValueError (bad input) → 'error: …' and exit 2, Ctrl-C → 130,
    SIGTERM → 143, else main's code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # Ctrl-C stops even when started with SIGINT ignored (`cmd &` in a script, some supervisors)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = main(argv)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt as stop:
        print(f"stopped by {stop_name(stop)}: temp files removed, finished outputs kept", file=sys.stderr)
        code = stop_exit_code(stop)
    sys.exit(code)


def parsed_by(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a parser that raises ValueError: its message becomes the usage error."""
    def argument(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    argument.__name__ = parse.__name__  # argparse names the type in its 'invalid ... value' fallback
    return argument


def hw_argument(text: str) -> tuple[int, int]:
    """argparse type for 'H,W' (each divisible by 32): a bad value is a usage error naming the valid sizes."""
    from models.spec import parse_hw

    return parsed_by(parse_hw)(text)


def _number(text: str, kind: type, ok: Callable[[float], bool], expected: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def score_argument(text: str) -> float:
    """argparse type for a score threshold: 0 to 1."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a score from 0 to 1")


def iou_argument(text: str) -> float:
    """argparse type for an NMS IoU threshold: above 0, at most 1."""
    return _number(text, float, lambda v: 0 < v <= 1, "an IoU above 0 and at most 1")


def fraction_argument(text: str) -> float:
    """argparse type for a share: 0 to 1."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a fraction from 0 to 1")


def int_range(low: int, high: int, what: str) -> Callable[[str], int]:
    """argparse type for a whole number from low to high."""
    return lambda text: _number(text, int, lambda v: low <= v <= high, f"{what} from {low} to {high}")


def float_range(low: float, high: float, what: str) -> Callable[[str], float]:
    """argparse type for a number from low to high."""
    return lambda text: _number(text, float, lambda v: low <= v <= high, f"{what} from {low:g} to {high:g}")


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a whole number of 1 or more")


def non_negative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "a whole number of 0 or more")


def positive_number(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a number above 0")


def non_negative_number(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "a number of 0 or more")


def cap_argument(text: str) -> int | None:
    """argparse type for a candidate cap: a count of 1 or more, or 0 for none."""
    return _number(text, int, lambda v: v >= 0, "a whole number of 0 (no cap) or more") or None


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """--model ARTIFACT, defaulting to the model the kit ships."""
    from models.default import DEFAULT_MODEL

    parser.add_argument("--model", type=Path, help=(
        "artifact folder or file with its model.json, from any converter: ONNX, TFLite, NCNN or MNN (e.g. "
        f"artifacts/scrfd_500m_kps_480x640/tflite-int8). Default: the kit's own {DEFAULT_MODEL.name}, shipped "
        f"as {DEFAULT_MODEL.shipped_label}"))


def add_detector_arguments(parser: argparse.ArgumentParser, score_default: float, score_help: str) -> None:
    """The Detector's settings: runtime, threads, score and NMS thresholds, resize mode, candidate caps."""
    from runtimes.backends.base import RUNTIMES

    own: dict[str, str] = {}
    for runtime in RUNTIMES.values():
        own.setdefault(runtime.suffix, runtime.name)
    parser.add_argument("--runtime", choices=tuple(RUNTIMES), help="the runtime that runs the artifact (default: its "
                        f"file type's own: {', '.join(f'{s} {n}' for s, n in own.items())}); opencv runs .onnx "
                        "files through OpenCV's DNN module")
    parser.add_argument("--threads", type=positive_int, help="backend threads (default: the runtime's own)")
    parser.add_argument("--score-thr", type=score_argument, default=score_default,
                        help=f"{score_help} (default {score_default})")
    parser.add_argument("--nms", type=iou_argument, default=0.4, help="NMS IoU threshold (default 0.4)")
    parser.add_argument("--resize", choices=("letterbox", "stretch"),
                        help="override the model's resize mode (letterbox; stretch is how Ultra-Light's own "
                             "numbers were made)")
    parser.add_argument("--pre-nms-top-k", type=cap_argument, default=PRE_NMS_TOP_K,
                        help=f"only the k best candidates go into NMS (default {PRE_NMS_TOP_K}; 0: all). Bounds the "
                             "time any model can take, however many priors it scores high")
    parser.add_argument("--max-det", type=cap_argument, default=MAX_DET,
                        help=f"at most this many detections per image (default {MAX_DET}; 0: all)")


def detector_options(args: argparse.Namespace) -> dict:
    """The Detector keyword arguments add_detector_arguments parsed (the score threshold is each command's own)."""
    return {"nms_threshold": args.nms, "resize": args.resize, "pre_nms_top_k": args.pre_nms_top_k,
            "max_det": args.max_det}
