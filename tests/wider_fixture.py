"""A WIDER FACE val root in the official layout (images/<event>/, ground_truth/*.mat) made from any images and
boxes, so the evaluation CLI can be tested on a machine without ../shared."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from eval.groundtruth import SETTINGS


def event_of(sample_name: str) -> str:
    """'3_Riot_Riot_3_178' → '3--Riot', the WIDER event folder the committed sample came from."""
    number, event = sample_name.split("_")[:2]
    return f"{number}--{event}"


def cells(items: list) -> np.ndarray:
    """A MATLAB cell column (what the official .mat files hold at every level)."""
    column = np.empty((len(items), 1), object)
    for i, item in enumerate(items):
        column[i, 0] = item
    return column


def write_wider_val(root: Path, images: dict[str, Path], faces: dict[str, np.ndarray],
                    min_width: dict[str, float], listed_only: tuple[str, ...] = ()) -> None:
    """A val root under `root`: `images` (key 'event/name' → file) copied in; `faces` (key → (K,4) x,y,w,h)
    written as wider_face_val.mat, each setting keeping the faces at least min_width[setting] wide; keys in
    listed_only are in the ground truth without an image (as the official list holds images one may not have)."""
    from scipy.io import savemat

    for key, path in images.items():
        (root / "WIDER_val" / "images" / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / "WIDER_val" / "images" / f"{key}.jpg")
    keys = sorted([*images, *listed_only])
    events = sorted({k.split("/")[0] for k in keys})
    by_event = [[k for k in keys if k.startswith(f"{e}/")] for e in events]
    boxes = [[np.asarray(faces.get(k, np.zeros((0, 4))), np.float64).reshape(-1, 4) for k in ks] for ks in by_event]
    (root / "ground_truth").mkdir(parents=True, exist_ok=True)
    savemat(root / "ground_truth" / "wider_face_val.mat", {
        "event_list": cells(events), "file_list": cells([cells([k.split("/")[1] for k in ks]) for ks in by_event]),
        "face_bbx_list": cells([cells(b) for b in boxes])})
    for setting in SETTINGS:
        keep = [cells([(np.flatnonzero(b[:, 2] >= min_width[setting]) + 1).reshape(-1, 1).astype(np.float64)
                       for b in event_boxes]) for event_boxes in boxes]
        savemat(root / "ground_truth" / f"wider_{setting}_val.mat", {"gt_list": cells(keep)})
