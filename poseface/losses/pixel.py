"""Pixel losses: L1 on the restored face (eq. 14, first term) and the per-scale L1 of the decoder's RGB heads.

The decoder's intermediate RGB outputs (4x4 ... full size) are compared with the target shrunk by
area averaging (box filter), which is the anti-aliased downsampling for power-of-two factors: every
target pixel at scale s is the mean of the (H/s)^2 full-size pixels it covers. GFPGAN does the same
"pyramid" loss against a bilinear resize (weight 1); we use area so small scales do not alias.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def l1_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all pixels and channels."""
    return F.l1_loss(restored, target)


def area_downsample(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased shrink to `size` by averaging the input pixels each output pixel covers."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.adaptive_avg_pool2d(images, size)


def pyramid_l1(
    rgbs: Sequence[torch.Tensor], target: torch.Tensor, weights: Sequence[float] | None = None
) -> torch.Tensor:
    """Sum over scales of L1(rgb_s, area_downsample(target, size of rgb_s)).

    `rgbs` runs from the coarsest (4x4) head up to full size; `weights` (one per scale, default 1)
    lets the caller fade scales in or out. The target is treated as data (no gradient).
    """
    if len(rgbs) == 0:
        raise ValueError("pyramid_l1 needs at least one RGB output")
    if weights is not None and len(weights) != len(rgbs):
        raise ValueError(f"pyramid_l1: {len(weights)} weights for {len(rgbs)} RGB outputs")
    target = target.detach()
    total = rgbs[0].new_zeros(())
    for index, rgb in enumerate(rgbs):
        weight = 1.0 if weights is None else float(weights[index])
        if weight == 0.0:
            continue
        total = total + weight * F.l1_loss(rgb, area_downsample(target, tuple(rgb.shape[-2:])))
    return total
