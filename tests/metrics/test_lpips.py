import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from poseface.errors import PoseFaceError
from poseface.metrics.backbones import AlexNetFeatures, VGG16Features, load_torchvision_features
from poseface.metrics.lpips import ASSETS, LPIPS, build_lpips, images_to_tensor, lpips_distance


@pytest.fixture(scope="module")
def random_alex() -> LPIPS:
    torch.manual_seed(0)
    return LPIPS("alex")  # random backbone, official linear heads


def direct_lpips(model: LPIPS, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LPIPS written out layer by layer with plain tensor ops."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    hx, hy = (x - shift) / scale, (y - shift) / scale
    total = torch.zeros(x.shape[0])
    tap = 0
    for index, layer in enumerate(model.backbone.features):
        hx, hy = layer(hx), layer(hy)
        if index in model.backbone.taps:
            nx = hx / (hx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = hy / (hy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            weight = model.lins[tap].weight.view(1, -1, 1, 1)
            total += ((nx - ny) ** 2 * weight).sum(1).mean(dim=(1, 2))
            tap += 1
            if tap == 5:
                break
    return total


def test_backbones_use_torchvision_key_layout_and_sizes():
    alex, vgg = AlexNetFeatures().state_dict(), VGG16Features().state_dict()
    assert list(alex)[:2] == ["features.0.weight", "features.0.bias"] and "features.10.weight" in alex
    assert alex["features.3.weight"].shape == (192, 64, 5, 5)
    assert "features.28.weight" in vgg and vgg["features.28.weight"].shape == (512, 512, 3, 3)
    assert sum(v.numel() for v in alex.values()) == 2_469_696  # torchvision alexnet().features
    assert sum(v.numel() for v in vgg.values()) == 14_714_688  # torchvision vgg16().features


def test_official_linear_heads_are_loaded():
    model = LPIPS("vgg")
    heads = load_file(str(ASSETS / "lpips_vgg_v0.1.safetensors"))
    for index, lin in enumerate(model.lins):
        assert torch.equal(lin.weight, heads[f"lin{index}.weight"])
        assert (lin.weight >= 0).all()  # LPIPS heads are trained non-negative
    assert [lin.weight.shape[1] for lin in model.lins] == [64, 128, 256, 512, 512]


def test_lpips_is_zero_for_identical_and_symmetric(random_alex):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert np.allclose(lpips_distance(random_alex, a, a), 0.0)
    ab, ba = lpips_distance(random_alex, a, b), lpips_distance(random_alex, b, a)
    assert ab.shape == (2,) and (ab > 0).all()
    np.testing.assert_allclose(ab, ba, rtol=1e-5)


def test_lpips_equals_the_direct_computation(random_alex):
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(random_alex(x, y), direct_lpips(random_alex, x, y), rtol=1e-5, atol=1e-7)


def test_images_to_tensor_range():
    tensor = images_to_tensor(np.array([[[0, 255, 127]]], dtype=np.uint8))
    assert tensor.shape == (1, 3, 1, 1)
    torch.testing.assert_close(tensor.flatten(), torch.tensor([-1.0, 1.0, 127 / 127.5 - 1]))


def test_torchvision_checkpoint_loads_features_only(tmp_path):
    source = AlexNetFeatures()
    state = {**source.state_dict(), "classifier.1.weight": torch.zeros(4096, 9216)}
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    target = load_torchvision_features(AlexNetFeatures(), path)
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


def test_wrong_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(AlexNetFeatures().state_dict(), path)
    with pytest.raises(PoseFaceError, match="does not fit the torchvision VGG16 layout"):
        load_torchvision_features(VGG16Features(), path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PoseFaceError, match="garbage.pth: cannot read as a PyTorch checkpoint"):
        load_torchvision_features(VGG16Features(), garbage)


def test_offline_without_backbone_weights_says_where_to_put_them(offline_cache):
    with pytest.raises(PoseFaceError) as error:
        build_lpips("alex", download=False)
    message = str(error.value)
    assert "alexnet-owt-7be5be79.pth" in message and "download.pytorch.org" in message and "\n" not in message


def test_local_file_with_wrong_checksum_is_refused(tmp_path):
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(AlexNetFeatures().state_dict(), path)  # right layout, but not the official file
    with pytest.raises(PoseFaceError, match="checksum mismatch"):
        build_lpips("alex", weights=path)
