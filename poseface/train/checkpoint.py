"""Training checkpoints: weights as safetensors, optimiser/scheduler/RNG state as a tensor-only
`state.pt` (loads with `weights_only=True`), written into a temporary folder and renamed, so a
crash never leaves a half-written checkpoint; `latest` names the newest complete one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseface.errors import PoseFaceError
from poseface.models.checkpoint import refuse_non_finite

LATEST = "latest"


def checkpoint_root(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "checkpoints"


def save_module(module: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(path), metadata=metadata or {})


def load_module(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise PoseFaceError(f"{path}: missing from the checkpoint; the checkpoint folder is incomplete")
    state = load_file(str(path))
    refuse_non_finite(state, path)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise PoseFaceError(f"{path}: does not fit the configured architecture ({first}); resume with the config of that run") from None


def write_checkpoint(out_dir: str | os.PathLike, step: int, modules: dict[str, nn.Module], state: dict[str, Any],
                     model_writer=None, keep: int = 3) -> Path:
    """modules: name -> module, saved as <name>.safetensors; state: tensors/numbers/strings for state.pt.
    `model_writer(folder)` may add files (e.g. the restorer with its JSON config)."""
    root = checkpoint_root(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, module in modules.items():
        save_module(module, tmp / f"{name}.safetensors")
    if model_writer is not None:
        model_writer(tmp)
    torch.save(state, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer_tmp = root / f".{LATEST}.tmp"
    pointer_tmp.write_text(final.name + "\n")
    os.replace(pointer_tmp, root / LATEST)
    complete = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    root = checkpoint_root(out_dir)
    pointer = root / LATEST
    if pointer.is_file():
        folder = root / pointer.read_text().strip()
        if (folder / "state.pt").is_file():
            return folder
    folders = sorted(p for p in root.glob("step-*") if (p / "state.pt").is_file())
    return folders[-1] if folders else None


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PoseFaceError(f"{folder / 'state.pt'}: unreadable training state ({type(exc).__name__}); resume from an older checkpoint folder") from None
