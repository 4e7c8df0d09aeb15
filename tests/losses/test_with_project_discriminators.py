"""The losses drive the project's own discriminators (poseface.models.discriminator), R1 included."""

import torch

from poseface.losses import DiscriminatorLoss, GeneratorLoss, LossConfig, finite_or_none
from poseface.models.config import ModelConfig
from poseface.models.discriminator import build_discriminators


def test_generator_and_discriminator_losses_with_gpen_layout_discriminators():
    torch.manual_seed(0)
    config = ModelConfig(size=64, narrow=0.0625)
    d_global, d_locals = build_discriminators(config, component_channels=8)
    cfg = LossConfig(feature_matching=0, face_preserving=0)
    restored = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    gt = torch.rand(2, 3, 64, 64) * 2 - 1
    boxes = torch.tensor([[[12.0, 24.0, 24.0, 36.0], [40.0, 24.0, 52.0, 36.0], [22.0, 40.0, 42.0, 56.0]]] * 2)
    has = torch.tensor([True, False])

    g_total, g_terms = GeneratorLoss(cfg)(restored, gt, None, boxes, has, d_global, d_locals)
    g_total.backward()
    assert finite_or_none(g_terms) is not None and restored.grad.abs().sum() > 0

    d_total, d_terms = DiscriminatorLoss(cfg)(restored, gt, boxes, has, d_global, d_locals, step=0)
    assert d_terms["d_r1"].item() > 0  # double backward through the blur/upfirdn ops works
    d_global.zero_grad()
    d_total.backward()
    assert all(torch.isfinite(p.grad).all() for p in d_global.parameters() if p.grad is not None)
    assert d_global.final_linear[1].weight.grad.abs().sum() > 0
