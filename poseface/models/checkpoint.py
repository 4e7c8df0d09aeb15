"""PoseFace weights files: safetensors with the JSON config inside (and beside) them; no pickle.

`save_model(model, "x.safetensors")` writes `x.safetensors` (tensors + metadata key `poseface`
holding the JSON document, and `poseface_sha256`: the sha256 of that document and of every tensor
byte, so a flipped or lost byte anywhere is a one-line error at load) and `x.json` (the same
document, for people and tools). `load_model` reads our files and, for convenience, GPEN's `.pth`
generators (converted on the fly).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from poseface.config import from_dict, to_dict
from poseface.errors import PoseFaceError
from poseface.imageio import atomic_write
from poseface.models.config import ModelConfig
from poseface.models.network import PoseFaceNet
from poseface.models.state_dict import load_exact

FORMAT = "poseface"
FORMAT_VERSION = 1
METADATA_KEY = "poseface"
DIGEST_KEY = "poseface_sha256"  # content_digest() of the document and the tensor bytes; absent in older files
CHUNK = 1 << 20


def model_document(
    config: ModelConfig, provenance: dict[str, Any] | None = None, detail_rule: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON document of a weights file; `detail_rule` is the fitted rule of faces/detail.py, if any."""
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": "PoseFaceNet",
        "config": to_dict(config),
        "face_template": [list(p) for p in config.template()],
        "provenance": provenance or {},
    }
    if detail_rule is not None:
        document["detail_rule"] = detail_rule
    return document


def content_digest(document_text: str, data: Iterable[bytes]) -> str:
    """sha256 of the JSON document text followed by the file's tensor bytes (everything after the header)."""
    digest = hashlib.sha256(document_text.encode())
    for block in data:
        digest.update(block)
    return digest.hexdigest()


def _data_offset(head: bytes) -> int:
    """Where the tensor bytes start: after the 8-byte little-endian header length and the header."""
    return 8 + int.from_bytes(head[:8], "little")


def serialise(state: dict[str, torch.Tensor], document: dict[str, Any]) -> bytes:
    """The safetensors bytes of `state` with `document` and its content digest in the metadata."""
    from safetensors.torch import save

    text = json.dumps(document)
    unsigned = save(state, metadata={METADATA_KEY: text})
    digest = content_digest(text, [memoryview(unsigned)[_data_offset(unsigned) :]])
    return save(state, metadata={METADATA_KEY: text, DIGEST_KEY: digest})  # same tensor bytes, longer header


def check_content(path: Path, metadata: dict[str, str]) -> None:
    """One-line error unless the file's document and tensor bytes match the digest recorded inside it."""
    expected = metadata.get(DIGEST_KEY)
    if expected is None or METADATA_KEY not in metadata:
        return  # written before PoseFace recorded content digests: only the structural checks apply
    with open(path, "rb") as handle:
        handle.seek(_data_offset(handle.read(8)))
        actual = content_digest(metadata[METADATA_KEY], iter(lambda: handle.read(CHUNK), b""))
    if actual != expected:
        raise PoseFaceError(
            f"{path}: contents do not match the sha256 recorded inside the file (a flipped or lost byte); "
            "re-download or re-export it"
        )


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def save_model(
    model: PoseFaceNet,
    path: str | os.PathLike,
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write `path` (.safetensors) and its JSON sidecar atomically; returns the weights path.

    `dtype` (e.g. torch.float16) stores floating-point tensors in that type (half the file size);
    `load_model` casts them back to the model's float32."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise PoseFaceError(f"{path}: weights are saved as .safetensors; change the file name")
    provenance = dict(provenance or {})
    provenance.setdefault("saved", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    document = model_document(model.config, provenance, getattr(model, "detail_rule", None))
    state = {
        k: v.detach().to("cpu", dtype=dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    _atomic_write_bytes(path, serialise(state, document))
    _atomic_write_bytes(path.with_suffix(".json"), (json.dumps(document, indent=2) + "\n").encode())
    return path


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors metadata of `path`; a corrupt header or a truncated file is a one-line error."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers and short files
        raise PoseFaceError(
            f"{path}: not a readable safetensors file ({type(exc).__name__}); re-download or re-export it"
        ) from None


def read_document(path: Path, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON document of a PoseFace weights file (from its metadata, else its sidecar)."""
    metadata = read_metadata(path) if metadata is None else metadata
    text = metadata.get(METADATA_KEY)
    if text is None and path.with_suffix(".json").is_file():
        text = path.with_suffix(".json").read_text()
    if text is None:
        raise PoseFaceError(
            f"{path}: safetensors file without a PoseFace config; expected weights written by `poseface` (save_model or convert-gpen)"
        )
    return parse_document(path, text)


def parse_document(path: Path, text: str) -> dict[str, Any]:
    """The checked JSON document `text` found in `path` (a weights file or an ONNX export)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise PoseFaceError(
            f"{path}: the PoseFace config inside the file is not valid JSON; re-export the weights"
        ) from None
    if not isinstance(document, dict):
        raise PoseFaceError(f"{path}: the PoseFace config inside the file is not a JSON object; re-export the weights")
    if document.get("format") != FORMAT:
        raise PoseFaceError(
            f"{path}: metadata format {document.get('format')!r} is not {FORMAT!r}; expected PoseFace weights"
        )
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise PoseFaceError(
            f"{path}: written by a newer PoseFace (format {document['format_version']}); upgrade poseface"
        )
    return document


def refuse_non_finite(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """One-line error naming the first tensor holding NaN/inf: such weights would paste black faces."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PoseFaceError(
                f"{path}: tensor {key} holds NaN or inf values; the weights are broken, use an earlier checkpoint"
            )


def load_safetensors_model(path: Path) -> PoseFaceNet:
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    document = read_document(path, metadata)
    check_content(path, metadata)  # before the config is trusted to build a network
    config = from_dict(ModelConfig, document["config"], where=f"{path} config")
    model = PoseFaceNet(config)
    try:
        state = load_file(str(path))
    except Exception as exc:  # the header read, the tensors did not
        raise PoseFaceError(
            f"{path}: tensors not readable ({type(exc).__name__}); re-download or re-export it"
        ) from None
    load_exact(
        model,
        state,
        path,
        "PoseFaceNet",
        fix="the weights do not match their own config: the file is damaged or was edited",
    )
    refuse_non_finite(state, path)
    model.provenance = document.get("provenance", {})
    model.detail_rule = document.get("detail_rule")  # checked where it is used (faces/detail.FusionRule)
    return model


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> PoseFaceNet:
    """Load our `.safetensors` weights, a GPEN generator `.pth` or a zoo name; eval mode, on `device`."""
    from poseface.models.gpen import load_gpen_generator
    from poseface.zoo import weights_file

    path = weights_file(path)  # a zoo name (`poseface weights list`) becomes its local file
    if not path.is_file():
        raise PoseFaceError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        model = load_safetensors_model(path)
    elif path.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        model, _ = load_gpen_generator(path)
        refuse_non_finite(model.state_dict(), path)
        model.provenance = {"converted_from": str(path), "source": "GPEN"}
    elif path.suffix.lower() == ".onnx":
        raise PoseFaceError(
            f"{path}: an ONNX export runs only in `poseface restore --weights`; pass the .safetensors it was exported from"
        )
    else:
        raise PoseFaceError(f"{path}: unknown weights format; expected PoseFace .safetensors or a GPEN generator .pth")
    return model.to(device).eval()
