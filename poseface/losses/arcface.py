"""ArcFace identity networks for the face-preserving loss (paper eq. 15): phi(X) in ||phi(X) - phi(X')||_1.

Two backbones, each with the key layout of the public weights file it loads:

* `IRSE50`: the IR-SE50 of TreB1eN/InsightFace_Pytorch (`Backbone(50, drop_ratio, 'ir_se')`) as GPEN's
  ID loss uses it (file `model_ir_se50.pth`). Keys: `input_layer.*`, `body.{0..23}.res_layer.*` and
  `body.{i}.shortcut_layer.*` (only where the channels change), `output_layer.*`. Input: the face
  crop GPEN takes (rows 35/256..1-33/256, cols 32/256..1-36/256 of the image), area-pooled to 112x112,
  RGB in [-1, 1] as is; the embedding is L2-normalised.
* `ResNet18ArcFace`: GFPGAN's `ResNetArcFace(IRBlock, [2, 2, 2, 2], use_se=False)` (file
  `arcface_resnet18.pth`). Input: gray 0.2989 R + 0.5870 G + 0.1140 B of the [-1, 1] image,
  bilinearly resized to 128x128; the embedding is not normalised (as in GFPGAN).

`IdentityEncoder` wraps a backbone with its preprocessing, stays in eval mode (BatchNorm and dropout
frozen) and has no trainable parameters, but gradients flow through it to the image.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from poseface import zoo
from poseface.errors import PoseFaceError
from poseface.losses.pretrained import find_weights, freeze, report_unpinned
from poseface.models.state_dict import load_exact, read_state_dict

ARCFACE_KINDS: tuple[str, ...] = ("ir_se50", "resnet18")

IRSE50_SPEC = zoo.spec("arcface-ir-se50")
RESNET18_SPEC = zoo.spec("arcface-resnet18")


# ----------------------------------------------------------------------------------------------
# IR-SE50 (TreB1eN layout)


class SqueezeExcite(nn.Module):
    """Channel attention with 1x1 convolutions without bias (keys fc1.weight, fc2.weight)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * scale


class BottleneckIRSE(nn.Module):
    """BN-conv3x3-PReLU-conv3x3(stride)-BN-SE residual branch plus a (strided) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if in_channels == out_channels:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(kernel_size=1, stride=stride)  # plain subsampling
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            SqueezeExcite(out_channels, 16),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


# (input channels, output channels, units) per stage of the 50-layer network; each stage's first unit has stride 2.
IRSE50_STAGES: tuple[tuple[int, int, int], ...] = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))


class IRSE50(nn.Module):
    """ArcFace IR-SE50 on 112x112 RGB; returns L2-normalised 512-d embeddings."""

    input_size = 112

    def __init__(self, drop_ratio: float = 0.6):
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)
        )
        units: list[nn.Module] = []
        for in_channels, out_channels, count in IRSE50_STAGES:
            units.append(BottleneckIRSE(in_channels, out_channels, stride=2))
            units += [BottleneckIRSE(out_channels, out_channels, stride=1) for _ in range(count - 1)]
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(drop_ratio),
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, 512),
            nn.BatchNorm1d(512),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


def gpen_face_crop(images: torch.Tensor) -> torch.Tensor:
    """GPEN IDLoss crop: rows 35s:H-33s, cols 32s:W-36s with s = size/256 (512 px: rows 70:446, cols 64:440)."""
    height, width = images.shape[-2:]
    sy, sx = height / 256.0, width / 256.0
    top, bottom = int(round(35 * sy)), height - int(round(33 * sy))
    left, right = int(round(32 * sx)), width - int(round(36 * sx))
    return images[:, :, top:bottom, left:right]


# ----------------------------------------------------------------------------------------------
# ResNet18 ArcFace (GFPGAN layout)


class IRBlock(nn.Module):
    """BN-conv3x3-BN-PReLU-conv3x3(stride)-BN plus shortcut, then the same (single-slope) PReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + shortcut)


class ResNet18ArcFace(nn.Module):
    """GFPGAN's ArcFace ResNet18 on 128x128 gray; returns 512-d embeddings (not normalised)."""

    input_size = 128

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.layer1 = nn.Sequential(IRBlock(64, 64), IRBlock(64, 64))
        self.layer2 = nn.Sequential(IRBlock(64, 128, 2), IRBlock(128, 128))
        self.layer3 = nn.Sequential(IRBlock(128, 256, 2), IRBlock(256, 256))
        self.layer4 = nn.Sequential(IRBlock(256, 512, 2), IRBlock(512, 512))
        self.bn4 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout()
        self.fc5 = nn.Linear(512 * 8 * 8, 512)
        self.bn5 = nn.BatchNorm1d(512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn4(x))
        return self.bn5(self.fc5(x.flatten(1)))


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of RGB (N, 3, H, W) -> (N, 1, H, W), value range unchanged."""
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return 0.2989 * r + 0.5870 * g + 0.1140 * b


# ----------------------------------------------------------------------------------------------


class IdentityEncoder(nn.Module):
    """Backbone + its preprocessing: images (N, 3, H, W) in [-1, 1] RGB -> embeddings (N, 512)."""

    def __init__(self, kind: str, backbone: nn.Module):
        super().__init__()
        if kind not in ARCFACE_KINDS:
            raise ValueError(f"arcface kind must be one of {ARCFACE_KINDS}, got {kind!r}")
        self.kind = kind
        self.backbone = freeze(backbone)

    def train(self, mode: bool = True) -> "IdentityEncoder":
        super().train(mode)
        self.backbone.eval()  # BatchNorm statistics and dropout stay frozen
        return self

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if self.kind == "ir_se50":
            return F.adaptive_avg_pool2d(gpen_face_crop(images), IRSE50.input_size)
        gray = to_gray(images)
        return F.interpolate(gray, size=(128, 128), mode="bilinear", align_corners=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.preprocess(images))


def build_backbone(kind: str) -> nn.Module:
    if kind == "ir_se50":
        return IRSE50()
    if kind == "resnet18":
        return ResNet18ArcFace()
    raise PoseFaceError(f"config: losses.arcface must be one of {', '.join(ARCFACE_KINDS)}, got {kind!r}")


def load_identity_encoder(
    kind: str = "ir_se50",
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
    sha256: str = "",
) -> IdentityEncoder:
    """A frozen IdentityEncoder of `kind`; `pretrained=False` gives random weights (tests)."""
    backbone = build_backbone(kind)
    if pretrained:
        spec = IRSE50_SPEC if kind == "ir_se50" else RESNET18_SPEC
        path, checksummed = find_weights(spec, weights, sha256, path_key="losses.arcface_weights")
        load_exact(backbone, read_state_dict(path, spec.what), path, spec.what)
        if not checksummed:
            report_unpinned(path, spec.what, "losses.arcface_sha256")
    return IdentityEncoder(kind, backbone)


class FacePreservingLoss(nn.Module):
    """Eq. 15: distance between the identity embeddings of restored and ground truth (gt side detached).

    distance "l1": mean absolute difference over the 512 embedding entries (GFPGAN's form, weight 10);
    distance "cosine": mean of 1 - cos(phi(X), phi(X')) (GPEN's released IDLoss).
    """

    def __init__(self, encoder: IdentityEncoder, distance: str = "l1"):
        super().__init__()
        if distance not in ("l1", "cosine"):
            raise ValueError(f"identity distance must be l1 or cosine, got {distance!r}")
        self.encoder = encoder
        self.distance = distance

    def forward(self, restored: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        fake = self.encoder(restored)
        with torch.no_grad():
            real = self.encoder(gt.detach())
        if self.distance == "l1":
            return F.l1_loss(fake, real)
        return (1.0 - F.cosine_similarity(fake, real, dim=1)).mean()
