"""Training checkpoints: weights as safetensors, optimiser/scheduler/RNG state as a tensor-only
`state.pt` (loads with `weights_only=True`), written into a temporary folder and renamed, so a
crash never leaves a half-written checkpoint; `latest` names the newest complete one.

A write that fails (disk full, the folder made read-only) removes the temporary folder and is one
line naming the checkpoint and the one `--resume` would continue from; a damaged file in a checkpoint
is one line naming it and what to delete."""

from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseface.errors import PoseFaceError
from poseface.models.checkpoint import refuse_non_finite
from poseface.models.state_dict import load_exact

LATEST = "latest"


def checkpoint_root(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "checkpoints"


def _write_bytes(path: Path, data: bytes) -> None:
    """Every file of a checkpoint is serialised in memory and written here, so a failing write is an
    OSError with its errno (safetensors and torch.save writing themselves raise their own error types)."""
    with open(path, "wb") as handle:
        handle.write(data)


def save_module(module: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    _write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, metadata=metadata or {}))


def _save_state(state: dict[str, Any], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write_bytes(path, buffer.getvalue())


def unwritable(path: Path, exc: OSError, out_dir: str | os.PathLike) -> str:
    """The one-line message for a failed write under `out_dir`, with the fix and where --resume continues."""
    fix = "free space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else f"make {out_dir} writable"
    last = latest_checkpoint(out_dir)
    return (f"{path}: could not be written ({exc.strerror or exc}); {fix} and resume with --resume: "
            f"the last complete checkpoint is {last or 'none yet (start again without --resume)'}")


def damaged(path: Path, reason: str) -> str:
    """The one-line message for a damaged file in a checkpoint folder: delete the folder, resume from the one before."""
    folder = path.parent
    earlier = latest_checkpoint(folder.parent.parent, before=folder)
    then = f"--resume then continues from {earlier}" if earlier else "no earlier checkpoint: start again without --resume"
    return f"{path}: {reason}; the checkpoint is damaged: delete {folder} ({then})"


def load_module(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise PoseFaceError(damaged(path, "missing from the checkpoint"))
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for short files and corrupt headers
        raise PoseFaceError(damaged(path, f"not a readable safetensors file ({type(exc).__name__})")) from None
    refuse_non_finite(state, path)
    load_exact(module, state, path, "configured", fix="resume with the config of that run")


def write_checkpoint(out_dir: str | os.PathLike, step: int, modules: dict[str, nn.Module], state: dict[str, Any],
                     model_writer=None, keep: int = 3) -> Path:
    """modules: name -> module, saved as <name>.safetensors; state: tensors/numbers/strings for state.pt.
    `model_writer(folder)` may add files (e.g. the restorer with its JSON config)."""
    root = checkpoint_root(out_dir)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, module in modules.items():
            save_module(module, tmp / f"{name}.safetensors")
        if model_writer is not None:
            model_writer(tmp)
        _save_state(state, tmp / "state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        pointer_tmp = root / f".{LATEST}.tmp"
        pointer_tmp.write_text(final.name + "\n")
        os.replace(pointer_tmp, root / LATEST)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # the space it took, and nothing --resume could mistake for a checkpoint
        raise PoseFaceError(unwritable(final, exc, out_dir)) from None
    complete = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: str | os.PathLike, before: Path | None = None) -> Path | None:
    """The folder `--resume` continues from: the one `latest` names, else the newest complete one
    (with `before`: the newest complete one older than that folder)."""
    root = checkpoint_root(out_dir)
    pointer = root / LATEST
    if before is None and pointer.is_file():
        folder = root / pointer.read_text().strip()
        if (folder / "state.pt").is_file():
            return folder
    folders = sorted(p for p in root.glob("step-*") if (p / "state.pt").is_file() and (before is None or p.name < before.name))
    return folders[-1] if folders else None


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PoseFaceError(damaged(folder / "state.pt", f"unreadable training state ({type(exc).__name__})")) from None
