"""Constant-velocity Kalman filter for boxes, vectorised over every track at once.

State per track: centre x, centre y, width, height and their velocities (8 values); measurement: the box as
cx, cy, w, h. Noise scales with the box size (DeepSORT's convention), so a face of 20 px and one of 400 px are
equally trusted. Arrays: mean (N,8), covariance (N,8,8); N may be 0.
"""
from __future__ import annotations

import numpy as np

POSITION_STD = 1 / 20  # of the box size: measurement and process noise of positions
VELOCITY_STD = 1 / 160  # of the box size per frame: process noise of velocities

_TRANSITION = np.eye(8, dtype=np.float64)
_TRANSITION[:4, 4:] = np.eye(4)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N,4) x1,y1,x2,y2 → (N,4) cx,cy,w,h."""
    boxes = np.asarray(boxes, np.float64)
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N,4) cx,cy,w,h → (N,4) x1,y1,x2,y2."""
    return np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)


def _size_scale(wh: np.ndarray) -> np.ndarray:
    """(N,2) sizes → (N,4) w,h,w,h, never below one pixel."""
    wh = np.maximum(wh, 1.0)
    return np.concatenate([wh, wh], axis=1)


def initiate(measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from measured boxes (N,4) cx,cy,w,h: zero velocity, uncertain velocity."""
    mean = np.concatenate([measured, np.zeros_like(measured)], axis=1)
    scale = _size_scale(measured[:, 2:])
    std = np.concatenate([2 * POSITION_STD * scale, 10 * VELOCITY_STD * scale], axis=1)
    return mean, np.einsum("ni,ij->nij", std ** 2, np.eye(8))


def predict(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead: x' = F x, P' = F P Fᵀ + Q."""
    scale = _size_scale(mean[:, 2:4])
    noise = np.concatenate([POSITION_STD * scale, VELOCITY_STD * scale], axis=1) ** 2
    mean = mean @ _TRANSITION.T
    covariance = _TRANSITION @ covariance @ _TRANSITION.T
    covariance[:, np.arange(8), np.arange(8)] += noise
    return mean, covariance


def update(mean: np.ndarray, covariance: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct each track with its measured box (N,4) cx,cy,w,h (the measurement picks the first 4 states)."""
    noise = (POSITION_STD * _size_scale(mean[:, 2:4])) ** 2
    innovation_cov = covariance[:, :4, :4] + np.einsum("ni,ij->nij", noise, np.eye(4))
    gain = np.linalg.solve(innovation_cov, covariance[:, :4, :]).transpose(0, 2, 1)  # P Hᵀ S⁻¹ (S symmetric)
    mean = mean + np.einsum("nij,nj->ni", gain, measured - mean[:, :4])
    covariance = covariance - gain @ innovation_cov @ gain.transpose(0, 2, 1)
    return mean, covariance
