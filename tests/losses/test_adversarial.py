import math

import pytest
import torch
import torch.nn as nn

from poseface.losses.adversarial import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    lazy_r1_weight,
    local_discriminator_losses,
    local_generator_losses,
    logits_of,
    masked_mean,
    r1_due,
    r1_penalty,
)
from poseface.losses.roi import component_crop_sizes, roi_crop


class LinearD(nn.Module):
    """D(x) = sum(w * x) + b: its input gradient is w for every sample."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True) + self.b


class PatchD(nn.Module):
    """Tiny patch discriminator with a (N, 1, h, w) output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


def by_hand_softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_generator_loss_is_non_saturating_softplus():
    logits = torch.tensor([-2.0, 0.0, 3.0])
    expected = sum(by_hand_softplus(-v) for v in logits.tolist()) / 3
    assert generator_adversarial_loss(logits).item() == pytest.approx(expected, rel=1e-6)
    # the same as cross-entropy with target "real": -log(sigmoid(x)) (NOT eq. 12's log(1 - D), see below)
    assert generator_adversarial_loss(logits).item() == pytest.approx(
        -torch.sigmoid(logits).log().mean().item(), rel=1e-6
    )


def test_saturating_generator_loss_is_log_one_minus_d():
    logits = torch.tensor([-4.0, -0.5, 0.0, 2.0])
    expected = torch.log(1 - torch.sigmoid(logits.double())).mean()  # eq. 12 as written, D = sigmoid(logit)
    assert generator_adversarial_loss(logits, form="saturating").item() == pytest.approx(expected.item(), rel=1e-6)
    assert generator_adversarial_loss(logits).item() == pytest.approx(
        generator_adversarial_loss(logits, form="non_saturating").item()
    )


def logit_gradient(logits: list[float], form: str) -> torch.Tensor:
    values = torch.tensor(logits, requires_grad=True)
    generator_adversarial_loss(values, form=form).backward()
    return values.grad * len(logits)  # per-sample gradient (the loss is a mean)


def test_saturating_gradient_differs_and_vanishes_as_d_of_fake_goes_to_zero():
    logits = [-12.0, -3.0, 0.0, 3.0]  # D(fake) = sigmoid(l) from ~6e-6 to 0.95
    saturating = logit_gradient(logits, "saturating")
    non_saturating = logit_gradient(logits, "non_saturating")
    torch.testing.assert_close(saturating, -torch.sigmoid(torch.tensor(logits)))
    torch.testing.assert_close(non_saturating, -torch.sigmoid(-torch.tensor(logits)))
    assert not torch.allclose(saturating, non_saturating)
    assert abs(saturating[0].item()) < 1e-5  # D(fake) -> 0: the saturating form gives the generator nothing
    assert non_saturating[0].item() == pytest.approx(-1.0, abs=1e-5)  # the non-saturating one still pushes


def test_unknown_adversarial_form_is_one_line_error():
    with pytest.raises(ValueError, match=r"^adversarial form must be one of non_saturating, saturating, got 'x'$"):
        generator_adversarial_loss(torch.zeros(2), form="x")


def test_discriminator_loss_by_hand():
    real = torch.tensor([1.0, -0.5])
    fake = torch.tensor([0.25, -3.0])
    expected = (by_hand_softplus(-1.0) + by_hand_softplus(0.5)) / 2 + (
        by_hand_softplus(0.25) + by_hand_softplus(-3.0)
    ) / 2
    assert discriminator_adversarial_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)


def test_masked_mean_excludes_samples_and_is_a_connected_zero_when_empty():
    values = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    assert masked_mean(values, torch.tensor([True, False, True])).item() == pytest.approx(2.5)
    empty = masked_mean(values, torch.tensor([False, False, False]))
    assert empty.item() == 0.0 and empty.requires_grad
    empty.backward()
    assert torch.equal(values.grad, torch.zeros(3))


def test_logits_of_averages_patches_and_accepts_tuples():
    d = PatchD()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(logits_of(d, x), d(x).flatten(1).mean(1))

    class TupleD(nn.Module):
        def forward(self, x):
            return d(x), ["features"]

    torch.testing.assert_close(logits_of(TupleD(), x), d(x).flatten(1).mean(1))


def test_r1_on_a_linear_discriminator_has_the_closed_form_sum_of_w_squared():
    torch.manual_seed(0)
    d = LinearD((3, 4, 4))
    real = torch.randn(5, 3, 4, 4, requires_grad=True)
    r1 = r1_penalty(logits_of(d, real), real)
    assert r1.item() == pytest.approx(d.w.pow(2).sum().item(), rel=1e-5)
    # differentiable with respect to D: d(sum w^2)/dw = 2w
    r1.backward()
    torch.testing.assert_close(d.w.grad, 2 * d.w.detach())


def test_r1_on_a_quadratic_discriminator_is_per_sample():
    # D(x) = sum(x^2) -> grad 2x -> R1 = mean over batch of sum(4 x^2)
    real = torch.randn(3, 1, 2, 2, requires_grad=True)
    logits = real.pow(2).flatten(1).sum(1)
    expected = (4 * real.detach().pow(2)).flatten(1).sum(1).mean()
    assert r1_penalty(logits, real).item() == pytest.approx(expected.item(), rel=1e-5)


def test_lazy_r1_schedule_and_weight():
    assert lazy_r1_weight(10.0, 16) == 80.0
    assert [s for s in range(40) if r1_due(s, 16)] == [0, 16, 32]
    assert not r1_due(0, 0)


def make_local_ds():
    torch.manual_seed(1)
    return {"left_eye": PatchD(), "right_eye": PatchD(), "mouth": PatchD()}


BOXES = torch.tensor([[[8.0, 12.0, 18.0, 22.0], [40.0, 12.0, 50.0, 22.0], [20.0, 40.0, 35.0, 55.0]]] * 3)


def test_local_generator_loss_uses_only_samples_with_boxes():
    ds = make_local_ds()
    restored = torch.randn(3, 3, 64, 64, requires_grad=True)
    has = torch.tensor([True, False, True])
    sizes = component_crop_sizes(64)
    losses = local_generator_losses(restored, BOXES, has, ds, sizes)
    assert set(losses) == {"left_eye", "right_eye", "mouth"}
    for index, name in enumerate(["left_eye", "right_eye", "mouth"]):
        kept = restored[has]
        crops = roi_crop(kept, BOXES[has][:, index], sizes[name])
        expected = torch.nn.functional.softplus(-ds[name](crops).flatten(1).mean(1)).mean()
        torch.testing.assert_close(losses[name], expected)
    sum(losses.values()).backward()
    assert restored.grad[0].abs().sum() > 0
    assert restored.grad[1].abs().sum() == 0  # masked sample gets no gradient


def test_local_generator_loss_saturating_form_is_minus_softplus_of_the_crop_logits():
    ds = make_local_ds()
    restored = torch.randn(3, 3, 64, 64)
    has = torch.tensor([True, True, False])
    sizes = component_crop_sizes(64)
    losses = local_generator_losses(restored, BOXES, has, ds, sizes, form="saturating")
    for index, name in enumerate(["left_eye", "right_eye", "mouth"]):
        crops = roi_crop(restored[has], BOXES[has][:, index], sizes[name])
        d_fake = torch.sigmoid(ds[name](crops).flatten(1).mean(1))
        torch.testing.assert_close(losses[name], torch.log(1 - d_fake).mean())


def test_local_loss_without_any_boxes_is_zero_with_a_graph_even_for_nan_boxes():
    ds = make_local_ds()
    restored = torch.randn(3, 3, 64, 64, requires_grad=True)
    boxes = torch.full((3, 3, 4), math.nan)
    losses = local_generator_losses(restored, boxes, torch.zeros(3, dtype=torch.bool), ds, component_crop_sizes(64))
    total = sum(losses.values())
    assert total.item() == 0.0 and total.requires_grad
    total.backward()
    assert torch.isfinite(restored.grad).all() and restored.grad.abs().sum() == 0


def test_local_discriminator_loss_detaches_the_generator_and_trains_d():
    ds = make_local_ds()
    restored = torch.randn(3, 3, 64, 64, requires_grad=True)
    gt = torch.randn(3, 3, 64, 64)
    has = torch.tensor([True, True, False])
    losses = local_discriminator_losses(restored, gt, BOXES, has, ds, component_crop_sizes(64), r1_weight=2.0)
    assert set(losses) == {"left_eye", "right_eye", "mouth", "r1_left_eye", "r1_right_eye", "r1_mouth"}
    sum(losses.values()).backward()
    assert restored.grad is None
    assert all(d.conv.weight.grad is not None and d.conv.weight.grad.abs().sum() > 0 for d in ds.values())
