"""Finding and reading images, with errors that name the offending files."""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def list_images(folder: str | Path) -> list[Path]:
    """Every image file below `folder`, sorted; ValueError if there is none, a warning listing ignored files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such image folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if not images:
        found = f"found only {_names(others)}" if others else "it is empty"
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}); {found}")
    if others:
        warnings.warn(f"{folder}: ignoring {len(others)} non-image files: {_names(others)}", stacklevel=2)
    return images


def read_image(path: str | Path) -> np.ndarray:
    """A BGR uint8 image, or ValueError naming the file when it does not decode."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot be read as an image (missing, corrupt or not an image)")
    return image


def read_images(paths: list[Path]) -> list[np.ndarray]:
    """Decode every path; one ValueError naming all the files that failed, so a user fixes them in one go."""
    images, bad = [], []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        (bad if image is None else images).append(path if image is None else image)
    if bad:
        raise ValueError(f"{len(bad)} files cannot be decoded as images: {_names(bad)}")
    return images


def _names(paths: list[Path], limit: int = 5) -> str:
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
