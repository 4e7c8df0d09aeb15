"""The metrics of `poseface evaluate` behind one interface, built from names like "psnr,ssim,lpips".

Each metric measures one (restored, ground truth) pair of uint8 RGB images and returns named values
(one image can give several columns, e.g. IDS gives `ids` and `ids_cos`). Set-level metrics (FID)
collect features per image and produce their value in `finish()`. A metric whose weights are missing
offline is reported as unavailable with a one-line reason, and the others still run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from poseface.errors import ParameterError, PoseFaceError
from poseface.metrics.psnr_ssim import psnr, ssim

ALL_METRICS = ("psnr", "ssim", "lpips", "fid", "niqe", "ids", "lmd")
NO_REFERENCE_METRICS = ("niqe",)
DEFAULT_WITH_GT = ALL_METRICS
DEFAULT_WITHOUT_GT = NO_REFERENCE_METRICS

# column -> (table header, True if higher is better, decimals)
COLUMNS: dict[str, tuple[str, bool, int]] = {
    "psnr": ("PSNR", True, 3),
    "ssim": ("SSIM", True, 4),
    "lpips": ("LPIPS", False, 4),
    "fid": ("FID", False, 3),
    "niqe": ("NIQE", False, 3),
    "ids": ("IDS", False, 4),
    "ids_cos": ("IDS cos", False, 4),
    "ids_arcface": ("IDS ArcFace cos", False, 4),
    "ids_arcface_deg": ("Deg", False, 2),
    "lmd": ("LMD px", False, 3),
    "lmd_norm": ("LMD/IOD", False, 4),
}


@dataclass
class MetricOptions:
    crop_border: int = 0  # PSNR/SSIM: pixels removed from each edge
    y_channel: bool = False  # PSNR/SSIM on the MATLAB Y channel instead of RGB
    niqe_convert_to: str = "y"  # NIQE on "y" (BasicSR default) or "gray"
    lpips_net: str = "alex"  # "alex" or "vgg"
    lpips_weights: str | None = None  # local torchvision AlexNet/VGG16 file
    fid_weights: str | None = None  # local pt_inception-2015-12-05-6726825d.pth
    fid_stats: str | None = None  # reference statistics .npz; default: the ground-truth folder
    arcface_weights: str | None = None  # enables ArcFace IDS as well
    arcface_kind: str = "ir_se50"
    download: bool = True  # allow one checksummed download of missing weights
    device: str = "cpu"


class Metric:
    """Base class: `measure` one pair -> {column: value}; `finish` -> set-level {column: value}."""

    name = ""
    needs_gt = True
    columns: tuple[str, ...] = ()

    def measure(self, restored: np.ndarray, gt: np.ndarray | None) -> dict[str, float]:
        return {}

    def finish(self) -> dict[str, float]:
        return {}

    def reset(self) -> None:
        """Forget what was collected, to evaluate another folder with the same loaded networks."""

    def describe(self) -> str:
        return self.name


class PSNRMetric(Metric):
    name, columns = "psnr", ("psnr",)

    def __init__(self, options: MetricOptions):
        self.options = options

    def measure(self, restored, gt):
        return {"psnr": psnr(restored, gt, self.options.crop_border, self.options.y_channel)}

    def describe(self):
        return f"PSNR ({'Y' if self.options.y_channel else 'RGB'}, crop {self.options.crop_border})"


class SSIMMetric(PSNRMetric):
    name, columns = "ssim", ("ssim",)

    def measure(self, restored, gt):
        return {"ssim": ssim(restored, gt, self.options.crop_border, self.options.y_channel)}

    def describe(self):
        return f"SSIM ({'Y' if self.options.y_channel else 'RGB'}, crop {self.options.crop_border}, Gaussian 11x11 sigma 1.5)"


class NIQEMetric(Metric):
    name, columns, needs_gt = "niqe", ("niqe",), False

    def __init__(self, options: MetricOptions):
        self.convert_to = options.niqe_convert_to

    def measure(self, restored, gt):
        from poseface.metrics.niqe import niqe

        return {"niqe": niqe(restored, convert_to=self.convert_to)}

    def describe(self):
        return f"NIQE ({self.convert_to}, BasicSR/MATLAB pristine model)"


class LPIPSMetric(Metric):
    name, columns = "lpips", ("lpips",)

    def __init__(self, options: MetricOptions, model=None):
        from poseface.metrics.lpips import build_lpips

        self.net = options.lpips_net
        self.model = (
            model
            if model is not None
            else build_lpips(options.lpips_net, options.lpips_weights, options.download, options.device)
        )

    def measure(self, restored, gt):
        from poseface.metrics.lpips import lpips_distance

        return {"lpips": float(lpips_distance(self.model, restored, gt)[0])}

    def describe(self):
        return f"LPIPS v0.1 ({self.net})"


class FIDMetric(Metric):
    """FID of the restored set against the ground-truth set, or against a statistics file."""

    name, columns = "fid", ("fid",)

    def __init__(self, options: MetricOptions, model=None):
        from poseface.metrics.fid import build_inception, load_statistics

        self.reference = load_statistics(options.fid_stats) if options.fid_stats else None
        self.reference_name = os.path.basename(options.fid_stats) if options.fid_stats else "ground-truth set"
        self.needs_gt = self.reference is None
        self.model = (
            model if model is not None else build_inception(options.fid_weights, options.download, options.device)
        )
        self.restored_features: list[np.ndarray] = []
        self.gt_features: list[np.ndarray] = []

    def measure(self, restored, gt):
        from poseface.metrics.fid import inception_features

        if self.reference is None:
            pair = inception_features(self.model, np.stack([restored, gt]))
            self.restored_features.append(pair[0])
            self.gt_features.append(pair[1])
        else:
            self.restored_features.append(inception_features(self.model, restored[None])[0])
        return {}

    def reset(self):
        self.restored_features, self.gt_features = [], []

    def finish(self):
        from poseface.metrics.fid import feature_statistics, frechet_distance, frechet_distance_of_features

        if len(self.restored_features) < 2:
            return {"fid": float("nan")}
        restored = np.stack(self.restored_features)
        if self.reference is None:
            return {"fid": frechet_distance_of_features(restored, np.stack(self.gt_features))}
        return {"fid": frechet_distance(*feature_statistics(restored), *self.reference)}

    def describe(self):
        return f"FID (pool3 2048-D, against {self.reference_name})"


class FaceMetric(Metric):
    """IDS and LMD share one detection on the ground truth, so they are one metric with several columns."""

    name = "ids+lmd"

    def __init__(self, options: MetricOptions, want_ids: bool, want_lmd: bool):
        self.want_ids, self.want_lmd = want_ids, want_lmd
        self.columns = (("ids", "ids_cos") if want_ids else ()) + (("lmd", "lmd_norm") if want_lmd else ())
        self.arcface = None
        self.arcface_error = ""  # why the optional ArcFace columns are missing
        if want_ids and options.arcface_weights:
            from poseface.metrics.identity import ArcFaceDistance

            try:
                self.arcface = ArcFaceDistance(options.arcface_weights, options.arcface_kind, options.device)
                self.columns += ("ids_arcface", "ids_arcface_deg")
            except PoseFaceError as exc:  # a bad ArcFace file must not cost the dlib IDS and LMD
                self.arcface_error = str(exc)
        self.missed = 0

    def measure(self, restored, gt):
        from poseface.metrics.identity import face_distances

        values = face_distances(restored, gt)
        self.missed += values.pop("face_found") == 0.0
        if self.arcface is not None:
            values.update(self.arcface(restored, gt))
        return {k: v for k, v in values.items() if k in self.columns}

    def reset(self):
        self.missed = 0

    def describe(self):
        parts = []
        if self.want_ids:
            parts.append("IDS (dlib 128-D descriptor, Euclidean; same person < 0.6)")
            if self.arcface is not None:
                parts.append("ArcFace cosine distance / angle")
        if self.want_lmd:
            parts.append("LMD (dlib 68 points, px at image size; /IOD = over inter-ocular distance)")
        if self.missed:
            parts.append(
                f"the face detector missed {self.missed} ground-truth face(s): their whole crop was the face rectangle"
            )
        return "; ".join(parts)


@dataclass
class MetricSet:
    metrics: list[Metric] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # name -> one-line reason

    @property
    def columns(self) -> list[str]:
        return [c for m in self.metrics for c in m.columns]


def parse_metric_names(text: str | None, has_gt: bool) -> list[str]:
    if not text:
        return list(DEFAULT_WITH_GT if has_gt else DEFAULT_WITHOUT_GT)
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown:
        raise ParameterError(
            "metrics", None, f"unknown metric(s) {', '.join(unknown)}; choose from {','.join(ALL_METRICS)}"
        )
    return list(dict.fromkeys(names))


def build_metrics(names: list[str], options: MetricOptions, has_gt: bool) -> MetricSet:
    """Instantiate the named metrics; missing weights or ground truth make a metric unavailable, not an error."""
    result = MetricSet()
    for name in names:
        if name in ("ids", "lmd"):
            continue  # built together below
        try:
            if name != "niqe" and not has_gt and not (name == "fid" and options.fid_stats):
                hint = " or pass --fid-stats FILE" if name == "fid" else ""
                raise PoseFaceError(f"needs ground truth (--gt DIR){hint}")
            metric = {
                "psnr": PSNRMetric,
                "ssim": SSIMMetric,
                "niqe": NIQEMetric,
                "lpips": LPIPSMetric,
                "fid": FIDMetric,
            }[name](options)
            result.metrics.append(metric)
        except PoseFaceError as exc:
            result.unavailable[name] = str(exc)
    want_ids, want_lmd = "ids" in names, "lmd" in names
    if want_ids or want_lmd:
        try:
            if not has_gt:
                raise PoseFaceError("needs ground truth (--gt DIR)")
            face_metric = FaceMetric(options, want_ids, want_lmd)
            result.metrics.append(face_metric)
            if face_metric.arcface_error:
                result.unavailable["ids_arcface"] = face_metric.arcface_error
        except PoseFaceError as exc:
            for name in ("ids", "lmd"):
                if name in names:
                    result.unavailable[name] = str(exc)
    return result
