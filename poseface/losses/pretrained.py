"""Reading pretrained loss-network files (VGG19, ArcFace) into modules with one-line errors."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import torch
import torch.nn as nn

from poseface.errors import PoseFaceError
from poseface.weights import WeightsSpec, cache_dir, full_pin, resolve, sha256_of

log = logging.getLogger("poseface.losses")


def find_weights(
    spec: WeightsSpec, local_path: str | os.PathLike | None, sha256: str = "", path_key: str = ""
) -> tuple[Path, bool]:
    """A local file for `spec`: `local_path`, else the cache, else one download (if `spec.url`).

    Returns (path, checksummed). `sha256` (the full 64-hex digest; prefixes are refused) pins a file
    whose spec has no published checksum; `path_key` names the config key for a local file. Files
    without any checksum are left to the caller to report once they have loaded (`report_unpinned`).
    """
    if sha256:
        spec = dataclasses.replace(spec, sha256=full_pin(sha256, f"{spec.what} pin (sha256)"))
    report = spec.check != "unverified"
    if spec.url:
        path = resolve(spec, local_path, report=report, path_key=path_key)
    elif local_path is not None:
        path = resolve(spec, local_path, download=False, report=report)
    else:
        cached = cache_dir() / spec.name
        if not cached.is_file():
            hint = f", or {spec.switch_off}" if spec.switch_off else ""
            where = f"set {path_key} to its path" if path_key else "pass its path"
            raise PoseFaceError(
                f"{cached}: {spec.what} not found and it has no public download URL; put the file there "
                f"or {where}{hint}"
            )
        path = resolve(spec, cached, download=False, report=report)
    return path, spec.check != "unverified"


def report_unpinned(path: Path, what: str, pin_key: str) -> None:
    """Log the sha256 of a weights file that was accepted without a checksum, so the user can pin it."""
    log.warning("%s: loaded %s without a published checksum; sha256 %s (pin it with %s)",
                path, what, sha256_of(path), pin_key)


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True) a plain state dict; unwraps {'state_dict'|'params_ema'|'params': ...}
    and strips a DataParallel 'module.' prefix."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors all mean "not a usable weights file"
        raise PoseFaceError(f"{path}: cannot read {what} ({type(exc).__name__}); download the file again") from None
    if isinstance(data, dict):
        for key in ("state_dict", "params_ema", "params"):
            if key in data and isinstance(data[key], dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise PoseFaceError(f"{path}: not a state dict of tensors ({what}); pass the original weights file")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in data.items()}


def load_exact(module: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Load `state` into `module`; any missing/unexpected key or shape mismatch is a one-line error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} with other shapes (e.g. {wrong[0]})")
        raise PoseFaceError(f"{path}: does not fit the {what} layout: {', '.join(parts)} keys; pass the original file")
    module.load_state_dict(state, strict=True)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients (BatchNorm statistics and dropout frozen)."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module
