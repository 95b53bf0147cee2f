"""Training data: WIDER FACE ground truth (boxes) or RetinaFace-style label.txt (boxes + 5 landmarks).

A sample is an image path with its faces as xyxy boxes in original pixels and, when labelled, landmarks.
Invalid boxes (flagged, without area, or wholly outside their image) are dropped and counted; listed images
that are absent are skipped and counted. A malformed file raises ValueError naming the file and the line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration_data.images import image_size
from runtimes.files import IMAGE_SUFFIXES

WIDER_GT = Path("wider_face_split") / "wider_face_train_bbx_gt.txt"
WIDER_IMAGES = Path("WIDER_train") / "images"


@dataclass(frozen=True)
class Sample:
    """boxes (K,4) float32 xyxy; landmarks (K,5,2) float32 with -1 where a face has none, or None if unlabelled."""

    path: Path
    boxes: np.ndarray
    landmarks: np.ndarray | None = None


@dataclass
class FaceList:
    """The usable samples of a dataset and what was left out while reading it."""

    samples: list[Sample]
    source: Path
    absent_images: list[str] = field(default_factory=list)
    dropped_boxes: int = 0

    @property
    def has_landmarks(self) -> bool:
        return any(s.landmarks is not None for s in self.samples)

    def summary(self) -> str:
        faces = sum(len(s.boxes) for s in self.samples)
        return (f"{len(self.samples)} images, {faces} faces from {self.source}"
                f"{f'; {len(self.absent_images)} listed images absent (skipped)' if self.absent_images else ''}"
                f"{f'; {self.dropped_boxes} invalid boxes dropped' if self.dropped_boxes else ''}")


def load_faces(data: Path) -> FaceList:
    """Read a training set from DIR: DIR/label.txt (+ DIR/images) or the official WIDER layout under DIR."""
    data = Path(data)
    if (data / "label.txt").is_file():
        return read_retinaface_labels(data / "label.txt", data / "images")
    if (data / WIDER_GT).is_file():
        return read_wider_gt(data / WIDER_GT, data / WIDER_IMAGES)
    raise FileNotFoundError(f"{data}: no training labels; expected {data / WIDER_GT} (official WIDER FACE layout, "
                            f"images under {data / WIDER_IMAGES}) or {data / 'label.txt'} (RetinaFace format, "
                            "images under images/)")


def _numbers(line: str, path: Path, number: int, minimum: int) -> list[float]:
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        raise ValueError(f"{path}:{number}: expected numbers, got {line.strip()!r}") from None
    if len(values) < minimum:
        raise ValueError(f"{path}:{number}: expected at least {minimum} numbers, got {len(values)}: {line.strip()!r}")
    return values


def _valid(x: float, y: float, w: float, h: float) -> bool:
    return w > 0 and h > 0 and x >= 0 and y >= 0


def inside_image(path: Path, boxes: np.ndarray) -> np.ndarray:
    """Which (K,4) xyxy boxes have some area inside the image, its size read from the file header (all of them
    where the size cannot be read without decoding)."""
    size = image_size(path)
    if size is None:
        return np.ones(len(boxes), bool)
    return (boxes[:, 0] < size[0]) & (boxes[:, 1] < size[1])


def add_sample(faces: FaceList, path: Path, boxes: list, points: list | None = None) -> None:
    """Append the image's faces, dropping and counting boxes wholly outside it."""
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    keep = inside_image(path, boxes)
    faces.dropped_boxes += int((~keep).sum())
    landmarks = None if points is None else np.array(points, np.float32).reshape(-1, 5, 2)[keep]
    faces.samples.append(Sample(path, boxes[keep], landmarks))


def read_wider_gt(gt_file: Path, images: Path) -> FaceList:
    """The official format: a name line, a count line, then count lines of x y w h blur expr illum invalid occl pose.

    Faces flagged invalid and boxes without area are dropped; an image with count 0 has one all-zero line.
    """
    lines = gt_file.read_text().splitlines()
    faces = FaceList([], gt_file)
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        if not name.lower().endswith(IMAGE_SUFFIXES):
            raise ValueError(f"{gt_file}:{i + 1}: expected an image name, got {name!r}")
        if i + 1 >= len(lines) or not lines[i + 1].strip().isdigit():
            got = lines[i + 1].strip() if i + 1 < len(lines) else "end of file"
            raise ValueError(f"{gt_file}:{i + 2}: expected the face count of {name}, got {got!r}")
        count = int(lines[i + 1])
        rows = max(count, 1)
        if i + 2 + rows > len(lines):
            raise ValueError(f"{gt_file}:{len(lines)}: file ends inside the {count} faces of {name}")
        boxes = []
        for k in range(i + 2, i + 2 + count):
            values = _numbers(lines[k], gt_file, k + 1, 4)
            x, y, w, h = values[:4]
            invalid = len(values) > 7 and values[7] == 1
            if invalid or not _valid(x, y, w, h):
                faces.dropped_boxes += 1
                continue
            boxes.append((x, y, x + w, y + h))
        i += 2 + rows
        path = images / name
        if not path.is_file():
            faces.absent_images.append(name)
            continue
        add_sample(faces, path, boxes)
    if not faces.samples:
        raise ValueError(f"{gt_file}: none of its {len(faces.absent_images)} listed images is under {images}")
    return faces


def read_retinaface_labels(label_file: Path, images: Path) -> FaceList:
    """RetinaFace's label.txt: '# name' lines, then per face x y w h and 5 × (x y flag) landmarks (-1 if absent)."""
    faces = FaceList([], label_file)
    name, boxes, points = None, [], []

    def flush():
        if name is None:
            return
        if not (images / name).is_file():
            faces.absent_images.append(name)
            return
        add_sample(faces, images / name, boxes, points)

    for number, line in enumerate(label_file.read_text().splitlines(), 1):
        if line.startswith("#"):
            flush()
            name, boxes, points = line[1:].strip(), [], []
            continue
        if not line.strip():
            continue
        if name is None:
            raise ValueError(f"{label_file}:{number}: a face before any '# image' line")
        values = _numbers(line, label_file, number, 4)
        x, y, w, h = values[:4]
        if not _valid(x, y, w, h):
            faces.dropped_boxes += 1
            continue
        boxes.append((x, y, x + w, y + h))
        if len(values) >= 19:
            marks = np.array(values[4:19], np.float32).reshape(5, 3)[:, :2]
            points.append(marks if marks[0, 0] >= 0 else np.full((5, 2), -1, np.float32))
        else:
            points.append(np.full((5, 2), -1, np.float32))
    flush()
    if not faces.samples:
        raise ValueError(f"{label_file}: none of its listed images is under {images}")
    return faces
