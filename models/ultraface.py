"""Ultra-Light-Fast-Generic-Face-Detector-1MB (slim and RFB) whose state-dict keys match the published .pth files.

Outputs are the canonical raw ones: softmax scores (1,N,2) and SSD regressions (1,N,4), as the project's
`*_without_postprocessing.onnx` files; priors and box decoding live in models.families.ultraface.
"""
from __future__ import annotations

import torch
from torch import nn

BASE = 16  # the published models' base_channel


def conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True))


def conv_dw(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp), nn.ReLU(inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True),
    )


def separable_conv(inp: int, oup: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, inp, 3, stride, 1, groups=inp), nn.ReLU(), nn.Conv2d(inp, oup, 1))


class BasicConv(nn.Module):
    def __init__(self, inp, oup, kernel_size, stride=1, padding=0, dilation=1, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, kernel_size, stride, padding, dilation, bias=False)
        self.bn = nn.BatchNorm2d(oup, eps=1e-5, momentum=0.01)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class BasicRFB(nn.Module):
    """Receptive Field Block: three dilated branches plus a 1×1 shortcut (scale 1.0 in the published nets)."""

    def __init__(self, inp: int, oup: int, scale: float = 1.0, map_reduce: int = 8, vision: int = 1):
        super().__init__()
        self.scale = scale
        inter = inp // map_reduce
        self.branch0 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False), BasicConv(inter, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=vision + 1, dilation=vision + 1, relu=False))
        self.branch1 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False), BasicConv(inter, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=vision + 2, dilation=vision + 2, relu=False))
        self.branch2 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False), BasicConv(inter, inter // 2 * 3, 3, padding=1),
            BasicConv(inter // 2 * 3, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=vision + 4, dilation=vision + 4, relu=False))
        self.ConvLinear = BasicConv(6 * inter, oup, 1, relu=False)
        self.shortcut = BasicConv(inp, oup, 1, relu=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.ConvLinear(torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1))
        return self.relu(out * self.scale + self.shortcut(x))


def backbone(rfb: bool) -> nn.Sequential:
    c = BASE
    middle = [BasicRFB(c * 4, c * 4)] if rfb else [conv_dw(c * 4, c * 4, 1)]
    return nn.Sequential(
        conv_bn(3, c, 2), conv_dw(c, c * 2, 1), conv_dw(c * 2, c * 2, 2), conv_dw(c * 2, c * 2, 1),
        conv_dw(c * 2, c * 4, 2), conv_dw(c * 4, c * 4, 1), conv_dw(c * 4, c * 4, 1), *middle,
        conv_dw(c * 4, c * 8, 2), conv_dw(c * 8, c * 8, 1), conv_dw(c * 8, c * 8, 1),
        conv_dw(c * 8, c * 16, 2), conv_dw(c * 16, c * 16, 1),
    )


class UltraFace(nn.Module):
    """SSD over the Mb_Tiny(_RFB) backbone: heads after layers 8, 11, 13 and one extra stride-64 level."""

    SOURCE_LAYERS = (8, 11, 13)
    BOXES_PER_LEVEL = (3, 2, 2, 3)

    def __init__(self, rfb: bool = False, num_classes: int = 2):
        super().__init__()
        c = BASE
        self.num_classes = num_classes
        self.base_net = backbone(rfb)
        self.extras = nn.ModuleList([nn.Sequential(
            nn.Conv2d(c * 16, c * 4, 1), nn.ReLU(), separable_conv(c * 4, c * 16, stride=2), nn.ReLU())])
        channels = (c * 4, c * 8, c * 16)
        self.classification_headers = nn.ModuleList(
            [separable_conv(ch, n * num_classes) for ch, n in zip(channels, self.BOXES_PER_LEVEL)]
            + [nn.Conv2d(c * 16, self.BOXES_PER_LEVEL[3] * num_classes, 3, padding=1)])
        self.regression_headers = nn.ModuleList(
            [separable_conv(ch, n * 4) for ch, n in zip(channels, self.BOXES_PER_LEVEL)]
            + [nn.Conv2d(c * 16, self.BOXES_PER_LEVEL[3] * 4, 3, padding=1)])

    def forward(self, x):
        logits, boxes = self.raw_outputs(x)
        return torch.softmax(logits, dim=2), boxes

    def raw_outputs(self, x):
        """Class logits (B,N,2) and SSD regressions (B,N,4): what the training losses take."""
        features, start = [], 0
        for end in self.SOURCE_LAYERS:
            for layer in self.base_net[start:end]:
                x = layer(x)
            features.append(x)
            start = end
        for layer in self.base_net[start:]:
            x = layer(x)
        for layer in self.extras:
            x = layer(x)
            features.append(x)
        scores = torch.cat([self._flatten(h(f), self.num_classes)
                            for h, f in zip(self.classification_headers, features)], 1)
        boxes = torch.cat([self._flatten(h(f), 4) for h, f in zip(self.regression_headers, features)], 1)
        return scores, boxes

    @staticmethod
    def _flatten(x, channels):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, channels)
