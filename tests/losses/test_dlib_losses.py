"""dlib's face ResNet as the face-preserving (eq. 15) and feature-matching (eq. 14) backbone."""

import numpy as np
import pytest
import torch
from skimage import data

from poseface.losses.arcface import FacePreservingLoss
from poseface.losses.config import LossConfig
from poseface.losses.dlib_resnet import DlibFeatures, DlibIdentityEncoder, load_dlib_resnet
from poseface.losses.objectives import GeneratorLoss
from poseface.losses.vgg import FeatureMatchingLoss


def crop(image: np.ndarray, top: int, left: int, size: int = 128) -> torch.Tensor:
    patch = torch.from_numpy(image[top : top + size, left : left + size].copy()).permute(2, 0, 1).float()
    return patch[None] / 127.5 - 1.0


@pytest.fixture(scope="module")
def faces() -> tuple[torch.Tensor, torch.Tensor]:
    face = torch.nn.functional.interpolate(crop(data.astronaut(), 30, 130, 220), size=128, mode="area")
    other = crop(data.chelsea(), 20, 80)  # a cat: not the same face
    return face, other


@pytest.fixture(scope="module")
def identity_loss() -> FacePreservingLoss:
    return FacePreservingLoss(DlibIdentityEncoder(load_dlib_resnet()), "l1")


def test_identity_zero_for_identical_and_grows_with_another_face(faces, identity_loss):
    face, other = faces
    noisy = (face + 0.05 * torch.randn_like(face)).clamp(-1, 1)
    same, near, far = (identity_loss(x, face).item() for x in (face, noisy, other))
    assert same == 0.0
    assert 0 < near < far


def test_gradients_reach_the_input_and_weights_stay_frozen(faces, identity_loss):
    face, other = faces
    restored = other.clone().requires_grad_(True)
    identity_loss(restored, face).backward()
    assert restored.grad is not None and restored.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in identity_loss.parameters())


def test_eye_template_warp_and_bf16(faces):
    face, _ = faces
    encoder = DlibIdentityEncoder(load_dlib_resnet(), ((0.3, 0.35), (0.7, 0.35)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        descriptor = encoder(face)
    assert descriptor.shape == (1, 128) and torch.isfinite(descriptor.float()).all()


def test_feature_matching_backbone(faces):
    face, other = faces
    loss = FeatureMatchingLoss(DlibFeatures(load_dlib_resnet()), (1.0,) * 5)
    assert loss(face, face).item() == 0.0
    restored = other.clone().requires_grad_(True)
    value = loss(restored, face)
    value.backward()
    assert value.item() > 0 and restored.grad.abs().sum() > 0


def test_auto_backbones_pick_dlib_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEFACE_HOME", str(tmp_path))  # an empty weights cache
    cfg = LossConfig(global_adv=0, local_adv=0)
    assert cfg.resolved_identity_backbone() == "dlib" and cfg.resolved_feature_backbone() == "dlib"
    loss = GeneratorLoss(cfg)
    assert isinstance(loss.face_preserving.encoder, DlibIdentityEncoder)
    assert isinstance(loss.feature_matching.vgg, DlibFeatures)
    assert LossConfig(arcface_weights="x.pth").resolved_identity_backbone() == "arcface"


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"identity_backbone": "facenet"}, "identity_backbone"),
        ({"feature_backbone": "resnet"}, "feature_backbone"),
        ({"dlib_eyes": (0.3, 0.4)}, "dlib_eyes"),
        ({"dlib_feature_layers": ("stem", "level9")}, "dlib_feature_layers"),
        ({"dlib_feature_layer_weights": (1.0,)}, "dlib_feature_layer_weights"),
    ],
)
def test_config_errors_are_one_line(fields, key):
    with pytest.raises(ValueError) as error:
        LossConfig(**fields)
    assert key in str(error.value) and "\n" not in str(error.value)


def test_warp_to_dlibs_own_eye_positions_is_the_identity():
    from poseface.losses.dlib_resnet import CHIP_EYES, INPUT_SIZE, to_chip_pixels

    images = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.float64) * 2 - 1
    eyes = tuple(tuple(v / INPUT_SIZE for v in eye) for eye in CHIP_EYES)
    warped = to_chip_pixels(images, eyes)
    assert warped.dtype == torch.float64
    assert torch.allclose(warped, (images + 1) * 127.5, atol=1e-6)
    shifted = to_chip_pixels(images, ((eyes[0][0] + 0.05, eyes[0][1]), (eyes[1][0] + 0.05, eyes[1][1])))
    assert not torch.allclose(shifted, warped, atol=1.0)
