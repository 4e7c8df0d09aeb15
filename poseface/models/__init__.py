"""The restoration network (paper section 3) and its checkpoints."""

from pathlib import Path

from poseface.models.checkpoint import load_model, save_model
from poseface.models.config import ModelConfig
from poseface.models.discriminator import ComponentDiscriminator, GlobalDiscriminator, build_discriminators, freeze_d
from poseface.models.gpen import convert_gpen
from poseface.models.mmrb import MMRB
from poseface.models.network import PoseFaceNet
from poseface.zoo import BUNDLED_SHA256, entry

BUNDLED_WEIGHTS = entry("poseface-small-utkface").local_path()  # its sha256: BUNDLED_SHA256 (poseface/zoo.py)


def bundled_weights(path: Path | None = None, sha256: str | None = None) -> Path:
    """The default model shipped with the package (a small CPU-trained demonstration model), checksum verified."""
    from poseface.errors import PoseFaceError
    from poseface.weights import WeightsSpec, verify

    path = BUNDLED_WEIGHTS if path is None else Path(path)
    if not path.is_file():
        raise PoseFaceError(
            f"{path}: the bundled model is missing from this installation; reinstall poseface or pass --weights FILE "
            "(a PoseFace .safetensors or a GPEN .pth such as GPEN-BFR-512.pth)"
        )
    spec = WeightsSpec(path.name, url="", sha256=BUNDLED_SHA256 if sha256 is None else sha256, what="the bundled model")
    verify(
        path,
        spec,
        fix="the bundled model is damaged or was replaced: reinstall poseface (git checkout the file) or pass --weights FILE",
    )
    return path


__all__ = [
    "MMRB",
    "ComponentDiscriminator",
    "GlobalDiscriminator",
    "ModelConfig",
    "PoseFaceNet",
    "build_discriminators",
    "bundled_weights",
    "convert_gpen",
    "freeze_d",
    "load_model",
    "save_model",
]
