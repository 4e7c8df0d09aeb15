"""Run a PoseFace ONNX export with ONNX Runtime where the restorer expects the PyTorch network.

    model = load_onnx_model("poseface.onnx", device="auto")   # CUDA provider if asked for and present
    restored = model(faces)      # (N, 3, S, S) float32 torch tensor in [-1, 1] -> the same
    model.config                 # the ModelConfig stored in the file's metadata_props (size, template)

Only files written by `poseface export --onnx` load: their metadata_props hold the same JSON document
as our .safetensors files. ONNX Runtime is an optional dependency (`pip install onnxruntime`, or the
`onnx` extra); it is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from poseface.config import from_dict
from poseface.errors import PoseFaceError
from poseface.models.checkpoint import METADATA_KEY, parse_document
from poseface.models.config import ModelConfig

INPUT_NAME = "faces"  # the names poseface.models.onnx_export gives the graph's input and output
OUTPUT_NAME = "restored"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def import_onnxruntime(path: Path):
    try:
        import onnxruntime
    except ImportError:
        raise PoseFaceError(
            f"{path}: running an ONNX model needs onnxruntime; pip install onnxruntime "
            "(or onnxruntime-gpu for CUDA), or pass PoseFace .safetensors weights"
        ) from None
    return onnxruntime


def providers_for(device: str, available: list[str], path: Path) -> list[str]:
    """ONNX Runtime providers for a `--device` request: cuda[:i] needs the CUDA provider, auto takes it
    when present, everything else runs on the CPU provider."""
    device = str(device).lower()
    if device.startswith("cuda"):
        if CUDA not in available:
            raise PoseFaceError(
                f"{path}: --device {device}: this onnxruntime has no CUDA provider; "
                "pip install onnxruntime-gpu, or use --device cpu"
            )
        return [CUDA, CPU]
    if device == "auto" and CUDA in available:
        return [CUDA, CPU]
    if device not in ("auto", "cpu"):
        raise PoseFaceError(f"{path}: --device {device}: the ONNX backend runs on cpu or cuda; use --device cpu")
    return [CPU]


class OnnxRestorationModel:
    """An exported network in an ONNX Runtime session, called like the PyTorch PoseFaceNet."""

    precisions = ("fp32",)  # what the restorer may ask for: the graph is float32

    def __init__(self, session, config: ModelConfig, path: Path):
        self.session = session
        self.config = config
        self.path = path

    def run_numpy(self, faces: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 in [-1, 1] -> the restored faces, same shape."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(faces, dtype=np.float32)})[0]

    def __call__(self, faces: torch.Tensor) -> torch.Tensor:
        out = self.run_numpy(faces.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(out).to(faces.device)

    def to(self, *args, **kwargs) -> "OnnxRestorationModel":
        return self  # the session's provider was chosen at load time

    def eval(self) -> "OnnxRestorationModel":
        return self

    def providers(self) -> list[str]:
        return self.session.get_providers()


def check_signature(session, config: ModelConfig, path: Path) -> None:
    """One-line error unless the graph takes and returns (N, 3, size, size) under PoseFace's names."""
    size = config.size
    for what, values, name in (
        ("input", session.get_inputs(), INPUT_NAME),
        ("output", session.get_outputs(), OUTPUT_NAME),
    ):
        shapes = [(v.name, list(v.shape)) for v in values]
        if len(values) != 1 or values[0].name != name or list(values[0].shape)[1:] != [3, size, size]:
            raise PoseFaceError(
                f"{path}: {what} {shapes} does not match its PoseFace config ({name!r}, (N, 3, {size}, {size})); "
                "re-export it with `poseface export --onnx`"
            )


def load_onnx_model(path: str | os.PathLike, device: str = "auto", threads: int = 0) -> OnnxRestorationModel:
    """The ONNX export at `path` in an ONNX Runtime session; `threads` = intra-op threads (0 = ONNX Runtime's choice)."""
    path = Path(path)
    ort = import_onnxruntime(path)
    if not path.is_file():
        raise PoseFaceError(f"{path}: no such ONNX file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: the provider notes are not for users
    providers = providers_for(device, ort.get_available_providers(), path)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, InvalidGraph, ... for damaged files
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise PoseFaceError(
            f"{path}: not a readable ONNX model ({reason}); re-download it or re-export it with `poseface export --onnx`"
        ) from None
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise PoseFaceError(
            f"{path}: an ONNX model without PoseFace metadata (metadata_props {METADATA_KEY!r}), so its face size and "
            "template are unknown; export it with `poseface export --onnx` or pass PoseFace .safetensors weights"
        )
    document = parse_document(path, text)
    config = from_dict(ModelConfig, document.get("config", {}), where=f"{path} config")
    check_signature(session, config, path)
    return OnnxRestorationModel(session, config, path)
