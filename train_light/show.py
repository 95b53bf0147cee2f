"""python -m train_light.show: draw augmented training samples with their faces into PNGs, to look at."""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from models.registry import MODELS, entry
from runtimes.cli import hw_argument, non_negative_int, positive_int, run_cli
from runtimes.files import atomic_write_bytes
from train_light.data import load_faces
from train_light.dataset import TrainSet
from train_light.recipes import RECIPES


def contact_sheet(dataset: TrainSet, epoch: int, indices: list[int], columns: int = 4) -> np.ndarray:
    """Augmented crops of `indices` in a grid, faces in green, landmarks as red dots, a caption per tile."""
    tiles = []
    for index in indices:
        image, faces = dataset.augmented(epoch, index)
        image = image.copy()
        for box in faces.boxes.round().astype(int):
            cv2.rectangle(image, tuple(box[:2]), tuple(box[2:]), (0, 255, 0), 1)
        if faces.landmarks is not None:
            for point in faces.landmarks.reshape(-1, 2):
                if point[0] >= 0:
                    cv2.circle(image, tuple(point.round().astype(int)), 1, (0, 0, 255), -1)
        cv2.putText(image, f"#{index} e{epoch} {len(faces.boxes)} faces", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(cv2.copyMakeBorder(image, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(40, 40, 40)))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train_light.show", description=__doc__.split(":", 1)[1].strip())
    p.add_argument("--model", required=True, choices=sorted(MODELS), help="whose recipe augments")
    p.add_argument("--data", required=True, type=Path, help="training set (as python -m train_light --data)")
    p.add_argument("--size", type=hw_argument, help="training crop H,W (default: the recipe's)")
    p.add_argument("--count", type=positive_int, default=16, help="samples per sheet")
    p.add_argument("--epochs", type=positive_int, default=2,
                   help="sheets: the same images as epochs 0..N-1 augment them")
    p.add_argument("--robust", action="store_true", help="include the blur/JPEG/gamma augmentations")
    p.add_argument("--seed", type=non_negative_int, default=0, help="augmentation seed")
    p.add_argument("--out", type=Path, default=Path("runs/augmented"), help="folder for the PNGs")
    args = p.parse_args(argv)
    recipe = RECIPES[entry(args.model).family]
    spec = entry(args.model).spec(*(args.size or recipe.train_hw))
    faces = load_faces(args.data)
    dataset = TrainSet(faces, spec, recipe, args.seed, args.robust, preload=False)
    indices = np.random.default_rng(args.seed).choice(len(dataset), min(args.count, len(dataset)), replace=False)
    for epoch in range(args.epochs):
        sheet = contact_sheet(dataset, epoch, sorted(indices.tolist()))
        path = args.out / f"{args.model}_epoch{epoch}.png"
        atomic_write_bytes(path, cv2.imencode(".png", sheet)[1].tobytes())
        print(path)
    return 0


if __name__ == "__main__":
    run_cli(main)
