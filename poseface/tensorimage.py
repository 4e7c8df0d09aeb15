"""uint8 images <-> [-1, 1] tensors, the one conversion every model input and output goes through.

    images_to_tensor(batch_uint8, device, dtype)  # (N, H, W, 3) or (H, W, 3) uint8 -> (N, 3, H, W) in [-1, 1]
    tensor_to_images(tensor)                      # (N, 3, H, W) or (3, H, W) -> (N, H, W, 3) uint8

Forward: value / 127.5 - 1 in float32 (0 -> -1, 255 -> 1), computed in numpy so that data-loader
workers run no small torch ops (they can stall on torch's thread pool); the result equals torch's
`x.float().div(127.5).sub(1)` to the bit. Back: NaN -> 0, clamp to [-1, 1], (t + 1) * 127.5,
rounded to the nearest integer (ties to even, torch.round: t = 0 gives 127.5 -> 128). uint8 -> tensor -> uint8 is the identity.

The module imports only numpy and torch, so data, losses, metrics, faces and train may all use it.
"""

from __future__ import annotations

import numpy as np
import torch


def images_to_tensor(
    images: np.ndarray, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 RGB (N, H, W, 3) or one (H, W, 3) image -> (N, 3, H, W) tensor in [-1, 1] on `device`."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"images of shape {array.shape}: expected (N, H, W, 3) or (H, W, 3) RGB")
    scaled = array.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return torch.from_numpy(np.ascontiguousarray(scaled)).to(device=device, dtype=dtype)


def tensor_to_images(tensor: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) or one (3, H, W) tensor in [-1, 1] -> (N, H, W, 3) uint8 RGB on the CPU."""
    if tensor.ndim == 3:
        tensor = tensor[None]
    pixels = tensor.detach().float().nan_to_num(0.0).clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()
