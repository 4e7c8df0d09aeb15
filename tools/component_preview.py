"""A picture of what the local discriminators see: the face with its eye/mouth boxes and the crops.

`component_preview(images, boxes, has_boxes)` returns a uint8 (H, W, 3) sheet, one row per sample:
the face with the three boxes drawn (left eye red, right eye green, mouth blue) followed by the three
crops as `GeneratorLoss` takes them, each scaled to the face height, for docs/losses.md (the picture
of the component crops), TensorBoard or `poseface.imageio.write_image`: landmarks and boxes at a glance.

    import sys; sys.path.insert(0, "tools"); from component_preview import component_preview
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from poseface.losses.adversarial import component_crops
from poseface.losses.roi import COMPONENTS, component_crop_sizes
from poseface.tensorimage import tensor_to_images

BOX_COLOURS = {"left_eye": (1.0, -1.0, -1.0), "right_eye": (-1.0, 1.0, -1.0), "mouth": (-1.0, -1.0, 1.0)}


def _draw_box(image: torch.Tensor, box: torch.Tensor, colour: tuple[float, float, float], width: int) -> None:
    height, im_width = image.shape[-2:]
    x1, y1, x2, y2 = (int(round(v)) for v in box.tolist())
    x1, x2 = max(0, min(x1, im_width - 1)), max(0, min(x2 - 1, im_width - 1))
    y1, y2 = max(0, min(y1, height - 1)), max(0, min(y2 - 1, height - 1))
    value = torch.tensor(colour, dtype=image.dtype).view(3, 1, 1)
    for edge in (slice(y1, y1 + width), slice(max(y1, y2 - width + 1), y2 + 1)):
        image[:, edge, x1 : x2 + 1] = value
    for edge in (slice(x1, x1 + width), slice(max(x1, x2 - width + 1), x2 + 1)):
        image[:, y1 : y2 + 1, edge] = value


@torch.no_grad()
def component_preview(
    images: torch.Tensor,
    boxes: torch.Tensor,
    has_boxes: torch.Tensor | None = None,
    sizes: dict[str, int] | None = None,
) -> np.ndarray:
    """images (N, 3, S, S) in [-1, 1]; boxes (N, 3, 4) -> uint8 sheet (N*S, 4*S, 3). Rows without boxes show no boxes."""
    images = images.detach().float().cpu()
    boxes = boxes.detach().float().cpu()
    size = images.shape[-1]
    has = torch.ones(len(images), dtype=torch.bool) if has_boxes is None else has_boxes.detach().cpu().bool()
    crops = component_crops(images, boxes, has, sizes or component_crop_sizes(size))
    rows = []
    for i in range(len(images)):
        face = images[i].clone()
        tiles = []
        if has[i]:
            for index, name in enumerate(COMPONENTS):
                _draw_box(face, boxes[i, index], BOX_COLOURS[name], max(1, size // 128))
        for name in COMPONENTS:
            crop = crops[name][i : i + 1] if has[i] else torch.zeros(1, 3, 8, 8)
            tiles.append(F.interpolate(crop, size=(size, size), mode="nearest")[0])
        rows.append(torch.cat([face, *tiles], dim=2))
    return tensor_to_images(torch.cat(rows, dim=1))[0]
