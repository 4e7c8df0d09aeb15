"""The whole restoration network of the paper (Fig. 2): asymmetric codec + StyleGAN2 prior."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from poseface.models.codec import Decoder, Encoder
from poseface.models.config import ModelConfig
from poseface.models.stylegan2 import INFERENCE_MODULATION, StyleGAN2Prior


class PoseFaceNet(nn.Module):
    """`model(x)`: x is (N, 3, size, size) RGB in [-1, 1]; returns the restored image in the same
    range (not clamped). `model(x, return_rgbs=True)` also returns the decoder's per-scale RGB
    images (4x4 up to full size) for the per-scale L1 loss. `modulate` chooses how the StyleGAN2 convs
    apply their styles ("activations", the default, for training and ONNX export; "weights", the
    per-sample reference path, which inference passes as INFERENCE_MODULATION; equal results, see
    ModulatedConv2d)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.prior = StyleGAN2Prior(
            config.size, config.style_dim, config.n_mlp, config.channels(), config.lr_mlp, config.blur_kernel
        )

    def forward(self, x: torch.Tensor, return_rgbs: bool = False, modulate: str = "activations"):
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2:] != (self.config.size, self.config.size):
            raise ValueError(f"expected input (N, 3, {self.config.size}, {self.config.size}), got {tuple(x.shape)}")
        x = x.contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout on CPU; neutral on CUDA
        features, z = self.encoder(x)  # eq. 1
        maps, rgbs = self.decoder(features, return_rgbs)
        image = self.prior(z, maps, modulate=modulate).contiguous()  # eqs. 2-3
        return (image, [rgb.contiguous() for rgb in rgbs]) if return_rgbs else image

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The paper's learning-rate groups (section 4.2): codec, StyleGAN2 prior, noise-branch scalars."""
        groups: dict[str, list[nn.Parameter]] = {"codec": [], "prior": [], "noise": []}
        for name, parameter in self.named_parameters():
            if name.startswith("prior.") and name.endswith(".noise.weight"):
                groups["noise"].append(parameter)
            elif name.startswith("prior."):
                groups["prior"].append(parameter)
            else:
                groups["codec"].append(parameter)
        return groups


def inference_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """`model` as `poseface restore` runs it: a PoseFaceNet takes the per-sample reference path
    (INFERENCE_MODULATION, whatever autograd's state); any other module (ONNX sessions, stand-ins) as it is."""
    if isinstance(model, PoseFaceNet):
        return functools.partial(model, modulate=INFERENCE_MODULATION)
    return model
