"""Where high-quality face photos come from: a folder of images or a tar file of images.

`open_source(path)` returns an `ImageSource` with a sorted list of `names` (stable identifiers: the
path relative to the folder, or the tar member name) and `read(index) -> (H, W, 3) uint8 RGB`.

A tar file is indexed once (member name, data offset, size) and read by seeking into the file,
never extracted. The file handle is opened lazily and re-opened after a fork, so a source can be
handed to PyTorch data-loader workers (it also pickles without its handle); reads are positional
(`os.pread`), so threads can share a source too.

Every regular file is a candidate whatever its name (the UTKFace tar holds two JPEGs without a
".jpg" suffix); hidden files (".DS_Store", "._x.jpg") are ignored. A file that cannot be decoded as
an image (corrupt, truncated, or a text file) raises `PoseFaceError` on `read`; `read_or_skip` turns
that into one warning line (logger "poseface.data") and a count in `skipped`, so a long run never
stops on a bad file.
"""

from __future__ import annotations

import logging
import os
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poseface.errors import PoseFaceError
from poseface.imageio import DEFAULT_MAX_PIXELS, read_rgb, read_rgb_bytes

logger = logging.getLogger("poseface.data")

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _is_hidden(relative_name: str) -> bool:
    return any(part.startswith(".") for part in relative_name.split("/"))


class ImageSource:
    """A sorted, indexable collection of images. Subclasses implement `_read(index)`."""

    root: Path
    names: list[str]

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def label(self, index: int) -> str:
        """How a person finds the image: the file path, or `archive.tar:member`."""
        raise NotImplementedError

    def read(self, index: int) -> np.ndarray:
        """The image as (H, W, 3) uint8 RGB; `PoseFaceError` if it cannot be decoded."""
        raise NotImplementedError

    def read_or_skip(self, index: int) -> np.ndarray | None:
        """`read`, but an unreadable image gives one warning line, is counted in `skipped`, and returns None."""
        try:
            return self.read(index)
        except PoseFaceError as exc:
            if self.names[index] not in self.skipped:
                self.skipped.append(self.names[index])
            logger.warning("skipped %s", exc)
            return None

    def index_of(self, name: str) -> int:
        if not hasattr(self, "_index_by_name"):
            self._index_by_name = {n: i for i, n in enumerate(self.names)}
        return self._index_by_name[name]


class FolderSource(ImageSource):
    """Every (non-hidden) file below a folder, recursively; names are paths relative to the folder."""

    def __init__(self, root: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__()
        self.root = Path(root)
        self.max_pixels = max_pixels
        if not self.root.is_dir():
            raise PoseFaceError(f"{self.root}: not a folder")
        names = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        self.names = sorted(n for n in names if not _is_hidden(n))
        if not self.names:
            raise PoseFaceError(f"{self.root}: no image files in this folder; point at the folder of HQ faces")

    def label(self, index: int) -> str:
        return str(self.root / self.names[index])

    def read(self, index: int) -> np.ndarray:
        return read_rgb(self.root / self.names[index], self.max_pixels)


class FileListSource(ImageSource):
    """An explicit list of image files; names are the paths as given."""

    def __init__(self, paths: list[str | os.PathLike], max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__()
        if not paths:
            raise PoseFaceError("no image files given; pass at least one image or a folder")
        self.root = Path(".")
        self.max_pixels = max_pixels
        self.names = [str(p) for p in paths]

    def label(self, index: int) -> str:
        return self.names[index]

    def read(self, index: int) -> np.ndarray:
        return read_rgb(self.names[index], self.max_pixels)


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


class TarSource(ImageSource):
    """Image members of an uncompressed tar file, read in place by offset.

    Compressed tars (.tar.gz ...) cannot be seeked cheaply; they are refused with a one-line error
    telling the user to decompress (or extract) once.
    """

    def __init__(self, path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__()
        self.root = Path(path)
        self.max_pixels = max_pixels
        if not self.root.is_file():
            raise PoseFaceError(f"{self.root}: no such tar file")
        try:
            with tarfile.open(self.root, mode="r:") as archive:
                members = {
                    m.name: _Member(m.offset_data, m.size)
                    for m in archive.getmembers()
                    if m.isfile() and not _is_hidden(m.name)
                }
        except tarfile.ReadError:
            raise PoseFaceError(
                f"{self.root}: not an uncompressed tar file; decompress it (e.g. gunzip) or extract it to a folder"
            ) from None
        if not members:
            raise PoseFaceError(f"{self.root}: the tar holds no image files; check the archive")
        self.names = sorted(members)
        self._members = members
        self._handle = None
        self._handle_pid = -1

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"] = None
        state["_handle_pid"] = -1
        state.pop("_lock", None)
        return state

    def _file(self):
        # One handle per process: a handle inherited through fork shares its offset with the parent.
        if self._handle is None or self._handle_pid != os.getpid():
            self._handle = open(self.root, "rb")
            self._handle_pid = os.getpid()
            self._lock = threading.Lock()
        return self._handle

    def label(self, index: int) -> str:
        return f"{self.root}:{self.names[index]}"

    def read_bytes(self, index: int) -> bytes:
        member = self._members[self.names[index]]
        handle = self._file()
        if hasattr(os, "pread"):  # positional read: no shared offset, safe across threads
            return os.pread(handle.fileno(), member.size, member.offset)
        with self._lock:
            handle.seek(member.offset)
            return handle.read(member.size)

    def read(self, index: int) -> np.ndarray:
        return read_rgb_bytes(self.read_bytes(index), self.label(index), self.max_pixels)

    def close(self) -> None:
        if self._handle is not None and self._handle_pid == os.getpid():
            self._handle.close()
        self._handle = None


def is_tar_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(TAR_SUFFIXES)


def open_source(path: str | os.PathLike | ImageSource | list, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageSource:
    """A folder of images, a tar of images, or a list of image files; one-line error if there is no image."""
    if isinstance(path, ImageSource):
        return path
    if isinstance(path, (list, tuple)):
        return FileListSource(list(path), max_pixels)
    path = Path(path)
    if path.is_dir():
        return FolderSource(path, max_pixels)
    if path.is_file() and (is_tar_path(path) or tarfile.is_tarfile(path)):
        return TarSource(path, max_pixels)
    if path.exists():
        raise PoseFaceError(f"{path}: neither a folder of images nor a .tar of images; pass the folder of HQ faces")
    raise PoseFaceError(f"{path}: no such folder or tar file")


def common_prefix_dir(names: list[str]) -> str:
    """The directory all names share ('utkface/' for the UTKFace tar), '' if none."""
    parts = [n.split("/")[:-1] for n in names]
    if not parts:
        return ""
    prefix = parts[0]
    for p in parts[1:]:
        n = 0
        while n < min(len(prefix), len(p)) and prefix[n] == p[n]:
            n += 1
        prefix = prefix[:n]
        if not prefix:
            return ""
    return "/".join(prefix) + "/"


def output_stems(names: list[str]) -> list[str]:
    """File-name stems for outputs: the name without the shared leading folder and suffix, '/' -> '__'."""
    prefix = common_prefix_dir(names)
    stems = []
    for name in names:
        rest = name[len(prefix) :]
        stem = rest.rsplit(".", 1)[0] if "." in rest.rsplit("/", 1)[-1] else rest
        stems.append(stem.replace("/", "__"))
    if len(set(stems)) != len(stems):  # a.jpg and a.png in one folder: keep the suffix to stay unique
        stems = [name[len(prefix) :].replace("/", "__").replace(".", "_") for name in names]
    return stems
