"""Atomic JSON writing (temporary file + rename) with the usual file permissions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from poseface.imageio import atomic_write


def write_json_atomic(
    path: str | os.PathLike, document: Any, indent: int | None = None, sort_keys: bool = False
) -> Path:
    if indent is None:
        text = json.dumps(document, separators=(",", ":"), sort_keys=sort_keys)
    else:
        text = json.dumps(document, indent=indent, sort_keys=sort_keys) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
