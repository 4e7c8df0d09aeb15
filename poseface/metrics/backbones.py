"""ImageNet feature backbones for LPIPS, written with torchvision's state_dict layout.

`AlexNetFeatures` and `VGG16Features` keep their layers in `self.features` (an nn.Sequential with the
same indices as torchvision's `alexnet().features` / `vgg16().features`), so the official torchvision
weight files load directly (`features.0.weight`, ...). The classifier heads are not needed and are
ignored when loading. No torchvision import.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from poseface.losses.vgg import vgg_conv_stack
from poseface.models.state_dict import load_exact, read_state_dict


class _TappedFeatures(nn.Module):
    """A feature stack that returns the activations after the layers listed in `taps` (indices)."""

    taps: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
            if index >= self.taps[-1]:
                break
        return outputs


class AlexNetFeatures(_TappedFeatures):
    """torchvision AlexNet (one weird trick variant) conv stack; taps relu1..relu5 (LPIPS' layers)."""

    taps = (1, 4, 7, 9, 11)
    channels = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )


# VGG16 configuration "D": channels per conv, "M" = 2x2 max pool.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Features(_TappedFeatures):
    """torchvision VGG16 (no batch norm) conv stack; taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    taps = (3, 8, 15, 22, 29)
    channels = (64, 128, 256, 512, 512)

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg_conv_stack(VGG16_LAYOUT)


def load_torchvision_features(module: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the `features.*` tensors of a torchvision ImageNet checkpoint into `module` (strict on those)."""
    state = read_state_dict(path, f"a torchvision {type(module).__name__[:-8]} ImageNet checkpoint", unwrap=())
    features = {key: value for key, value in state.items() if key.startswith("features.")}
    load_exact(
        module, features, path, f"torchvision {type(module).__name__[:-8]}", fix="use the official torchvision file"
    )
    return module
