"""Differentiable crops of facial components (eyes, mouth) for the local discriminators (paper eq. 12).

A box is (x1, y1, x2, y2) in continuous pixel coordinates of the image: pixel column i covers
[i, i + 1), so its centre is at i + 0.5 and the whole image spans [0, W] x [0, H]. The crop of a box
to an (h, w) grid samples the image bilinearly at the centres of an h x w grid of equal bins laid over
the box (ROI-align with `aligned=True` semantics). Consequences:

* a box with integer corners cropped to its own size reproduces `image[:, :, y1:y2, x1:x2]` exactly;
* with `sampling_ratio = s > 1` every output pixel averages s x s bilinear samples of its bin
  (ROI-align's anti-aliasing, useful when a box is much larger than the output);
* the crop is built from `F.grid_sample`, so gradients flow to the image (not to the boxes, which are
  treated as data).

GFPGAN uses torchvision's `roi_align(..., aligned=False)`, which puts pixel centres at integer
coordinates; its crops are shifted by half a pixel against ours. Nothing else depends on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from poseface.faces.dlib_models import COMPONENTS


def _bin_centres(start: torch.Tensor, stop: torch.Tensor, count: int) -> torch.Tensor:
    """(N,) box edges -> (N, count) centres of `count` equal bins between them."""
    steps = (torch.arange(count, device=start.device, dtype=start.dtype) + 0.5) / count
    return start[:, None] + steps[None, :] * (stop - start)[:, None]


def roi_crop(
    images: torch.Tensor,
    boxes: torch.Tensor,
    output_size: int | tuple[int, int],
    sampling_ratio: int = 1,
    padding_mode: str = "border",
) -> torch.Tensor:
    """Crop one box per image, resampled to `output_size`.

    images: (N, C, H, W); boxes: (N, 4) float (x1, y1, x2, y2) in pixels of `images`.
    Returns (N, C, out_h, out_w). Parts of a box outside the image repeat the border pixels
    (`padding_mode="border"`) or read zeros (`"zeros"`).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if boxes.shape != (images.shape[0], 4):
        raise ValueError(f"boxes must be (N, 4) with N={images.shape[0]}, got shape {tuple(boxes.shape)}")
    if sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be >= 1, got {sampling_ratio}")
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    height, width = images.shape[-2:]
    boxes = boxes.detach().to(device=images.device, dtype=images.dtype)
    x1, y1, x2, y2 = boxes.unbind(dim=1)
    xs = _bin_centres(x1, x2, out_w * sampling_ratio)  # (N, W')
    ys = _bin_centres(y1, y2, out_h * sampling_ratio)  # (N, H')
    # grid_sample with align_corners=False maps the normalised -1..1 range onto the image edges 0..W.
    grid_x = xs * (2.0 / width) - 1.0
    grid_y = ys * (2.0 / height) - 1.0
    grid = torch.stack(
        (
            grid_x[:, None, :].expand(-1, grid_y.shape[1], -1),
            grid_y[:, :, None].expand(-1, -1, grid_x.shape[1]),
        ),
        dim=-1,
    )
    crops = F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    if sampling_ratio > 1:
        crops = F.avg_pool2d(crops, sampling_ratio)
    return crops


def component_crop_sizes(image_size: int, eye: int = 80, mouth: int = 120, reference: int = 512) -> dict[str, int]:
    """Crop sizes for an image of `image_size` px: `eye`/`mouth` are given at `reference` px (GFPGAN: 80/120 at 512)."""
    scale = image_size / reference
    eye_size = max(8, int(round(eye * scale)))
    mouth_size = max(8, int(round(mouth * scale)))
    return {"left_eye": eye_size, "right_eye": eye_size, "mouth": mouth_size}


def safe_boxes(boxes: torch.Tensor, has_boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Replace the boxes of samples without boxes (and any non-finite box) by the whole image.

    Those samples are masked out of the loss anyway; this only keeps NaN or garbage boxes from
    producing NaN crops (0 * NaN is NaN).
    """
    height, width = image_size
    whole = boxes.new_tensor([0.0, 0.0, float(width), float(height)])
    keep = has_boxes.to(torch.bool).view(-1, *([1] * (boxes.ndim - 1))) & torch.isfinite(boxes)
    keep = keep.all(dim=-1, keepdim=True)
    return torch.where(keep, boxes, whole.expand_as(boxes))


def crop_components(
    images: torch.Tensor,
    boxes: torch.Tensor,
    sizes: dict[str, int],
    sampling_ratio: int = 1,
) -> dict[str, torch.Tensor]:
    """Crop left eye, right eye and mouth. boxes: (N, 3, 4) in the order of `COMPONENTS`."""
    if boxes.ndim != 3 or boxes.shape[1:] != (len(COMPONENTS), 4):
        raise ValueError(f"boxes must be (N, 3, 4) (left_eye, right_eye, mouth), got shape {tuple(boxes.shape)}")
    return {
        name: roi_crop(images, boxes[:, index], sizes[name], sampling_ratio=sampling_ratio)
        for index, name in enumerate(COMPONENTS)
    }
