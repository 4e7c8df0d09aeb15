"""Fit a model's detail rule (`detail.FusionRule`) on degraded training faces: `poseface fit-detail`.

For each clean training face G, degrade it (the training mixture: eq. 17, mild, near clean), restore
it with the model (R) and take the input I. The rule's weights w_k(features) blend the two faces per
band (detail.py); the MLP is fitted by Adam to minimise the mean over faces of

    log(1 + MSE(R + sum_k w_k (B_k(I) - B_k(R)), G))

a per-face log so that a mildly damaged face (small errors) counts as much as a ruined one, which is
what an average PSNR measures. Pixels are sub-sampled (`pixels_per_face`); the features are the
fixed measurements of `detail.fusion_features`, so only the MLP's few hundred numbers are fitted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from poseface.faces.detail import FUSION_BANDS, FusionRule, fusion_bands, fusion_features

log = logging.getLogger(__name__)


@dataclass
class FitSettings:
    """How the rule is fitted (defaults: what the bundled model's rule was fitted with)."""

    hidden: int = 16  # hidden units of the MLP
    steps: int = 400  # full-batch Adam steps
    learning_rate: float = 0.02
    pixels_per_face: int = 1024  # sampled pixels per face (a 128 px face has 16,384)
    seed: int = 0


@dataclass
class FitSamples:
    """Sampled pixels of many faces: band differences, features and the target residual G - R."""

    diffs: torch.Tensor  # (N, P, FUSION_BANDS, 3): B_k(I) - B_k(R)
    features: torch.Tensor  # (N, P, F)
    target: torch.Tensor  # (N, P, 3): G - R


def sample_face(
    lq: np.ndarray, restored: np.ndarray, gt: np.ndarray, pixels: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One face's sampled (diffs (P, K, 3), features (P, F), target (P, 3)) at `pixels` random positions."""
    lq_f, restored_f = lq.astype(np.float32), restored.astype(np.float32)
    bands_in, bands_out = fusion_bands(lq_f), fusion_bands(restored_f)
    features = fusion_features(lq_f, bands_in, bands_out).reshape(-1, lq.shape[0] * lq.shape[1])
    diffs = np.stack([(b_in - b_out).reshape(-1, 3) for b_in, b_out in zip(bands_in, bands_out)], axis=1)
    target = (gt.astype(np.float32) - restored_f).reshape(-1, 3)
    at = rng.choice(target.shape[0], size=min(pixels, target.shape[0]), replace=False)
    return diffs[at], features[:, at].T, target[at]


def collect_samples(
    lqs: Sequence[np.ndarray],
    restored: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    pixels_per_face: int,
    seed: int = 0,
    progress: bool = False,
) -> FitSamples:
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    faces = tqdm(zip(lqs, restored, gts), desc="measure", unit="face", total=len(lqs), disable=not progress)
    parts = [sample_face(lq, r, gt, pixels_per_face, rng) for lq, r, gt in faces]
    diffs, features, target = (torch.from_numpy(np.stack(p)) for p in zip(*parts))
    return FitSamples(diffs=diffs, features=features, target=target)


def fit_rule(samples: FitSamples, settings: FitSettings | None = None, progress: bool = False) -> FusionRule:
    """The MLP that minimises the mean per-face log(1 + MSE) of the blended faces (module docstring)."""
    from tqdm import tqdm

    settings = settings or FitSettings()
    generator = torch.Generator().manual_seed(settings.seed)
    flat = samples.features.reshape(-1, samples.features.shape[-1])
    mean, std = flat.mean(dim=0), flat.std(dim=0).clamp(min=1e-6)
    x = (samples.features - mean) / std
    n_features = x.shape[-1]
    w1 = (torch.randn(n_features, settings.hidden, generator=generator) * 0.1).requires_grad_()
    b1 = torch.zeros(settings.hidden, requires_grad=True)
    w2 = torch.zeros(settings.hidden, FUSION_BANDS, requires_grad=True)
    b2 = torch.full((FUSION_BANDS,), -2.0, requires_grad=True)  # start near the model's output (w = 0.12)
    optimizer = torch.optim.Adam([w1, b1, w2, b2], lr=settings.learning_rate)
    for _ in tqdm(range(settings.steps), desc="fit-detail", unit="step", disable=not progress, dynamic_ncols=True):
        weights = torch.sigmoid(torch.relu(x @ w1 + b1) @ w2 + b2)  # (N, P, K)
        blended = (weights[..., None] * samples.diffs).sum(dim=2)
        loss = torch.log1p((blended - samples.target).pow(2).mean(dim=(1, 2))).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    log.info("fit-detail: mean log(1 + MSE) %.4f after %d steps", float(loss.detach()), settings.steps)

    def array(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy().astype(np.float32)

    return FusionRule(mean=array(mean), std=array(std), w1=array(w1), b1=array(b1), w2=array(w2), b2=array(b2))


def restore_items(model: torch.nn.Module, lq: torch.Tensor, batch_size: int = 8, progress: bool = False) -> np.ndarray:
    """The network's raw output for (N, 3, S, S) inputs in [-1, 1], as uint8 faces, on the model's device."""
    from tqdm import tqdm

    from poseface.models.network import inference_forward
    from poseface.tensorimage import tensor_to_images

    device = next(model.parameters()).device
    outputs = []
    with torch.inference_mode():
        starts = range(0, lq.shape[0], batch_size)
        for start in tqdm(starts, desc="restore", unit="batch", disable=not progress, dynamic_ncols=True):
            outputs.append(tensor_to_images(inference_forward(model)(lq[start : start + batch_size].to(device))))
    return np.concatenate(outputs)


def mean_psnr(images: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> float:
    from poseface.metrics.psnr_ssim import psnr

    return float(np.mean([psnr(image, reference) for image, reference in zip(images, references)]))


def fit_and_measure(
    weights: str,
    hq: str,
    output,
    count: int = 600,
    keep_list: str | None = None,
    val_fraction: float = 0.02,
    seed: int = 0,
    mix: dict[str, float] | None = None,
    half: bool = False,
    settings: FitSettings | None = None,
) -> str:
    """`poseface fit-detail`: fit the rule on 80% of `count` degraded training faces, measure it on the
    other 20% (faces the fit never saw, still outside the validation split), write `output` (the
    weights with the rule) and return the measurement as a Markdown table."""
    from poseface.data.curate import load_keep_list
    from poseface.data.dataset import FaceDataset
    from poseface.faces.detail import fuse_input_detail, keep_input_detail
    from poseface.models import bundled_weights
    from poseface.models.checkpoint import load_model, save_model
    from poseface.tensorimage import tensor_to_images

    model = load_model(bundled_weights() if weights == "bundled" else weights)
    dataset = FaceDataset(
        hq,
        size=model.config.size,
        degradation="paper",
        split="train",
        val_fraction=val_fraction,
        keep_names=load_keep_list(keep_list) if keep_list else None,
        degradation_mix=mix or {},
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    positions = rng.choice(len(dataset), size=min(count, len(dataset)), replace=False)
    from tqdm import tqdm

    items = [dataset[int(p)] for p in tqdm(positions, desc="degrade", unit="face", dynamic_ncols=True)]
    lq = torch.stack([item["lq"] for item in items])
    lqs, gts = tensor_to_images(lq), tensor_to_images(torch.stack([item["gt"] for item in items]))
    restored = restore_items(model, lq, progress=True)
    n_fit = max(1, int(round(0.8 * len(items))))
    settings = settings or FitSettings()
    samples = collect_samples(lqs[:n_fit], restored[:n_fit], gts[:n_fit], settings.pixels_per_face, seed, True)
    rule = fit_rule(samples, settings, progress=True)
    held = slice(n_fit, None)
    rows = {
        "input": lqs[held],
        "network": restored[held],
        "fixed-margin rule": [keep_input_detail(a, b) for a, b in zip(lqs[held], restored[held])],
        "fitted rule": [fuse_input_detail(a, b, rule) for a, b in zip(lqs[held], restored[held])],
    }
    model.detail_rule = rule.to_dict()
    provenance = dict(getattr(model, "provenance", {}))
    provenance["detail_rule"] = {"fitted_on": str(hq), "faces": n_fit, "seed": seed, "mixture": mix or {}}
    save_model(model, output, provenance, dtype=torch.float16 if half else None)
    lines = [
        f"PSNR on {len(items) - n_fit} degraded training faces the fit did not see:",
        "",
        "| | PSNR dB |",
        "|---|---|",
    ]
    lines += [f"| {name} | {mean_psnr(images, gts[held]):.3f} |" for name, images in rows.items()]
    return "\n".join(lines)
