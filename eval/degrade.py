"""Hard conditions made on the fly: each val image degraded deterministically (seeded by its key) at named severities.

Applied to the image as read (before the detector's resize), as a camera would deliver it; never written to disk.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Degradation:
    kind: str
    severity: str
    level: float  # the stated amount: σ, kernel length, JPEG quality, gamma, scale
    apply: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]
    description: str

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.severity}"

    def __call__(self, image: np.ndarray, key: str) -> np.ndarray:
        """The degraded copy of image; the same key always gives the same pixels."""
        seed = int.from_bytes(hashlib.sha256(f"{key}|{self.name}".encode()).digest()[:8], "little")
        return self.apply(image, self.level, np.random.default_rng(seed))


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def gaussian_blur(image, sigma, rng):
    return cv2.GaussianBlur(image, (0, 0), sigma)


def motion_kernel(length: int, angle_degrees: float) -> np.ndarray:
    """A normalised line of `length` pixels through the kernel's centre at the given angle."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_degrees, 1)
    kernel = cv2.warpAffine(kernel, rotation, (length, length), flags=cv2.INTER_LINEAR)
    return kernel / kernel.sum()


def motion_blur(image, length, rng):
    return cv2.filter2D(image, -1, motion_kernel(int(length), rng.uniform(0, 180)))


def jpeg(image, quality, rng):
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


DARK_NOISE = {2.0: 3.0, 3.0: 5.0}  # sensor noise σ (grey levels) added after the gamma, by gamma


def dark(image, gamma, rng):
    darker = 255 * (image.astype(np.float32) / 255) ** gamma
    return to_uint8(darker + rng.normal(0, DARK_NOISE[gamma], image.shape))


def gaussian_noise(image, sigma, rng):
    return to_uint8(image.astype(np.float32) + rng.normal(0, sigma, image.shape))


def downscale(image, scale, rng):
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


DEGRADATIONS = {d.name: d for d in (
    Degradation("blur", "sigma1.5", 1.5, gaussian_blur, "Gaussian blur σ 1.5 px"),
    Degradation("blur", "sigma3", 3.0, gaussian_blur, "Gaussian blur σ 3 px"),
    Degradation("motion", "9px", 9, motion_blur, "linear motion blur 9 px, direction random per image"),
    Degradation("motion", "15px", 15, motion_blur, "linear motion blur 15 px, direction random per image"),
    Degradation("jpeg", "q30", 30, jpeg, "JPEG quality 30"),
    Degradation("jpeg", "q10", 10, jpeg, "JPEG quality 10"),
    Degradation("dark", "gamma2", 2.0, dark, "low light: gamma 2, then sensor noise σ 3"),
    Degradation("dark", "gamma3", 3.0, dark, "low light: gamma 3, then sensor noise σ 5"),
    Degradation("noise", "sigma10", 10.0, gaussian_noise, "Gaussian noise σ 10 grey levels"),
    Degradation("noise", "sigma25", 25.0, gaussian_noise, "Gaussian noise σ 25 grey levels"),
    Degradation("downscale", "x0.5", 0.5, downscale, "downscaled ×0.5 (area), then back up (bilinear)"),
    Degradation("downscale", "x0.25", 0.25, downscale, "downscaled ×0.25 (area), then back up (bilinear)"),
)}
KINDS = tuple(dict.fromkeys(d.kind for d in DEGRADATIONS.values()))


def parse_degradations(text: str) -> list[Degradation]:
    """'all', or kinds ('blur,dark': every severity of each) and single names ('jpeg-q10'), comma-separated."""
    chosen = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item == "all":
            matches = list(DEGRADATIONS.values())
        elif item in KINDS:
            matches = [d for d in DEGRADATIONS.values() if d.kind == item]
        elif item in DEGRADATIONS:
            matches = [DEGRADATIONS[item]]
        else:
            raise ValueError(f"--degrade: unknown {item!r}; use all, a kind ({', '.join(KINDS)}) or one of "
                             f"{', '.join(DEGRADATIONS)}")
        chosen += [d for d in matches if d not in chosen]
    if not chosen:
        raise ValueError("--degrade: name at least one degradation (or all)")
    return chosen


def severity_order(kind: str) -> list[str]:
    """A kind's severities from mildest to hardest, as listed."""
    return [d.severity for d in DEGRADATIONS.values() if d.kind == kind]
