"""WIDER FACE ground truth from the official .mat files, restricted to the images actually present."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETTINGS = ("easy", "medium", "hard")
MAT_FILES = ("wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat")


@dataclass(frozen=True)
class ImageTruth:
    """One image's faces: boxes (K,4) x,y,w,h and, per setting, a (K,) bool mask of the faces that count."""

    event: str
    name: str
    boxes: np.ndarray
    counted: dict[str, np.ndarray]

    @property
    def key(self) -> str:
        return f"{self.event}/{self.name}"


@dataclass(frozen=True)
class GroundTruth:
    """The images evaluated (present under images/) and what the official list holds beyond them."""

    images: list[ImageTruth]
    listed_images: int
    listed_faces: dict[str, int]

    def face_counts(self) -> dict[str, int]:
        return {s: int(sum(t.counted[s].sum() for t in self.images)) for s in SETTINGS}


def read_mat(path: Path, keys: tuple[str, ...]) -> dict:
    """A ground-truth .mat with the variables the protocol reads; ValueError naming the file if it is damaged."""
    from scipy.io import loadmat

    try:
        data = loadmat(str(path))
    except (OSError, ValueError, TypeError) as err:  # scipy's errors for cut or foreign files name no file
        raise ValueError(f"{path}: cannot be read as MATLAB ground truth ({err}); a truncated or damaged copy? "
                         "Restore it from the official WIDER FACE eval tools") from err
    absent = [k for k in keys if k not in data]
    if absent:
        raise ValueError(f"{path}: has no {', '.join(absent)}; not the official WIDER FACE ground truth file")
    return data


def load_ground_truth(data_dir: Path, split: str = "val") -> GroundTruth:
    """Official ground truth for `split`, restricted to the images under WIDER_<split>/images/."""
    if split != "val":
        raise ValueError(f"split {split!r}: only 'val' has official evaluation ground truth (.mat keep lists)")
    gt_dir = Path(data_dir) / "ground_truth"
    missing = [name for name in MAT_FILES if not (gt_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{gt_dir}: missing {', '.join(missing)} "
                                "(the official WIDER FACE eval tools ship them)")
    images_dir = Path(data_dir) / f"WIDER_{split}" / "images"
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: no such folder (expected the official WIDER_{split}/images/<event>/)")
    face = read_mat(gt_dir / MAT_FILES[0], ("event_list", "file_list", "face_bbx_list"))
    keep = {s: read_mat(gt_dir / f"wider_{s}_val.mat", ("gt_list",))["gt_list"] for s in SETTINGS}
    present = {p.relative_to(images_dir).with_suffix("").as_posix() for p in images_dir.glob("*/*.jpg")}
    images, listed, listed_faces = [], 0, dict.fromkeys(SETTINGS, 0)
    for i, event_cell in enumerate(face["event_list"]):
        event = str(event_cell[0][0])
        for j, file_cell in enumerate(face["file_list"][i][0]):
            listed += 1
            name = str(file_cell[0][0])
            boxes = face["face_bbx_list"][i][0][j][0].astype(np.float64).reshape(-1, 4)
            counted = {}
            for s in SETTINGS:
                mask = np.zeros(len(boxes), bool)
                indices = keep[s][i][0][j][0].reshape(-1).astype(int)
                mask[indices - 1] = True  # the keep lists are 1-based
                counted[s] = mask
                listed_faces[s] += int(mask.sum())
            if f"{event}/{name}" in present:
                images.append(ImageTruth(event, name, boxes, counted))
    if not images:
        raise ValueError(f"{images_dir}: none of its images is in the official {split} list")
    return GroundTruth(images, listed, listed_faces)
