import logging
import urllib.error

import pytest
import torch

import poseface.losses.vgg as vgg_module
from poseface.errors import PoseFaceError
from poseface.losses.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG19_SPEC,
    FeatureMatchingLoss,
    VGG19Features,
    load_vgg19_features,
    vgg19_layer_names,
)
from poseface.weights import WeightsSpec


def expected_torchvision_vgg19_features() -> dict[str, tuple[int, ...]]:
    """Key -> shape of `features.*` in torchvision's vgg19 (configuration E, conv3x3 + ReLU, 'M' pools)."""
    config = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
    keys, index, channels = {}, 0, 3
    for item in config:
        if item == "M":
            index += 1
            continue
        keys[f"features.{index}.weight"] = (item, channels, 3, 3)
        keys[f"features.{index}.bias"] = (item,)
        channels, index = item, index + 2  # conv + ReLU
    return keys


def test_state_dict_matches_torchvision_layout():
    model = VGG19Features()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == expected_torchvision_vgg19_features()
    assert [k for k in shapes if k.endswith(".weight")][-1] == "features.34.weight"
    # 20,024,384 = parameters of torchvision's vgg19().features (143,667,240 with the classifier)
    assert sum(p.numel() for p in model.parameters()) == 20_024_384


def test_layer_names_point_at_torchvision_indices():
    names = vgg19_layer_names()
    assert len(names) == 37
    assert names.index("conv1_1") == 0 and names.index("relu1_1") == 1 and names.index("pool1") == 4
    assert names.index("conv3_4") == 16 and names.index("relu4_1") == 20 and names.index("relu5_1") == 29
    assert names.index("conv5_4") == 34 and names[-1] == "pool5"
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        VGG19Features(["relu6_1"])


def test_forward_returns_the_requested_layers_and_normalises_input():
    model = load_vgg19_features(["relu1_1", "conv2_2", "relu3_1"], pretrained=False)
    out = model(torch.zeros(1, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "relu1_1": (1, 64, 32, 32),
        "conv2_2": (1, 128, 16, 16),
        "relu3_1": (1, 256, 8, 8),
    }
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)
    expected = (torch.tensor([0.0, 0.5, 1.0]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(model.normalise(x).flatten(), expected)
    # the relu1_1 output equals a direct computation from the first conv
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    conv = model.features[0]
    torch.testing.assert_close(model(image)["relu1_1"], torch.relu(conv(model.normalise(image))))


def test_feature_matching_against_a_direct_computation_and_gradients():
    torch.manual_seed(0)
    vgg = load_vgg19_features(["relu1_1", "relu2_1"], pretrained=False)
    loss_fn = FeatureMatchingLoss(vgg, [0.5, 2.0], norm="mse")
    restored = torch.randn(2, 3, 32, 32, requires_grad=True)
    gt = torch.randn(2, 3, 32, 32)
    fr, fg = vgg(restored), vgg(gt)
    expected = 0.5 * (fr["relu1_1"] - fg["relu1_1"]).pow(2).mean() + 2.0 * (fr["relu2_1"] - fg["relu2_1"]).pow(2).mean()
    loss = loss_fn(restored, gt)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert restored.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in vgg.parameters())
    assert loss_fn(gt, gt).item() == 0.0
    l1 = FeatureMatchingLoss(vgg, [1.0, 0.0], norm="l1")(restored, gt)
    assert l1.item() == pytest.approx((fr["relu1_1"] - fg["relu1_1"]).abs().mean().item(), rel=1e-5)
    l2 = FeatureMatchingLoss(vgg, [1.0, 0.0], norm="l2")(restored, gt)
    rms = (fr["relu1_1"] - fg["relu1_1"]).pow(2).flatten(1).mean(1).sqrt().mean()
    assert l2.item() == pytest.approx(rms.item(), rel=1e-4)


def test_feature_network_stays_in_eval_mode():
    loss_fn = FeatureMatchingLoss(load_vgg19_features(pretrained=False))
    loss_fn.train()
    assert loss_fn.training and not loss_fn.vgg.training
    with pytest.raises(ValueError, match="layer weights"):
        FeatureMatchingLoss(load_vgg19_features(pretrained=False), [1.0])
    with pytest.raises(ValueError, match="mse, l1 or l2"):
        FeatureMatchingLoss(load_vgg19_features(pretrained=False), norm="l3")


def test_loads_a_torchvision_style_file_and_drops_classifier_keys(tmp_path, monkeypatch, caplog):
    source = VGG19Features()
    state = dict(source.state_dict())
    state["classifier.0.weight"] = torch.zeros(4, 8)  # small stand-ins: only the names matter
    state["classifier.6.bias"] = torch.zeros(10)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    monkeypatch.setattr(vgg_module, "VGG19_SPEC", WeightsSpec(VGG19_SPEC.name, VGG19_SPEC.url, "", VGG19_SPEC.what))
    with caplog.at_level(logging.INFO, logger="poseface.losses"):
        model = load_vgg19_features(weights=path)
    torch.testing.assert_close(model.features[34].weight, source.features[34].weight)
    assert "classifier.0.weight, classifier.6.bias" in caplog.text
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_checksum_mismatch_is_a_one_line_error(tmp_path):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(VGG19Features().state_dict(), path)
    with pytest.raises(PoseFaceError, match="checksum mismatch") as info:
        load_vgg19_features(weights=path)
    assert "\n" not in str(info.value)


def test_offline_without_the_file_says_where_to_put_it_or_how_to_switch_off(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEFACE_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(PoseFaceError) as info:
        load_vgg19_features()
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "vgg19-dcbb9e9d.pth") in message
    assert VGG19_SPEC.url in message and "losses.feature_matching: 0" in message
    with pytest.raises(PoseFaceError, match="no such file"):
        load_vgg19_features(weights=tmp_path / "missing.pth")
