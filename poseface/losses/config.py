"""Loss weights and loss-network settings (paper section 3.4, eq. 11-16; defaults = the paper's values).

In a training config these live under `losses:` (e.g. `losses.feature_matching: 0` switches the VGG
term off). A term whose weight is 0 is never computed and its network is never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from poseface.losses.arcface import ARCFACE_KINDS
from poseface.losses.vgg import DEFAULT_LAYER_WEIGHTS, DEFAULT_LAYERS

FEATURE_NORMS = ("mse", "l1", "l2")
IDENTITY_DISTANCES = ("l1", "cosine")


@dataclass
class LossConfig:
    # --- weights of the generator objective (eq. 13, 14, 15, 16)
    global_adv: float = 0.5  # lambda_g: global non-saturating adversarial loss (eq. 11)
    local_adv: float = 3.0  # lambda_l: weight of the SUM over left eye + right eye + mouth (eq. 12-13)
    l1: float = 8.0  # lambda_L1 on the restored face
    pyramid_l1: float = 1.0  # per-scale L1 of the decoder's RGB heads (GFPGAN's pyramid loss weight; not in the paper)
    feature_matching: float = 0.02  # lambda_FM: VGG19 feature matching (eq. 14)
    face_preserving: float = 10.0  # lambda_FP: ArcFace embedding L1 (eq. 15)
    # --- discriminator regularisation (StyleGAN2 lazy R1; GPEN: gamma 10 every 16 steps)
    r1_gamma: float = 10.0  # global D; 0 = off
    r1_every: int = 16
    local_r1_gamma: float = 0.0  # component Ds (GFPGAN uses none)
    # --- component crops (sizes at `crop_reference_size` px, scaled with the image size)
    eye_crop: int = 80
    mouth_crop: int = 120
    crop_reference_size: int = 512
    crop_sampling_ratio: int = 1  # >1: average s x s samples per output pixel (ROI-align anti-aliasing)
    # --- VGG19 feature matching
    vgg_weights: str | None = None  # local vgg19-dcbb9e9d.pth; None = cache, then download
    vgg_layers: tuple[str, ...] = DEFAULT_LAYERS
    vgg_layer_weights: tuple[float, ...] = DEFAULT_LAYER_WEIGHTS
    feature_norm: str = "mse"  # "mse" | "l1" | "l2" (see docs/losses.md)
    # --- ArcFace face-preserving loss
    arcface: str = "ir_se50"  # "ir_se50" (GPEN, 112 px RGB crop) | "resnet18" (GFPGAN, 128 px gray)
    arcface_weights: str | None = None  # local weights file; None = cache (then download for resnet18)
    arcface_sha256: str = ""  # pin the identity weights file (no checksum is published for either)
    identity_distance: str = "l1"  # "l1" (eq. 15) | "cosine" (GPEN's 1 - cos)

    def __post_init__(self) -> None:
        for name in ("global_adv", "local_adv", "l1", "pyramid_l1", "feature_matching", "face_preserving",
                     "r1_gamma", "local_r1_gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.r1_every < 1:
            raise ValueError(f"r1_every must be >= 1, got {self.r1_every}")
        if self.eye_crop < 1 or self.mouth_crop < 1 or self.crop_reference_size < 1 or self.crop_sampling_ratio < 1:
            raise ValueError("crop sizes and crop_sampling_ratio must be >= 1")
        if self.arcface not in ARCFACE_KINDS:
            raise ValueError(f"arcface must be one of {', '.join(ARCFACE_KINDS)}, got {self.arcface!r}")
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {', '.join(FEATURE_NORMS)}, got {self.feature_norm!r}")
        if self.identity_distance not in IDENTITY_DISTANCES:
            raise ValueError(f"identity_distance must be one of {', '.join(IDENTITY_DISTANCES)}")
        if len(self.vgg_layers) != len(self.vgg_layer_weights):
            raise ValueError(f"{len(self.vgg_layer_weights)} vgg_layer_weights for {len(self.vgg_layers)} vgg_layers")
