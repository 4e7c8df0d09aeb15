import torch
import torch.nn.functional as F

from poseface.models.ops import Blur, Upsample, fused_leaky_relu, make_kernel, upfirdn2d


def reference_upfirdn2d(x, kernel, up, down, pad0, pad1):
    """Per-channel reference in the formulation of the StyleGAN2 paper's native op."""
    n, c, h, w = x.shape
    out = x.reshape(n * c, 1, h, w)
    out = out.reshape(n * c, 1, h, 1, w, 1)
    out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1]).reshape(n * c, 1, h * up, w * up)
    out = F.pad(out, [max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)])
    out = out[:, :, max(-pad0, 0) : out.shape[2] - max(-pad1, 0), max(-pad0, 0) : out.shape[3] - max(-pad1, 0)]
    out = F.conv2d(out, torch.flip(kernel, [0, 1])[None, None])
    out = out[:, :, ::down, ::down]
    return out.reshape(n, c, out.shape[2], out.shape[3])


def test_make_kernel_is_normalised_outer_product():
    k = make_kernel([1, 3, 3, 1])
    assert torch.allclose(k.sum(), torch.tensor(1.0))
    assert torch.allclose(k * 64, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])))


def test_upfirdn2d_matches_per_channel_reference_with_asymmetric_kernel():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 9, 7)
    kernel = torch.rand(4, 4)  # asymmetric: catches a missing flip
    for up, down, pad in [(1, 1, (2, 1)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 2, (1, 2)), (1, 1, (-1, 2))]:
        ours = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
        ref = reference_upfirdn2d(x, kernel, up, down, *pad)
        assert ours.shape == ref.shape
        assert torch.allclose(ours, ref, atol=1e-6), (up, down, pad)


def test_upsample_doubles_size_and_keeps_constant_images_constant():
    x = torch.full((1, 3, 8, 8), 0.7)
    y = Upsample([1, 3, 3, 1])(x)
    assert y.shape == (1, 3, 16, 16)
    assert torch.allclose(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 0.7), atol=1e-6)


def test_blur_preserves_dc_in_the_interior():
    x = torch.full((1, 2, 10, 10), -1.5)
    y = Blur([1, 3, 3, 1], pad=(2, 1))(x)
    assert y.shape == (1, 2, 10, 10)
    assert torch.allclose(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], -1.5))


def test_fused_leaky_relu_formula():
    x = torch.randn(2, 3, 4, 4)
    b = torch.randn(3)
    direct = torch.where(x + b.view(1, 3, 1, 1) >= 0, x + b.view(1, 3, 1, 1), 0.2 * (x + b.view(1, 3, 1, 1))) * 2**0.5
    assert torch.allclose(fused_leaky_relu(x, b), direct, atol=1e-6)
