"""The training Dataset: augmented crops in the model's preprocessing, with their per-anchor targets.

Augmentation is a pure function of (seed, epoch, image index), so runs are reproducible with any number of
workers and a resumed run sees exactly the images an uninterrupted one would.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from models.spec import ModelSpec
from runtimes.detection.preprocess import normalize
from train_light.augment import Faces, drop_small, horizontal_flip, photometric_distort, random_crop, robustness
from train_light.data import FaceList
from train_light.recipes import Recipe

PRELOAD_LIMIT = 4000  # decode every image once up front below this many (the shared 1,297 take ~2.8 GB)


class TrainSet(Dataset):
    """Item i of epoch e is addressed as e·len + i (see EpochSampler)."""

    def __init__(self, faces: FaceList, spec: ModelSpec, recipe: Recipe, seed: int = 0, robust: bool = False,
                 preload: bool | None = None):
        self.samples, self.spec, self.recipe, self.seed, self.robust = faces.samples, spec, recipe, seed, robust
        self.images: list[np.ndarray] | None = None
        if preload if preload is not None else len(self.samples) <= PRELOAD_LIMIT:
            self.images = [self._read(i) for i in tqdm(range(len(self.samples)), desc="decode images", unit="img",
                                                        leave=False, disable=None)]

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, index: int) -> np.ndarray:
        path = self.samples[index].path
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: not a readable image")
        return image

    def augmented(self, epoch: int, index: int) -> tuple[np.ndarray, Faces]:
        """One training crop (BGR uint8 at the training size) and its faces, as the recipe makes them."""
        rng = np.random.default_rng([self.seed, epoch, index])
        sample = self.samples[index]
        image = self.images[index] if self.images is not None else self._read(index)
        faces = Faces(sample.boxes, sample.landmarks)
        image = photometric_distort(image, rng)
        image, faces = random_crop(image, faces, self.spec.hw, self.recipe.crop_scale, rng,
                                   fill=float(np.mean(self.spec.mean)))
        if rng.random() < 0.5:
            image, faces = horizontal_flip(image, faces)
        if self.robust:
            image = robustness(image, rng)
        return image, drop_small(faces, self.recipe.min_face)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        epoch, index = divmod(item, len(self.samples))
        image, faces = self.augmented(epoch, index)
        if self.spec.channel_order == "RGB":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        blob = normalize(image[None], self.spec, "NCHW")[0]
        targets = self.recipe.targets(faces.boxes, faces.landmarks, self.spec)
        return torch.from_numpy(blob), {k: torch.from_numpy(v) for k, v in targets.items()}


class EpochSampler(Sampler[int]):
    """A permutation of the images seeded by (seed, epoch), split across ranks; yields epoch·len + index.

    One sampler serves the whole run (set `epoch` before each pass), so the loader's workers can live the whole
    run: they are forked once, before any evaluation has started threads in the parent (forking after that
    deadlocked the new workers here).
    """

    def __init__(self, size: int, seed: int, epoch: int = 0, rank: int = 0, world: int = 1):
        self.size, self.seed, self.epoch, self.rank, self.world = size, seed, epoch, rank, world

    def order(self) -> np.ndarray:
        permutation = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.size)
        per_rank = len(permutation) // self.world  # equal shares keep DDP ranks in step
        return permutation[self.rank * per_rank:(self.rank + 1) * per_rank]

    def __iter__(self):
        return iter((self.epoch * self.size + self.order()).tolist())

    def __len__(self) -> int:
        return self.size // self.world
