"""Reading and writing images with one-line errors.

The contract everywhere in PoseFace: images are numpy arrays, RGB channel order, (H, W, 3),
uint8 unless a function says otherwise. Unreadable files raise `PoseFaceError` naming the file.
"""

from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from poseface.errors import PoseFaceError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
OUTPUT_SUFFIXES = tuple(s for s in IMAGE_SUFFIXES if s != ".gif")  # GIF is read, never written (256 colours)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")  # `poseface restore` hands these to faces/video.py
DEFAULT_MAX_PIXELS = 20000 * 20000  # decompression-bomb limit: 400 megapixels


def list_images(
    folder: str | os.PathLike, recursive: bool = True, suffixes: tuple[str, ...] = IMAGE_SUFFIXES
) -> list[Path]:
    """Image files (or files with other `suffixes`) below `folder`, sorted, by suffix (content is
    checked when read)."""
    root = Path(folder)
    if not root.is_dir():
        raise PoseFaceError(f"{root}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in suffixes)


def broken_links(
    folder: str | os.PathLike, recursive: bool = True, suffixes: tuple[str, ...] = IMAGE_SUFFIXES
) -> list[Path]:
    """Symbolic links below `folder` with one of `suffixes` whose target does not exist, sorted."""
    pattern = "**/*" if recursive else "*"
    found = (p for p in Path(folder).glob(pattern) if p.suffix.lower() in suffixes)
    return sorted(p for p in found if p.is_symlink() and not p.exists())


def open_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image with EXIF orientation applied; one-line error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise PoseFaceError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise PoseFaceError(f"{path}: empty file (0 bytes); re-copy or re-export it")
    return decode_image(path, path, max_pixels)


def decode_image(source, label: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Fully decode `source` (a path or a binary file object) with EXIF orientation applied, refusing
    more than `max_pixels` pixels; one-line errors naming `label`."""
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with open_within_limit(source, label, max_pixels) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError:
        raise PoseFaceError(
            f"{label}: image larger than the decoding limit of {max_pixels} pixels; raise the limit (--max-pixels) if you trust the file"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        detail = (
            f"{type(exc).__name__}: {exc}" if isinstance(source, (str, os.PathLike)) else type(exc).__name__
        )  # not a BytesIO's repr
        raise PoseFaceError(
            f"{label}: not a readable image ({detail}); the file is truncated, corrupt or not an image"
        ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    return image


def open_within_limit(source, label: str | os.PathLike, max_pixels: int) -> Image.Image:
    """`Image.open(source)` (header only, nothing decoded yet), refusing an image of more than
    `max_pixels` pixels: Pillow alone only warns below twice its limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused here, before decoding
        image = Image.open(source)
    try:
        refuse_above_limit(label, image.size, max_pixels)
    except PoseFaceError:
        image.close()
        raise
    return image


def refuse_above_limit(path: str | os.PathLike, size: tuple[int, int], max_pixels: int) -> None:
    """PoseFaceError if an image of `size` (width, height) has more than `max_pixels` pixels (exactly the limit is fine)."""
    width, height = size
    if width * height > max_pixels:
        raise PoseFaceError(
            f"{path}: image of {width}x{height} pixels is larger than the decoding limit of {max_pixels} pixels; raise the limit "
            "(--max-pixels) if you trust the file"
        )


def read_rgb(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read any supported image as (H, W, 3) uint8 RGB (grey is expanded, alpha dropped, 16-bit scaled)."""
    return rgb_array(open_image(path, max_pixels))


def read_rgb_bytes(data: bytes, label: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """`read_rgb` of an image file held in memory (an upload, a tar member); `label` names it in errors."""
    if not data:
        raise PoseFaceError(f"{label}: empty file (0 bytes); re-copy or re-export it")
    return rgb_array(decode_image(io.BytesIO(data), label, max_pixels))


def rgb_array(image: Image.Image) -> np.ndarray:
    """A decoded image as (H, W, 3) uint8 RGB (grey is expanded, alpha dropped, 16-bit scaled)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        array = np.clip(array / (65535.0 if array.max() > 255 else 255.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(array[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def png_bytes(array: np.ndarray, compress_level: int = 3) -> bytes:
    """An RGB(A) or grey uint8 array as the bytes of a PNG file (a download, a data URL)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(
        buffer, format="PNG", compress_level=compress_level
    )
    return buffer.getvalue()


TEMPORARY_PREFIX = ".tmp-"  # atomic_write's temporary files: .tmp-<8 of tempfile's [a-z0-9_]><suffix>
_OWN_TEMPORARY_IMAGE = re.compile(
    re.escape(TEMPORARY_PREFIX)
    + r"[a-z0-9_]{8}("
    + "|".join(re.escape(s) for s in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    + r")"
)


def atomic_write(path: str | os.PathLike, save, replace: bool = True) -> Path:
    """Run `save(temporary_path)` next to `path`, then rename it into place (creating folders):
    a crash never leaves a half-written file, and the result has normal file permissions.

    With `replace=False` an existing `path` is never replaced (checked atomically where the file
    system has hard links): PoseFaceError with `already_exists(path)` instead."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=path.suffix.lower(), prefix=TEMPORARY_PREFIX)
    os.close(handle)
    try:
        _usual_permissions(Path(tmp_name))  # before `save`, which may set its own (shutil.copymode)
        save(tmp_name)
        if replace:
            os.replace(tmp_name, path)
        else:
            _move_without_replacing(Path(tmp_name), path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _move_without_replacing(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # fails if `target` exists, atomically
    except FileExistsError:
        raise PoseFaceError(already_exists(target)) from None
    except OSError:  # no hard links on this file system: check, then rename
        if target.exists():
            raise PoseFaceError(already_exists(target)) from None
        os.replace(source, target)


def already_exists(path: str | os.PathLike, other: str = "-o") -> str:
    """The one wording, in every command, for an output file that exists and is left alone."""
    return f"{path}: already exists and was kept; pass --overwrite or choose another {other}"


def refuse_existing(paths, overwrite: bool, other: str = "-o") -> None:
    """PoseFaceError naming the first of `paths` that exists, unless `overwrite`."""
    if overwrite:
        return
    for path in map(Path, paths):
        if path.exists():
            raise PoseFaceError(already_exists(path, other))


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _refuse_unwritable(path: Path, folder: Path, fix: str) -> None:
    """PoseFaceError unless `folder` exists as a writable folder or can be created (as `path`'s)."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise PoseFaceError(f"{path}: cannot be created, {existing} is a file; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PoseFaceError(
            f"{path}: cannot be written, {existing} is read-only for this user; {fix} or fix its permissions"
        )


def check_output_folder(folder: str | os.PathLike, option: str = "-o") -> Path:
    """Refuse, before any work, an output folder that is a file or cannot be created or written.
    Creates nothing."""
    folder = Path(folder)
    fix = f"choose another output folder ({option})"
    if folder.exists() and not folder.is_dir():
        raise PoseFaceError(f"{folder}: exists and is not a folder; {fix}")
    _refuse_unwritable(folder, folder, fix)
    return folder


def check_output_file(path: str | os.PathLike, overwrite: bool = True, option: str = "-o") -> Path:
    """Refuse, before any work, an output file that is a folder, whose folder cannot be created or
    written, or (unless `overwrite`) that exists. Creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise PoseFaceError(f"{path}: is a folder; give a file name ({option})")
    _refuse_unwritable(path, path.parent, f"choose another {option}")
    refuse_existing([path], overwrite, option)
    return path


def check_max_pixels(max_pixels: int) -> int:
    """--max-pixels must be a positive number of pixels."""
    if max_pixels < 1:
        raise PoseFaceError(
            f"--max-pixels {max_pixels}: must be at least 1 (pixels); the default is {DEFAULT_MAX_PIXELS}"
        )
    return max_pixels


def stale_temporary_images(folder: str | os.PathLike, older_than: float) -> list[Path]:
    """Image and video files `atomic_write` left in `folder` (not below it) when a process was killed mid-write:
    exactly its name pattern, last modified before `older_than` (seconds since the epoch), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = (p for p in folder.iterdir() if _OWN_TEMPORARY_IMAGE.fullmatch(p.name))
    return sorted(p for p in candidates if p.is_file() and not p.is_symlink() and p.stat().st_mtime < older_than)


def write_image(
    path: str | os.PathLike,
    array: np.ndarray,
    quality: int = 95,
    metadata: ImageMetadata | None = None,
    replace: bool = True,
) -> Path:
    """Write an RGB(A) uint8/uint16 array atomically (temporary file + rename), creating folders;
    `replace=False`: never replace an existing file (see atomic_write).

    `metadata` (ICC profile, EXIF) is written where Pillow writes the format (PNG, JPEG, WebP, TIFF
    at 8 bits); 16-bit files go through OpenCV, which cannot carry it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise PoseFaceError(f"{path}: unknown image extension; use one of {', '.join(IMAGE_SUFFIXES)}")
    array = np.asarray(array)

    def save(tmp_name: str) -> None:
        if array.dtype == np.uint16:
            import cv2

            bgr = array
            if array.ndim == 3 and array.shape[2] == 3:
                bgr = array[..., ::-1]
            elif array.ndim == 3 and array.shape[2] == 4:
                bgr = array[..., [2, 1, 0, 3]]
            if not cv2.imwrite(tmp_name, np.ascontiguousarray(bgr)):
                raise PoseFaceError(f"{path}: OpenCV could not write a 16-bit {suffix} file; use .png or .tif")
            return
        image = Image.fromarray(np.ascontiguousarray(array.astype(np.uint8)))
        extra = _metadata_arguments(suffix, metadata)
        if suffix in (".jpg", ".jpeg"):
            image.convert("RGB").save(tmp_name, quality=quality, **extra)
        else:
            image.save(tmp_name, **extra)

    return atomic_write(path, save, replace)


# ---- full-fidelity reading and writing (grey, alpha, 16-bit), used by `poseface restore` ----------

SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")  # where a 16-bit image can be written back at 16 bits
METADATA_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")  # where the ICC profile and EXIF are kept
_ORIENTATION_TAG = 0x0112
# TIFF tags that describe the pixel layout, not the photo: never carried as EXIF into another file
_LAYOUT_TAGS = frozenset(
    {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339, 34675}
)


@dataclass(frozen=True)
class ImageMetadata:
    """What a file says about its pixels besides the pixels: kept from input to output by `poseface restore`."""

    icc_profile: bytes | None = None
    exif: bytes | None = None  # orientation reset to 1: `read_image_full` returns the pixels upright
    frames: int = 1  # frames or pages in the file; only the first is read


def _metadata_arguments(suffix: str, metadata: ImageMetadata | None) -> dict[str, bytes]:
    """Pillow `save` keyword arguments that write `metadata` into a `suffix` file."""
    if metadata is None or suffix not in METADATA_SUFFIXES:
        return {}
    extra = {"icc_profile": metadata.icc_profile, "exif": metadata.exif}
    return {key: value for key, value in extra.items() if value}


def _upright_exif(header: Image.Image) -> bytes | None:
    """The file's EXIF with the orientation reset to 1 and TIFF layout tags removed; None without EXIF."""
    exif = header.getexif()
    for tag in _LAYOUT_TAGS & set(exif):
        del exif[tag]
    if not exif:
        return None
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1
    try:
        return exif.tobytes()
    except (ValueError, TypeError, KeyError, struct.error):
        return None  # EXIF Pillow cannot write back (malformed tags): the output goes without it


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as handle:
        header = handle.read(26)
    return header[24] if len(header) >= 25 and header[:8] == b"\x89PNG\r\n\x1a\n" else 8


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation (1..8) applied to an (H, W, ...) array, as ImageOps.exif_transpose does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _header(path: Path, max_pixels: int) -> tuple[str | None, bool, int, ImageMetadata]:
    """(format, 16-bit colour?, EXIF orientation, metadata) from the header alone; refuses images
    above `max_pixels` here because Pillow only warns up to twice its limit."""
    try:
        with Image.open(path) as header:
            width, height = header.size
            file_format = header.format
            orientation = header.getexif().get(_ORIENTATION_TAG, 1)
            bits = header.tag_v2.get(258, (8,)) if file_format == "TIFF" else (8,)
            metadata = ImageMetadata(
                header.info.get("icc_profile") or None, _upright_exif(header), getattr(header, "n_frames", 1)
            )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None, False, 1, ImageMetadata()  # open_image reports it
    refuse_above_limit(path, (width, height), max_pixels)
    if file_format == "PNG":
        sixteen = _png_bit_depth(path) == 16
    else:
        sixteen = file_format == "TIFF" and max(bits if isinstance(bits, tuple) else (bits,)) == 16
    return file_format, sixteen, orientation, metadata


def read_image_full(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image keeping what `read_rgb` drops: grey stays (H, W), alpha is kept as the last
    channel ((H, W, 2) grey+alpha or (H, W, 4) RGBA), and 16-bit PNG/TIFF stay uint16.

    Everything else is uint8 (H, W, 3) RGB. EXIF orientation is applied; of an animated or
    multi-page file, the first frame. One-line errors as open_image.
    """
    return read_image_and_metadata(path, max_pixels)[0]


def read_image_and_metadata(
    path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageMetadata]:
    """`read_image_full`, plus the file's ICC profile, EXIF (orientation reset to 1) and frame count."""
    path = Path(path)
    _, sixteen_colour, orientation, metadata = _header(path, max_pixels)
    return _read_pixels(path, max_pixels, sixteen_colour, orientation), metadata


def _read_pixels(path: Path, max_pixels: int, sixteen_colour: bool, orientation: int) -> np.ndarray:
    image = open_image(path, max_pixels)  # validates, decodes, applies EXIF orientation
    mode = image.mode
    if sixteen_colour and mode in ("RGB", "RGBA"):
        # Pillow decodes 16-bit colour PNG/TIFF to 8 bits: ask OpenCV for the full depth
        import cv2

        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is not None and raw.dtype == np.uint16 and raw.ndim == 3 and raw.shape[2] in (3, 4):
            raw = raw[..., [2, 1, 0, 3]] if raw.shape[2] == 4 else raw[..., ::-1]
            return _apply_orientation(np.ascontiguousarray(raw), orientation)
    if mode.startswith("I;16") or (mode == "I" and np.asarray(image).max(initial=0) > 255):
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if mode in ("L", "1", "I", "F"):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    if mode in ("LA", "La"):
        return np.asarray(image.convert("LA"), dtype=np.uint8).copy()
    has_alpha = mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in image.info)
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8).copy()


def write_image_full(
    path: str | os.PathLike,
    array: np.ndarray,
    quality: int = 95,
    metadata: ImageMetadata | None = None,
    replace: bool = True,
) -> Path:
    """Write what `read_image_full` returns, at the input's depth where the format allows.

    uint16 goes to PNG/TIFF at 16 bits and is reduced to 8 bits for other formats; alpha is kept
    where the format has it (JPEG drops it); (H, W, 2) grey+alpha is written as LA (8-bit) or,
    at 16 bits, as RGBA. `metadata` as in `write_image`.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    suffix = path.suffix.lower()
    if array.dtype == np.uint16 and suffix not in SIXTEEN_BIT_SUFFIXES:
        array = np.clip(np.rint(array.astype(np.float32) / 257.0), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 2:
        if array.dtype == np.uint16:
            array = np.concatenate([np.repeat(array[..., :1], 3, axis=2), array[..., 1:]], axis=2)
        elif suffix in (".jpg", ".jpeg", ".bmp"):
            array = array[..., 0]
        else:
            image = _la_image(array)
            return atomic_write(
                path, lambda tmp_name: image.save(tmp_name, **_metadata_arguments(suffix, metadata)), replace
            )
    if array.ndim == 3 and array.shape[2] == 4 and suffix in (".jpg", ".jpeg"):
        array = array[..., :3]
    return write_image(path, array, quality=quality, metadata=metadata, replace=replace)


def _usual_permissions(path: Path) -> Path:
    """Temporary files are created 0600; give the finished file the permissions of a normal new file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


def _la_image(array: np.ndarray) -> Image.Image:
    return Image.merge(
        "LA",
        (Image.fromarray(np.ascontiguousarray(array[..., 0])), Image.fromarray(np.ascontiguousarray(array[..., 1]))),
    )
