"""FID (Heusel et al., NeurIPS 2017): Frechet distance between Inception-v3 feature Gaussians. Lower is better.

`FIDInceptionV3` is the TensorFlow Inception-v3 of the original FID code as ported by pytorch-fid
(its FID-specific blocks: average pools that exclude padding, and a max pool in the last block), with
the same parameter names so `pt_inception-2015-12-05-6726825d.pth` loads directly. Features are the
2048-D pool3 activations of images bilinearly resized to 299x299. Reference statistics are .npz files
with `mu` (2048,) and `sigma` (2048, 2048), the format pytorch-fid and most papers' released stats use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from poseface import zoo
from poseface.errors import PoseFaceError
from poseface.models.state_dict import load_exact, read_state_dict
from poseface.weights import resolve

INCEPTION_WEIGHTS = zoo.spec("fid-inception")
FEATURE_DIM = 2048


class BasicConv2d(nn.Module):
    """conv (no bias) + batch norm (eps 1e-3, as TensorFlow) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pooling does not count the zero padding
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool_3x3(x)),
            ],
            dim=1,
        )


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            dim=1,
        )


class InceptionC(nn.Module):
    """Factorised 7x7 convolutions at 17x17."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d7 = layer(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_avg_pool_3x3(x))], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """Expanded filter bank at 8x8. The FID graph pools with an average in Mixed_7b and a max in Mixed_7c."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_3x3(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(d3),
                self.branch3x3dbl_3b(d3),
                self.branch_pool(pooled),
            ],
            dim=1,
        )


class FIDInceptionV3(nn.Module):
    """Inception-v3 up to pool3: uint8-range images -> (N, 2048) features."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # classifier of the file (1008 classes); unused for FID
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) RGB in [0, 1]; returns (N, 2048) pool3 features."""
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def build_inception(
    weights: str | os.PathLike | None = None, download: bool = True, device: str | torch.device = "cpu"
) -> FIDInceptionV3:
    """The FID network with the pytorch-fid weights (local file, cache, or one checksummed download)."""
    path = resolve(INCEPTION_WEIGHTS, local_path=weights, download=download)
    model = FIDInceptionV3()
    what = "pytorch-fid Inception"
    load_exact(
        model,
        read_state_dict(path, f"the {what} checkpoint", unwrap=()),
        path,
        what,
        fix=f"download {INCEPTION_WEIGHTS.url}",
    )
    return model.to(device)


@torch.inference_mode()
def inception_features(model: FIDInceptionV3, images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) -> (N, 2048) float64 features."""
    device = next(model.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255.0).to(device)
    return model(batch).cpu().numpy().astype(np.float64)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features."""
    features = np.asarray(features, dtype=np.float64)
    if features.shape[0] < 2:
        raise PoseFaceError(
            f"FID needs at least 2 images, got {features.shape[0]}; evaluate a larger folder or leave fid out"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), the FID formula.

    tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are those of the
    symmetric PSD matrix S1^(1/2) S2 S1^(1/2). Two symmetric eigendecompositions are much faster than a
    general matrix square root at 2048-D (seconds instead of minutes on a CPU) and stay finite for the
    singular covariances of small test sets, with no diagonal offset needed.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise PoseFaceError(
            f"FID statistics have different dimensions ({mu1.shape} vs {mu2.shape}); use stats from the same Inception features"
        )
    root1 = _sqrt_psd((sigma1 + sigma1.T) / 2)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def frechet_distance_of_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """The same distance computed from the (N, D) feature sets themselves.

    With A, B the centred features scaled by 1/sqrt(N - 1), S1 = A^T A and S2 = B^T B, and the non-zero
    eigenvalues of S1 S2 are the squared singular values of the small N1 x N2 matrix A B^T, so
    tr((S1 S2)^(1/2)) is the sum of its singular values: exact, and fast when N is smaller than D.
    """
    a = np.asarray(features1, dtype=np.float64)
    b = np.asarray(features2, dtype=np.float64)
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise PoseFaceError(
            f"FID needs at least 2 images per set, got {a.shape[0]} and {b.shape[0]}; evaluate a larger folder or leave fid out"
        )
    if min(a.shape[0], b.shape[0]) > a.shape[1]:
        return frechet_distance(*feature_statistics(a), *feature_statistics(b))
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    centred1 = (a - mu1) / np.sqrt(a.shape[0] - 1)
    centred2 = (b - mu2) / np.sqrt(b.shape[0] - 1)
    trace_sqrt = np.linalg.svd(centred1 @ centred2.T, compute_uv=False).sum()
    difference = mu1 - mu2
    return float(difference @ difference + np.sum(centred1**2) + np.sum(centred2**2) - 2 * trace_sqrt)


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray, replace: bool = True, **info) -> Path:
    """Write mu/sigma as .npz (pytorch-fid's keys) atomically; `replace=False` never replaces an existing file."""
    from poseface.imageio import atomic_write

    def save(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, mu=mu, sigma=sigma, **{k: np.asarray(v) for k, v in info.items()})

    return atomic_write(path, save, replace)


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise PoseFaceError(
            f"{path}: no such FID statistics file; make one with `poseface fid-stats DIR -o {path.name}`"
        )
    try:
        with np.load(path) as stats:
            mu, sigma = stats["mu"], stats["sigma"]
    except (KeyError, ValueError, OSError) as exc:
        raise PoseFaceError(
            f"{path}: not an FID statistics .npz with 'mu' and 'sigma' ({type(exc).__name__}); make one with `poseface fid-stats`"
        ) from None
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise PoseFaceError(f"{path}: sigma is {sigma.shape} but mu has {mu.shape[0]} entries; the file is corrupt")
    return mu, sigma


def folder_statistics(
    folder: str | os.PathLike, model: FIDInceptionV3, batch_size: int = 16, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, count) of the Inception features of every image below `folder` (any sizes)."""
    from tqdm import tqdm

    from poseface.imageio import list_images, read_rgb

    paths = list_images(folder)
    if len(paths) < 2:
        raise PoseFaceError(f"{folder}: FID statistics need at least 2 images, found {len(paths)}")
    features = []
    for start in tqdm(
        range(0, len(paths), batch_size), desc="fid-stats", unit="batch", disable=not progress, dynamic_ncols=True
    ):
        images = [read_rgb(path) for path in paths[start : start + batch_size]]
        if len({image.shape for image in images}) == 1:
            features.extend(inception_features(model, np.stack(images)))
        else:  # mixed sizes: each is resized to 299 inside the network on its own
            features.extend(inception_features(model, image[None])[0] for image in images)
    mu, sigma = feature_statistics(np.stack(features))
    return mu, sigma, len(features)
