"""SCRFD's targets and losses: ATSS assignment, Quality Focal Loss, DIoU boxes, smooth-L1 landmarks."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from models.families.scrfd import anchor_centers
from models.spec import ModelSpec
from runtimes.detection.nms import box_iou

TOPK = 9
BASE_SIZES = {8: 16, 16: 64, 32: 256}  # scrfd_500m: base_sizes [16, 64, 256], scales [1, 2], ratio 1
ANCHOR_SCALES = (1, 2)
QFL_BETA = 2.0
BOX_WEIGHT = 2.0
LANDMARK_WEIGHT = 0.1
LANDMARK_BETA = 1.0 / 9.0


@lru_cache(maxsize=8)
def anchors(h: int, w: int, strides: tuple[int, ...], per_location: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Square anchor boxes (N,4) xyxy, their strides (N,) and each level's index range, in output order."""
    boxes, stride_of, ranges, start = [], [], [], 0
    for s in strides:
        centers = anchor_centers(h, w, s, per_location)
        sizes = np.tile(np.array([BASE_SIZES[s] * k for k in ANCHOR_SCALES[:per_location]], np.float32),
                        len(centers) // per_location)[:, None]
        boxes.append(np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1))
        stride_of.append(np.full(len(centers), s, np.float32))
        ranges.append((start, start + len(centers)))
        start += len(centers)
    return np.concatenate(boxes), np.concatenate(stride_of), tuple(ranges)


def atss_assign(anchor_boxes: np.ndarray, level_ranges: tuple, faces: np.ndarray, topk: int = TOPK) -> np.ndarray:
    """ATSS: per face, the top-k anchors of each level by centre distance are candidates; those whose IoU is at
    least the candidates' mean + std and whose centre lies in the face are positives; an anchor positive for
    several faces takes the one it overlaps most. Returns (N,) the assigned face index, -1 for negatives.
    """
    assigned = np.full(len(anchor_boxes), -1, np.int64)
    if len(faces) == 0:
        return assigned
    ious = box_iou(anchor_boxes, faces)
    anchor_c = (anchor_boxes[:, :2] + anchor_boxes[:, 2:]) / 2
    face_c = (faces[:, :2] + faces[:, 2:]) / 2
    distance = np.linalg.norm(anchor_c[:, None, :] - face_c[None, :, :], axis=2)
    candidates = np.concatenate([
        start + np.argsort(distance[start:end], axis=0, kind="stable")[:min(topk, end - start)]
        for start, end in level_ranges])  # (L·k, K)
    columns = np.arange(len(faces))
    candidate_iou = ious[candidates, columns]
    threshold = candidate_iou.mean(axis=0) + candidate_iou.std(axis=0, ddof=1 if len(candidates) > 1 else 0)
    centre = anchor_c[candidates]  # (L·k, K, 2)
    inside = ((centre[..., 0] > faces[:, 0] + 0.01) & (centre[..., 0] < faces[:, 2] - 0.01) &
              (centre[..., 1] > faces[:, 1] + 0.01) & (centre[..., 1] < faces[:, 3] - 0.01))
    positive = (candidate_iou >= threshold) & inside
    overlap = np.full(ious.shape, -1.0)
    rows, cols = candidates[positive], np.broadcast_to(columns, candidates.shape)[positive]
    overlap[rows, cols] = ious[rows, cols]
    best = overlap.argmax(axis=1)
    has = overlap[np.arange(len(anchor_boxes)), best] >= 0
    assigned[has] = best[has]
    return assigned


def scrfd_targets(boxes_px: np.ndarray, landmarks_px: np.ndarray | None, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per-anchor targets of one image: assigned flag, face box (N,4) and landmarks (N,10) in pixels, their weight."""
    anchor_boxes, _, ranges = anchors(spec.input_h, spec.input_w, spec.strides, spec.anchors_per_location)
    assigned = atss_assign(anchor_boxes, ranges, boxes_px)
    positive = assigned >= 0
    boxes = np.zeros((len(anchor_boxes), 4), np.float32)
    boxes[positive] = boxes_px[assigned[positive]]
    points = np.zeros((len(anchor_boxes), 10), np.float32)
    point_weight = np.zeros(len(anchor_boxes), np.float32)
    if landmarks_px is not None and len(landmarks_px):
        labelled = positive.copy()
        labelled[positive] = landmarks_px[assigned[positive], 0, 0] >= 0
        points[labelled] = landmarks_px[assigned[labelled]].reshape(-1, 10)
        point_weight[labelled] = 1.0
    return {"positive": positive, "boxes": boxes, "landmarks": points, "landmark_weight": point_weight}


def init_heads(model: torch.nn.Module, prior: float = 0.01) -> None:
    """mmdet's head init for a model trained from scratch: predictors N(0, 0.01), score bias at a 1% prior.

    Without it the 0.5 initial scores on ~all-negative anchors give a huge first QFL step that pushes every score
    to ~0, which also zeroes the score-weighted box loss.
    """
    for head in model.heads:
        for conv in (head.cls, head.reg, head.kps):
            if conv is not None:
                torch.nn.init.normal_(conv.weight, std=0.01)
                torch.nn.init.zeros_(conv.bias)
        torch.nn.init.constant_(head.cls.bias, -float(np.log((1 - prior) / prior)))


def quality_focal_loss(logits: torch.Tensor, quality: torch.Tensor, beta: float = QFL_BETA) -> torch.Tensor:
    """QFL (GFL paper): BCE against a soft target (IoU for positives, 0 for negatives) scaled by |y − σ|^β."""
    scale = (quality - logits.sigmoid()).abs().pow(beta)
    return F.binary_cross_entropy_with_logits(logits, quality, reduction="none") * scale


def diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """1 − IoU + (centre distance / enclosing diagonal)² for (M,4) xyxy pairs."""
    lt, rb = torch.max(pred[:, :2], target[:, :2]), torch.min(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area_p = (pred[:, 2:] - pred[:, :2]).clamp(min=0).prod(dim=1)
    area_t = (target[:, 2:] - target[:, :2]).clamp(min=0).prod(dim=1)
    iou = inter / (area_p + area_t - inter + eps)
    enclose = (torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])).pow(2).sum(dim=1)
    centre = ((pred[:, :2] + pred[:, 2:]) - (target[:, :2] + target[:, 2:])).pow(2).sum(dim=1) / 4
    return 1 - iou + centre / (enclose + eps)


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    union = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1) + (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1) - inter
    return inter / union.clamp(min=1e-7)


def scrfd_loss(raw: list, targets: dict[str, torch.Tensor], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """QFL over all anchors / positives, DIoU on positives weighted by their predicted score, landmarks."""
    logits = torch.cat([head[0] for head in raw], dim=1)[..., 0]  # (B,N)
    distances = torch.cat([head[1] for head in raw], dim=1)       # (B,N,4) stride units
    anchor_boxes, strides, _ = anchors(spec.input_h, spec.input_w, spec.strides, spec.anchors_per_location)
    centers = torch.from_numpy((anchor_boxes[:, :2] + anchor_boxes[:, 2:]) / 2)
    strides = torch.from_numpy(strides)
    positive = targets["positive"]
    count = positive.sum().clamp(min=1)
    pos_centers, pos_strides = centers.expand_as(distances[..., :2])[positive], strides.expand_as(logits)[positive]
    pred_boxes = torch.cat([pos_centers - distances[positive][:, :2] * pos_strides[:, None],
                            pos_centers + distances[positive][:, 2:] * pos_strides[:, None]], dim=1)
    face_boxes = targets["boxes"][positive]
    quality = torch.zeros_like(logits)
    quality[positive] = box_iou_pairs(pred_boxes.detach(), face_boxes)
    losses = {"cls": quality_focal_loss(logits, quality).sum() / count}
    weight = logits.detach().sigmoid()[positive]
    losses["box"] = BOX_WEIGHT * (diou_loss(pred_boxes, face_boxes) * weight).sum() / weight.sum().clamp(min=1e-6)
    if len(raw[0]) > 2:
        offsets = torch.cat([head[2] for head in raw], dim=1)[positive]  # (M,10) stride units
        target = (targets["landmarks"][positive] - pos_centers.repeat(1, 5)) / pos_strides[:, None]
        labelled = targets["landmark_weight"][positive]
        loss = F.smooth_l1_loss(offsets, target, beta=LANDMARK_BETA, reduction="none").sum(dim=1)
        losses["landmarks"] = LANDMARK_WEIGHT * (loss * labelled).sum() / labelled.sum().clamp(min=1)
    return losses
