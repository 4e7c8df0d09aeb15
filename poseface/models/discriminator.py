"""Discriminators: the global StyleGAN2 discriminator (GPEN's layout, so GPEN's D loads), FreezeD,
and the local component discriminator for eyes and mouth (paper section 3.3-3.4)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from poseface.faces.dlib_models import COMPONENTS
from poseface.models.layers import ConvLayer, EqualLinear


class ResBlock(nn.Module):
    """conv3x3 -> blurred stride-2 conv3x3, plus a blurred stride-2 1x1 skip; sum / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(
            in_channels, out_channels, 1, downsample=True, blur_kernel=blur_kernel, activate=False, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Append one channel holding the mean standard deviation of features across a group of
    samples (StyleGAN2). The group is min(batch, group_size), shrunk to a divisor of the batch."""
    batch, channels, height, width = x.shape
    group = min(batch, group_size)
    while batch % group:
        group -= 1
    y = x.view(group, -1, 1, channels, height, width)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)
    y = y.mean(dim=(2, 3, 4), keepdim=True).squeeze(2)
    y = y.repeat(group, 1, height, width)
    return torch.cat([x, y], dim=1)


class GlobalDiscriminator(nn.Module):
    """StyleGAN2 residual discriminator. `convs.0` is the 1x1 from-RGB layer at full resolution;
    `convs.1` ... `convs.{log2(size)-2}` are residual blocks halving the resolution down to 4x4."""

    def __init__(
        self, size: int, channels: dict[int, int], stddev_group: int = 4, blur_kernel: Sequence[int] = (1, 3, 3, 1)
    ):
        super().__init__()
        self.size = size
        self.stddev_group = stddev_group
        convs: list[nn.Module] = [ConvLayer(3, channels[size], 1)]
        in_channels = channels[size]
        for i in range(int(math.log2(size)), 2, -1):
            out_channels = channels[2 ** (i - 1)]
            convs.append(ResBlock(in_channels, out_channels, blur_kernel))
            in_channels = out_channels
        self.convs = nn.Sequential(*convs)
        self.final_conv = ConvLayer(in_channels + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, channels[4], activation=True),
            EqualLinear(channels[4], 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = minibatch_stddev(self.convs(x.contiguous(memory_format=torch.channels_last)), self.stddev_group)
        out = self.final_conv(out)
        return self.final_linear(out.flatten(1))


def freeze_d(discriminator: GlobalDiscriminator, n_layers: int = 5) -> list[str]:
    """FreezeD (Mo et al. 2020): freeze the first `n_layers` layers of the discriminator and
    fine-tune the rest. Returns the names of the frozen parameters.

    A "layer" is one entry of `discriminator.convs`, as in FreezeD's StyleGAN2 code, which counts
    the discriminator's blocks from the image side. With the paper's n = 5 on a 512 px GPEN
    discriminator these are the from-RGB conv at 512 px and the residual blocks 512->256, 256->128,
    128->64 and 64->32: the higher-resolution, lower-level layers the paper says it freezes
    (section 3.3), while the 32->4 px blocks, the stddev conv and the linear head keep learning.
    """
    if not 0 <= n_layers <= len(discriminator.convs):
        raise ValueError(
            f"cannot freeze {n_layers} layers of a discriminator with {len(discriminator.convs)} conv layers"
        )
    frozen: list[str] = []
    for index in range(n_layers):
        for name, parameter in discriminator.convs[index].named_parameters():
            parameter.requires_grad_(False)
            frozen.append(f"convs.{index}.{name}")
    return frozen


class ComponentDiscriminator(nn.Module):
    """Local discriminator for one facial component (left eye, right eye or mouth).

    Like the global D but with only two down-samplings, ending in a one-channel logit map
    (a patch discriminator): 80x80 crop -> 20x20 logits. With `return_features` it also returns
    the feature maps after each down-sampling stage.
    """

    def __init__(self, base_channels: int = 64, blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        c = base_channels
        self.conv1 = ConvLayer(3, c, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(c, 2 * c, 3, downsample=True, blur_kernel=blur_kernel)
        self.conv3 = ConvLayer(2 * c, 2 * c, 3, blur_kernel=blur_kernel)
        self.conv4 = ConvLayer(2 * c, 4 * c, 3, downsample=True, blur_kernel=blur_kernel)
        self.conv5 = ConvLayer(4 * c, 4 * c, 3, blur_kernel=blur_kernel)
        self.final_conv = ConvLayer(4 * c, 1, 3, bias=True, activate=False)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f1 = self.conv3(self.conv2(self.conv1(x.contiguous(memory_format=torch.channels_last))))
        f2 = self.conv5(self.conv4(f1))
        logits = self.final_conv(f2)
        return (logits, [f1, f2]) if return_features else logits


def build_discriminators(config, component_channels: int = 64) -> tuple[GlobalDiscriminator, nn.ModuleDict]:
    """The global D for `config.size` and one ComponentDiscriminator per facial component."""
    global_d = GlobalDiscriminator(
        config.size, config.discriminator_channels(), config.stddev_group, config.blur_kernel
    )
    local_ds = nn.ModuleDict(
        {name: ComponentDiscriminator(component_channels, config.blur_kernel) for name in COMPONENTS}
    )
    return global_d, local_ds
