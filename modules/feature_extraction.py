"""Feature-extraction stage: VGG (CRNN), RCNN (gated recurrent CNN) and ResNet (FAN).

Each extractor maps an image [B, input_channel, H, W] to a feature map
[B, output_channel, H', W'] through a child named ``ConvNet`` (the checkpoint prefix).
For the default 32 x 100 input: VGG gives H' = 1, W' = 24; RCNN and ResNet give H' = 1,
W' = 26. Sequential indices and attribute names match DTRB checkpoints exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "VGGFeatureExtractor",
    "RCNNFeatureExtractor",
    "ResNetFeatureExtractor",
    "GRCL",
    "GRCLUnit",
    "BasicBlock",
    "ResNet",
    "VGG_FeatureExtractor",
    "RCNN_FeatureExtractor",
    "ResNet_FeatureExtractor",
]

# Pools that halve the height but keep (almost) every column, so the sequence stays long.
TALL_POOL = dict(kernel_size=(2, 1), stride=(2, 1))
TALL_POOL_PADDED = dict(kernel_size=2, stride=(2, 1), padding=(0, 1))

GRCL_ITERATIONS = 5
RESNET_LAYERS = (1, 2, 5, 3)


def _stage_channels(output_channel: int) -> tuple[int, int, int, int]:
    """[c/8, c/4, c/2, c] as upstream computes them (int of a float division)."""
    return (
        int(output_channel / 8),
        int(output_channel / 4),
        int(output_channel / 2),
        output_channel,
    )


class VGGFeatureExtractor(nn.Module):
    """CRNN's VGG: seven convolutions, the last 2x2 without padding.

    ``ConvNet`` indices: 0 conv, 3 conv, 6 conv, 8 conv, 11 conv (no bias) + 12 BN,
    14 conv (no bias) + 15 BN, 18 conv 2x2; the other indices are ReLU and max-pool layers.
    """

    def __init__(self, input_channel: int, output_channel: int = 512) -> None:
        super().__init__()
        c8, c4, c2, c = _stage_channels(output_channel)
        self.ConvNet = nn.Sequential(
            nn.Conv2d(input_channel, c8, 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),  # H/2, W/2
            nn.Conv2d(c8, c4, 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),  # H/4, W/4
            nn.Conv2d(c4, c2, 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(c2, c2, 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(**TALL_POOL),  # H/8, W/4
            nn.Conv2d(c2, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),
            nn.MaxPool2d(**TALL_POOL),  # H/16, W/4
            nn.Conv2d(c, c, 2, 1, 0), nn.ReLU(True),  # H/16 - 1, W/4 - 1
        )  # fmt: skip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(image)


class GRCLUnit(nn.Module):
    """One recurrent step of a GRCL: the gate and the update, each with its BatchNorms."""

    def __init__(self, output_channel: int) -> None:
        super().__init__()
        self.BN_gfu = nn.BatchNorm2d(output_channel)
        self.BN_grx = nn.BatchNorm2d(output_channel)
        self.BN_fu = nn.BatchNorm2d(output_channel)
        self.BN_rx = nn.BatchNorm2d(output_channel)
        self.BN_Gx = nn.BatchNorm2d(output_channel)

    def forward(
        self,
        wgf_u: torch.Tensor,
        wgr_x: torch.Tensor,
        wf_u: torch.Tensor,
        wr_x: torch.Tensor,
    ) -> torch.Tensor:
        gate = torch.sigmoid(self.BN_gfu(wgf_u) + self.BN_grx(wgr_x))
        return F.relu(self.BN_fu(wf_u) + self.BN_Gx(self.BN_rx(wr_x) * gate))


class GRCL(nn.Module):
    """Gated recurrent convolution layer (shape-preserving in H and W).

    x0 = ReLU(BN_x_init(wf_u(u))); then ``num_iteration`` times
    G = sigmoid(BN_gfu(wgf_u(u)) + BN_grx(wgr_x(x))),
    x = ReLU(BN_fu(wf_u(u)) + BN_Gx(BN_rx(wr_x(x)) * G)). The input-side convolutions are
    computed once, since u does not change between iterations.
    """

    def __init__(
        self,
        input_channel: int,
        output_channel: int,
        num_iteration: int = GRCL_ITERATIONS,
        kernel_size: int = 3,
        pad: int = 1,
    ) -> None:
        super().__init__()
        self.wgf_u = nn.Conv2d(input_channel, output_channel, 1, 1, 0, bias=False)
        self.wgr_x = nn.Conv2d(output_channel, output_channel, 1, 1, 0, bias=False)
        self.wf_u = nn.Conv2d(input_channel, output_channel, kernel_size, 1, pad, bias=False)
        self.wr_x = nn.Conv2d(output_channel, output_channel, kernel_size, 1, pad, bias=False)
        self.BN_x_init = nn.BatchNorm2d(output_channel)
        self.num_iteration = num_iteration
        self.GRCL = nn.Sequential(*(GRCLUnit(output_channel) for _ in range(num_iteration)))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        wgf_u = self.wgf_u(u)
        wf_u = self.wf_u(u)
        x = F.relu(self.BN_x_init(wf_u))
        for unit in self.GRCL:
            x = unit(wgf_u, self.wgr_x(x), wf_u, self.wr_x(x))
        return x


class RCNNFeatureExtractor(nn.Module):
    """Gated RCNN. ``ConvNet`` indices: 0 conv, 3/5/7 GRCL, 9 conv 2x2 (no bias), 10 BN."""

    def __init__(self, input_channel: int, output_channel: int = 512) -> None:
        super().__init__()
        c8, c4, c2, c = _stage_channels(output_channel)
        self.ConvNet = nn.Sequential(
            nn.Conv2d(input_channel, c8, 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),  # H/2, W/2
            GRCL(c8, c8, num_iteration=GRCL_ITERATIONS, kernel_size=3, pad=1),
            nn.MaxPool2d(2, 2),  # H/4, W/4
            GRCL(c8, c4, num_iteration=GRCL_ITERATIONS, kernel_size=3, pad=1),
            nn.MaxPool2d(**TALL_POOL_PADDED),  # H/8, W/4 + 1
            GRCL(c4, c2, num_iteration=GRCL_ITERATIONS, kernel_size=3, pad=1),
            nn.MaxPool2d(**TALL_POOL_PADDED),  # H/16, W/4 + 2
            nn.Conv2d(c2, c, 2, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),  # H/16-1, W/4+1
        )  # fmt: skip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(image)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """FAN's ResNet for text: four stages of basic blocks with block channels [c/4, c/2, c, c].

    Shapes for a 32 x 100 input: 16x50 after maxpool1, 8x25 after maxpool2, 4x26 after
    maxpool3, 2x27 after conv4_1 and 1x26 after conv4_2.
    """

    def __init__(
        self,
        input_channel: int,
        output_channel: int,
        block: type[BasicBlock] = BasicBlock,
        layers: tuple[int, ...] = RESNET_LAYERS,
    ) -> None:
        super().__init__()
        c4, c2, c = int(output_channel / 4), int(output_channel / 2), output_channel
        block_channels = (c4, c2, c, c)
        self.inplanes = int(output_channel / 8)

        self.conv0_1 = nn.Conv2d(input_channel, int(output_channel / 16), 3, 1, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(int(output_channel / 16))
        self.conv0_2 = nn.Conv2d(int(output_channel / 16), self.inplanes, 3, 1, 1, bias=False)
        self.bn0_2 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)

        self.maxpool1 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.layer1 = self._make_layer(block, block_channels[0], layers[0])
        self.conv1 = nn.Conv2d(block_channels[0], block_channels[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(block_channels[0])

        self.maxpool2 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.layer2 = self._make_layer(block, block_channels[1], layers[1])
        self.conv2 = nn.Conv2d(block_channels[1], block_channels[1], 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(block_channels[1])

        self.maxpool3 = nn.MaxPool2d(**TALL_POOL_PADDED)
        self.layer3 = self._make_layer(block, block_channels[2], layers[2])
        self.conv3 = nn.Conv2d(block_channels[2], block_channels[2], 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(block_channels[2])

        self.layer4 = self._make_layer(block, block_channels[3], layers[3])
        self.conv4_1 = nn.Conv2d(
            block_channels[3], block_channels[3], kernel_size=2, stride=(2, 1), padding=(0, 1), bias=False
        )
        self.bn4_1 = nn.BatchNorm2d(block_channels[3])
        self.conv4_2 = nn.Conv2d(block_channels[3], block_channels[3], 2, 1, 0, bias=False)
        self.bn4_2 = nn.BatchNorm2d(block_channels[3])

    def _make_layer(
        self, block: type[BasicBlock], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        """``blocks`` blocks to ``planes`` channels; the first gets a 1x1 conv + BN shortcut
        when the stride or the channel count changes."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0_1(self.conv0_1(x)))
        x = self.relu(self.bn0_2(self.conv0_2(x)))

        x = self.layer1(self.maxpool1(x))
        x = self.relu(self.bn1(self.conv1(x)))

        x = self.layer2(self.maxpool2(x))
        x = self.relu(self.bn2(self.conv2(x)))

        x = self.layer3(self.maxpool3(x))
        x = self.relu(self.bn3(self.conv3(x)))

        x = self.layer4(x)
        x = self.relu(self.bn4_1(self.conv4_1(x)))
        return self.relu(self.bn4_2(self.conv4_2(x)))


class ResNetFeatureExtractor(nn.Module):
    """FAN's ResNet with layers [1, 2, 5, 3], held as ``ConvNet``."""

    def __init__(self, input_channel: int, output_channel: int = 512) -> None:
        super().__init__()
        self.ConvNet = ResNet(input_channel, output_channel, BasicBlock, RESNET_LAYERS)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(image)


# Upstream's class names, kept so code written against DTRB keeps importing.
VGG_FeatureExtractor = VGGFeatureExtractor
RCNN_FeatureExtractor = RCNNFeatureExtractor
ResNet_FeatureExtractor = ResNetFeatureExtractor
