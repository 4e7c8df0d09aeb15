import torch

from poseface.models.codec import Decoder, Encoder
from poseface.models.config import ModelConfig
from poseface.models.network import PoseFaceNet

SMALL = ModelConfig(size=32, style_dim=32, narrow=1 / 32, channel_multiplier=1)


def test_one_mmrb_per_scale_except_first_and_last():
    encoder = Encoder(ModelConfig(size=512, narrow=1 / 16))
    assert sorted(int(r) for r in encoder.mmrbs) == [8, 16, 32, 64, 128, 256]  # six at 512 px (Fig. 2)
    assert sorted(int(r) for r in Encoder(ModelConfig(size=64, narrow=1 / 16)).mmrbs) == [8, 16, 32]
    assert len(Encoder(ModelConfig(size=64, narrow=1 / 16, mmrb=False)).mmrbs) == 0


def test_encoder_pyramid_shapes_and_latent():
    encoder = Encoder(SMALL)
    features, z = encoder(torch.randn(2, 3, 32, 32))
    channels = SMALL.channels()
    assert {r: tuple(f.shape) for r, f in features.items()} == {r: (2, channels[r], r, r) for r in (32, 16, 8, 4)}
    assert z.shape == (2, 32)


def test_fresh_decoder_maps_equal_encoder_maps_and_rgb_heads_cover_every_scale():
    torch.manual_seed(0)
    encoder, decoder = Encoder(SMALL), Decoder(SMALL)
    features, _ = encoder(torch.randn(2, 3, 32, 32))
    maps, rgbs = decoder(features, return_rgbs=True)
    for r in features:
        assert torch.equal(maps[r], features[r])
    assert [tuple(x.shape) for x in rgbs] == [(2, 3, r, r) for r in (4, 8, 16, 32)]


def test_trained_decoder_mixes_coarse_scales_into_fine_maps():
    torch.manual_seed(0)
    encoder, decoder = Encoder(SMALL), Decoder(SMALL)
    for block in decoder.blocks.values():
        torch.nn.init.normal_(block.out.weight)
    features, _ = encoder(torch.randn(1, 3, 32, 32))
    maps, _ = decoder(features)
    changed = dict(features)
    changed[4] = features[4] + 1.0
    maps_changed, _ = decoder(changed)
    assert not torch.allclose(maps_changed[32], maps[32])  # the 4x4 change reaches full resolution


def test_forward_contract_and_gradients():
    torch.manual_seed(0)
    model = PoseFaceNet(SMALL)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    image, rgbs = model(x, return_rgbs=True)
    assert image.shape == x.shape and len(rgbs) == 4
    (image.mean() + sum(r.mean() for r in rgbs)).backward()
    assert model.encoder.convs[0][0].weight.grad is not None
    assert model.prior.mapping[1].weight.grad.abs().sum() > 0
    assert torch.equal(model(x), model(x))  # deterministic: no random noise


def test_wrong_input_shape_is_a_clear_error():
    model = PoseFaceNet(SMALL)
    try:
        model(torch.zeros(1, 3, 64, 64))
    except ValueError as exc:
        assert "(N, 3, 32, 32)" in str(exc)
    else:
        raise AssertionError("no error for a 64 px input to a 32 px model")


def test_parameter_groups_partition_the_model():
    model = PoseFaceNet(SMALL)
    groups = model.parameter_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert len(groups["noise"]) == 1 + 2 * (SMALL.log_size - 2)  # one scalar per StyledConv
    assert all(p.numel() == 1 for p in groups["noise"])
