import logging
import urllib.error

import pytest
import torch

from poseface.errors import PoseFaceError
from poseface.losses.arcface import (
    IRSE50,
    FacePreservingLoss,
    IdentityEncoder,
    ResNet18ArcFace,
    gpen_face_crop,
    load_identity_encoder,
    to_gray,
)
from poseface.weights import sha256_of

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def bn_keys(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{name}": (() if name == "num_batches_tracked" else (channels,)) for name in BN}


def expected_irse50() -> dict[str, tuple[int, ...]]:
    """TreB1eN Backbone(50, drop, 'ir_se'): stages (64,3) (128,4) (256,14) (512,3), first unit of each with stride 2;
    a conv+BN shortcut only where the channels change; SE with bias-free 1x1 convs, reduction 16."""
    keys = {"input_layer.0.weight": (64, 3, 3, 3), **bn_keys("input_layer.1", 64), "input_layer.2.weight": (64,)}
    unit, channels = 0, 64
    for depth, count in ((64, 3), (128, 4), (256, 14), (512, 3)):
        for i in range(count):
            c_in = channels if i == 0 else depth
            p = f"body.{unit}"
            if c_in != depth:
                keys[f"{p}.shortcut_layer.0.weight"] = (depth, c_in, 1, 1)
                keys.update(bn_keys(f"{p}.shortcut_layer.1", depth))
            keys.update(bn_keys(f"{p}.res_layer.0", c_in))
            keys[f"{p}.res_layer.1.weight"] = (depth, c_in, 3, 3)
            keys[f"{p}.res_layer.2.weight"] = (depth,)
            keys[f"{p}.res_layer.3.weight"] = (depth, depth, 3, 3)
            keys.update(bn_keys(f"{p}.res_layer.4", depth))
            keys[f"{p}.res_layer.5.fc1.weight"] = (depth // 16, depth, 1, 1)
            keys[f"{p}.res_layer.5.fc2.weight"] = (depth, depth // 16, 1, 1)
            unit += 1
        channels = depth
    keys.update(bn_keys("output_layer.0", 512))
    keys["output_layer.3.weight"] = (512, 512 * 7 * 7)
    keys["output_layer.3.bias"] = (512,)
    keys.update(bn_keys("output_layer.4", 512))
    return keys


def expected_resnet18() -> dict[str, tuple[int, ...]]:
    """GFPGAN ResNetArcFace(IRBlock, [2, 2, 2, 2], use_se=False): one scalar PReLU per block."""
    keys = {"conv1.weight": (64, 1, 3, 3), **bn_keys("bn1", 64), "prelu.weight": (1,)}
    channels = 64
    for layer, depth in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            c_in = channels if block == 0 else depth
            p = f"layer{layer}.{block}"
            keys.update(bn_keys(f"{p}.bn0", c_in))
            keys[f"{p}.conv1.weight"] = (c_in, c_in, 3, 3)
            keys.update(bn_keys(f"{p}.bn1", c_in))
            keys[f"{p}.prelu.weight"] = (1,)
            keys[f"{p}.conv2.weight"] = (depth, c_in, 3, 3)
            keys.update(bn_keys(f"{p}.bn2", depth))
            if block == 0 and layer > 1:
                keys[f"{p}.downsample.0.weight"] = (depth, c_in, 1, 1)
                keys.update(bn_keys(f"{p}.downsample.1", depth))
        channels = depth
    keys.update(bn_keys("bn4", 512))
    keys["fc5.weight"] = (512, 512 * 8 * 8)
    keys["fc5.bias"] = (512,)
    keys.update(bn_keys("bn5", 512))
    return keys


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_irse50_state_dict_matches_model_ir_se50_layout_and_parameter_count():
    model = IRSE50()
    assert shapes(model) == expected_irse50()
    count = sum(p.numel() for p in model.parameters())

    # by hand from the architecture: input layer + 24 units + output layer
    def unit(c_in, d):
        return (
            2 * c_in + 9 * c_in * d + d + 9 * d * d + 2 * d + 2 * d * (d // 16) + (c_in * d + 2 * d if c_in != d else 0)
        )

    by_hand = 64 * 27 + 128 + 64
    for depth, count_units, c_prev in ((64, 3, 64), (128, 4, 64), (256, 14, 128), (512, 3, 256)):
        by_hand += unit(c_prev, depth) + (count_units - 1) * unit(depth, depth)
    by_hand += 1024 + 25088 * 512 + 512 + 1024
    assert count == by_hand == 43_797_696


def test_resnet18_state_dict_matches_gfpgan_layout_and_parameter_count():
    model = ResNet18ArcFace()
    assert shapes(model) == expected_resnet18()
    assert sum(p.numel() for p in model.parameters()) == 25_627_081  # GFPGAN's ResNetArcFace, counted on its code


def test_gpen_face_crop_rows_and_columns():
    image = torch.arange(512.0).view(1, 1, 1, 512).expand(1, 1, 512, 512)
    rows = torch.arange(512.0).view(1, 1, 512, 1).expand(1, 1, 512, 512)
    crop = gpen_face_crop(image)
    assert crop.shape[-2:] == (376, 376)  # rows 70:446, cols 64:440
    assert crop[0, 0, 0, 0].item() == 64 and crop[0, 0, 0, -1].item() == 439
    crop_rows = gpen_face_crop(rows)
    assert crop_rows[0, 0, 0, 0].item() == 70 and crop_rows[0, 0, -1, 0].item() == 445
    assert gpen_face_crop(torch.zeros(1, 3, 256, 256)).shape[-2:] == (188, 188)
    assert gpen_face_crop(torch.zeros(1, 3, 64, 64)).shape[-2:] == (47, 47)


def test_gray_conversion_weights():
    image = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert to_gray(image).item() == pytest.approx(0.2989)
    assert to_gray(torch.ones(1, 3, 2, 2)).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("kind", ["ir_se50", "resnet18"])
def test_identity_encoder_is_frozen_but_passes_gradients_to_the_image(kind):
    torch.manual_seed(0)
    encoder = load_identity_encoder(kind, pretrained=False)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.train()  # must stay in eval mode: BatchNorm statistics frozen
    assert not encoder.backbone.training
    image = torch.rand(1, 3, 64, 64, requires_grad=True)
    embedding = encoder(image)
    assert embedding.shape == (1, 512)
    if kind == "ir_se50":
        torch.testing.assert_close(embedding.norm(dim=1), torch.ones(1))
    embedding.sum().backward()
    assert image.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in encoder.parameters())
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


def test_preprocessing_shapes():
    assert load_identity_encoder("ir_se50", pretrained=False).preprocess(torch.zeros(1, 3, 512, 512)).shape == (
        1,
        3,
        112,
        112,
    )
    assert load_identity_encoder("resnet18", pretrained=False).preprocess(torch.zeros(1, 3, 512, 512)).shape == (
        1,
        1,
        128,
        128,
    )


class TinyEncoder(torch.nn.Module):
    """Stand-in identity network (the loss only needs images -> embeddings)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=4)

    def forward(self, x):
        return self.conv(x).flatten(1)


def test_face_preserving_loss_l1_and_cosine():
    torch.manual_seed(0)
    encoder = TinyEncoder()
    restored = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    gt = torch.rand(2, 3, 16, 16) * 2 - 1
    fake, real = encoder(restored), encoder(gt)
    loss = FacePreservingLoss(encoder)(restored, gt)
    assert loss.item() == pytest.approx((fake - real).abs().mean().item(), rel=1e-5)
    loss.backward()
    assert restored.grad.abs().sum() > 0
    cosine = 1 - torch.nn.functional.cosine_similarity(fake, real).mean()
    assert FacePreservingLoss(encoder, "cosine")(restored, gt).item() == pytest.approx(cosine.item(), rel=1e-5)
    assert FacePreservingLoss(encoder)(gt, gt).item() == 0.0
    with pytest.raises(ValueError):
        FacePreservingLoss(encoder, "l2")


def test_loads_an_unchecksummed_file_with_module_prefix_and_logs_its_sha256(tmp_path, caplog):
    source = ResNet18ArcFace()
    path = tmp_path / "arcface_resnet18.pth"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    digest = sha256_of(path)
    with caplog.at_level(logging.WARNING, logger="poseface.losses"):
        encoder = load_identity_encoder("resnet18", weights=path)
    assert digest in caplog.text and "losses.arcface_sha256" in caplog.text
    torch.testing.assert_close(encoder.backbone.fc5.weight, source.fc5.weight)
    # pinning: the right full digest loads, a wrong one is a one-line checksum error, a prefix is refused
    load_identity_encoder("resnet18", weights=path, sha256=digest.upper())
    with pytest.raises(PoseFaceError, match="checksum mismatch"):
        load_identity_encoder("resnet18", weights=path, sha256="0" * 64)
    with pytest.raises(PoseFaceError, match="not a full sha256"):
        load_identity_encoder("resnet18", weights=path, sha256=digest[:12])


def test_wrong_file_and_missing_file_are_one_line_errors(tmp_path, monkeypatch, caplog):
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(64, 1, 3, 3)}, wrong)
    with caplog.at_level(logging.WARNING, logger="poseface.losses"):
        with pytest.raises(PoseFaceError, match="does not fit the ArcFace IR-SE50") as info:
            load_identity_encoder("ir_se50", weights=wrong)
    assert "missing" in str(info.value) and "\n" not in str(info.value)
    assert "sha256" not in caplog.text  # a rejected file is not offered for pinning
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PoseFaceError, match="cannot read"):
        load_identity_encoder("resnet18", weights=garbage)
    monkeypatch.setenv("POSEFACE_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(PoseFaceError) as info:
        load_identity_encoder("ir_se50")
    message = str(info.value)
    assert str(tmp_path / "model_ir_se50.pth") in message and "losses.face_preserving: 0" in message
    assert "losses.arcface_weights" in message
    assert "\n" not in message
    with pytest.raises(ValueError):
        IdentityEncoder("facenet", ResNet18ArcFace())
