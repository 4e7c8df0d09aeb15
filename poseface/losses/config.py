"""Loss weights and loss-network settings (paper section 3.4, eq. 11-16; defaults = the paper's values).

In a training config these live under `losses:` (e.g. `losses.feature_matching: 0` switches the VGG
term off). A term whose weight is 0 is never computed and its network is never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from poseface.config import require_number, require_numbers
from poseface.losses.adversarial import ADVERSARIAL_FORMS
from poseface.losses.arcface import ARCFACE_KINDS
from poseface.losses.dlib_resnet import FEATURE_LAYERS
from poseface.losses.vgg import DEFAULT_LAYER_WEIGHTS, DEFAULT_LAYERS

FEATURE_NORMS = ("mse", "l1", "l2")
IDENTITY_DISTANCES = ("l1", "cosine")
IDENTITY_BACKBONES = ("auto", "dlib", "arcface")
FEATURE_BACKBONES = ("auto", "vgg", "dlib")
# the weights of the generator objective and of R1: finite and >= 0 (0 switches a term off)
WEIGHTS = (
    "global_adv",
    "local_adv",
    "l1",
    "pyramid_l1",
    "feature_matching",
    "face_preserving",
    "r1_gamma",
    "local_r1_gamma",
)


@dataclass
class LossConfig:
    # --- weights of the generator objective (eq. 13, 14, 15, 16)
    global_adv: float = 0.5  # lambda_g: global non-saturating adversarial loss (eq. 11)
    local_adv: float = 3.0  # lambda_l: weight of the SUM over left eye + right eye + mouth (eq. 12-13)
    # generator form of the local loss: "non_saturating" softplus(-D) (our reading, as eq. 11) |
    # "saturating" log(1 - D) = -softplus(D), eq. 12 as written (its gradient vanishes while D(fake) -> 0)
    local_adv_form: str = "non_saturating"
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
    # --- backbones: dlib's face ResNet (offline, face_recognition_models) or the downloadable ones
    identity_backbone: str = "auto"  # "dlib" | "arcface"; auto = arcface when arcface_weights is set, else dlib
    feature_backbone: str = "auto"  # "vgg" | "dlib"; auto = vgg when vgg_weights is set or cached, else dlib
    dlib_weights: str | None = None  # dlib_face_recognition_resnet_model_v1.dat; None = face_recognition_models'
    dlib_eyes: tuple[float, ...] | None = None  # eye centres (x_l, y_l, x_r, y_r) / crop size; None = whole crop
    dlib_feature_layers: tuple[str, ...] = FEATURE_LAYERS[:5]
    dlib_feature_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)

    def resolved_identity_backbone(self) -> str:
        if self.identity_backbone != "auto":
            return self.identity_backbone
        return "arcface" if self.arcface_weights else "dlib"

    def resolved_feature_backbone(self) -> str:
        if self.feature_backbone != "auto":
            return self.feature_backbone
        from poseface.losses.vgg import VGG19_SPEC
        from poseface.weights import cache_dir

        return "vgg" if self.vgg_weights or (cache_dir() / VGG19_SPEC.name).is_file() else "dlib"

    def __post_init__(self) -> None:
        for name in WEIGHTS:
            require_number(f"losses.{name}", getattr(self, name), 0)
        for name in ("r1_every", "eye_crop", "mouth_crop", "crop_reference_size", "crop_sampling_ratio"):
            require_number(f"losses.{name}", getattr(self, name), 1)
        require_numbers("losses.vgg_layer_weights", self.vgg_layer_weights, 0)
        require_numbers("losses.dlib_feature_layer_weights", self.dlib_feature_layer_weights, 0)
        if self.local_adv_form not in ADVERSARIAL_FORMS:
            raise ValueError(
                f"local_adv_form must be one of {', '.join(ADVERSARIAL_FORMS)}, got {self.local_adv_form!r}"
            )
        if self.arcface not in ARCFACE_KINDS:
            raise ValueError(f"arcface must be one of {', '.join(ARCFACE_KINDS)}, got {self.arcface!r}")
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {', '.join(FEATURE_NORMS)}, got {self.feature_norm!r}")
        if self.identity_distance not in IDENTITY_DISTANCES:
            raise ValueError(f"identity_distance must be one of {', '.join(IDENTITY_DISTANCES)}")
        if self.identity_backbone not in IDENTITY_BACKBONES:
            raise ValueError(
                f"identity_backbone must be one of {', '.join(IDENTITY_BACKBONES)}, got {self.identity_backbone!r}"
            )
        if self.feature_backbone not in FEATURE_BACKBONES:
            raise ValueError(
                f"feature_backbone must be one of {', '.join(FEATURE_BACKBONES)}, got {self.feature_backbone!r}"
            )
        if self.dlib_eyes is not None and (len(self.dlib_eyes) != 4 or not all(0 <= v <= 1 for v in self.dlib_eyes)):
            raise ValueError(
                f"dlib_eyes must be 4 fractions of the crop size (x_l, y_l, x_r, y_r), got {self.dlib_eyes}"
            )
        unknown = [name for name in self.dlib_feature_layers if name not in FEATURE_LAYERS]
        if unknown:
            raise ValueError(f"dlib_feature_layers: unknown {unknown[0]!r}; choose from {', '.join(FEATURE_LAYERS)}")
        if len(self.dlib_feature_layers) != len(self.dlib_feature_layer_weights):
            raise ValueError(
                f"{len(self.dlib_feature_layer_weights)} dlib_feature_layer_weights for {len(self.dlib_feature_layers)} dlib_feature_layers"
            )
        if len(self.vgg_layers) != len(self.vgg_layer_weights):
            raise ValueError(f"{len(self.vgg_layer_weights)} vgg_layer_weights for {len(self.vgg_layers)} vgg_layers")
