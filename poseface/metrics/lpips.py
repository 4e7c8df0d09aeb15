"""LPIPS (Zhang et al., CVPR 2018): learned perceptual distance, v0.1, AlexNet or VGG16. Lower is better.

distance(x, y) = sum over 5 layers l of mean over pixels of || w_l * (f_l(x) - f_l(y)) ||^2, where f_l are
channel-normalised backbone activations and w_l the official linear heads (shipped in
`poseface/assets/metrics/`). The ImageNet backbones are torchvision's files, taken from a local path
or downloaded once into the weights cache with a checksum (`poseface.weights.resolve`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from poseface import zoo
from poseface.metrics.backbones import AlexNetFeatures, VGG16Features, load_torchvision_features
from poseface.tensorimage import images_to_tensor  # also imported from here (metrics.identity, tests)
from poseface.weights import resolve

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "metrics"
BACKBONES = {"alex": AlexNetFeatures, "vgg": VGG16Features}
BACKBONE_WEIGHTS = {"alex": zoo.spec("lpips-alex"), "vgg": zoo.spec("lpips-vgg16")}
# LPIPS' input scaling layer: inputs in [-1, 1] are mapped to ImageNet-normalised values
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def _unit_channels(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS distance between two batches (N, 3, H, W) in [-1, 1]; returns (N,)."""

    def __init__(self, net: str = "alex", linear_heads: bool = True) -> None:
        super().__init__()
        if net not in BACKBONES:
            raise ValueError(f"net must be one of {sorted(BACKBONES)}, got {net!r}")
        self.net_name = net
        self.backbone = BACKBONES[net]()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in self.backbone.channels)
        if linear_heads:
            heads = load_file(str(ASSETS / f"lpips_{net}_v0.1.safetensors"))
            for index, lin in enumerate(self.lins):
                lin.weight.data.copy_(heads[f"lin{index}.weight"])
        self.register_buffer("shift", _SHIFT.clone(), persistent=False)
        self.register_buffer("scale", _SCALE.clone(), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        features_x = self.backbone((x - self.shift) / self.scale)
        features_y = self.backbone((y - self.shift) / self.scale)
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for lin, fx, fy in zip(self.lins, features_x, features_y):
            difference = (_unit_channels(fx) - _unit_channels(fy)) ** 2
            total = total + lin(difference).mean(dim=(1, 2, 3))
        return total


def build_lpips(
    net: str = "alex",
    weights: str | os.PathLike | None = None,
    download: bool = True,
    device: str | torch.device = "cpu",
) -> LPIPS:
    """LPIPS with the ImageNet backbone: `weights` is a local torchvision file, else the cache, else one download."""
    model = LPIPS(net)
    path = resolve(BACKBONE_WEIGHTS[net], local_path=weights, download=download)
    load_torchvision_features(model.backbone, path)
    return model.to(device)


@torch.inference_mode()
def lpips_distance(model: LPIPS, restored: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image LPIPS of uint8 RGB batches (N, H, W, 3) (or single images); returns (N,)."""
    device = next(model.parameters()).device
    return model(images_to_tensor(restored, device), images_to_tensor(gt, device)).cpu().numpy().astype(np.float64)
