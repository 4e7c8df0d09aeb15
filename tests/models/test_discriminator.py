import torch

from poseface.models.config import ModelConfig
from poseface.models.discriminator import (
    ComponentDiscriminator,
    GlobalDiscriminator,
    build_discriminators,
    freeze_d,
    minibatch_stddev,
)


def test_minibatch_stddev_against_direct_computation():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_stddev(x, 4)
    assert out.shape == (8, 4, 4, 4)
    # group of 4: sample n belongs with n+2, n+4, n+6 (view(group, -1, ...)) -> two groups of stats
    for m in range(2):
        members = x[m::2]
        std = torch.sqrt(members.var(0, unbiased=False) + 1e-8).mean()
        assert torch.allclose(out[m::2, 3], std.expand(4, 4, 4), atol=1e-6)
    # a batch that 4 does not divide uses the largest divisor instead of failing
    assert minibatch_stddev(torch.randn(6, 3, 4, 4), 4).shape == (6, 4, 4, 4)


def test_freeze_d_freezes_first_five_layers_and_a_step_leaves_them_unchanged():
    torch.manual_seed(0)
    config = ModelConfig(size=128, narrow=1 / 16)
    d = GlobalDiscriminator(128, config.channels())
    frozen = freeze_d(d, 5)
    assert {name.split(".")[1] for name in frozen} == {"0", "1", "2", "3", "4"}
    before = {k: v.clone() for k, v in d.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in d.parameters() if p.requires_grad], lr=0.1)
    d(torch.randn(2, 3, 128, 128)).mean().backward()
    optimizer.step()
    after = d.state_dict()
    for key in before:
        if key.startswith(tuple(f"convs.{i}." for i in range(5))):
            assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["final_conv.0.weight"], after["final_conv.0.weight"])
    assert not torch.equal(before["convs.5.conv1.0.weight"], after["convs.5.conv1.0.weight"])


def test_component_discriminator_two_downsamplings_one_channel_map():
    d = ComponentDiscriminator(16)
    logits, features = d(torch.randn(2, 3, 80, 80), return_features=True)
    assert logits.shape == (2, 1, 20, 20)
    assert [f.shape[-1] for f in features] == [40, 20]


def test_build_discriminators_has_three_components():
    global_d, local_ds = build_discriminators(ModelConfig(size=64, narrow=1 / 16), component_channels=8)
    assert sorted(local_ds) == ["left_eye", "mouth", "right_eye"]
    assert global_d(torch.randn(3, 3, 64, 64)).shape == (3, 1)
