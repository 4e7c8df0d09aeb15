import torch
import torch.nn.functional as F

from poseface.models.stylegan2 import ModulatedConv2d, StyledConv, StyleGAN2Prior, ToRGB


def per_sample_modconv(conv: ModulatedConv2d, x, w):
    """Direct StyleGAN2 formulation: build each sample's modulated, demodulated weight and convolve."""
    outs = []
    for i in range(x.shape[0]):
        s = conv.modulation(w[i : i + 1])[0]  # (in,)
        weight = conv.scale * conv.weight[0] * s.view(1, -1, 1, 1)
        if conv.demodulate:
            weight = weight / torch.sqrt(weight.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if conv.upsample:
            out = F.conv_transpose2d(x[i : i + 1], weight.transpose(0, 1), stride=2)
            out = conv.blur(out)
        else:
            out = F.conv2d(x[i : i + 1], weight, padding=conv.padding)
        outs.append(out)
    return torch.cat(outs)


def test_modulated_conv_matches_per_sample_weights():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 8, 8)
    w = torch.randn(3, 16)
    for kwargs in [dict(), dict(upsample=True), dict(demodulate=False)]:
        conv = ModulatedConv2d(6, 5, 3 if kwargs.get("demodulate", True) else 1, 16, **kwargs)
        with torch.no_grad():
            conv.modulation.bias.uniform_(0.5, 1.5)
        ours = conv(x, w)
        assert torch.allclose(ours, per_sample_modconv(conv, x, w), atol=1e-5), kwargs
    assert ModulatedConv2d(6, 5, 3, 16, upsample=True)(x, w).shape == (3, 5, 16, 16)


def test_demodulated_output_has_unit_weight_norm_per_output_channel():
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 3, 3, 8)
    # a delta input at the centre reads one kernel; with demodulation each output channel's kernel has unit L2 norm
    x = torch.zeros(4 * 9, 4, 3, 3)
    for i in range(4):
        for k in range(9):
            x[i * 9 + k, i, k // 3, k % 3] = 1.0
    w = torch.randn(1, 8).expand(36, 8)
    out = conv(x, w)[:, :, 1, 1]  # (36, 3): every kernel tap of every output channel
    assert torch.allclose(out.pow(2).sum(0), torch.ones(3), atol=1e-4)


def test_noise_branch_concatenates_scaled_feature_and_bias_covers_it():
    torch.manual_seed(0)
    layer = StyledConv(4, 3, 3, 8)
    assert layer.activate.bias.shape == (6,)  # eq. 3: bias over conv output + concatenated feature
    x, w, feature = torch.randn(2, 4, 8, 8), torch.randn(2, 8), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        layer.noise.weight.fill_(0.5)
        layer.activate.bias.uniform_(-1, 1)
    out = layer(x, w, feature)
    assert out.shape == (2, 6, 8, 8)
    conv_out = layer.conv(x, w)
    expected = (
        F.leaky_relu(torch.cat([conv_out, 0.5 * feature], 1) + layer.activate.bias.view(1, 6, 1, 1), 0.2) * 2**0.5
    )
    assert torch.allclose(out, expected, atol=1e-6)


def test_prior_uses_every_resolution_feature_and_torgb_skip():
    torch.manual_seed(0)
    channels = {4: 16, 8: 16, 16: 8}
    prior = StyleGAN2Prior(16, 32, 2, channels)
    for module in prior.modules():
        if hasattr(module, "noise"):
            module.noise.weight.data.fill_(1.0)
    z = torch.randn(2, 32)
    features = {r: torch.randn(2, c, r, r) for r, c in channels.items()}
    image, w = prior(z, features, return_w=True)
    assert image.shape == (2, 3, 16, 16) and w.shape == (2, 32)
    for r in channels:
        changed = dict(features)
        changed[r] = features[r] + 1.0
        assert not torch.allclose(prior(z, changed), image), f"feature at {r} px is not used"
    assert isinstance(prior.to_rgbs[0], ToRGB) and len(prior.convs) == 4
