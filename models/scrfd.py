"""SCRFD-500M (insightface `scrfd_500m.py` / `scrfd_500m_bnkps.py`): MobileNetV1 backbone, PAFPN neck, shared DW head.

Outputs are the canonical raw ones, per stride 8/16/32: sigmoid score (1,N,1), distance bbox (1,N,4)
[, landmark offsets (1,N,10)], in units of the stride, as the official ONNX exports.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ScrfdConfig:
    stage_blocks: tuple[int, ...] = (2, 3, 2, 6)
    stage_planes: tuple[int, ...] = (16, 16, 40, 72, 152, 288)
    neck_channels: int = 16
    head_channels: int = 64
    stacked_convs: int = 2
    anchors: int = 2
    strides: tuple[int, ...] = (8, 16, 32)
    landmarks: bool = False
    norm: str = "gn"  # "gn" (GroupNorm, 16 groups) or "bn"
    strides_share: bool = False  # one head for all strides (larger SCRFDs) or one per stride (500M)


SCRFD_500M = ScrfdConfig()
SCRFD_500M_KPS = ScrfdConfig(landmarks=True, norm="bn")


def conv_bn(inp, oup, stride):
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True))


def conv_dw(inp, oup, stride):
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp), nn.ReLU(inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    """Stem (stride 2) then four stages of depthwise-separable blocks, each starting with stride 2."""

    def __init__(self, blocks, planes):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, planes[0], 2), conv_dw(planes[0], planes[1], 1))
        self.stages = nn.ModuleList(
            nn.Sequential(*[conv_dw(planes[i + 1] if n == 0 else planes[i + 2], planes[i + 2], 2 if n == 0 else 1)
                            for n in range(count)])
            for i, count in enumerate(blocks))

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class PAFPN(nn.Module):
    """mmdet PAFPN without norm or activation: lateral 1×1, top-down nearest upsampling, 3×3, bottom-up path."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        n = len(in_channels)
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in range(n))
        self.downsample_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1) for _ in range(n - 1))
        self.pafpn_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in range(n - 1))

    def forward(self, inputs):
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            upsampled = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
            laterals[i - 1] = laterals[i - 1] + upsampled
        inter = [conv(x) for conv, x in zip(self.fpn_convs, laterals)]
        for i in range(len(inter) - 1):
            inter[i + 1] = inter[i + 1] + self.downsample_convs[i](inter[i])
        return [inter[0]] + [conv(x) for conv, x in zip(self.pafpn_convs, inter[1:])]


def norm_layer(kind: str, channels: int) -> nn.Module:
    return nn.GroupNorm(16, channels) if kind == "gn" else nn.BatchNorm2d(channels)


def dw_module(inp, oup, norm):
    """mmcv DepthwiseSeparableConvModule: 3×3 depthwise + norm + ReLU, 1×1 pointwise + norm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, 1, 1, groups=inp, bias=False), norm_layer(norm, inp), nn.ReLU(inplace=True),
        nn.Conv2d(inp, oup, 1, bias=False), norm_layer(norm, oup), nn.ReLU(inplace=True),
    )


class ScrfdHead(nn.Module):
    """Stacked DW conv modules shared by classification and regression (cls_reg_share), then 3×3 predictors."""

    def __init__(self, c: ScrfdConfig):
        super().__init__()
        self.convs = nn.Sequential(*[
            dw_module(c.neck_channels if i == 0 else c.head_channels, c.head_channels, c.norm)
            for i in range(c.stacked_convs)])
        self.cls = nn.Conv2d(c.head_channels, c.anchors, 3, padding=1)
        self.reg = nn.Conv2d(c.head_channels, 4 * c.anchors, 3, padding=1)
        self.kps = nn.Conv2d(c.head_channels, 10 * c.anchors, 3, padding=1) if c.landmarks else None

    def forward(self, x):
        """Score logits (B,N,1), distances (B,N,4)[, landmark offsets (B,N,10)], all in stride units."""
        feat = self.convs(x)
        outputs = [self._flatten(self.cls(feat), 1), self._flatten(self.reg(feat), 4)]
        if self.kps is not None:
            outputs.append(self._flatten(self.kps(feat), 10))
        return outputs

    @staticmethod
    def _flatten(x, channels):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, channels)


class SCRFD(nn.Module):
    def __init__(self, config: ScrfdConfig = SCRFD_500M):
        super().__init__()
        self.config = c = config
        self.backbone = MobileNetV1(c.stage_blocks, c.stage_planes)
        self.neck = PAFPN(c.stage_planes[-len(c.strides):], c.neck_channels)
        self.heads = nn.ModuleList(ScrfdHead(c) for _ in range(1 if c.strides_share else len(c.strides)))

    def forward(self, x):
        per_stride = self.raw_outputs(x)
        return tuple(t for head in per_stride for t in (head[0].sigmoid(), *head[1:]))

    def raw_outputs(self, x):
        """Per stride, the head's outputs with score logits (before the sigmoid): what the training losses take."""
        features = self.neck(self.backbone(x)[-len(self.config.strides):])
        return [self.heads[0 if self.config.strides_share else i](f) for i, f in enumerate(features)]
