"""Pretrained weights: local files first, one checksummed download into the torch hub cache second.

Nothing is downloaded silently into the working directory. Offline, a missing file is a one-line
error that says where to put the file (or which option switches the feature off).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from poseface.errors import PoseFaceError


@dataclass(frozen=True)
class WeightsSpec:
    """Where a pretrained file comes from and how to recognise it."""

    name: str  # file name in the cache, e.g. "vgg19-dcbb9e9d.pth"
    url: str
    sha256: str  # full hex digest, or a prefix of at least 8 hex digits
    what: str  # human description used in error messages, e.g. "VGG19 ImageNet weights"
    switch_off: str = ""  # how to do without it, e.g. "set losses.feature_matching: 0"


def cache_dir() -> Path:
    """`$POSEFACE_HOME`, else `$TORCH_HOME/poseface`, else `~/.cache/torch/poseface`."""
    if os.environ.get("POSEFACE_HOME"):
        return Path(os.environ["POSEFACE_HOME"]).expanduser()
    torch_home = os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".cache", "torch"))
    return Path(torch_home).expanduser() / "poseface"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, spec: WeightsSpec, fix: str | None = None) -> None:
    """One-line error unless `path` hashes to `spec.sha256`; `fix` replaces the default remedy (download again)."""
    actual = sha256_of(path)
    if not actual.startswith(spec.sha256.lower()):
        remedy = fix or f"the file is corrupt or a different release: delete it and download {spec.url} again"
        raise PoseFaceError(
            f"{path}: checksum mismatch for {spec.what} (sha256 {actual[:16]}..., expected {spec.sha256[:16]}...); {remedy}"
        )


def resolve(spec: WeightsSpec, local_path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return a verified local file for `spec`.

    Order: an explicit `local_path` (verified), the cache (verified), then one download into the
    cache (written to a temporary file, verified, then renamed, so an interrupted download never
    leaves a half file behind).
    """
    if local_path is not None:
        path = Path(local_path).expanduser()
        if not path.is_file():
            raise PoseFaceError(f"{path}: no such file ({spec.what}); pass the path of a downloaded copy of {spec.url}")
        verify(path, spec)
        return path
    cached = cache_dir() / spec.name
    if cached.is_file():
        verify(cached, spec)
        return cached
    hint = f" or {spec.switch_off}" if spec.switch_off else ""
    if not download:
        raise PoseFaceError(f"{cached}: {spec.what} not found; download {spec.url} to that path{hint}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(spec.url, timeout=30) as response, tempfile.NamedTemporaryFile(
            dir=cached.parent, delete=False, suffix=".part"
        ) as tmp:
            shutil.copyfileobj(response, tmp)
            tmp_path = Path(tmp.name)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PoseFaceError(
            f"{cached}: cannot download {spec.what} ({reason}); offline? copy {spec.url} to that path{hint}"
        ) from None
    try:
        verify(tmp_path, spec)
    except PoseFaceError:
        tmp_path.unlink(missing_ok=True)
        raise
    os.replace(tmp_path, cached)
    return cached
