"""Choosing the torch device, the same way for restore, serve, evaluate and training.

`resolve_device("auto")` = CUDA, else Apple MPS, else the CPU; "cuda" is `cuda:local_rank` when a
rank is given (one GPU per torchrun process); "cuda:N" and "mps" are checked. A device that is not
available here is a one-line `ParameterError` naming the parameter `device` (the CLI shows `--device`).
"""

from __future__ import annotations

import torch

from poseface.errors import ParameterError

DEVICES = ("auto", "cpu", "cuda", "mps")  # and cuda:N
DEVICE_HELP = "auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps"


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def _parse(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICES:
        raise ParameterError("device", name, f"unknown device; use {DEVICE_HELP}")
    return device


def _check_cuda(name: str, device: torch.device) -> None:
    if not torch.cuda.is_available():
        raise ParameterError("device", name, "no CUDA device is available here; use {flag}cpu or auto")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ParameterError(
            "device",
            name,
            f"this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}; use {{flag}}cuda:0 or auto",
        )


def resolve_device(device: str | torch.device, local_rank: int | None = None) -> torch.device:
    """The torch device for `device` ("auto", "cpu", "cuda", "cuda:N", "mps" or a torch.device)."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    chosen = _parse(name)
    if chosen.type == "cuda":
        _check_cuda(str(device), chosen)
        if chosen.index is None and local_rank is not None:
            chosen = torch.device("cuda", local_rank)
    if chosen.type == "mps" and not _mps_available():
        raise ParameterError("device", str(device), "Apple MPS is not available here; use {flag}cpu or auto")
    return chosen
