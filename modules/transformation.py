"""Transformation stage: the thin-plate-spline (TPS) spatial transformer of RARE.

The stage predicts ``num_fiducial`` control points on the input image and resamples the
image so that those points land on a fixed set of target points spread along the top and
bottom edges of the output. Parameter and buffer names match DTRB checkpoints
(``LocalizationNetwork.*``, ``GridGenerator.inv_delta_C``, ``GridGenerator.P_hat``).

Shapes: input [B, C, H, W] -> output [B, C, rectified_H, rectified_W].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LocalizationNetwork",
    "GridGenerator",
    "TPSSpatialTransformer",
    "TPS_SpatialTransformerNetwork",
    "initial_fiducial_points",
    "target_fiducial_points",
]

LOCALIZATION_CHANNELS = (64, 128, 256, 512)
LOCALIZATION_HIDDEN = 256
# Added inside the log of the radial basis at the pixel grid so that r = 0 stays finite.
RBF_EPS = 1e-6


def _check_num_fiducial(num_fiducial: int) -> None:
    if num_fiducial < 4 or num_fiducial % 2:
        raise ValueError(
            f"--num_fiducial must be an even number of at least 4 (half on the top edge, "
            f"half on the bottom edge); got {num_fiducial}"
        )


def initial_fiducial_points(num_fiducial: int) -> np.ndarray:
    """Return the localisation network's initial output, a [num_fiducial, 2] float64 array.

    x runs from -1 to 1 along both rows; the top row's y runs from 0 to -1 and the bottom
    row's y from 1 to 0 (RARE's initialisation, kept by DTRB). Rows are top then bottom.
    """
    _check_num_fiducial(num_fiducial)
    per_row = num_fiducial // 2
    xs = np.linspace(-1.0, 1.0, per_row)
    top = np.stack([xs, np.linspace(0.0, -1.0, per_row)], axis=1)
    bottom = np.stack([xs, np.linspace(1.0, 0.0, per_row)], axis=1)
    return np.concatenate([top, bottom], axis=0)


def target_fiducial_points(num_fiducial: int) -> np.ndarray:
    """Return the fixed target points C, a [num_fiducial, 2] float64 array.

    x runs from -1 to 1; the top row sits at y = -1 and the bottom row at y = +1.
    """
    _check_num_fiducial(num_fiducial)
    per_row = num_fiducial // 2
    xs = np.linspace(-1.0, 1.0, per_row)
    top = np.stack([xs, -np.ones(per_row)], axis=1)
    bottom = np.stack([xs, np.ones(per_row)], axis=1)
    return np.concatenate([top, bottom], axis=0)


class LocalizationNetwork(nn.Module):
    """Predicts the fiducial points C' of an image: [B, C, H, W] -> [B, num_fiducial, 2].

    ``conv`` is four conv3x3 (no bias) + BatchNorm + ReLU blocks with 64, 128, 256 and 512
    channels, the first three followed by a 2x2 max-pool, then global average pooling.
    ``localization_fc1`` is Linear(512, 256) + ReLU and ``localization_fc2`` is
    Linear(256, 2 * num_fiducial) with zero weight and the initial fiducial points as bias,
    so an untrained network outputs :func:`initial_fiducial_points` for every image.
    """

    def __init__(self, num_fiducial: int, input_channel: int) -> None:
        super().__init__()
        _check_num_fiducial(num_fiducial)
        self.num_fiducial = num_fiducial
        layers: list[nn.Module] = []
        in_channels = input_channel
        for index, out_channels in enumerate(LOCALIZATION_CHANNELS):
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(True),
            ]
            is_last = index == len(LOCALIZATION_CHANNELS) - 1
            layers.append(nn.AdaptiveAvgPool2d(1) if is_last else nn.MaxPool2d(2, 2))
            in_channels = out_channels
        self.conv = nn.Sequential(*layers)
        self.localization_fc1 = nn.Sequential(
            nn.Linear(LOCALIZATION_CHANNELS[-1], LOCALIZATION_HIDDEN), nn.ReLU(True)
        )
        self.localization_fc2 = nn.Linear(LOCALIZATION_HIDDEN, num_fiducial * 2)
        self.reset_fiducial_head()

    def reset_fiducial_head(self) -> None:
        """Zero ``localization_fc2``'s weight and set its bias to the initial fiducial points."""
        with torch.no_grad():
            self.localization_fc2.weight.zero_()
            bias = torch.from_numpy(initial_fiducial_points(self.num_fiducial)).float().view(-1)
            self.localization_fc2.bias.copy_(bias)

    def forward(self, batch_image: torch.Tensor) -> torch.Tensor:
        batch_size = batch_image.size(0)
        features = self.conv(batch_image).view(batch_size, -1)  # [B, 512]
        points = self.localization_fc2(self.localization_fc1(features))
        return points.view(batch_size, self.num_fiducial, 2)


def _tps_system_inverse(target_points: np.ndarray) -> np.ndarray:
    """Inverse of the (F+3) x (F+3) TPS system matrix for the target points, in float64."""
    num_fiducial = target_points.shape[0]
    distances = np.linalg.norm(target_points[:, None, :] - target_points[None, :, :], axis=2)
    # r = 0 on the diagonal would give 0 * log 0; upstream sets it to 1 so that R_ii = 0.
    np.fill_diagonal(distances, 1.0)
    radial = (distances**2) * np.log(distances)
    system = np.concatenate(
        [
            np.concatenate([np.ones((num_fiducial, 1)), target_points, radial], axis=1),
            np.concatenate([np.zeros((2, 3)), target_points.T], axis=1),
            np.concatenate([np.zeros((1, 3)), np.ones((1, num_fiducial))], axis=1),
        ],
        axis=0,
    )
    return np.linalg.inv(system)


def _pixel_centres(height: int, width: int) -> np.ndarray:
    """Normalised pixel centres (2i+1)/size - 1 as an [H*W, 2] (x, y) array, x varying fastest."""
    grid_x = (np.arange(-width, width, 2) + 1.0) / width
    grid_y = (np.arange(-height, height, 2) + 1.0) / height
    return np.stack(np.meshgrid(grid_x, grid_y), axis=2).reshape(-1, 2)


def _tps_basis(target_points: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Rows [1, x, y, r_1^2 log(r_1 + eps), ..., r_F^2 log(r_F + eps)] for every pixel."""
    distances = np.linalg.norm(pixels[:, None, :] - target_points[None, :, :], ord=2, axis=2)
    radial = np.square(distances) * np.log(distances + RBF_EPS)
    return np.concatenate([np.ones((pixels.shape[0], 1)), pixels, radial], axis=1)


class GridGenerator(nn.Module):
    """Turns fiducial points C' [B, F, 2] into a sampling grid [B, H*W, 2] for the output size.

    Buffers (computed in float64, stored in float32 like upstream):
    ``inv_delta_C`` [F+3, F+3], the inverse TPS system matrix of the target points, and
    ``P_hat`` [H*W, F+3], the TPS basis at every output pixel centre.
    The grid is ``P_hat @ (inv_delta_C @ [C'; 0_{3x2}])``.
    """

    def __init__(self, num_fiducial: int, rectified_size: tuple[int, int]) -> None:
        super().__init__()
        _check_num_fiducial(num_fiducial)
        self.num_fiducial = num_fiducial
        self.rectified_height, self.rectified_width = (int(v) for v in rectified_size)
        target = target_fiducial_points(num_fiducial)
        pixels = _pixel_centres(self.rectified_height, self.rectified_width)
        self.register_buffer("inv_delta_C", torch.tensor(_tps_system_inverse(target)).float())
        self.register_buffer("P_hat", torch.tensor(_tps_basis(target, pixels)).float())

    def build_P_prime(self, batch_C_prime: torch.Tensor) -> torch.Tensor:
        """Map fiducial points [B, F, 2] to source coordinates [B, H*W, 2] in [-1, 1] units."""
        batch_size = batch_C_prime.size(0)
        dtype = batch_C_prime.dtype
        padding = batch_C_prime.new_zeros(batch_size, 3, 2)
        C_prime_with_zeros = torch.cat([batch_C_prime, padding], dim=1)  # [B, F+3, 2]
        inv_delta_C = self.inv_delta_C.to(dtype).expand(batch_size, -1, -1)
        P_hat = self.P_hat.to(dtype).expand(batch_size, -1, -1)
        transform = torch.bmm(inv_delta_C, C_prime_with_zeros)  # [B, F+3, 2]
        return torch.bmm(P_hat, transform)  # [B, H*W, 2]

    def forward(self, batch_C_prime: torch.Tensor) -> torch.Tensor:
        return self.build_P_prime(batch_C_prime)


class TPSSpatialTransformer(nn.Module):
    """RARE's rectification: [B, C, H, W] image -> [B, C, rectified_H, rectified_W] image.

    ``image_size`` is the (H, W) the localisation network sees (kept for upstream's
    signature: the network pools globally, so any size works); ``rectified_size`` is the
    (H, W) of the output. Resampling is bilinear with border padding and
    ``align_corners=True``. The grid is computed in at least float32 even under autocast,
    because half-precision coordinates would shift samples by a visible fraction of a pixel.
    """

    def __init__(
        self,
        num_fiducial: int,
        image_size: tuple[int, int],
        rectified_size: tuple[int, int],
        input_channel: int = 1,
    ) -> None:
        super().__init__()
        self.num_fiducial = num_fiducial
        self.image_size = tuple(image_size)
        self.rectified_size = tuple(int(v) for v in rectified_size)
        self.input_channel = input_channel
        self.LocalizationNetwork = LocalizationNetwork(num_fiducial, input_channel)
        self.GridGenerator = GridGenerator(num_fiducial, self.rectified_size)

    def rectify(self, batch_image: torch.Tensor, batch_C_prime: torch.Tensor) -> torch.Tensor:
        """Resample ``batch_image`` so that the fiducial points ``batch_C_prime`` map to C."""
        grid_dtype = torch.promote_types(batch_C_prime.dtype, torch.float32)
        with torch.autocast(device_type=batch_image.device.type, enabled=False):
            P_prime = self.GridGenerator.build_P_prime(batch_C_prime.to(grid_dtype))
        height, width = self.rectified_size
        grid = P_prime.reshape(P_prime.size(0), height, width, 2).to(batch_image.dtype)
        return F.grid_sample(
            batch_image, grid, mode="bilinear", padding_mode="border", align_corners=True
        )

    def forward(self, batch_image: torch.Tensor) -> torch.Tensor:
        batch_C_prime = self.LocalizationNetwork(batch_image)  # [B, F, 2]
        return self.rectify(batch_image, batch_C_prime)


def TPS_SpatialTransformerNetwork(  # noqa: N802 - upstream's public name, kept for users' code
    F: int, I_size: tuple[int, int], I_r_size: tuple[int, int], I_channel_num: int = 1  # noqa: N803
) -> TPSSpatialTransformer:
    """Upstream-compatible constructor name for :class:`TPSSpatialTransformer`."""
    return TPSSpatialTransformer(F, I_size, I_r_size, I_channel_num)
