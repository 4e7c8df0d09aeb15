"""Reading PyTorch state dicts from files and loading them strictly, with one-line errors naming the file.

The one home for `torch.load(weights_only=True)` of weights files (GPEN's checkpoints, the loss and
metric networks) and for strict key/shape checks before `load_state_dict` (these and our own
safetensors files).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from poseface.errors import PoseFaceError

# containers that training code wraps a state dict in, the first present one is taken
WRAPPER_KEYS = ("state_dict", "params_ema", "params")
GPEN_WRAPPER_KEYS = ("g_ema", "g", "params_ema", "params", "state_dict", "model")


def _unwrapped(data: object, unwrap: tuple[str, ...]) -> object:
    """The first `unwrap` container of a dict without tensors of its own, else `data`."""
    if isinstance(data, dict) and not any(isinstance(v, torch.Tensor) for v in data.values()):
        for key in unwrap:
            if isinstance(data.get(key), dict):
                return data[key]
    return data


def read_state_dict(
    path: str | os.PathLike, what: str, unwrap: tuple[str, ...] = WRAPPER_KEYS
) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True) a state dict of tensors, from inside an `unwrap` container if it is
    in one; a DataParallel 'module.' prefix is stripped. `what` names the expected file in errors."""
    path = Path(path)
    if not path.is_file():
        raise PoseFaceError(f"{path}: no such file ({what}); pass the path of the downloaded file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (
        Exception
    ) as exc:  # pickle, zip and weights_only errors, truncated files: all mean "not a usable weights file"
        raise PoseFaceError(
            f"{path}: cannot read as a PyTorch checkpoint ({type(exc).__name__}); expected {what} "
            f"saved with torch.save, re-download it if the file is truncated"
        ) from None
    data = _unwrapped(data, unwrap)
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise PoseFaceError(f"{path}: not a state dict of tensors; expected {what}, pass the original weights file")
    return {k.removeprefix("module."): v for k, v in data.items()}


def _mismatches(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """'N missing (e.g. key)'-style parts for the keys and shapes in which `state` differs from `own`."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    parts = [f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []
    parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
    if wrong:
        key = wrong[0]
        parts.append(
            f"{len(wrong)} with other shapes (e.g. {key}: {tuple(state[key].shape)}, needs {tuple(own[key].shape)})"
        )
    return parts


def load_exact(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    what: str,
    fix: str = "pass the original file",
) -> None:
    """Load `state` into `module` (dtypes cast to the module's); any missing or unexpected key or other
    shape is a one-line error naming `path`, the `what` layout and the `fix`."""
    parts = _mismatches(module.state_dict(), state)
    if parts:
        raise PoseFaceError(f"{path}: does not fit the {what} layout: {', '.join(parts)} keys; {fix}")
    module.load_state_dict(state, strict=True)
