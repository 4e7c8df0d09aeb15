"""The asymmetric codec (paper section 3.1, eq. 1): x -> (decoder maps x_hat, latent Z).

Encoder: GPEN's strided-conv pyramid (a 1x1 conv at full resolution, then one blurred stride-2
3x3 conv per scale down to 4x4, GPEN's channel table, so GPEN's encoder weights load), with one MMRB
after the conv of every scale except the first (full resolution) and the last (4x4): six at 512 px.
The 4x4 map is flattened and mapped to Z by a linear layer.

Decoder (the asymmetric half: no MMRBs): from 4x4 back up to full resolution. At resolution r

    u_r = Up2(d_{r/2})                                (FIR up-sampling)
    h_r = lrelu(conv3x3(lrelu(conv1x1(Concat[e_r, u_r]))))
    d_r = e_r + conv1x1_zero(h_r)                     (skip connection from the encoder)

so every map d_r has exactly the channels of the StyleGAN2 layer at r. The last conv of every
residual path starts at zero, so a fresh decoder returns the encoder maps (d_r = e_r): initialised
from GPEN, the whole model computes GPEN's function. Each scale also has a 1x1 RGB head for the
per-scale L1 loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from poseface.models.config import ModelConfig
from poseface.models.layers import ConvLayer, EqualConv2d, EqualLinear, conv_leaky_relu
from poseface.models.mmrb import MMRB
from poseface.models.ops import FusedLeakyReLU, Upsample


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        channels = config.channels()
        self.resolutions = [config.size // 2**j for j in range(config.log_size - 1)]  # size, ..., 4
        self.convs = nn.ModuleList([ConvLayer(3, channels[config.size], 1)])
        for previous, resolution in zip(self.resolutions, self.resolutions[1:]):
            self.convs.append(
                ConvLayer(channels[previous], channels[resolution], 3, downsample=True, blur_kernel=config.blur_kernel)
            )
        inner = self.resolutions[1:-1] if config.mmrb else []
        self.mmrbs = nn.ModuleDict({str(r): MMRB(channels[r], expansion=config.mmrb_expansion) for r in inner})
        self.to_latent = EqualLinear(channels[4] * 4 * 4, config.style_dim, activation=True)

    def forward(self, x: torch.Tensor) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        features: dict[int, torch.Tensor] = {}
        for resolution, conv in zip(self.resolutions, self.convs):
            x = conv(x)
            if str(resolution) in self.mmrbs:
                x = self.mmrbs[str(resolution)](x)
            features[resolution] = x
        z = self.to_latent(x.flatten(1))
        return features, z


class DecoderBlock(nn.Module):
    """One scale of the decoder: d = skip + zero-initialised residual of (skip, up-sampled coarser map)."""

    def __init__(self, channels: int, coarse_channels: int, mid_channels: int, blur_kernel: Sequence[int]):
        super().__init__()
        self.upsample = Upsample(blur_kernel) if coarse_channels else None
        self.merge = EqualConv2d(channels + coarse_channels, mid_channels, 1, bias=False)
        self.merge_act = FusedLeakyReLU(mid_channels)
        self.conv = EqualConv2d(mid_channels, mid_channels, 3, padding=1, bias=False)
        self.conv_act = FusedLeakyReLU(mid_channels)
        self.out = EqualConv2d(mid_channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        self.to_rgb = EqualConv2d(channels, 3, 1)

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
        x = skip if coarse is None else torch.cat([skip, self.upsample(coarse)], dim=1)
        h = conv_leaky_relu(conv_leaky_relu(x, self.merge, self.merge_act.bias), self.conv, self.conv_act.bias)
        return skip + self.out(h)


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        channels = config.channels()
        self.resolutions = [2**i for i in range(2, config.log_size + 1)]  # 4, ..., size
        blocks = {}
        for resolution in self.resolutions:
            coarse = channels[resolution // 2] if resolution > 4 else 0
            mid = max(8, int(channels[resolution] * config.decoder_width))
            blocks[str(resolution)] = DecoderBlock(channels[resolution], coarse, mid, config.blur_kernel)
        self.blocks = nn.ModuleDict(blocks)

    def forward(self, features: dict[int, torch.Tensor], return_rgbs: bool = False):
        maps: dict[int, torch.Tensor] = {}
        rgbs: list[torch.Tensor] = []
        coarse = None
        for resolution in self.resolutions:
            block = self.blocks[str(resolution)]
            coarse = block(features[resolution], coarse)
            maps[resolution] = coarse
            if return_rgbs:
                rgbs.append(block.to_rgb(coarse))
        return maps, rgbs
