"""Calibration sets: a deterministic, representative image sample in the model's own preprocessing, cached by hash."""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration_data.images import list_images, read_images
from models.spec import ModelSpec
from runtimes.detection.preprocess import normalize, resize_to_canvas
from runtimes.files import atomic_write_bytes, shared_dir

DEFAULT_COUNT = 100
MIN_COUNT = 8  # fewer images give activation ranges that clip real faces (INT8 agreement fell below 0.9)


@dataclass(frozen=True)
class CalibrationSet:
    """canvases: (N,H,W,3) uint8 resized as the model sees them, in its channel order; sha256 names the content."""

    canvases: np.ndarray
    paths: tuple[Path, ...]
    sha256: str

    def normalized(self, spec: ModelSpec, layout: str = "NCHW") -> np.ndarray:
        """(N,…) float32 (x-mean)/std: the model's input for quantizers that run the float model."""
        return normalize(self.canvases, spec, layout)


SAMPLES = Path(__file__).parent / "samples"  # small WIDER train sets in the repo, for machines without ../shared


def default_calibration_dir() -> Path:
    """The shared WIDER train images where ../shared exists, else the 40 committed sample images."""
    shared = shared_dir() / "data" / "widerface" / "WIDER_train" / "images"
    return shared if shared.is_dir() else SAMPLES / "calibration"


def default_verification_dir() -> Path:
    """The shared WIDER val images where ../shared exists, else the 16 committed held-out sample images."""
    shared = shared_dir() / "data" / "widerface" / "WIDER_val" / "images"
    return shared if shared.is_dir() else SAMPLES / "verification"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "facekit" / "calibration"


def sample_representative(paths: list[Path], count: int, seed: int = 0) -> list[Path]:
    """Up to `count` paths, spread evenly over sub-folders (WIDER events), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    groups: dict[Path, list[Path]] = {}
    for path in paths:
        groups.setdefault(path.parent, []).append(path)
    queues = [list(rng.permutation(np.array(group, dtype=object))) for _, group in sorted(groups.items())]
    chosen: list[Path] = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    return sorted(chosen)


def calibration_images(folder: str | Path | None, count: int = DEFAULT_COUNT, seed: int = 0,
                       exclude: set[Path] = frozenset()) -> list[Path]:
    """`count` images sampled from `folder` (default: the shared WIDER train images), never those in `exclude`;
    needs no model, so a converter checks them before any export."""
    folder = Path(folder) if folder else default_calibration_dir()
    if count < MIN_COUNT:
        raise ValueError(f"calibration size {count} is too small: INT8 needs at least {MIN_COUNT} images "
                         f"({DEFAULT_COUNT} recommended)")
    candidates = [p for p in list_images(folder) if p.resolve() not in exclude]
    if len(candidates) < MIN_COUNT:
        raise ValueError(f"{folder}: {len(candidates)} usable calibration images; INT8 needs at least {MIN_COUNT} "
                         f"({DEFAULT_COUNT} recommended, never the verification images)")
    return sample_representative(candidates, count, seed)


def build_calibration_set(chosen: list[Path], spec: ModelSpec, cache_dir: Path | None = None) -> CalibrationSet:
    """The images from calibration_images in the model's preprocessing, cached by content."""
    key = _content_key(chosen, spec)
    cache = (cache_dir or default_cache_dir()) / f"calib_{key[:24]}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as data:
                return CalibrationSet(data["canvases"], tuple(chosen), key)
        except (OSError, ValueError, KeyError):
            cache.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted
    rgb = spec.channel_order == "RGB"
    canvases = np.stack([resize_to_canvas(img, spec.input_h, spec.input_w, spec.resize, rgb).canvas
                         for img in read_images(chosen)])
    buffer = io.BytesIO()
    np.savez(buffer, canvases=canvases)
    atomic_write_bytes(cache, buffer.getvalue())
    return CalibrationSet(canvases, tuple(chosen), key)


def _content_key(paths: list[Path], spec: ModelSpec) -> str:
    digest = hashlib.sha256(f"{spec.input_h}x{spec.input_w}:{spec.resize}:{spec.channel_order}".encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
