"""The full objectives: generator (paper eq. 16) and discriminators (eq. 11-12 + lazy R1).

    L_G = lambda_g * L_adv-g + lambda_l * (L_left_eye + L_right_eye + L_mouth)
          + lambda_L1 * |X - X'|_1 + w_pyr * sum_s |rgb_s - down_s(X)|_1
          + lambda_FM * sum_i w_i * d(psi_i(X'), psi_i(X)) + lambda_FP * |phi(X') - phi(X)|_1

Both objectives return `(total, terms)`: `total` is the weighted sum to back-propagate, `terms`
maps names to the UNWEIGHTED detached values of each term for logging, under their final names: the
generator's plus "total", the discriminators' all prefixed "d_" (`is_discriminator_term`), "d_total" included.
The generator loss back-propagates through the discriminators into their parameters too: freeze
them (`requires_grad_(False)`) during the generator step, as StyleGAN2 trainers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

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
from poseface.losses.arcface import FacePreservingLoss, IdentityEncoder, load_identity_encoder
from poseface.losses.config import LossConfig
from poseface.losses.dlib_resnet import DlibFeatures, DlibIdentityEncoder, load_dlib_resnet
from poseface.losses.pixel import l1_loss, pyramid_l1
from poseface.losses.roi import component_crop_sizes
from poseface.losses.vgg import FeatureMatchingLoss, VGG19Features, load_vgg19_features

DISCRIMINATOR_PREFIX = "d_"


def discriminator_term(name: str) -> str:
    """The name a discriminator term is returned and logged under: "r1_mouth" -> "d_r1_mouth"."""
    return DISCRIMINATOR_PREFIX + name


def is_discriminator_term(name: str) -> bool:
    return name.startswith(DISCRIMINATOR_PREFIX)


def crop_sizes_for(cfg: LossConfig, image_size: int) -> dict[str, int]:
    return component_crop_sizes(image_size, cfg.eye_crop, cfg.mouth_crop, cfg.crop_reference_size)


class GeneratorLoss(nn.Module):
    """Weighted generator objective. Networks of terms with weight 0 are never built or loaded.

    `vgg` / `identity` inject ready networks (e.g. random-weight ones in tests); otherwise they are
    built from the pretrained files named in `cfg` (`pretrained=False`: random weights).
    """

    def __init__(
        self,
        cfg: LossConfig | None = None,
        vgg: VGG19Features | None = None,
        identity: IdentityEncoder | None = None,
        pretrained: bool = True,
    ):
        super().__init__()
        self.cfg = cfg = cfg or LossConfig()
        self.feature_matching: FeatureMatchingLoss | None = None
        self.face_preserving: FacePreservingLoss | None = None
        eyes = None if cfg.dlib_eyes is None else (tuple(cfg.dlib_eyes[:2]), tuple(cfg.dlib_eyes[2:]))
        if cfg.feature_matching > 0:
            if vgg is None and cfg.resolved_feature_backbone() == "dlib":
                features = DlibFeatures(load_dlib_resnet(cfg.dlib_weights), tuple(cfg.dlib_feature_layers), eyes)
                self.feature_matching = FeatureMatchingLoss(features, cfg.dlib_feature_layer_weights, cfg.feature_norm)
            else:
                vgg = vgg or load_vgg19_features(cfg.vgg_layers, cfg.vgg_weights, pretrained=pretrained)
                self.feature_matching = FeatureMatchingLoss(vgg, cfg.vgg_layer_weights, cfg.feature_norm)
        if cfg.face_preserving > 0:
            if identity is None and cfg.resolved_identity_backbone() == "dlib":
                identity = DlibIdentityEncoder(load_dlib_resnet(cfg.dlib_weights), eyes)
            identity = identity or load_identity_encoder(
                cfg.arcface, cfg.arcface_weights, pretrained=pretrained, sha256=cfg.arcface_sha256
            )
            self.face_preserving = FacePreservingLoss(identity, cfg.identity_distance)

    def forward(
        self,
        restored: torch.Tensor,
        gt: torch.Tensor,
        rgbs: Sequence[torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        has_boxes: torch.Tensor | None = None,
        d_global: nn.Module | None = None,
        d_locals: Mapping[str, nn.Module] | None = None,
        adversarial: bool = True,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`adversarial=False` leaves out both adversarial terms (the trainer's `train.adversarial_start`)."""
        cfg = self.cfg
        weighted: list[torch.Tensor] = []
        terms: dict[str, torch.Tensor] = {}

        def add(name: str, weight: float, value: torch.Tensor) -> None:
            terms[name] = value.detach()
            weighted.append(weight * value)

        if cfg.global_adv > 0 and adversarial:
            if d_global is None:
                raise ValueError("GeneratorLoss: pass d_global or set losses.global_adv: 0")
            add("adv_global", cfg.global_adv, generator_adversarial_loss(logits_of(d_global, restored)))
        if cfg.local_adv > 0 and adversarial:
            if boxes is None or not d_locals:
                raise ValueError("GeneratorLoss: pass boxes and d_locals or set losses.local_adv: 0")
            mask = has_boxes if has_boxes is not None else torch.ones(len(restored), dtype=torch.bool)
            per_component = local_generator_losses(
                restored,
                boxes,
                mask,
                d_locals,
                crop_sizes_for(cfg, restored.shape[-1]),
                cfg.crop_sampling_ratio,
                cfg.local_adv_form,
            )
            for name, value in per_component.items():
                terms[f"adv_{name}"] = value.detach()
            add("adv_local", cfg.local_adv, torch.stack(list(per_component.values())).sum())
        if cfg.l1 > 0:
            add("l1", cfg.l1, l1_loss(restored, gt))
        if cfg.pyramid_l1 > 0 and rgbs:
            add("pyramid_l1", cfg.pyramid_l1, pyramid_l1(rgbs, gt))
        if self.feature_matching is not None:
            add("feature_matching", cfg.feature_matching, self.feature_matching(restored, gt))
        if self.face_preserving is not None:
            add("face_preserving", cfg.face_preserving, self.face_preserving(restored, gt))

        total = torch.stack(weighted).sum() if weighted else restored.sum() * 0.0
        terms["total"] = total.detach()
        return total, terms


class DiscriminatorLoss(nn.Module):
    """Logistic losses of the global and component discriminators, plus lazy R1.

    The discriminator losses are not multiplied by lambda_g / lambda_l (those weight the generator's
    objective; each discriminator has its own optimiser). A discriminator whose generator weight is 0
    is not trained. R1 runs on steps where `step % r1_every == 0` with weight gamma/2 * r1_every.
    Its terms: d_global, d_real_score, d_r1, d_<component>, d_r1_<component>, d_total.
    """

    def __init__(self, cfg: LossConfig | None = None):
        super().__init__()
        self.cfg = cfg or LossConfig()

    def forward(
        self,
        restored: torch.Tensor,
        gt: torch.Tensor,
        boxes: torch.Tensor | None = None,
        has_boxes: torch.Tensor | None = None,
        d_global: nn.Module | None = None,
        d_locals: Mapping[str, nn.Module] | None = None,
        step: int = 0,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        parts: list[torch.Tensor] = []
        terms: dict[str, torch.Tensor] = {}
        fake = restored.detach()
        if cfg.global_adv > 0:
            if d_global is None:
                raise ValueError("DiscriminatorLoss: pass d_global or set losses.global_adv: 0")
            with_r1 = cfg.r1_gamma > 0 and r1_due(step, cfg.r1_every)
            real = gt.detach().requires_grad_(with_r1)
            real_logits = logits_of(d_global, real)
            loss = discriminator_adversarial_loss(real_logits, logits_of(d_global, fake))
            terms["d_global"] = loss.detach()
            terms["d_real_score"] = real_logits.detach().mean()
            parts.append(loss)
            if with_r1:
                r1 = r1_penalty(real_logits, real)
                terms["d_r1"] = r1.detach()
                parts.append(lazy_r1_weight(cfg.r1_gamma, cfg.r1_every) * r1)
        if cfg.local_adv > 0:
            if boxes is None or not d_locals:
                raise ValueError("DiscriminatorLoss: pass boxes and d_locals or set losses.local_adv: 0")
            mask = has_boxes if has_boxes is not None else torch.ones(len(restored), dtype=torch.bool)
            local_r1 = cfg.local_r1_gamma > 0 and r1_due(step, cfg.r1_every)
            per_component = local_discriminator_losses(
                fake,
                gt,
                boxes,
                mask,
                d_locals,
                crop_sizes_for(cfg, restored.shape[-1]),
                cfg.crop_sampling_ratio,
                r1_weight=lazy_r1_weight(cfg.local_r1_gamma, cfg.r1_every) if local_r1 else 0.0,
            )
            for name, value in per_component.items():
                terms[discriminator_term(name)] = value.detach()
                parts.append(value)
        total = torch.stack(parts).sum() if parts else restored.new_zeros(())
        terms["d_total"] = total.detach()
        return total, terms


def nonfinite_terms(terms: Mapping[str, torch.Tensor | float]) -> list[str]:
    """Names of the terms that are NaN or infinite."""
    bad = []
    for name, value in terms.items():
        if isinstance(value, torch.Tensor):
            if not bool(torch.isfinite(value.detach()).all()):
                bad.append(name)
        elif not math.isfinite(float(value)):
            bad.append(name)
    return bad


def finite_or_none(terms: Mapping[str, torch.Tensor | float]) -> dict[str, float] | None:
    """The terms as plain floats for logging, or None if any is NaN/inf (the trainer then skips the step)."""
    if nonfinite_terms(terms):
        return None
    return {name: float(value) for name, value in terms.items()}
