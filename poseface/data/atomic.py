"""Atomic JSON writing (temporary file + rename) with the usual file permissions."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: str | os.PathLike, document: Any, indent: int | None = None, sort_keys: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".json", prefix=".tmp-")
    try:
        with os.fdopen(handle, "w") as stream:
            if indent is None:
                json.dump(document, stream, separators=(",", ":"), sort_keys=sort_keys)
            else:
                json.dump(document, stream, indent=indent, sort_keys=sort_keys)
                stream.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path
