"""ONNX export of the restoration network: `poseface export --onnx OUT.onnx [--weights W]`.

The graph maps `faces` (N, 3, S, S) float32 RGB in [-1, 1] to `restored` of the same shape, with a
dynamic batch axis N. There is no noise input to fix: the StyleGAN2 noise branches take the decoder
maps (eq. 3), so the network is deterministic and the exported graph has one input.

Exporter: `torch.onnx.export(dynamo=True)` (torch.export + onnxscript), opset 18. It traces the
Python shape arithmetic of the FIR ops (channel counts, padding) as constants and keeps N symbolic;
the TorchScript exporter turns those channel counts into run-time values and then refuses the
depthwise blur ("convolution for kernel of unknown shape"). The StyleGAN2 convs are exported with
`modulate="activations"` (one convolution with the shared weight for the whole batch): the
per-sample "weights" form unrolls a loop over N and would freeze the batch size.

Every export is checked against PyTorch's reference path (`modulate="weights"`) with ONNX Runtime on
random inputs and on a real face at batch 1 and 3, before the file is renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from poseface.errors import PoseFaceError
from poseface.imageio import atomic_write
from poseface.models.checkpoint import METADATA_KEY, model_document
from poseface.models.network import PoseFaceNet, inference_forward
from poseface.models.onnx_backend import INPUT_NAME, OUTPUT_NAME, load_onnx_model

OPSET = 18
EXPORT_KEY = "poseface_onnx"  # metadata_props key of the export facts (opset, names, exporter)
TOLERANCE = 1e-3  # max |onnxruntime - torch| accepted by the export check
EXAMPLE_BATCH = 2  # traced batch size: neither of the checked sizes 1 and 3


class ExportForward(nn.Module):
    """The network as exported: PoseFaceNet with the batched ("activations") style modulation."""

    def __init__(self, net: PoseFaceNet):
        super().__init__()
        self.net = net

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(faces, modulate="activations")


def export_metadata(model: PoseFaceNet, provenance: dict | None = None) -> dict[str, str]:
    """metadata_props of an export: the weights-file document (config, face template, provenance) and
    the export facts the ONNX backend checks."""
    facts = {
        "opset": OPSET,
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "layout": "NCHW RGB float32 in [-1, 1]",
        "exporter": f"torch.onnx dynamo (torch {torch.__version__})",
    }
    return {METADATA_KEY: json.dumps(model_document(model.config, provenance)), EXPORT_KEY: json.dumps(facts)}


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Keep the exporter's progress notes and warnings (optional torchvision ops, constant folding)
    off the terminal; errors still raise."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def export_program(model: PoseFaceNet, provenance: dict | None = None) -> "torch.onnx.ONNXProgram":
    """The ONNX program of `model` (fp32, CPU copy, dynamic batch) with PoseFace's metadata_props."""
    size = model.config.size
    module = ExportForward(model).to("cpu", torch.float32).eval()
    example = torch.zeros(EXAMPLE_BATCH, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad(), quiet_exporter():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"faces": {0: batch}},
            verbose=False,
        )
    program.model.metadata_props.update(export_metadata(model, provenance))
    return program


def astronaut_faces(size: int, template: np.ndarray) -> np.ndarray:
    """(3, S, S, 3) uint8: skimage's astronaut, detected and aligned by poseface.faces as `restore`
    does, its mirror image, and a 2x down- and up-sampled (blurred) copy."""
    import cv2

    from poseface.errors import import_optional
    from poseface.faces.align import align_face
    from poseface.faces.detect import detect_faces

    photo = import_optional("skimage.data", "onnx", "the export check on a real face").astronaut()
    found = detect_faces(photo)
    if not found:
        raise PoseFaceError("skimage.data.astronaut(): no face found for the ONNX check; check the dlib installation")
    face = np.clip(np.rint(align_face(photo, found[0].points5, template, size).crop), 0, 255).astype(np.uint8)
    blurred = cv2.resize(
        cv2.resize(face, (size // 2, size // 2), interpolation=cv2.INTER_AREA),
        (size, size),
        interpolation=cv2.INTER_CUBIC,
    )
    return np.stack([face, face[:, ::-1], blurred])


def to_model_input(faces: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 in [-1, 1], as the restorer feeds the network."""
    return torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def check_inputs(model: PoseFaceNet, seed: int = 0) -> dict[str, torch.Tensor]:
    """The named inputs every export is checked on: uniform noise in [-1, 1] and the astronaut, batch 1 and 3."""
    size = model.config.size
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(3, 3, size, size, generator=generator) * 2 - 1
    real = to_model_input(astronaut_faces(size, np.asarray(model.config.template())))
    return {
        "random, batch 1": noise[:1],
        "random, batch 3": noise,
        "astronaut, batch 1": real[:1],
        "astronaut, batch 3": real,
    }


def max_differences(model: PoseFaceNet, run_onnx, inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """max |run_onnx(x) - model(x)| per named input; `model` runs as restore runs it (inference_forward)."""
    model = model.to("cpu", torch.float32).eval()
    differences = {}
    for name, x in inputs.items():
        with torch.no_grad():
            expected = inference_forward(model)(x).numpy()
        differences[name] = float(np.abs(run_onnx(x.numpy()) - expected).max())
    return differences


def check_parity(model: PoseFaceNet, path: Path, shown_as: Path, inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Run the ONNX file at `path` with ONNX Runtime against `model`; PoseFaceError above TOLERANCE."""
    onnx_model = load_onnx_model(path, device="cpu")
    differences = max_differences(model, onnx_model.run_numpy, inputs)
    worst = max(differences, key=differences.get)
    if not differences[worst] < TOLERANCE:
        raise PoseFaceError(
            f"{shown_as}: the ONNX export differs from PyTorch by {differences[worst]:.2e} on {worst} inputs "
            f"(tolerance {TOLERANCE:g}); nothing was written, please report it"
        )
    return differences


def export_onnx(
    model: PoseFaceNet, path: str | os.PathLike, provenance: dict | None = None, overwrite: bool = False
) -> dict[str, float]:
    """Write `model` to `path` as ONNX, checked with ONNX Runtime first; returns the max differences."""
    path = Path(path)
    program = export_program(model, provenance)
    inputs = check_inputs(model)
    differences: dict[str, float] = {}

    def save_checked(tmp: str) -> None:
        program.save(tmp)
        differences.update(check_parity(model, Path(tmp), path, inputs))

    atomic_write(path, save_checked, replace=overwrite)
    return differences
