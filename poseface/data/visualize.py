"""Contact sheets: a grid of images with column headers and optional captions, as one RGB array.

`contact_sheet([[clean, degraded], ...], ["clean", "degraded"])` gives a PNG-ready uint8 image. Any
number of columns; every image (grey or RGB, any size) is resized to a common cell. Used for the
data previews here and for comparison grids elsewhere (input | GFPGAN | GPEN | ours | GT).
"""

from __future__ import annotations

import cv2
import numpy as np

from poseface.errors import PoseFaceError

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            image = np.clip(np.rint(image * 255.0 if image.max() <= 1.0 else image), 0, 255).astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise PoseFaceError(f"contact_sheet: expected (H, W), (H, W, 3) or (H, W, 4) images, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _fit_text(text: str, width: int, scale: float) -> tuple[str, float]:
    """Shrink the font (down to 0.3) and then cut the text so it fits `width` pixels."""
    while scale > 0.3 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        scale -= 0.05
    while text and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        text = text[:-2] + "~" if len(text) > 1 else ""
    return text, scale


def _text_strip(texts: list[str], cell: int, pad: int, height: int, scale: float) -> np.ndarray:
    strip = np.full((height, len(texts) * (cell + pad) + pad, 3), _BACKGROUND, dtype=np.uint8)
    for column, text in enumerate(texts):
        fitted, fitted_scale = _fit_text(text or "", cell - 4, scale)
        (text_w, text_h), _ = cv2.getTextSize(fitted, _FONT, fitted_scale, 1)
        x = pad + column * (cell + pad) + max(0, (cell - text_w) // 2)
        y = (height + text_h) // 2
        cv2.putText(strip, fitted, (x, y), _FONT, fitted_scale, _TEXT, 1, cv2.LINE_AA)
    return strip


def contact_sheet(
    rows: list[list[np.ndarray]],
    labels: list[str],
    cell_size: int = 256,
    captions: list[list[str]] | None = None,
    pad: int = 4,
) -> np.ndarray:
    """A grid (rows x len(labels)) of images resized to cell_size x cell_size, header labels on top.

    `captions[r][c]` (optional) is written under image (r, c), e.g. the degradation parameters or a
    metric. Images that are not square are letterboxed. Returns (H, W, 3) uint8 RGB.
    """
    if not rows:
        raise PoseFaceError("contact_sheet: no rows to draw")
    columns = len(labels)
    if any(len(row) != columns for row in rows):
        raise PoseFaceError(
            f"contact_sheet: every row needs {columns} images (one per label), got {[len(r) for r in rows]}"
        )
    if captions is not None and (len(captions) != len(rows) or any(len(c) != columns for c in captions)):
        raise PoseFaceError("contact_sheet: captions must have the same rows x columns shape as the images")
    font_scale = max(0.35, cell_size / 512.0)
    header_h = int(28 * max(1.0, font_scale * 1.6))
    caption_h = int(20 * max(1.0, font_scale * 1.6)) if captions is not None else 0
    parts = [_text_strip(labels, cell_size, pad, header_h, font_scale * 1.2)]
    width = columns * (cell_size + pad) + pad
    for r, row in enumerate(rows):
        band = np.full((cell_size, width, 3), _BACKGROUND, dtype=np.uint8)
        for c, image in enumerate(row):
            image = _as_rgb_uint8(image)
            h, w = image.shape[:2]
            scale = cell_size / max(h, w)
            new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST if scale >= 2 else cv2.INTER_CUBIC
            resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
            x = pad + c * (cell_size + pad) + (cell_size - new_w) // 2
            y = (cell_size - new_h) // 2
            band[y : y + new_h, x : x + new_w] = resized
        parts.append(band)
        if captions is not None:
            parts.append(_text_strip(captions[r], cell_size, pad, caption_h, font_scale))
        parts.append(np.full((pad, width, 3), _BACKGROUND, dtype=np.uint8))
    return np.concatenate(parts, axis=0)
