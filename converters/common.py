"""What every converter CLI shares: source arguments, held-out images, step logs, tool output capture."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from calibration_data.calibration import default_verification_dir, sample_representative
from calibration_data.images import list_images
from converters.options import VERIFY_COUNT, UsageError
from models.default import DEFAULT_MODEL
from models.families import FAMILIES, family_help
from runtimes.cli import hw_argument, int_range, positive_int

log = logging.getLogger("facekit")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments naming the model to convert, its input size and where artifacts go."""
    src = parser.add_argument_group("model source (one of; none: the kit's trained default "
                                    f"{DEFAULT_MODEL.name}, {DEFAULT_MODEL.model} from {DEFAULT_MODEL.weights_label})")
    src.add_argument("--onnx", type=Path, help="an existing ONNX file (e.g. insightface's scrfd_500m_kps.onnx)")
    src.add_argument("--family", choices=tuple(FAMILIES),
                     help=f"with --onnx: the detector family, checked against the output shapes ({family_help()})")
    src.add_argument("--model",
                     help="a registered PyTorch model: scrfd_500m, scrfd_500m_kps, ultraface_slim, ultraface_rfb")
    src.add_argument("--weights", type=Path, help="with --model: a state dict (.pth) loaded strictly")
    parser.add_argument("--hw", default="480,640", type=hw_argument,
                        help="fixed input H,W, each divisible by 32 (default 480,640)")
    parser.add_argument("--opset", type=int_range(11, 20, "an ONNX opset"), default=13,
                        help="ONNX opset of the hub model, 11 to 20 (the TorchScript exporter's range; default 13, "
                             "what every backend is tested with)")
    parser.add_argument("--name", help="model name used in folder names and model.json (default from the source)")
    parser.add_argument("--out", type=Path, help="output folder (default artifacts/<name>_<H>x<W>)")
    parser.add_argument("--verify-images", type=Path,
                        help="folder of held-out images for verification (default: the shared WIDER val images, "
                             "else the repo's calibration_data/samples/verification)")
    parser.add_argument("--verify-count", type=positive_int, default=VERIFY_COUNT,
                        help=f"how many held-out images verification uses (default {VERIFY_COUNT})")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the converters' own logs")


REPO = Path(__file__).resolve().parents[1]


def source_label(path: Path) -> str:
    """A source path as provenance records it: relative to the repository when inside it (the committed default
    weights), so shipped model.json files name no machine's folders; as given otherwise."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def held_out_images(folder: Path | None, count: int = VERIFY_COUNT) -> list[Path]:
    """A deterministic sample of verification images, never the calibration ones (default: WIDER val)."""
    folder = folder or default_verification_dir()
    if not folder.is_dir():
        raise UsageError(f"{folder}: no held-out images to verify on; pass --verify-images DIR")
    return sample_representative(list_images(folder), count, seed=1)


@contextmanager
def step(label: str) -> Iterator[None]:
    """Log a conversion step with its duration."""
    log.info("%s ...", label)
    start = time.perf_counter()
    yield
    log.info("%s done in %.1f s", label, time.perf_counter() - start)


@contextmanager
def tool_output_to(log_path: Path, verbose: bool = False) -> Iterator[None]:
    """Send what third-party tools print (also from C++, straight to fds 1 and 2) to a log file.

    On failure the log's last lines are shown, so a user sees why without rerunning with -v.
    """
    if verbose:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    failed = False
    with open(log_path, "ab") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            if failed:
                tail = Path(log_path).read_text(errors="replace").splitlines()[-30:]
                print("\n".join([f"--- last lines of {log_path}", *tail]), file=sys.stderr)
