"""Equalised-learning-rate layers (StyleGAN2): weights stored at unit variance, scaled at run time."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from poseface.models.ops import ACTIVATION_GAIN, LEAKY_SLOPE, Blur, FusedLeakyReLU, ScaledLeakyReLU, fused_leaky_relu


class PixelNorm(nn.Module):
    """x / sqrt(mean(x^2) + 1e-8) over the feature axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualConv2d(nn.Module):
    """Conv2d whose weight is N(0, 1) and multiplied by 1/sqrt(fan_in) at run time."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.conv2d(x, (self.weight * self.scale).to(x.dtype), bias=bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate and a learning-rate multiplier `lr_mul`
    (the mapping network uses 0.01: weights stored x100, scaled back at run time)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias=bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU | ScaledLeakyReLU].

    With `downsample`, the input is low-passed and the conv has stride 2 (GPEN/StyleGAN2 layout;
    the sub-module indices 0, 1, 2 match GPEN's checkpoint keys).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ):
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias and not activate
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU())
        super().__init__(*layers)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            x = self[0](x)
        conv = self[1] if self.downsample else self[0]
        activation = self[-1] if len(self) > (2 if self.downsample else 1) else None
        if isinstance(activation, FusedLeakyReLU):
            return conv_leaky_relu(x, conv, activation.bias)
        x = conv(x)
        return activation(x) if activation is not None else x


def conv_leaky_relu(x: torch.Tensor, conv: EqualConv2d, bias: torch.Tensor) -> torch.Tensor:
    """FusedLeakyReLU(conv(x)) with the sqrt(2) gain and the bias folded into the convolution
    (sqrt(2) * lrelu(y + b) = lrelu(sqrt(2) * y + sqrt(2) * b)), then an in-place activation."""
    weight = conv.weight * (conv.scale * ACTIVATION_GAIN)
    out = F.conv2d(
        x, weight.to(x.dtype), bias=(bias * ACTIVATION_GAIN).to(x.dtype), stride=conv.stride, padding=conv.padding
    )
    return F.leaky_relu_(out, LEAKY_SLOPE)
