"""Low-level ops of the StyleGAN2 family: FIR resampling and the scaled leaky ReLU.

`upfirdn2d` (up-sample by zero insertion, FIR filter, down-sample) is written as one depthwise
convolution (groups = channels). It computes what GPEN's reference op computes (tested to 1e-6)
without reshaping every channel into its own image, which is what makes the reference op slow on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2.0)  # keeps the activation variance of a leaky ReLU at 1 (StyleGAN2)


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Separable 2-D FIR kernel from 1-D taps, normalised to sum 1 ([1,3,3,1] -> outer(k, k) / 64)."""
    k = torch.tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Zero-insert up-sampling by `up`, padding by `pad` on both axes (negative crops), FIR filtering
    with `kernel` (true convolution, so the kernel is flipped), then keeping every `down`-th sample."""
    n, c, h, w = x.shape
    pad0, pad1 = pad
    transposed_padding = kernel.shape[0] - 1 - pad0
    if (
        up > 1
        and down == 1
        and pad0 == pad1 + up - 1
        and transposed_padding >= 0
        and kernel.shape[0] == kernel.shape[1]
    ):
        # Zero insertion + padding + convolution with k is a transposed convolution with k itself
        # (stride `up`, padding K-1-pad0): the same sums without multiplying the inserted zeros.
        weight = kernel.to(x.dtype)[None, None].expand(c, 1, *kernel.shape).contiguous()
        return F.conv_transpose2d(x, weight, stride=up, padding=transposed_padding, groups=c)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, (max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)))
    x = x[:, :, max(-pad0, 0) : x.shape[2] - max(-pad1, 0), max(-pad0, 0) : x.shape[3] - max(-pad1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape).contiguous()
    return F.conv2d(x, weight, stride=down, groups=c)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, scale: float = ACTIVATION_GAIN) -> torch.Tensor:
    """sqrt(2) * leaky_relu(x + bias, 0.2), with the bias broadcast over the channel axis (dim 1).

    Computed as leaky_relu(sqrt(2) * x + sqrt(2) * bias) (the leaky ReLU is positively homogeneous):
    one fused multiply-add and one in-place activation instead of three passes over the tensor.
    """
    if bias is None:
        return F.leaky_relu(x * scale, LEAKY_SLOPE)
    shape = (1, bias.shape[0]) + (1,) * (x.ndim - 2)
    y = torch.add(bias.view(shape).to(x.dtype) * scale, x, alpha=scale)
    return F.leaky_relu_(y, LEAKY_SLOPE)


class FusedLeakyReLU(nn.Module):
    """Leaky ReLU with a learned per-channel bias (`bias` parameter, as in GPEN's checkpoints)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ScaledLeakyReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, LEAKY_SLOPE) * ACTIVATION_GAIN


class Blur(nn.Module):
    """FIR low-pass filter with padding; the kernel buffer is multiplied by factor**2 when the blur
    follows a transposed convolution that up-sampled by `upsample_factor`."""

    def __init__(self, taps: Sequence[int], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        kernel = make_kernel(taps)
        if upsample_factor > 1:
            kernel = kernel * upsample_factor**2
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR up-sampling (zero insertion + low-pass), used on the ToRGB skip path."""

    def __init__(self, taps: Sequence[int], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(taps) * factor**2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)
