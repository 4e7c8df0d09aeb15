import numpy as np
import pytest
import torch
from scipy import linalg

from poseface.errors import PoseFaceError
from poseface.metrics.fid import (
    FIDInceptionV3,
    build_inception,
    feature_statistics,
    frechet_distance,
    frechet_distance_of_features,
    inception_features,
    load_statistics,
    save_statistics,
)
from poseface.metrics.suite import FIDMetric, MetricOptions


def random_gaussian(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    samples = rng.normal(size=(4 * dim, dim)) @ rng.normal(size=(dim, dim)) + rng.normal(size=dim)
    return samples.mean(0), np.cov(samples, rowvar=False)


def test_frechet_distance_matches_direct_scipy_computation():
    mu1, s1 = random_gaussian(16, 0)
    mu2, s2 = random_gaussian(16, 1)
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_in_one_dimension_is_the_closed_form():
    # N(m1, v1) vs N(m2, v2): (m1 - m2)^2 + (sqrt(v1) - sqrt(v2))^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == pytest.approx(
        4 + 1
    )


def test_singular_covariances_still_give_a_finite_distance():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 10)), rng.normal(size=(3, 10))  # 3 samples in 10-D: rank-deficient
    value = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert np.isfinite(value) and value > 0


@pytest.mark.parametrize("samples", [5, 40])  # fewer and more samples than dimensions
def test_distance_from_features_equals_distance_from_statistics(samples):
    rng = np.random.default_rng(samples)
    a = rng.normal(size=(samples, 12))
    b = rng.normal(size=(samples + 3, 12)) * 1.5 + 0.3
    assert frechet_distance_of_features(a, b) == pytest.approx(
        frechet_distance(*feature_statistics(a), *feature_statistics(b)), rel=1e-7
    )


def test_dimension_mismatch_is_an_error():
    with pytest.raises(PoseFaceError, match="dimensions"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.fixture(scope="module")
def random_inception() -> FIDInceptionV3:
    torch.manual_seed(0)
    model = FIDInceptionV3()
    # He initialisation keeps random activations at a sane scale through the 94 layers (PyTorch's
    # default init shrinks them into denormal floats, which are very slow on CPUs)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return model


def test_inception_keeps_the_pytorch_fid_layout(random_inception):
    state = random_inception.state_dict()
    for key in (
        "Conv2d_1a_3x3.conv.weight",
        "Conv2d_1a_3x3.bn.running_var",
        "Mixed_5b.branch_pool.conv.weight",
        "Mixed_6e.branch7x7dbl_5.conv.weight",
        "Mixed_7c.branch3x3dbl_3b.bn.bias",
        "fc.weight",
    ):
        assert key in state
    assert state["fc.weight"].shape == (1008, 2048)
    assert state["Mixed_6b.branch7x7_1.conv.weight"].shape == (128, 768, 1, 1)
    assert random_inception.Conv2d_1a_3x3.bn.eps == 0.001
    assert not any(k.startswith("AuxLogits") for k in state)


def test_inception_features_shape_and_determinism(random_inception):
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    features = inception_features(random_inception, images)
    assert features.shape == (2, 2048) and np.isfinite(features).all()
    np.testing.assert_allclose(inception_features(random_inception, images[1:]), features[1:], rtol=1e-4, atol=1e-6)


def tiny_feature_net() -> torch.nn.Module:
    """A stand-in for Inception with 16-D features, so the metric plumbing test needs no 2048-D algebra."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())


def test_fid_metric_plumbing(tmp_path):
    random_inception = tiny_feature_net()
    rng = np.random.default_rng(1)
    gts = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(3)]
    same = FIDMetric(MetricOptions(), model=random_inception)
    for gt in gts:
        same.measure(gt, gt)
    assert same.finish()["fid"] == pytest.approx(0.0, abs=1e-3)
    other = FIDMetric(MetricOptions(), model=random_inception)
    for gt in gts:
        other.measure(np.ascontiguousarray(255 - gt), gt)
    assert other.finish()["fid"] > 1e-6
    # the metric's value is the Frechet distance of the two feature sets
    features_r = inception_features(random_inception, np.stack([255 - g for g in gts]))
    features_g = inception_features(random_inception, np.stack(gts))
    assert other.finish()["fid"] == pytest.approx(
        frechet_distance(*feature_statistics(features_r), *feature_statistics(features_g)), rel=1e-6
    )
    # against a statistics file instead of the ground-truth set
    mu, sigma = feature_statistics(inception_features(random_inception, np.stack(gts)))
    stats = save_statistics(tmp_path / "ref.npz", mu, sigma)
    from_file = FIDMetric(MetricOptions(fid_stats=str(stats)), model=random_inception)
    assert not from_file.needs_gt
    for gt in gts:
        from_file.measure(gt, None)
    assert from_file.finish()["fid"] == pytest.approx(0.0, abs=1e-3)


def test_statistics_round_trip_and_bad_files(tmp_path):
    mu, sigma = random_gaussian(5, 2)
    path = save_statistics(tmp_path / "stats.npz", mu, sigma, count=7)
    loaded_mu, loaded_sigma = load_statistics(path)
    np.testing.assert_array_equal(loaded_mu, mu)
    np.testing.assert_array_equal(loaded_sigma, sigma)
    with pytest.raises(PoseFaceError, match="no such FID statistics file"):
        load_statistics(tmp_path / "missing.npz")
    np.savez(tmp_path / "wrong.npz", mean=mu)
    with pytest.raises(PoseFaceError, match="'mu' and 'sigma'"):
        load_statistics(tmp_path / "wrong.npz")


def test_offline_without_inception_weights_is_one_line(offline_cache):
    with pytest.raises(PoseFaceError) as error:
        build_inception(download=False)
    assert "pt_inception-2015-12-05-6726825d.pth" in str(error.value) and "fid" in str(error.value)
