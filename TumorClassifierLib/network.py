"""The 3D classification network of Chakrabarty et al., Radiology: AI 2021 (PMC8489441).

Five levels with 16, 32, 64, 128, 256 filters. Each level is a convolution block (Conv3d 3³,
stride 1 at level 0 and 2 below, bias, InstanceNorm with affine and eps 1e-3, LeakyReLU 0.3)
followed by a context block (convolution block, spatial dropout 0.3, convolution block); the
level's output is conv + context, with no activation after the sum. Head: global average
pooling and one dense layer. Glorot-uniform weights. Defaults: 5,895,719 parameters.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from torch import nn

from .settings import NetworkConfig


def _conv_block(config: NetworkConfig, in_channels: int, out_channels: int,
                stride: int) -> Convolution:
    return Convolution(
        spatial_dims=3, in_channels=in_channels, out_channels=out_channels, strides=stride,
        kernel_size=3, bias=True, adn_ordering="NA",
        norm=("instance", {"affine": True, "eps": config.norm_eps}),
        act=("leakyrelu", {"negative_slope": config.negative_slope}))


class ContextBlock(nn.Module):
    def __init__(self, config: NetworkConfig, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv_block(config, channels, channels, 1)
        self.dropout = nn.Dropout3d(config.dropout)
        self.conv2 = _conv_block(config, channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.dropout(self.conv1(x)))


class EncoderLevel(nn.Module):
    def __init__(self, config: NetworkConfig, in_channels: int, out_channels: int,
                 stride: int) -> None:
        super().__init__()
        self.conv = _conv_block(config, in_channels, out_channels, stride)
        self.context = ContextBlock(config, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x + self.context(x)


class TumorClassifierNet(nn.Module):
    """(B, in_channels, D, H, W) -> class scores before softmax (B, num_classes).
    D, H and W must be multiples of `config.downsampling` (16 by default)."""

    def __init__(self, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        self.config = config
        channels = [config.base_filters * 2 ** level for level in range(config.depth)]
        inputs = [config.in_channels] + channels[:-1]
        self.levels = nn.ModuleList(
            EncoderLevel(config, c_in, c_out, 1 if level == 0 else 2)
            for level, (c_in, c_out) in enumerate(zip(inputs, channels)))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Linear(channels[-1], config.num_classes)
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for level in self.levels:
            x = level(x)
        return self.classifier(torch.flatten(self.pool(x), 1))

    @property
    def gradcam_layer(self) -> nn.Module:
        """The deepest level (its output: 256x8^3 at 128^3, after the residual sum - the map
        the global average pooling reads; Grad-CAM there equals CAM).

        Not the paper's layer, the last convolution of that level's context block before its
        instance norm: an instance norm cancels any per-channel constant added to its input,
        so the spatial mean of the gradient there - Grad-CAM's channel weight - is exactly
        zero, and the map is rounding noise (docs/decisions.md)."""
        return self.levels[-1]

    def level(self, index: int) -> nn.Module:
        """Encoder level `index` (0: full resolution), the deepest one if `index` is larger."""
        return self.levels[min(max(int(index), 0), len(self.levels) - 1)]

    def reset_parameters(self) -> None:
        """Glorot-uniform kernels and zero biases, as Keras initialised the authors' model."""
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def kernel_l2(self) -> torch.Tensor:
        """Sum of squared conv and dense kernels (not biases or norms), for the paper's L2."""
        return sum((m.weight.pow(2).sum() for m in self.modules()
                    if isinstance(m, (nn.Conv3d, nn.Linear))), torch.zeros(()))


def count_parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())
