"""The optimisers of a run (one parameter group a part, each with its own rate) and their piece-wise
decay (MultiStepLR), including the schedule a resumed run follows."""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from poseface.train.config import TrainConfig

logger = logging.getLogger("poseface.train")

PARTS = ("codec", "prior", "noise", "global_d", "local_d")


def configured_rates(t: TrainConfig) -> dict[str, float]:
    """Each part's learning rate from the config (train.lr_<part>)."""
    return {part: getattr(t, f"lr_{part}") for part in PARTS}


def build_optimizer(
    groups: list[tuple[str, list[nn.Parameter], float]], betas: tuple[float, float]
) -> torch.optim.Adam | None:
    param_groups = [{"params": params, "lr": lr, "name": name} for name, params, lr in groups if params]
    return torch.optim.Adam(param_groups, betas=betas) if param_groups else None


def build_scheduler(optimizer: torch.optim.Optimizer, t: TrainConfig) -> torch.optim.lr_scheduler.MultiStepLR:
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(t.lr_milestones), t.lr_gamma)


def resume_schedule(scheduler: torch.optim.lr_scheduler.MultiStepLR, saved: Mapping[str, Any], t: TrainConfig) -> None:
    """Load a saved scheduler state under the config's rates, milestones and gamma (the saved optimiser and
    scheduler would keep the old ones): each group's rate becomes lr_<group> * gamma ** (milestones passed),
    so a run can be resumed with lower rates or a new piece-wise schedule, including milestones behind it.
    Call after loading the optimiser's state."""
    groups, rates, gamma = scheduler.optimizer.param_groups, configured_rates(t), t.lr_gamma
    passed = sum(1 for milestone in t.lr_milestones if milestone <= saved["last_epoch"])
    for group in groups:
        configured = rates[group["name"]]  # `--resume --set train.lr_prior=...` applies
        if configured != group["initial_lr"]:
            logger.info("resume: lr_%s %g -> %g (from the config)", group["name"], group["initial_lr"], configured)
            group["initial_lr"] = configured
        group["lr"] = group["initial_lr"] * gamma**passed
    scheduler.load_state_dict(
        {
            **saved,
            "milestones": collections.Counter(t.lr_milestones),
            "gamma": gamma,
            "base_lrs": [group["initial_lr"] for group in groups],
            "_last_lr": [group["lr"] for group in groups],
        }
    )
