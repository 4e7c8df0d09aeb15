"""Parameter counts per part and GFLOPs per forward (for `poseface info` and the benchmarks)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from poseface.models.network import PoseFaceNet


def _count(parameters) -> int:
    return sum(p.numel() for p in parameters)


def count_parameters(model: PoseFaceNet, discriminators: dict[str, nn.Module] | None = None) -> dict[str, int]:
    """Parameters of each part of the paper's network (and of the given discriminators)."""
    encoder = model.encoder
    mmrbs = _count(encoder.mmrbs.parameters())
    counts = {
        "encoder (convs + latent)": _count(encoder.parameters()) - mmrbs,
        "MMRBs": mmrbs,
        "decoder": _count(model.decoder.parameters()),
        "mapping MLP": _count(model.prior.mapping.parameters()),
        "synthesis": _count(model.prior.parameters()) - _count(model.prior.mapping.parameters()),
    }
    counts["restorer total"] = _count(model.parameters())
    for name, module in (discriminators or {}).items():
        counts[name] = _count(module.parameters())
    return counts


def gflops(module: nn.Module, inputs: torch.Tensor) -> float:
    """Floating-point operations of one forward (2 per multiply-add), in GFLOP."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(inputs)
    return counter.get_total_flops() / 1e9


def model_gflops(model: PoseFaceNet, batch: int = 1) -> float:
    size = model.config.size
    device = next(model.parameters()).device
    return gflops(model, torch.zeros(batch, 3, size, size, device=device))


def mmrb_gflops(model: PoseFaceNet, batch: int = 1) -> float:
    """GFLOPs spent inside the MMRBs (counted on their own inputs)."""
    total = 0.0
    channels = model.config.channels()
    for resolution, block in model.encoder.mmrbs.items():
        r = int(resolution)
        total += gflops(block, torch.zeros(batch, channels[r], r, r, device=next(block.parameters()).device))
    return total
