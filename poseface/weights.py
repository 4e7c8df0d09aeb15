"""Pretrained weights: local files first, one checksummed, resumable download into the cache second.

Nothing is downloaded silently into the working directory. Offline, a missing file is a one-line
error that says where to put the file (or which option switches the feature off).

Integrity, in the order it is checked:

* a full sha256 published for the file (`WeightsSpec.sha256`): the file must match it exactly;
* else the digest recorded beside the file when it was first downloaded (`NAME.sha256`, trust on
  first use), which every later use checks in full;
* else the publisher's 8-hex prefix (torch.hub names such as `vgg19-dcbb9e9d.pth`, `hash_prefix`):
  a 32-bit check only, said so wherever it is shown;
* else nothing: the file is *unverified*, and the full digest is printed so it can be pinned.

The catalogue of known files is `poseface.zoo`; this module only knows how to check and fetch one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from poseface.errors import PoseFaceError
from poseface.imageio import atomic_write

log = logging.getLogger("poseface.weights")

FULL_DIGEST = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20
TIMEOUT_S = 30


@dataclass(frozen=True)
class WeightsSpec:
    """Where a pretrained file comes from and how to recognise it.

    `sha256` is only ever a full 64-hex digest ("" when the publisher gives none); a published prefix
    goes in `hash_prefix`, so a 32-bit check can never pass for a full one.
    """

    name: str  # file name in the weights folder, e.g. "vgg19-dcbb9e9d.pth"
    url: str  # direct download URL; "" when there is none a program can fetch
    sha256: str  # full 64-hex sha256 published for the file, or ""
    what: str  # human description used in error messages, e.g. "VGG19 ImageNet weights"
    switch_off: str = ""  # how to do without it, e.g. "set losses.feature_matching: 0"
    hash_prefix: str = ""  # the publisher's sha256 prefix (torch.hub file names carry 8 hex digits), or ""

    def __post_init__(self) -> None:
        if self.sha256 and not FULL_DIGEST.fullmatch(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be the full 64-hex digest (a prefix goes in hash_prefix)")
        if self.hash_prefix and not re.fullmatch(r"[0-9a-f]{8,63}", self.hash_prefix):
            raise ValueError(f"{self.name}: hash_prefix must be 8 to 63 lower-case hex digits")

    @property
    def check(self) -> str:
        """What the publisher lets us check: 'sha256', 'prefix' or 'unverified'."""
        return "sha256" if self.sha256 else "prefix" if self.hash_prefix else "unverified"


def cache_dir() -> Path:
    """`$POSEFACE_HOME`, else `$TORCH_HOME/poseface`, else `~/.cache/torch/poseface`."""
    if os.environ.get("POSEFACE_HOME"):
        return Path(os.environ["POSEFACE_HOME"]).expanduser()
    torch_home = os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".cache", "torch"))
    return Path(torch_home).expanduser() / "poseface"


def sha256_of(path: Path, chunk: int = CHUNK) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def full_pin(value: str, where: str) -> str:
    """`value` as a full lower-case sha256, or a one-line error naming `where` (prefixes are refused)."""
    value = value.strip().lower()
    if not FULL_DIGEST.fullmatch(value):
        raise PoseFaceError(
            f"{where}: {value!r} is not a full sha256; give all 64 hex digits (printed when the file was loaded)"
        )
    return value


def digest_file(path: Path) -> Path:
    """Where the digest of a downloaded file is recorded: `NAME.sha256` beside it."""
    return path.with_name(path.name + ".sha256")


def recorded_digest(path: Path) -> str:
    """The digest recorded beside `path` at its first download, or ""."""
    record = digest_file(path)
    if not record.is_file():
        return ""
    text = record.read_text().split()
    return text[0].lower() if text and FULL_DIGEST.fullmatch(text[0].lower()) else ""


def record_digest(path: Path, digest: str) -> Path:
    """Write `DIGEST  NAME` (sha256sum's format) beside `path`, atomically."""
    return atomic_write(digest_file(path), lambda tmp: Path(tmp).write_text(f"{digest}  {path.name}\n"))


def verify(path: Path, spec: WeightsSpec, fix: str | None = None, recorded: str = "") -> str:
    """The full sha256 of `path`; a one-line error unless it matches `spec.sha256`, else `recorded`
    (the digest kept from the first download), else `spec.hash_prefix`. `fix` replaces the default
    remedy (download again)."""
    actual = sha256_of(path)
    expected = spec.sha256 or recorded
    ok = actual == expected if expected else actual.startswith(spec.hash_prefix)
    if not ok:
        if spec.sha256:
            shown = f"expected {expected}"
        elif expected:
            shown = f"expected {expected} as recorded in {digest_file(path).name} at its first download"
        else:
            shown = f"expected the published prefix {spec.hash_prefix}"
        remedy = fix or f"the file is corrupt or a different release: delete it and download {spec.url or 'it'} again"
        raise PoseFaceError(f"{path}: checksum mismatch for {spec.what} (sha256 {actual}, {shown}); {remedy}")
    return actual


def verify_local(path: Path, spec: WeightsSpec, fix: str | None = None) -> str:
    """`verify` with the digest recorded beside `path` (if any)."""
    return verify(path, spec, fix, recorded_digest(path))


def integrity_note(path: Path, spec: WeightsSpec, digest: str, first_download: bool = False) -> str:
    """One line saying how far `path` was checked, with its full sha256."""
    if spec.sha256:
        return f"{path}: sha256 {digest} (verified against the published sha256)"
    origin = (
        f"the publisher gives only the prefix {spec.hash_prefix}"
        if spec.hash_prefix
        else "the publisher gives no checksum"
    )
    if first_download:
        kind = "prefix checked" if spec.hash_prefix else "unverified"
        return f"{path}: sha256 {digest} ({kind}: {origin}; recorded in {digest_file(path).name}, checked in full from now on)"
    if recorded_digest(path) == digest:
        return f"{path}: sha256 {digest} (matches {digest_file(path).name}, recorded at its first download; {origin})"
    if spec.hash_prefix:
        return f"{path}: sha256 {digest} (prefix check only: {origin})"
    return f"{path}: sha256 {digest} (unverified: {origin})"


def offline_hint(spec: WeightsSpec, dest: Path, path_key: str = "") -> str:
    """What to do by hand: fetch the URL to `dest` (or point `path_key` at a copy), or switch the feature off."""
    elsewhere = f" (or set {path_key} to its path)" if path_key else ""
    hint = f", or {spec.switch_off}" if spec.switch_off else ""
    return f"fetch {spec.url} by hand and put it at {dest}{elsewhere}{hint}"


def _open(url: str, start: int):
    headers = {"Range": f"bytes={start}-"} if start else {}
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _fetch_into(part: Path, url: str, what: str, progress: bool) -> None:
    """Append `url`'s bytes to `part`, resuming from its size with an HTTP Range request."""
    from tqdm import tqdm

    start = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, start)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the partial file is already whole
            return
        raise
    with response:
        if start and response.status != 206:  # the server ignored Range: start again
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length else None
        with (
            open(part, "ab" if start else "wb") as out,
            tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=what, disable=not progress, leave=False
            ) as bar,
        ):
            while block := response.read(CHUNK):
                out.write(block)
                bar.update(len(block))


def fetch(spec: WeightsSpec, dest: Path, progress: bool = True, path_key: str = "") -> str:
    """Download `spec.url` to `dest` through `dest.part` (resumed if present), verify, rename into place.

    Returns the full sha256. A file whose publisher gives no full sha256 gets it recorded in
    `NAME.sha256`, so every later use is checked in full. A checksum mismatch deletes the partial
    file; a network failure keeps it for the next try. `path_key` names the option that takes a local copy.
    """
    if not spec.url:
        raise PoseFaceError(f"{dest}: {spec.what} has no download URL; put the file there by hand")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        _fetch_into(part, spec.url, spec.name, progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PoseFaceError(
            f"{dest}: cannot download {spec.what} ({reason}); offline? {offline_hint(spec, dest, path_key)}"
        ) from None
    try:
        digest = verify(part, spec)
    except PoseFaceError:
        part.unlink(missing_ok=True)
        raise
    if not spec.sha256:
        record_digest(dest, digest)
    os.replace(part, dest)
    return digest


def resolve(
    spec: WeightsSpec,
    local_path: str | os.PathLike | None = None,
    download: bool = True,
    weights_dir: Path | None = None,
    report: bool = True,
    path_key: str = "",
) -> Path:
    """Return a checked local file for `spec`.

    Order: an explicit `local_path`, the weights folder (`weights_dir`, default `cache_dir()`), then one
    download into that folder (`fetch`). With `report`, a file without a published or recorded full
    sha256 is reported in one log line with its digest.
    """
    if local_path is not None:
        path = Path(local_path).expanduser()
        if not path.is_file():
            raise PoseFaceError(f"{path}: no such file ({spec.what}); pass the path of a downloaded copy of {spec.url}")
        digest = verify_local(path, spec)
        if report:
            _report(path, spec, digest)
        return path
    cached = (weights_dir or cache_dir()) / spec.name
    if cached.is_file():
        digest = verify_local(cached, spec)
        if report:
            _report(cached, spec, digest)
    elif download:
        digest = fetch(spec, cached, path_key=path_key)
        if report and not spec.sha256:
            log.warning(integrity_note(cached, spec, digest, first_download=True))
    else:
        hint = f" or {spec.switch_off}" if spec.switch_off else ""
        raise PoseFaceError(f"{cached}: {spec.what} not found; download {spec.url} to that path{hint}")
    return cached


def _report(path: Path, spec: WeightsSpec, digest: str) -> None:
    if not spec.sha256 and recorded_digest(path) != digest:
        log.warning(integrity_note(path, spec, digest))
