"""The restoration network (paper section 3) and its checkpoints."""

from pathlib import Path

from poseface.models.checkpoint import load_model, save_model
from poseface.models.config import ModelConfig
from poseface.models.discriminator import ComponentDiscriminator, GlobalDiscriminator, build_discriminators, freeze_d
from poseface.models.gpen import convert_gpen
from poseface.models.mmrb import MMRB
from poseface.models.restorer import PoseFaceNet

BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "poseface-small-utkface.safetensors"


def bundled_weights() -> Path:
    """The default model shipped with the package (a small CPU-trained demonstration model)."""
    from poseface.errors import PoseFaceError

    if not BUNDLED_WEIGHTS.is_file():
        raise PoseFaceError(f"{BUNDLED_WEIGHTS}: no bundled model in this installation yet; pass --weights FILE (PoseFace .safetensors or GPEN .pth)")
    return BUNDLED_WEIGHTS


__all__ = [
    "MMRB", "ComponentDiscriminator", "GlobalDiscriminator", "ModelConfig", "PoseFaceNet", "build_discriminators",
    "bundled_weights", "convert_gpen", "freeze_d", "load_model", "save_model",
]
