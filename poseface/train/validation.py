"""Validation during training: the fixed batch of validation faces, restored by the model that is saved
(the EMA copy when there is one), with PSNR / SSIM of the restored and of the degraded input."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from poseface.models.network import inference_forward
from poseface.train.visualize import to_uint8

CHUNK = 8  # faces a forward pass


class Images(NamedTuple):
    """The validation batch as the last validation saw it, for the image grids."""

    lq: torch.Tensor
    restored: torch.Tensor
    gt: torch.Tensor


def val_batch(dataset: Any, count: int) -> dict[str, torch.Tensor]:
    """The first `count` validation faces (epoch 0), stacked: {"lq", "gt"}."""
    count = min(count, len(dataset))
    dataset.set_epoch(0)
    items = [dataset[i] for i in range(count)]
    return {key: torch.stack([item[key] for item in items]) for key in ("lq", "gt")}


def mean_metric(function: Callable[[np.ndarray, np.ndarray], Any], restored: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean(function(restored, gt)))


@torch.no_grad()
def restore(model: nn.Module, lq: torch.Tensor, autocast: Callable[[], AbstractContextManager]) -> torch.Tensor:
    """`model` in eval mode over `lq` in chunks (its train/eval mode is put back)."""
    was_training = model.training
    model.eval()
    outputs, forward = [], inference_forward(model)
    with autocast():
        for start in range(0, len(lq), CHUNK):
            outputs.append(forward(lq[start : start + CHUNK]).float())
    model.train(was_training)
    return torch.cat(outputs)


def validate(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
) -> tuple[dict[str, float], Images]:
    """PSNR / SSIM of the restored batch and of its degraded input against the clean faces, and the images."""
    from poseface.metrics.psnr_ssim import psnr, ssim

    lq, gt = batch["lq"].to(device), batch["gt"].to(device)
    restored = restore(model, lq, autocast)
    restored_u8, lq_u8, gt_u8 = to_uint8(restored), to_uint8(lq), to_uint8(gt)
    metrics = {
        "psnr": mean_metric(psnr, restored_u8, gt_u8),
        "ssim": mean_metric(ssim, restored_u8, gt_u8),
        "psnr_input": mean_metric(psnr, lq_u8, gt_u8),
        "ssim_input": mean_metric(ssim, lq_u8, gt_u8),
    }
    return metrics, Images(lq, restored, gt)
