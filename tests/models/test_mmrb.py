import pytest
import torch
import torch.nn.functional as F

from poseface.models.mmrb import MMRB


def prelu(x, a):
    return torch.clamp(x, min=0) + a.view(1, -1, 1, 1) * torch.clamp(x, max=0)


def test_mmrb_equals_direct_computation_of_eqs_4_to_10():
    torch.manual_seed(0)
    block = MMRB(8, zero_init=False)
    with torch.no_grad():
        for act in (block.act3, block.act5, block.mix_act3, block.mix_act5, block.fuse_act):
            act.weight.uniform_(-0.5, 0.5)  # distinct slopes per channel, negative ones included
    x = torch.randn(2, 8, 6, 6)
    x1, x2 = x[:, :4], x[:, 4:]  # eq. 4: equal split, no bottleneck
    p1 = prelu(F.conv2d(x1, block.branch3.weight, block.branch3.bias, padding=1), block.act3.weight)  # eq. 5
    p2 = prelu(F.conv2d(x2, block.branch5.weight, block.branch5.bias, padding=2), block.act5.weight)  # eq. 6
    c1 = torch.cat([p1, p2], 1)
    p1m = prelu(F.conv2d(c1, block.mix3.weight, block.mix3.bias, padding=1), block.mix_act3.weight)  # eq. 7
    p2m = prelu(F.conv2d(c1, block.mix5.weight, block.mix5.bias, padding=2), block.mix_act5.weight)  # eq. 8
    p = prelu(F.conv2d(torch.cat([p1m, p2m], 1), block.fuse.weight, block.fuse.bias), block.fuse_act.weight)  # eq. 9
    expected = x + p  # eq. 10
    assert torch.allclose(block(x), expected, atol=1e-5)
    assert not torch.allclose(block(x), x)


def test_mmrb_kernel_sizes_and_widths():
    block = MMRB(16)
    assert block.branch3.weight.shape == (8, 8, 3, 3)
    assert block.branch5.weight.shape == (8, 8, 5, 5)
    assert block.mix3.weight.shape == (8, 16, 3, 3)
    assert block.mix5.weight.shape == (8, 16, 5, 5)
    assert block.fuse.weight.shape == (16, 16, 1, 1)
    wide = MMRB(16, expansion=2)
    assert wide.mix3.weight.shape == (16, 16, 3, 3) and wide.fuse.weight.shape == (16, 32, 1, 1)


def test_zero_initialised_mmrb_is_identity_but_trainable():
    torch.manual_seed(1)
    block = MMRB(6)
    x = torch.randn(1, 6, 5, 5, requires_grad=True)
    y = block(x)
    assert torch.equal(y, x)
    y.square().sum().backward()
    assert block.fuse.weight.grad.abs().sum() > 0  # the zero conv receives gradient, so the block starts learning
    assert torch.allclose(x.grad, 2 * x)


def test_odd_channels_rejected():
    with pytest.raises(ValueError, match="odd"):
        MMRB(7)
