"""The fitted never-worse rule (faces/detail.FusionRule, faces/fit_detail.py): exact limits, a direct
computation of the features, a fit that tells clean inputs from noisy ones, file round trips."""

import json

import cv2
import numpy as np
import pytest

from poseface.errors import PoseFaceError
from poseface.faces import detail
from poseface.faces.fit_detail import FitSettings, collect_samples, fit_rule
from poseface.metrics.psnr_ssim import psnr


def constant_rule(value: float, hidden: int = 4) -> detail.FusionRule:
    """A rule whose weights are sigmoid(value) everywhere (the MLP's output ignores its input)."""
    return detail.FusionRule(
        mean=np.zeros(detail.FUSION_FEATURES, np.float32),
        std=np.ones(detail.FUSION_FEATURES, np.float32),
        w1=np.zeros((detail.FUSION_FEATURES, hidden), np.float32),
        b1=np.zeros(hidden, np.float32),
        w2=np.zeros((hidden, detail.FUSION_BANDS), np.float32),
        b2=np.full(detail.FUSION_BANDS, value, np.float32),
    )


def texture(seed: int, size: int = 48) -> np.ndarray:
    """A smooth random colour image with detail at several scales (uint8)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.float32)
    for sigma, amplitude in ((6.0, 60.0), (2.0, 30.0), (0.8, 15.0)):
        noise = rng.normal(0, 1, (size, size, 3)).astype(np.float32)
        layer = cv2.GaussianBlur(noise, (0, 0), sigma)
        image += amplitude * layer / layer.std()
    return np.clip(128 + image, 0, 255).astype(np.uint8)


def test_the_bands_add_up_to_the_image():
    image = texture(0).astype(np.float32)
    np.testing.assert_allclose(sum(detail.fusion_bands(image)), image, atol=1e-3)


def test_weights_one_give_the_input_and_weights_zero_the_restored_face():
    crop, restored = texture(1), texture(2)
    np.testing.assert_array_equal(detail.fuse_input_detail(crop, restored, constant_rule(40.0)), crop)
    np.testing.assert_array_equal(detail.fuse_input_detail(crop, restored, constant_rule(-40.0)), restored)


def test_features_match_a_direct_computation():
    crop, restored = texture(3).astype(np.float32), texture(4).astype(np.float32)
    bands_in, bands_out = detail.fusion_bands(crop), detail.fusion_bands(restored)
    features = detail.fusion_features(crop, bands_in, bands_out)
    assert features.shape == (detail.FUSION_FEATURES, 48, 48)
    band = crop - cv2.GaussianBlur(crop, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    energy = cv2.blur((band**2).mean(axis=2), (7, 7), borderType=cv2.BORDER_REFLECT)
    np.testing.assert_allclose(features[0], np.log(energy + 1e-2), rtol=1e-4, atol=1e-4)
    low_diff = (bands_in[3] - bands_out[3]) ** 2
    low_energy = cv2.blur(low_diff.mean(axis=2), (7, 7), borderType=cv2.BORDER_REFLECT)
    np.testing.assert_allclose(features[9], np.log(low_energy + 1e-2), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(features[10], np.log(np.exp(features[0]).mean()), rtol=1e-3)  # image mean of 0
    grey = cv2.cvtColor(crop.astype(np.uint8), cv2.COLOR_RGB2GRAY)
    np.testing.assert_allclose(features[-1], np.log(detail.noise_sigma(grey) + 0.1), rtol=1e-5)


def test_the_fit_keeps_a_clean_input_and_drops_a_noisy_one():
    """Half the faces: the input is nearly clean and the 'model' blurred it; half: the input is noisy and
    the model returned a nearly clean face. The fitted rule must take the input in the first case only."""
    rng = np.random.default_rng(0)

    def noisy(image: np.ndarray, sigma: float) -> np.ndarray:
        return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)

    lqs, restored, gts = [], [], []
    for i in range(24):
        gt = texture(10 + i)
        if i % 2 == 0:
            lqs.append(noisy(gt, 1.5))
            restored.append(cv2.GaussianBlur(gt, (0, 0), 1.5))
        else:
            lqs.append(noisy(gt, 12.0))
            restored.append(noisy(gt, 1.5))
        gts.append(gt)
    rule = fit_rule(collect_samples(lqs[:16], restored[:16], gts[:16], 1024), FitSettings(steps=300))
    for lq, out, gt in zip(lqs[16:], restored[16:], gts[16:]):
        fused = detail.fuse_input_detail(lq, out, rule)
        best = max(psnr(lq, gt), psnr(out, gt))
        assert psnr(fused, gt) > best - 1.0  # close to the better of the two on faces it never saw
        assert psnr(fused, gt) > min(psnr(lq, gt), psnr(out, gt)) + 3.0


def test_a_rule_round_trips_and_a_broken_one_is_one_line():
    rule = constant_rule(0.5)
    again = detail.FusionRule.from_dict(json.loads(json.dumps(rule.to_dict())), where="x.safetensors")
    np.testing.assert_array_equal(again.b2, rule.b2)
    broken = rule.to_dict() | {"w2": [[0.0]]}
    with pytest.raises(PoseFaceError, match=r"x.safetensors: detail rule field w2 has shape \(1, 1\)") as info:
        detail.FusionRule.from_dict(broken, where="x.safetensors")
    assert "\n" not in str(info.value) and "fit-detail" in str(info.value)
    with pytest.raises(PoseFaceError, match="not readable"):
        detail.FusionRule.from_dict({"mean": []}, where="x.safetensors")


def test_the_rule_travels_in_the_weights_file_and_the_restorer_uses_it(tmp_path):
    from poseface.faces.restorer import Restorer
    from poseface.models.checkpoint import load_model, save_model
    from poseface.models.config import ModelConfig
    from poseface.models.network import PoseFaceNet

    model = PoseFaceNet(ModelConfig(size=16, style_dim=32, n_mlp=2, narrow=1 / 32, channel_multiplier=1))
    model.detail_rule = constant_rule(40.0).to_dict()  # w = 1: every face comes back as its input crop
    path = save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(path)
    restorer = Restorer(model=loaded, device="cpu", aligned=True)
    assert restorer.detail_rule is not None
    np.testing.assert_allclose(restorer.detail_rule.b2, 40.0)
    crop = texture(5, size=16)
    np.testing.assert_array_equal(restorer.restore_image(crop).faces[0].restored, crop)
    plain = Restorer(model=loaded, device="cpu", aligned=True, keep_detail=False)
    assert not np.array_equal(plain.restore_image(crop).faces[0].restored, crop)  # the random network alone

    loaded.detail_rule = constant_rule(0.0).to_dict() | {"b2": [1.0]}
    with pytest.raises(PoseFaceError, match="detail rule field b2"):
        Restorer(model=loaded, device="cpu")


def test_fit_detail_writes_weights_with_a_rule_and_refuses_to_overwrite(tmp_path, capsys):
    from poseface.cli import main
    from poseface.models.checkpoint import load_model

    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(12):
        cv2.imwrite(str(faces / f"{i:02d}.png"), texture(40 + i, size=128))
    out = tmp_path / "fitted.safetensors"
    args = ["fit-detail", "bundled", "--hq", str(faces), "-o", str(out), "--count", "10", "--val-fraction", "0"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| fitted rule |" in printed and "| network |" in printed
    model = load_model(out)
    detail.FusionRule.from_dict(model.detail_rule, where=str(out))
    assert model.provenance["detail_rule"]["faces"] == 8
    assert main(args) == 2  # the output exists: refused, one line
    assert "already exists" in capsys.readouterr().err
