import pytest
import torch
import torch.nn.functional as F

from poseface.losses.pixel import area_downsample, l1_loss, pyramid_l1


def test_l1_is_mean_absolute_error():
    a, b = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    assert l1_loss(a, b).item() == pytest.approx((a - b).abs().mean().item(), rel=1e-6)


def test_area_downsample_is_block_averaging():
    target = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(area_downsample(target, (8, 8)), F.avg_pool2d(target, 4))
    assert area_downsample(target, (32, 32)) is target
    # a 1-pixel checkerboard averages out exactly (antialiasing); nearest/strided sampling would not
    board = (torch.arange(16).view(1, 16) + torch.arange(16).view(16, 1)) % 2
    small = area_downsample(board.float().view(1, 1, 16, 16), (4, 4))
    torch.testing.assert_close(small, torch.full((1, 1, 4, 4), 0.5))


def test_pyramid_l1_against_manual_average_pooling():
    torch.manual_seed(0)
    target = torch.randn(2, 3, 32, 32)
    rgbs = [torch.randn(2, 3, s, s, requires_grad=True) for s in (4, 8, 16, 32)]
    expected = sum(
        F.l1_loss(rgb, F.avg_pool2d(target, 32 // rgb.shape[-1]) if rgb.shape[-1] < 32 else target) for rgb in rgbs
    )
    loss = pyramid_l1(rgbs, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert all(rgb.grad is not None and rgb.grad.abs().sum() > 0 for rgb in rgbs)


def test_pyramid_l1_weights_per_scale():
    target = torch.randn(1, 3, 16, 16)
    rgbs = [torch.randn(1, 3, s, s) for s in (4, 8, 16)]
    weighted = pyramid_l1(rgbs, target, weights=[0.0, 2.0, 0.5])
    expected = 2.0 * F.l1_loss(rgbs[1], F.avg_pool2d(target, 2)) + 0.5 * F.l1_loss(rgbs[2], target)
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="3 RGB outputs"):
        pyramid_l1(rgbs, target, weights=[1.0])
    with pytest.raises(ValueError, match="at least one"):
        pyramid_l1([], target)


def test_pyramid_l1_does_not_send_gradient_into_the_target():
    target = torch.randn(1, 3, 8, 8, requires_grad=True)
    pyramid_l1([torch.randn(1, 3, 4, 4, requires_grad=True)], target).backward()
    assert target.grad is None
