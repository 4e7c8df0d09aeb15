"""PoseFace: blind face restoration for pose-varied faces (MMRB codec + StyleGAN2 prior)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy exports keep `import poseface` fast and free of torch until a model is needed.
    if name in ("convert_gpen", "load_model", "save_model", "PoseFaceNet", "ModelConfig"):
        from poseface import models

        return getattr(models, name)
    if name in ("Restorer", "Result"):
        from poseface.faces import restorer

        return getattr(restorer, name)
    if name == "PoseFaceError":
        from poseface.errors import PoseFaceError

        return PoseFaceError
    raise AttributeError(f"module 'poseface' has no attribute {name!r}")
