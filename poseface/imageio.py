"""Reading and writing images with one-line errors.

The contract everywhere in PoseFace: images are numpy arrays, RGB channel order, (H, W, 3),
uint8 unless a function says otherwise. Unreadable files raise `PoseFaceError` naming the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from poseface.errors import PoseFaceError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 20000 * 20000  # decompression-bomb limit: 400 megapixels


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files below `folder`, sorted, by suffix (content is checked when read)."""
    root = Path(folder)
    if not root.is_dir():
        raise PoseFaceError(f"{root}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def open_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image with EXIF orientation applied; one-line error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise PoseFaceError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise PoseFaceError(f"{path}: empty file (0 bytes); re-copy or re-export it")
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError:
        raise PoseFaceError(
            f"{path}: image larger than the decoding limit of {max_pixels} pixels; raise the limit (--max-pixels) if you trust the file"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PoseFaceError(f"{path}: not a readable image ({type(exc).__name__}: {exc}); the file is truncated, corrupt or not an image") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    return image


def read_rgb(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read any supported image as (H, W, 3) uint8 RGB (grey is expanded, alpha dropped, 16-bit scaled)."""
    image = open_image(path, max_pixels)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        array = np.clip(array / (65535.0 if array.max() > 255 else 255.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(array[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def write_image(path: str | os.PathLike, array: np.ndarray, quality: int = 95) -> Path:
    """Write an RGB(A) uint8/uint16 array atomically (temporary file + rename), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise PoseFaceError(f"{path}: unknown image extension; use one of {', '.join(IMAGE_SUFFIXES)}")
    array = np.asarray(array)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=suffix, prefix=".tmp-")
    os.close(handle)
    try:
        if array.dtype == np.uint16:
            import cv2

            bgr = array[..., ::-1] if array.ndim == 3 and array.shape[2] == 3 else array
            if array.ndim == 3 and array.shape[2] == 4:
                bgr = array[..., [2, 1, 0, 3]]
            if not cv2.imwrite(tmp_name, np.ascontiguousarray(bgr)):
                raise PoseFaceError(f"{path}: OpenCV could not write a 16-bit {suffix} file; use .png or .tif")
        else:
            image = Image.fromarray(np.ascontiguousarray(array.astype(np.uint8)))
            if suffix in (".jpg", ".jpeg"):
                image.convert("RGB").save(tmp_name, quality=quality)
            else:
                image.save(tmp_name)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path
