"""VGG19 feature extractor and the feature-matching loss (paper eq. 14, second term).

The module keeps the key layout of torchvision's ImageNet VGG19 (`features.0.weight` ...
`features.34.bias`, the file vgg19-dcbb9e9d.pth) so the official weights load directly; only the
convolutional `features` part is built, the classifier keys of the file are dropped on load.

Feature matching (our choice, see docs/losses.md): the layers of pix2pixHD's VGG loss (the paper
cites pix2pixHD for this term) relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with weights
1/32, 1/16, 1/8, 1/4, 1, and per layer the mean squared difference ("mse"), i.e. the squared L2
norm of eq. 14 divided by the number of feature elements so that lambda_FM does not depend on the
image size. "l1" (mean absolute) and "l2" (root mean square per sample) are available.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from poseface import zoo
from poseface.losses.pretrained import find_weights, freeze, log
from poseface.models.state_dict import load_exact, read_state_dict

# Output channels per conv, "M" = 2x2 max pool (configuration "E" of Simonyan & Zisserman).
VGG19_LAYOUT: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)

VGG19_SPEC = zoo.spec("vgg19")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DEFAULT_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_LAYER_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def vgg19_layer_names() -> list[str]:
    """Names of the entries of `features`, in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    names: list[str] = []
    block, index = 1, 1
    for item in VGG19_LAYOUT:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


def vgg_conv_stack(layout) -> nn.Sequential:
    """torchvision's VGG `features` layout: 3x3 conv + ReLU per number, 2x2 max-pool per "M"
    (indices match the official checkpoints' `features.N.*` keys)."""
    modules: list[nn.Module] = []
    channels = 3
    for item in layout:
        if item == "M":
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            modules += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*modules)


class VGG19Features(nn.Module):
    """The convolutional part of VGG19; forward(images in [-1, 1]) -> {layer name: activation}."""

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS):
        super().__init__()
        self.features = vgg_conv_stack(VGG19_LAYOUT)
        names = vgg19_layer_names()
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; valid names look like conv3_4, relu4_1, pool2")
        self.layers = tuple(layers)
        self._index = {name: names.index(name) for name in self.layers}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB -> [0, 1] -> ImageNet mean/std."""
        return ((images + 1.0) * 0.5 - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalise(images)
        wanted = {index: name for name, index in self._index.items()}
        last = max(wanted)
        outputs: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                outputs[wanted[index]] = x
            if index == last:
                break
        return outputs


def load_vgg19_features(
    layers: Sequence[str] = DEFAULT_LAYERS,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
) -> VGG19Features:
    """A frozen VGG19Features; ImageNet weights from `weights`, the cache, or one download.

    `pretrained=False` gives random weights (tests). Classifier keys of the file are dropped and logged.
    """
    model = VGG19Features(layers)
    if pretrained:
        path, _ = find_weights(VGG19_SPEC, weights, path_key="losses.vgg_weights")
        state = read_state_dict(path, VGG19_SPEC.what)
        dropped = sorted(k for k in state if not k.startswith("features."))
        if dropped:
            log.info(
                "%s: dropped %d classifier keys not needed for features (%s)", path, len(dropped), ", ".join(dropped)
            )
        load_exact(model, {k: v for k, v in state.items() if k.startswith("features.")}, path, VGG19_SPEC.what)
    return freeze(model)


def feature_distance(a: torch.Tensor, b: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "mse":
        return F.mse_loss(a, b)
    if norm == "l1":
        return F.l1_loss(a, b)
    if norm == "l2":
        return (a - b).pow(2).reshape(a.shape[0], -1).mean(dim=1).add(1e-12).sqrt().mean()
    raise ValueError(f"feature norm must be mse, l1 or l2, got {norm!r}")


class FeatureMatchingLoss(nn.Module):
    """sum_i w_i * dist(psi_i(restored), psi_i(gt)) over VGG19 layers; gt features carry no gradient."""

    def __init__(self, vgg: VGG19Features, layer_weights: Sequence[float] = DEFAULT_LAYER_WEIGHTS, norm: str = "mse"):
        super().__init__()
        if len(layer_weights) != len(vgg.layers):
            raise ValueError(f"{len(layer_weights)} layer weights for {len(vgg.layers)} VGG layers")
        feature_distance(torch.zeros(1), torch.zeros(1), norm)  # validate the name early
        self.vgg = vgg
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.norm = norm

    def train(self, mode: bool = True) -> "FeatureMatchingLoss":
        super().train(mode)
        self.vgg.eval()  # the feature network stays frozen
        return self

    def forward(self, restored: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        fake = self.vgg(restored)
        with torch.no_grad():
            real = self.vgg(gt.detach())
        total = restored.new_zeros(())
        for name, weight in zip(self.vgg.layers, self.layer_weights):
            total = total + weight * feature_distance(fake[name], real[name], self.norm)
        return total
