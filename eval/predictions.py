"""Predictions in the official submission format: <event>/<image>.txt = name, count, 'x y w h score' lines."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.files import atomic_write_text


def format_prediction(name: str, boxes_xyxy: np.ndarray, scores: np.ndarray) -> str:
    """The text of one submission file; boxes become x,y,w,h, rows sorted by descending score."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes_xyxy[order].astype(np.float64)
    rows = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], scores[order].astype(np.float64)])
    body = ("%.2f %.2f %.2f %.2f %.6f\n" * len(rows)) % tuple(rows.ravel().tolist())
    return f"{name}\n{len(rows)}\n{body}"


def write_prediction(folder: Path, key: str, boxes_xyxy: np.ndarray, scores: np.ndarray) -> Path:
    path = Path(folder) / f"{key}.txt"
    atomic_write_text(path, format_prediction(Path(key).name, boxes_xyxy, scores))
    return path


def read_prediction(path: Path) -> np.ndarray:
    """(N,5) float64 x,y,w,h,score; ValueError naming the file for a malformed, NaN or negative-size entry."""
    parts = Path(path).read_text().split("\n", 2)
    if len(parts) < 2 or not parts[1].strip().isdigit():
        raise ValueError(f"{path}: not a WIDER submission file (line 1 the image name, line 2 the count)")
    count = int(parts[1])
    rows = [line for line in (parts[2] if len(parts) > 2 else "").splitlines() if line.strip()]
    if len(rows) != count:
        raise ValueError(f"{path}: says {count} detections but has {len(rows)}")
    tokens = " ".join(rows).split()
    if len(tokens) != 5 * count or any(len(row.split()) != 5 for row in rows):
        raise ValueError(f"{path}: every detection line needs exactly 5 numbers: x y w h score")
    try:
        boxes = np.array(tokens, dtype=np.float64).reshape(count, 5)
    except ValueError as err:
        raise ValueError(f"{path}: a detection line is not 'x y w h score' numbers ({err})") from err
    if not np.isfinite(boxes).all():
        raise ValueError(f"{path}: NaN or infinite values in its detections")
    if (boxes[:, 2:4] < 0).any():
        raise ValueError(f"{path}: negative box width or height")
    return boxes


def read_predictions(folder: Path, keys: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Predictions for the keys that have a file; the keys without one are returned as missing."""
    found, missing = {}, []
    for key in keys:
        path = Path(folder) / f"{key}.txt"
        if path.is_file():
            found[key] = read_prediction(path)
        else:
            missing.append(key)
    return found, missing


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' (1-based) → (i, n)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/n such as 1/4, got {text!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard {text}: i must be between 1 and n")
    return i, n


def shard_of(keys: list[str], shard: tuple[int, int]) -> list[str]:
    """Every n-th key starting at i (1-based), so shards get similar mixes of events."""
    i, n = shard
    return keys[i - 1::n]
