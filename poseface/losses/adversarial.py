"""Adversarial losses: global (paper eq. 11), local components (eq. 12-13) and StyleGAN2's lazy R1.

All discriminators are passed in as modules that map an image batch to logits of any shape
(N,), (N, 1) or a patch map (N, 1, h, w); a module that returns a tuple (logits, features) is
accepted too (its first element is used). Logits are averaged over everything but the batch.

Eq. 11 (global) is the non-saturating logistic loss log(1 + exp(-D(G(x)))) = softplus(-D(fake)).
Eq. 12 (local) is written with log(1 - D(x)), the saturating form of the original GAN, whose
generator loss with D = sigmoid(logit) is log(1 - sigmoid(l)) = -softplus(l). The two are NOT the
same function for the generator: the saturating gradient -sigmoid(l) vanishes as D(fake) -> 0 (early
training), the non-saturating one -sigmoid(-l) tends to -1. Our default reading uses the
non-saturating form for the local losses too (as GFPGAN does); `form="saturating"`
(`losses.local_adv_form`) gives eq. 12 as written. The discriminator side is the same logistic loss
in both readings:

* generator, non-saturating (default):  softplus(-D(fake))
* generator, saturating (eq. 12 literal): -softplus(D(fake)) = log(1 - sigmoid(D(fake))), minimised
* discriminator:                        softplus(-D(real)) + softplus(D(fake))
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from poseface.losses.roi import COMPONENTS, crop_components, safe_boxes


def logits_of(discriminator: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Per-sample logits (N,): the discriminator output averaged over all but the batch dimension."""
    out = discriminator(images)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.reshape(out.shape[0], -1).mean(dim=1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of (N,) `values` over samples where `mask` is true; 0 (still attached to the graph) if none is."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype).to(values.device)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


NON_SATURATING = "non_saturating"
SATURATING = "saturating"
ADVERSARIAL_FORMS = (NON_SATURATING, SATURATING)


def generator_adversarial_loss(
    fake_logits: torch.Tensor, mask: torch.Tensor | None = None, form: str = NON_SATURATING
) -> torch.Tensor:
    """Generator loss, mean over (masked) samples: softplus(-D(fake)) or, saturating, -softplus(D(fake))."""
    if form == NON_SATURATING:
        return masked_mean(F.softplus(-fake_logits), mask)
    if form == SATURATING:
        return masked_mean(-F.softplus(fake_logits), mask)
    raise ValueError(f"adversarial form must be one of {', '.join(ADVERSARIAL_FORMS)}, got {form!r}")


def discriminator_adversarial_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Logistic discriminator loss softplus(-D(real)) + softplus(D(fake)), mean over (masked) samples."""
    return masked_mean(F.softplus(-real_logits), mask) + masked_mean(F.softplus(fake_logits), mask)


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """R1 = E[ sum over pixels of (d D(real) / d real)^2 ] (StyleGAN2), differentiable w.r.t. D.

    `real_images` must have `requires_grad=True` and `real_logits` must be computed from it.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return masked_mean(grad.pow(2).reshape(grad.shape[0], -1).sum(dim=1), mask)


def r1_due(step: int, every: int) -> bool:
    """Lazy regularisation: R1 on steps 0, every, 2*every, ... (every <= 0 means never)."""
    return every > 0 and step % every == 0


def lazy_r1_weight(gamma: float, every: int) -> float:
    """Weight of R1 on the steps it runs: gamma / 2 * every (StyleGAN2's lazy regularisation)."""
    return gamma / 2.0 * every


def component_crops(
    images: torch.Tensor,
    boxes: torch.Tensor,
    has_boxes: torch.Tensor,
    sizes: Mapping[str, int],
    sampling_ratio: int = 1,
) -> dict[str, torch.Tensor]:
    """Crops of the three components with unusable boxes replaced by the whole image (see `safe_boxes`)."""
    usable = safe_boxes(boxes.to(images.device), has_boxes.to(images.device), tuple(images.shape[-2:]))
    return crop_components(images, usable, dict(sizes), sampling_ratio=sampling_ratio)


def local_generator_losses(
    restored: torch.Tensor,
    boxes: torch.Tensor,
    has_boxes: torch.Tensor,
    d_locals: Mapping[str, nn.Module],
    sizes: Mapping[str, int],
    sampling_ratio: int = 1,
    form: str = NON_SATURATING,
) -> dict[str, torch.Tensor]:
    """Generator side of eq. 12 per component {name: loss}. Sum them for L_adv-l.

    `form` chooses the generator loss (see the module docstring; the default is our reading).
    Samples with `has_boxes` false are excluded; if no sample has boxes each loss is an exact 0 that
    is still connected to `restored` and to the discriminators (so backward and DDP behave).
    """
    crops = component_crops(restored, boxes, has_boxes, sizes, sampling_ratio)
    return {
        name: generator_adversarial_loss(logits_of(d_locals[name], crops[name]), has_boxes, form)
        for name in COMPONENTS
        if name in d_locals
    }


def local_discriminator_losses(
    restored: torch.Tensor,
    gt: torch.Tensor,
    boxes: torch.Tensor,
    has_boxes: torch.Tensor,
    d_locals: Mapping[str, nn.Module],
    sizes: Mapping[str, int],
    sampling_ratio: int = 1,
    r1_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Discriminator side of eq. 12 per component, on `restored.detach()` against `gt` crops.

    With `r1_weight > 0`, adds `r1_weight * R1` on the real crops and reports it as `r1_<name>`.
    """
    fake_crops = component_crops(restored.detach(), boxes, has_boxes, sizes, sampling_ratio)
    real_crops = component_crops(gt.detach(), boxes, has_boxes, sizes, sampling_ratio)
    losses: dict[str, torch.Tensor] = {}
    for name in COMPONENTS:
        if name not in d_locals:
            continue
        real = real_crops[name].requires_grad_(r1_weight > 0)
        real_logits = logits_of(d_locals[name], real)
        fake_logits = logits_of(d_locals[name], fake_crops[name])
        losses[name] = discriminator_adversarial_loss(real_logits, fake_logits, has_boxes)
        if r1_weight > 0:
            losses[f"r1_{name}"] = r1_weight * r1_penalty(real_logits, real, has_boxes)
    return losses
