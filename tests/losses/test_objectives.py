import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import poseface.losses.objectives as objectives
from poseface.config import from_dict
from poseface.errors import PoseFaceError
from poseface.losses import (
    DiscriminatorLoss,
    GeneratorLoss,
    LossConfig,
    finite_or_none,
    load_identity_encoder,
    load_vgg19_features,
    nonfinite_terms,
)
from poseface.losses.adversarial import local_generator_losses
from poseface.losses.pixel import pyramid_l1
from poseface.losses.roi import component_crop_sizes


class TinyD(nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 1, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x).flatten(1).mean(1, keepdim=True) * 3.0


SIZE = 64
BOXES = torch.tensor([[[10.0, 20.0, 24.0, 32.0], [40.0, 20.0, 54.0, 32.0], [20.0, 38.0, 44.0, 54.0]]] * 2)


def inputs():
    torch.manual_seed(0)
    restored = (torch.rand(2, 3, SIZE, SIZE) * 2 - 1).requires_grad_(True)
    gt = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    rgbs = [torch.randn(2, 3, s, s, requires_grad=True) for s in (4, 8, 16, 32, 64)]
    d_locals = {"left_eye": TinyD(1), "right_eye": TinyD(2), "mouth": TinyD(3)}
    return restored, gt, rgbs, BOXES.clone(), torch.tensor([True, True]), TinyD(0), d_locals


def test_defaults_are_the_paper_weights():
    cfg = LossConfig()
    assert (cfg.global_adv, cfg.local_adv, cfg.l1, cfg.feature_matching, cfg.face_preserving) == (
        0.5,
        3.0,
        8.0,
        0.02,
        10.0,
    )
    assert (cfg.r1_gamma, cfg.r1_every, cfg.arcface) == (10.0, 16, "ir_se50")
    assert cfg.local_adv / cfg.global_adv == 6  # "6 times the global"
    assert from_dict(LossConfig, {"feature_matching": 0}).feature_matching == 0.0
    with pytest.raises(ValueError):
        LossConfig(l1=-1)


def test_local_adv_form_default_is_non_saturating_and_a_bad_value_is_one_line():
    assert LossConfig().local_adv_form == "non_saturating"
    assert from_dict(LossConfig, {"local_adv_form": "saturating"}).local_adv_form == "saturating"
    with pytest.raises(PoseFaceError) as info:
        from_dict(LossConfig, {"local_adv_form": "literal"}, where="losses")
    assert str(info.value) == "losses: local_adv_form must be one of non_saturating, saturating, got 'literal'"


@pytest.mark.parametrize("form", ["non_saturating", "saturating"])
def test_generator_loss_wires_local_adv_form(form):
    restored, gt, rgbs, boxes, has, d_global, d_locals = inputs()
    cfg = LossConfig(feature_matching=0, face_preserving=0, local_adv_form=form)
    _, terms = GeneratorLoss(cfg)(restored, gt, rgbs, boxes, has, d_global, d_locals)
    local = local_generator_losses(restored, boxes, has, d_locals, component_crop_sizes(SIZE), form=form)
    torch.testing.assert_close(terms["adv_local"], torch.stack(list(local.values())).sum().detach())
    assert (terms["adv_local"] < 0) == (form == "saturating")  # -softplus < 0 < softplus


def test_generator_total_is_the_weighted_sum_of_directly_computed_terms():
    restored, gt, rgbs, boxes, has, d_global, d_locals = inputs()
    cfg = LossConfig(feature_matching=0.02, face_preserving=10.0, arcface="resnet18")
    vgg = load_vgg19_features(cfg.vgg_layers, pretrained=False)
    identity = load_identity_encoder("resnet18", pretrained=False)
    loss_fn = GeneratorLoss(cfg, vgg=vgg, identity=identity)
    total, terms = loss_fn(restored, gt, rgbs, boxes, has, d_global, d_locals)

    adv_global = F.softplus(-d_global(restored)).mean()
    local = local_generator_losses(restored, boxes, has, d_locals, component_crop_sizes(SIZE))
    fr, fg = vgg(restored), vgg(gt)
    fm = sum(w * (fr[n] - fg[n]).pow(2).mean() for n, w in zip(cfg.vgg_layers, cfg.vgg_layer_weights))
    fp = (identity(restored) - identity(gt)).abs().mean()
    expected = {
        "adv_global": adv_global,
        "adv_local": sum(local.values()),
        "l1": (restored - gt).abs().mean(),
        "pyramid_l1": pyramid_l1(rgbs, gt),
        "feature_matching": fm,
        "face_preserving": fp,
    }
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-4), name
    for name in ("left_eye", "right_eye", "mouth"):
        assert terms[f"adv_{name}"].item() == pytest.approx(local[name].item(), rel=1e-5)
    weights = {
        "adv_global": 0.5,
        "adv_local": 3.0,
        "l1": 8.0,
        "pyramid_l1": 1.0,
        "feature_matching": 0.02,
        "face_preserving": 10.0,
    }
    by_hand = sum(weights[k] * expected[k] for k in weights)
    assert total.item() == pytest.approx(by_hand.item(), rel=1e-4)
    assert terms["total"].item() == pytest.approx(total.item())
    assert all(not t.requires_grad for t in terms.values())

    total.backward()
    assert restored.grad.abs().sum() > 0
    assert all(rgb.grad.abs().sum() > 0 for rgb in rgbs)
    assert not any(p.requires_grad for p in loss_fn.parameters())  # VGG and ArcFace are frozen


def test_zero_weights_skip_terms_and_never_load_their_networks(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("network loaded although its weight is 0")

    monkeypatch.setattr(objectives, "load_vgg19_features", forbidden)
    monkeypatch.setattr(objectives, "load_identity_encoder", forbidden)
    cfg = LossConfig(global_adv=0, local_adv=0, feature_matching=0, face_preserving=0, pyramid_l1=0)
    restored, gt, rgbs, *_ = inputs()
    total, terms = GeneratorLoss(cfg)(restored, gt, rgbs)
    assert set(terms) == {"l1", "total"}
    assert total.item() == pytest.approx(8.0 * (restored - gt).abs().mean().item(), rel=1e-6)
    _, none = GeneratorLoss(
        LossConfig(global_adv=0, local_adv=0, l1=0, pyramid_l1=0, feature_matching=0, face_preserving=0)
    )(restored, gt)
    assert set(none) == {"total"} and none["total"].item() == 0.0


def test_missing_networks_for_enabled_terms_are_clear_errors():
    restored, gt, *_ = inputs()
    cfg = LossConfig(feature_matching=0, face_preserving=0)
    with pytest.raises(ValueError, match="losses.global_adv: 0"):
        GeneratorLoss(cfg)(restored, gt)
    with pytest.raises(ValueError, match="losses.local_adv: 0"):
        GeneratorLoss(cfg)(restored, gt, d_global=TinyD(0))


def test_batch_without_boxes_gives_zero_local_loss_and_finite_gradients():
    restored, gt, rgbs, _, _, d_global, d_locals = inputs()
    cfg = LossConfig(feature_matching=0, face_preserving=0)
    boxes = torch.full((2, 3, 4), math.nan)
    has = torch.tensor([False, False])
    total, terms = GeneratorLoss(cfg)(restored, gt, rgbs, boxes, has, d_global, d_locals)
    assert terms["adv_local"].item() == 0.0
    assert finite_or_none(terms) is not None
    total.backward()
    assert torch.isfinite(restored.grad).all()
    d_total, d_terms = DiscriminatorLoss(cfg)(restored, gt, boxes, has, d_global, d_locals, step=1)
    assert all(d_terms[f"d_{n}"].item() == 0.0 for n in ("left_eye", "right_eye", "mouth"))
    d_total.backward()
    assert all(torch.isfinite(p.grad).all() for d in d_locals.values() for p in d.parameters())


def test_discriminator_loss_with_lazy_r1():
    restored, gt, _, boxes, has, d_global, d_locals = inputs()
    cfg = LossConfig(feature_matching=0, face_preserving=0)
    loss_fn = DiscriminatorLoss(cfg)

    total, terms = loss_fn(restored, gt, boxes, has, d_global, d_locals, step=16)
    real_logits, fake_logits = d_global(gt).flatten(), d_global(restored.detach()).flatten()
    d_global_by_hand = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    assert terms["d_global"].item() == pytest.approx(d_global_by_hand.item(), rel=1e-5)
    # R1 for this D by hand: its input gradient is the conv's linear map, computed with autograd on a copy
    real = gt.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d_global(real).sum(), real)
    r1_by_hand = grad.pow(2).flatten(1).sum(1).mean()
    assert terms["d_r1"].item() == pytest.approx(r1_by_hand.item(), rel=1e-4)
    local = sum(terms[f"d_{n}"] for n in ("left_eye", "right_eye", "mouth"))
    assert total.item() == pytest.approx((d_global_by_hand + 80.0 * r1_by_hand + local).item(), rel=1e-4)
    total.backward()
    assert restored.grad is None  # the generator output is detached
    assert d_global.conv.weight.grad.abs().sum() > 0
    assert all(d.conv.weight.grad.abs().sum() > 0 for d in d_locals.values())

    _, off_step = loss_fn(restored, gt, boxes, has, d_global, d_locals, step=17)
    assert "d_r1" not in off_step
    _, no_r1 = DiscriminatorLoss(LossConfig(r1_gamma=0))(restored, gt, boxes, has, d_global, d_locals, step=0)
    assert "d_r1" not in no_r1
    _, with_local_r1 = DiscriminatorLoss(LossConfig(local_r1_gamma=1.0))(
        restored, gt, boxes, has, d_global, d_locals, step=0
    )
    assert {"d_r1_left_eye", "d_r1_right_eye", "d_r1_mouth"} <= set(with_local_r1)
    assert "d_total" in terms and all(
        objectives.is_discriminator_term(name) for name in {**terms, **with_local_r1}
    )  # logged as they are


def test_finite_or_none_flags_nan_and_inf():
    good = {"l1": torch.tensor(0.5), "adv": 1.25}
    assert finite_or_none(good) == {"l1": 0.5, "adv": 1.25}
    assert finite_or_none({"l1": torch.tensor(float("nan")), "adv": torch.tensor(1.0)}) is None
    assert nonfinite_terms({"a": torch.tensor(float("inf")), "b": float("nan"), "c": 1.0}) == ["a", "b"]
