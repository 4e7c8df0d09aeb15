"""dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) in PyTorch.

The weights are read from the .dat file itself. dlib serialises a network as:

* the loss layer: version int, name string (`loss_metric_2`), margin and distance threshold floats;
* one version int per wrapper from the outside in (`add_layer` 2, `add_tag_layer`/`add_skip_layer` 1,
  the innermost `add_layer` over the input 3), because each wrapper writes its version and then its
  sub-network;
* the input layer (`input_rgb_image_sized`: three channel means, rows, columns);
* from the input outwards, each layer's details (name string, then its fields) followed by three
  bools ('0'/'1' chars) and three (empty) tensors; the innermost also writes its sample expansion factor.

Scalars: an int is one byte (bit 7 = sign, bits 0-3 = byte count) then that many little-endian bytes;
a float is two ints, mantissa * 2**exponent; a string is an int length then bytes; a tensor is
version 2, four int dims, then little-endian float32 values. Tags and skips write no details, so the
topology (dlib's dnn_face_recognition_ex.cpp) is fixed here and the file's layer sequence is checked
against it:

    input 150x150 -> con 32 7x7/2 -> affine -> relu -> max_pool 3x3/2
    -> 3 x ares 32 -> ares_down 64, 3 x ares 64 -> ares_down 128, 2 x ares 128
    -> ares_down 256, 2 x ares 256 -> ares_down 256 -> avg_pool_everything -> fc_no_bias 128

with block = affine(con 3x3/1(relu(affine(con 3x3/stride(x))))), ares = relu(block(x) + x) and
ares_down = relu(block(x) + avg_pool 2x2/2(x)). dlib's default padding is k//2 only for stride 1
(0 otherwise), and add_prev adds tensors of different sizes by zero-padding the smaller one
(8x8 -> the strided conv gives 3x3, the pool 4x4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from poseface.errors import PoseFaceError
from poseface.faces import dlib_models
from poseface.losses.pretrained import freeze

INPUT_SIZE = 150  # dlib.get_face_chip(image, shape, size=150, padding=0.25)
DESCRIPTOR_SIZE = 128


# ----------------------------------------------------------------------------------------------
# dlib serialisation


@dataclass
class Layer:
    kind: str  # con | affine | relu | max_pool | avg_pool | add_prev | fc
    ints: list[int] = field(default_factory=list)
    params: np.ndarray | None = None


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> PoseFaceError:
        return PoseFaceError(
            f"{self.path}: not dlib's face recognition ResNet ({what} at byte {self.pos}); "
            "reinstall it with `pip install --force-reinstall face_recognition_models`"
        )

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self) -> int:
        control = self.byte()
        size = control & 0x0F
        if size > 8 or self.pos + size > len(self.data):
            raise self.fail("bad integer")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "little")
        self.pos += size
        return -value if control & 0x80 else value

    def peek_int(self) -> int:
        pos = self.pos
        value = self.int()
        self.pos = pos
        return value

    def float(self) -> float:
        mantissa = self.int()
        return float(mantissa * 2.0 ** self.int())

    def string(self) -> str:
        size = self.int()
        if size < 0 or size > 64 or self.pos + size > len(self.data):
            raise self.fail("bad string")
        self.pos += size
        return self.data[self.pos - size : self.pos].decode("latin-1")

    def bool(self) -> bool:
        char = self.byte()
        if char not in (0x30, 0x31):
            raise self.fail("bad bool")
        return char == 0x31

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise self.fail("unknown tensor version")
        count = int(np.prod([self.int() for _ in range(4)]))
        if count < 0 or self.pos + 4 * count > len(self.data):
            raise self.fail("bad tensor size")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        return values

    def alias(self) -> list[int]:
        if self.int() != 1:
            raise self.fail("unknown alias_tensor version")
        return [self.int() for _ in range(4)]


def _layer_details(reader: _Reader) -> Layer:
    name = reader.string()
    kind = name.rstrip("0123456789").rstrip("_")
    if kind == "con":  # con_4
        params = reader.tensor()
        ints = [reader.int() for _ in range(7)]  # filters, rows, cols, stride y, x, padding y, x
        reader.alias(), reader.alias()  # filters, biases
        [reader.float() for _ in range(4)]  # learning-rate / weight-decay multipliers
        return Layer(kind, ints, params)
    if kind == "affine":
        params = reader.tensor()  # gamma then beta
        reader.alias(), reader.alias()
        return Layer(kind, [reader.int()], params)  # mode: 0 = per channel
    if kind == "fc":  # fc_2
        ints = [reader.int(), reader.int()]  # outputs, inputs
        params = reader.tensor()  # inputs x outputs (+ outputs biases when present)
        reader.alias(), reader.alias()
        ints.append(reader.int())  # bias mode: 1 = no bias
        [reader.float() for _ in range(4)]
        return Layer(kind, ints, params)
    if kind in ("max_pool", "avg_pool"):
        return Layer(
            kind, [reader.int() for _ in range(6)]
        )  # rows, cols, stride y, x, padding y, x (rows 0 = everything)
    if kind in ("relu", "add_prev"):
        return Layer(kind)
    raise reader.fail(f"unexpected layer {name!r}")


@dataclass
class DlibNet:
    means: tuple[float, float, float]
    size: tuple[int, int]
    layers: list[Layer]


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse dlib's serialised loss_metric network into its input means and layer list (input side first)."""
    path = Path(path)
    try:
        reader = _Reader(path.read_bytes(), path)
    except OSError as exc:
        raise PoseFaceError(
            f"{path}: cannot read dlib's face recognition model ({exc.strerror}); "
            "reinstall it with `pip install --force-reinstall face_recognition_models`"
        ) from None
    reader.int()
    if not reader.string().startswith("loss_metric"):
        raise reader.fail("no loss_metric layer")
    reader.float(), reader.float()  # margin, distance threshold
    while reader.peek_int() in (1, 2, 3):  # wrapper versions
        reader.int()
    if reader.string() != "input_rgb_image_sized":
        raise reader.fail("no input_rgb_image_sized layer")
    means = (reader.float(), reader.float(), reader.float())
    size = (reader.int(), reader.int())
    layers = []
    while reader.pos < len(reader.data):
        layers.append(_layer_details(reader))
        [reader.bool() for _ in range(3)]
        [reader.tensor() for _ in range(3)]
        if len(layers) == 1:
            reader.int()  # sample expansion factor of the wrapper over the input
    return DlibNet(means, size, layers)


# ----------------------------------------------------------------------------------------------
# the network


def _conv(layer: Layer, in_channels: int) -> nn.Conv2d:
    filters, rows, cols, stride_y, stride_x, pad_y, pad_x = layer.ints
    conv = nn.Conv2d(in_channels, filters, (rows, cols), (stride_y, stride_x), (pad_y, pad_x))
    weight_count = filters * in_channels * rows * cols
    assert layer.params is not None and layer.params.size == weight_count + filters
    conv.weight.data = torch.from_numpy(layer.params[:weight_count].reshape(conv.weight.shape).copy())
    conv.bias.data = torch.from_numpy(layer.params[weight_count:].copy())
    return conv


class Affine(nn.Module):
    """dlib's affine_ (batch norm folded): gamma * x + beta per channel."""

    def __init__(self, layer: Layer):
        super().__init__()
        assert layer.params is not None
        gamma, beta = np.split(layer.params, 2)
        self.register_buffer("gamma", torch.from_numpy(gamma.copy()).view(1, -1, 1, 1))
        self.register_buffer("beta", torch.from_numpy(beta.copy()).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: sum of two tensors, the smaller zero-padded (channels, bottom, right)."""
    channels, height, width = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[3], 0, height - t.shape[2], 0, channels - t.shape[1]))

    return pad(a) + pad(b)


class Block(nn.Module):
    """ares / ares_down: relu(affine(con(relu(affine(con(x))))) + shortcut), shortcut = x or avg_pool 2x2/2."""

    def __init__(self, layers: list[Layer], in_channels: int, down: bool):
        super().__init__()
        expected = ["con", "affine", "relu", "con", "affine"] + (["avg_pool"] if down else []) + ["add_prev", "relu"]
        if [layer.kind for layer in layers] != expected:
            raise PoseFaceError(f"dlib face recognition model: unexpected block {[layer.kind for layer in layers]}")
        self.conv1 = _conv(layers[0], in_channels)
        self.affine1 = Affine(layers[1])
        self.conv2 = _conv(layers[3], self.conv1.out_channels)
        self.affine2 = Affine(layers[4])
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(out, shortcut))


# (channels, down-sampling first block, blocks) per level, input side first (alevel4 .. alevel0)
LEVELS: tuple[tuple[int, bool, int], ...] = (
    (32, False, 3),
    (64, True, 4),
    (128, True, 3),
    (256, True, 3),
    (256, True, 1),
)


class DlibFaceResNet(nn.Module):
    """dlib's 29-layer face ResNet: (N, 3, 150, 150) RGB in 0..255 -> (N, 128) descriptors.

    `features(x)` also returns the activations after the stem and after each level (feature matching).
    """

    def __init__(self, net: DlibNet):
        super().__init__()
        layers = net.layers
        kinds = [layer.kind for layer in layers[:4]]
        if kinds != ["con", "affine", "relu", "max_pool"] or layers[3].ints != [3, 3, 2, 2, 0, 0]:
            raise PoseFaceError(f"dlib face recognition model: unexpected stem {kinds}")
        self.register_buffer("mean", torch.tensor(net.means, dtype=torch.float32).view(1, 3, 1, 1))
        self.conv = _conv(layers[0], 3)
        self.affine = Affine(layers[1])
        position, channels = 4, self.conv.out_channels
        self.levels = nn.ModuleList()
        for width, down, count in LEVELS:
            blocks = []
            for index in range(count):
                first_down = down and index == 0
                length = 8 if first_down else 7
                blocks.append(Block(layers[position : position + length], channels, first_down))
                position, channels = position + length, width
            self.levels.append(nn.Sequential(*blocks))
        tail = layers[position:]
        if [layer.kind for layer in tail] != ["avg_pool", "fc"] or tail[0].ints[:2] != [0, 0] or tail[1].ints[2] != 1:
            raise PoseFaceError(f"dlib face recognition model: unexpected head {[layer.kind for layer in tail]}")
        outputs, inputs, _ = tail[1].ints
        assert tail[1].params is not None and tail[1].params.size == inputs * outputs
        self.register_buffer("fc", torch.from_numpy(tail[1].params.reshape(inputs, outputs).copy()))  # no bias

    def features(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        x = (pixels - self.mean.to(pixels.dtype)) / 256.0  # input_rgb_image: (value - channel mean) / 256
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
        outputs = [x]
        for level in self.levels:
            x = level(x)
            outputs.append(x)
        return outputs

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.features(pixels)[-1].mean(dim=(2, 3)) @ self.fc.to(pixels.dtype)


@lru_cache(maxsize=2)
def _parsed(path: str) -> DlibNet:
    return read_dlib_net(path)


def load_dlib_resnet(path: str | Path | None = None) -> DlibFaceResNet:
    """Frozen DlibFaceResNet from the .dat file (default: face_recognition_models' copy)."""
    path = Path(path) if path is not None else dlib_models.model_path(dlib_models.FACE_RECOGNITION)
    try:
        return freeze(DlibFaceResNet(_parsed(str(path))))
    except (AssertionError, ValueError, RuntimeError) as exc:  # layers of the wrong kind or size
        raise PoseFaceError(
            f"{path}: not dlib's face recognition ResNet ({exc or 'parameter sizes'}); "
            "pass dlib_face_recognition_resnet_model_v1.dat"
        ) from None


def chips_to_tensor(chips: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB chips -> float (N, 3, H, W) in 0..255 (the net's pixel range)."""
    return torch.from_numpy(np.ascontiguousarray(chips)).to(device).permute(0, 3, 1, 2).float()


# ----------------------------------------------------------------------------------------------
# loss inputs: generator crops in [-1, 1]

# Where dlib.get_face_chip(size=150, padding=0.25) puts the eye centres (mean of the 68-point eye
# contours, measured on skimage's astronaut): x 46.5 and 100.3, y 45.9; 53.8 px apart.
CHIP_EYES = ((46.5, 45.9), (100.3, 46.0))


def chip_grid(
    eyes: tuple[tuple[float, float], tuple[float, float]],
    size: int,
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Sampling grid mapping the 150 px chip onto a `size` px crop whose eye centres are `eyes` (fractions of `size`).

    A similarity transform (scale, rotation, shift) taking CHIP_EYES to `eyes`, in grid_sample's
    normalised coordinates (align_corners=False: pixel centre i at (2i + 1) / size - 1).
    """
    source = torch.tensor(CHIP_EYES, dtype=torch.float64)
    target = torch.tensor(eyes, dtype=torch.float64) * size
    s_vec, t_vec = source[1] - source[0], target[1] - target[0]
    scale = t_vec.norm() / s_vec.norm()
    angle = torch.atan2(t_vec[1], t_vec[0]) - torch.atan2(s_vec[1], s_vec[0])
    rotation = scale * torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    shift = target[0] - rotation @ source[0]
    # chip pixel p -> crop pixel R p + t; in normalised coordinates u = (2p + 1)/n - 1
    c, n = INPUT_SIZE, size
    matrix = rotation * (c / n)
    offset = (2 * (rotation @ torch.full((2,), (c - 1) / 2.0, dtype=torch.float64) + shift) + 1) / n - 1
    theta = torch.cat([matrix, offset[:, None]], dim=1).to(device=device, dtype=dtype)
    return F.affine_grid(theta.expand(batch, 2, 3), [batch, 3, INPUT_SIZE, INPUT_SIZE], align_corners=False)


def to_chip_pixels(
    images: torch.Tensor, eyes: tuple[tuple[float, float], tuple[float, float]] | None = None
) -> torch.Tensor:
    """(N, 3, H, W) RGB in [-1, 1] -> (N, 3, 150, 150) in 0..255, differentiably.

    `eyes` None: the whole crop resized to 150 (antialiased bilinear); else the eye centres of the
    crop's face template as fractions of its size, warped to where dlib's chip has them.
    """
    pixels = (images + 1.0) * 127.5
    if eyes is None:
        return F.interpolate(
            pixels, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True
        )
    grid = chip_grid(eyes, images.shape[-1], images.shape[0], images.device, images.dtype)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)


class DlibIdentityEncoder(nn.Module):
    """Face-preserving backbone: [-1, 1] aligned crops -> dlib's 128-D descriptors (frozen, differentiable)."""

    def __init__(self, net: DlibFaceResNet, eyes: tuple[tuple[float, float], tuple[float, float]] | None = None):
        super().__init__()
        self.net = freeze(net)
        self.eyes = eyes

    def train(self, mode: bool = True) -> "DlibIdentityEncoder":
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_chip_pixels(images, self.eyes))


FEATURE_LAYERS: tuple[str, ...] = ("stem", "level1", "level2", "level3", "level4", "level5")  # 35, 35, 17, 8, 4, 2 px


class DlibFeatures(nn.Module):
    """Feature-matching backbone: dict of the dlib net's activations (`layers` of FEATURE_LAYERS)."""

    def __init__(self, net: DlibFaceResNet, layers: tuple[str, ...] = FEATURE_LAYERS[:5], eyes=None):
        super().__init__()
        unknown = [name for name in layers if name not in FEATURE_LAYERS]
        if unknown:
            raise PoseFaceError(
                f"config: losses.dlib_feature_layers: unknown {unknown[0]!r}; choose from {', '.join(FEATURE_LAYERS)}"
            )
        self.net = freeze(net)
        self.layers = tuple(layers)
        self.eyes = eyes

    def train(self, mode: bool = True) -> "DlibFeatures":
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = self.net.features(to_chip_pixels(images, self.eyes))
        return {name: outputs[FEATURE_LAYERS.index(name)] for name in self.layers}
