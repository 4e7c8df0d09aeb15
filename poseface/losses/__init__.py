"""Training losses of PoseFace (paper section 3.4): adversarial (global + eyes/mouth), L1 + pyramid L1,
VGG19 feature matching and the ArcFace face-preserving loss. See docs/losses.md."""

from poseface.losses.adversarial import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    lazy_r1_weight,
    local_discriminator_losses,
    local_generator_losses,
    logits_of,
    r1_due,
    r1_penalty,
)
from poseface.losses.arcface import (
    IRSE50,
    FacePreservingLoss,
    IdentityEncoder,
    ResNet18ArcFace,
    load_identity_encoder,
)
from poseface.losses.config import LossConfig
from poseface.losses.objectives import DiscriminatorLoss, GeneratorLoss, finite_or_none, nonfinite_terms
from poseface.losses.pixel import area_downsample, l1_loss, pyramid_l1
from poseface.losses.roi import COMPONENTS, component_crop_sizes, crop_components, roi_crop
from poseface.losses.vgg import FeatureMatchingLoss, VGG19Features, load_vgg19_features

__all__ = [
    "COMPONENTS",
    "DiscriminatorLoss",
    "FacePreservingLoss",
    "FeatureMatchingLoss",
    "GeneratorLoss",
    "IRSE50",
    "IdentityEncoder",
    "LossConfig",
    "ResNet18ArcFace",
    "VGG19Features",
    "area_downsample",
    "component_crop_sizes",
    "crop_components",
    "discriminator_adversarial_loss",
    "finite_or_none",
    "generator_adversarial_loss",
    "l1_loss",
    "lazy_r1_weight",
    "load_identity_encoder",
    "load_vgg19_features",
    "local_discriminator_losses",
    "local_generator_losses",
    "logits_of",
    "nonfinite_terms",
    "pyramid_l1",
    "r1_due",
    "r1_penalty",
    "roi_crop",
]
