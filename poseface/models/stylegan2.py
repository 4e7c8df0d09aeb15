"""The StyleGAN2 prior (paper eqs. 2-3), in GPEN's layout so that GPEN's generator loads into it.

Z -> PixelNorm -> 8-layer mapping MLP -> W (eq. 2). Synthesis starts from a learned 4x4 constant;
every style block is a modulated/demodulated 3x3 conv whose output is CONCATENATED with the
decoder feature map of its resolution, scaled by a learned scalar (eq. 3: y_{i+1} = Style(w,
Concat[x_hat_i, y_i])); the activation bias covers the concatenated channels. ToRGB layers add up
an RGB skip path that is FIR-up-sampled between resolutions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from poseface.models.layers import EqualLinear, PixelNorm
from poseface.models.ops import ACTIVATION_GAIN, LEAKY_SLOPE, Blur, FusedLeakyReLU, Upsample

MODULATIONS = ("weights", "activations")  # how ModulatedConv2d applies the style (see there)
INFERENCE_MODULATION = "weights"  # what restore, validation and the benchmarks pass: the per-sample reference path


class MappingNetwork(nn.Sequential):
    """PixelNorm + n_mlp EqualLinear layers with leaky ReLU and learning-rate multiplier (eq. 2)."""

    def __init__(self, style_dim: int, n_mlp: int, lr_mul: float):
        super().__init__(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mul, activation=True) for _ in range(n_mlp)]
        )


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional demodulation and 2x up-sampling.

    w'_{oik} = s_i * w_{oik};  w''_{oik} = w'_{oik} / sqrt(sum_{i,k} w'^2_{oik} + 1e-8).
    Two equal ways to apply the style s; `modulate` picks one:

    - "weights": fold s into the weight, one convolution per sample (the StyleGAN2 formulation; no
      pass over the activations, the fastest for inference on the CPU);
    - "activations": conv(x * s, w) * d equals conv(x, w'') because s scales input channels and d
      output channels, so the batch runs as one convolution with the shared weight (training; and
      ONNX export, where the per-sample loop of "weights" would freeze the batch size);
    The caller chooses (default "activations", which trains; inference passes INFERENCE_MODULATION);
    autograd's state never changes the path, so a forward under no_grad computes what training computes.

    `forward(..., gain, bias)` returns gain * out + bias with the demodulation d folded into the same
    multiply-add.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        gain: float = 1.0,
        bias: torch.Tensor | None = None,
        modulate: str = "activations",
    ) -> torch.Tensor:
        style = self.modulation(w)  # (N, in)
        weight = self.weight[0] * self.scale  # (out, in, k, k)
        if modulate == "weights":
            out = torch.cat([self._conv(x[i : i + 1], weight * style[i].view(1, -1, 1, 1)) for i in range(x.shape[0])])
        elif modulate == "activations":
            out = self._conv(x * style[:, :, None, None].to(x.dtype), weight)
        else:
            raise ValueError(f"modulate={modulate!r}: use one of {', '.join(MODULATIONS)}")
        if self.demodulate:
            weight_energy = weight.pow(2).sum(dim=(2, 3))  # (out, in)
            scale = torch.rsqrt(style.pow(2) @ weight_energy.t() + 1e-8) * gain  # (N, out)
        elif gain != 1.0:
            scale = torch.full((x.shape[0], self.out_channels), gain, device=x.device, dtype=style.dtype)
        else:
            scale = None
        if scale is None:
            return out if bias is None else out + bias.view(1, -1, 1, 1).to(out.dtype)
        scale = scale[:, :, None, None].to(out.dtype)
        return out * scale if bias is None else torch.addcmul(bias.view(1, -1, 1, 1).to(out.dtype), out, scale)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
            return self.blur(out)  # the blur is linear per channel, so demodulating after it is the same
        return F.conv2d(x, weight.to(x.dtype), padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, {self.kernel_size}, "
            f"demodulate={self.demodulate}, upsample={self.upsample}"
        )


class NoiseConcat(nn.Module):
    """The noise branch of eq. 3: concatenates `weight * feature` to the conv output (GPEN's
    `NoiseInjection(isconcat=True)`; `weight` is the learned scalar, initialised to 0)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.weight.to(feature.dtype) * feature], dim=1)


class StyledConv(nn.Module):
    """ModulatedConv2d -> concat decoder feature -> leaky ReLU with bias over 2*out channels.

    sqrt(2) * lrelu(Concat[conv, n * f] + b) is evaluated as lrelu(Concat[sqrt(2) conv + sqrt(2) b_1,
    sqrt(2) n f + sqrt(2) b_2]): each half is one multiply-add, then one in-place activation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel
        )
        self.noise = NoiseConcat()
        self.activate = FusedLeakyReLU(out_channels * 2)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, feature: torch.Tensor, modulate: str = "activations"
    ) -> torch.Tensor:
        bias = self.activate.bias * ACTIVATION_GAIN
        conv_bias, feature_bias = bias.chunk(2)
        out = self.conv(x, w, gain=ACTIVATION_GAIN, bias=conv_bias, modulate=modulate)
        noise = torch.addcmul(
            feature_bias.view(1, -1, 1, 1).to(feature.dtype),
            feature,
            (self.noise.weight * ACTIVATION_GAIN).to(feature.dtype),
        )
        return F.leaky_relu_(torch.cat([out, noise.to(out.dtype)], dim=1), LEAKY_SLOPE)


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB, plus the up-sampled RGB of the previous scale."""

    def __init__(
        self, in_channels: int, style_dim: int, upsample: bool = True, blur_kernel: Sequence[int] = (1, 3, 3, 1)
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None, modulate: str = "activations"
    ) -> torch.Tensor:
        out = self.conv(x, w, bias=self.bias.view(-1), modulate=modulate)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    """The learned 4x4 constant C the synthesis starts from (Fig. 2)."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyleGAN2Prior(nn.Module):
    """StyleGAN2 synthesis with concatenated noise branches (GPEN's `Generator` with isconcat=True).

    `forward(z, features)`: `features[r]` is the decoder map at resolution r (4, 8, ..., size) with
    exactly `channels[r]` channels; both convs of a resolution receive it. There is no random noise:
    the noise inputs of StyleGAN2 are the decoder maps (eq. 3), so inference is deterministic.
    `modulate` goes to every ModulatedConv2d.
    """

    def __init__(
        self,
        size: int,
        style_dim: int,
        n_mlp: int,
        channels: dict[int, int],
        lr_mlp: float = 0.01,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.size = size
        self.log_size = int(math.log2(size))
        self.mapping = MappingNetwork(style_dim, n_mlp, lr_mlp)
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(channels[4] * 2, style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channels = channels[4]
        for i in range(3, self.log_size + 1):
            out_channels = channels[2**i]
            self.convs.append(
                StyledConv(in_channels * 2, out_channels, 3, style_dim, upsample=True, blur_kernel=blur_kernel)
            )
            self.convs.append(StyledConv(out_channels * 2, out_channels, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channels * 2, style_dim, blur_kernel=blur_kernel))
            in_channels = out_channels

    def forward(
        self, z: torch.Tensor, features: dict[int, torch.Tensor], return_w: bool = False, modulate: str = "activations"
    ):
        w = self.mapping(z)  # eq. 2; one W broadcast to every style block
        x = self.conv1(self.input(z.shape[0]).to(features[4].dtype), w, features[4], modulate)
        skip = self.to_rgb1(x, w, modulate=modulate)
        for level, to_rgb in enumerate(self.to_rgbs):
            feature = features[2 ** (level + 3)]
            x = self.convs[2 * level](x, w, feature, modulate)  # eq. 3, up-sampling block
            x = self.convs[2 * level + 1](x, w, feature, modulate)
            skip = to_rgb(x, w, skip, modulate)
        return (skip, w) if return_w else skip
