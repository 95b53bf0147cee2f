"""Finding and reading images, with errors that name the offending files."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from runtimes.files import IMAGE_SUFFIXES

TAIL_BYTES = 4096  # where an end marker must be: cameras may append a little padding after it

log = logging.getLogger("facekit")


def list_images(folder: str | Path) -> list[Path]:
    """Every complete image file below `folder`, sorted; ValueError if there is none. Ignored non-image files and
    dropped truncated images are logged with their count (OpenCV decodes a truncated JPEG as a flat grey tail)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such image folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    truncated = [p for p in images if not is_complete(p)]
    if others:
        log.warning("%s: ignoring %d non-image files: %s", folder, len(others), _names(others))
    if truncated:
        log.warning("%s: dropped %d of %d images that are truncated or damaged (no end marker): %s", folder,
                    len(truncated), len(images), _names(truncated))
    complete = [p for p in images if p not in set(truncated)]
    if not complete:
        found = (f"all {len(images)} images are truncated or damaged" if images
                 else f"found only {_names(others)}" if others else "it is empty")
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}); {found}")
    return complete


def is_complete(path: Path) -> bool:
    """Whether the file has its format's end: JPEG's EOI or PNG's IEND near the end, or the length a BMP or
    WebP header declares. Reads a few KB; files of other formats pass (decoding them finds the rest)."""
    with open(path, "rb") as f:
        head = f.read(12)
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read()
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" in tail
    if head.startswith(b"\x89PNG"):
        return b"IEND" in tail
    if head.startswith(b"BM"):
        return size >= int.from_bytes(head[2:6], "little")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return size >= int.from_bytes(head[4:8], "little") + 8
    return True


SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # JPEG frame headers


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header or a PNG's IHDR without decoding; None for other or broken files."""
    with open(path, "rb") as f:
        head = f.read(24)
        if head.startswith(b"\x89PNG") and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if not head.startswith(b"\xff\xd8"):
            return None
        f.seek(2)
        while (marker := f.read(4))[:1] == b"\xff" and len(marker) == 4:
            length = int.from_bytes(marker[2:4], "big")
            if marker[1] in SOF_MARKERS:
                frame = f.read(5)  # precision, height, width
                if len(frame) < 5:
                    return None
                return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
            f.seek(length - 2, os.SEEK_CUR)
    return None


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
