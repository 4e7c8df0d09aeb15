"""`Restorer`: detect, align, restore in batches, paste back. The `poseface restore` command wraps it.

    from poseface.faces import Restorer
    restorer = Restorer(weights="GPEN-BFR-512.pth", device="auto")
    result = restorer.restore_image(photo)      # photo: (H, W, 3) uint8 RGB (also grey, RGBA, uint16)
    result.image, result.faces                  # same layout and dtype as the input, up-scaled if asked

Images keep their layout: grey in, grey out (faces are restored as RGB, then converted back with
ITU-R 601 luma, so untouched grey pixels stay exact); alpha is kept (up-scaled with the image);
uint16 images are restored from an 8-bit view, but untouched pixels keep their 16-bit values and
pasted faces keep the 16-bit detail the network did not change (see `_face_to_paste`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np
import torch

from poseface.data.imageops import resize_to_model
from poseface.devices import resolve_device
from poseface.errors import ParameterError, PoseFaceError
from poseface.faces.align import align_face, similarity_scale
from poseface.faces.detail import FusionRule, detail_share, restore_detail
from poseface.faces.detect import DetectedFace, DetectorOptions, center_face, detect_faces
from poseface.faces.paste import PasteFace, antialiased, face_mask, paste_faces, upscale_matrix
from poseface.models.network import inference_forward
from poseface.tensorimage import images_to_tensor, tensor_to_images

log = logging.getLogger("poseface.faces")

PRECISIONS = ("fp32", "bf16", "fp16")
MIN_ALIGNED_SIZE = 16  # pixels on the shorter side: an aligned "face" smaller than this holds no face
OFF_TEMPLATE = 0.03  # eyes further than 3% of an aligned crop from the model's template: the crop is re-aligned


def load_restoration_model(weights: str | Path | None, device: str | torch.device) -> Any:
    """Our .safetensors, GPEN's .pth or a zoo name through poseface.models.load_model; a `poseface export
    --onnx` file through ONNX Runtime (poseface.models.onnx_backend, called like the network); None = the
    bundled model (checksum verified). `device` is the --device request ("auto" included)."""
    from poseface import models
    from poseface.zoo import weights_file

    path = models.bundled_weights() if weights is None else weights_file(weights)
    if not path.is_file():
        raise PoseFaceError(
            f"{path}: no such weights file; pass a PoseFace .safetensors, a GPEN .pth or a PoseFace .onnx export"
        )
    if path.suffix.lower() == ".onnx":
        from poseface.models.onnx_backend import load_onnx_model

        return load_onnx_model(path, device=str(device))
    return models.load_model(path, device=str(resolve_device(device)))


@dataclass
class FaceResult:
    """One face of an image: where it was found and what the network made of it."""

    box: tuple[float, float, float, float] | None  # detection box in input pixels (None with aligned input)
    score: float
    detector: str  # "hog", "cnn" or "aligned"
    points5: np.ndarray | None = field(repr=False)  # 5 landmarks in input pixels
    matrix: np.ndarray = field(repr=False)  # 2x3, input pixels -> crop pixels
    crop: np.ndarray = field(repr=False)  # (S, S, 3) uint8 RGB, what the network saw
    restored: np.ndarray | None = field(default=None, repr=False)  # (S, S, 3) uint8 RGB network output
    non_finite: bool = False  # the network gave NaN/inf for this face: it was left as it was
    alignment: str = (
        "5-point"  # "5-point" or "eye-mouth axis" (turned face), "as given" (aligned input at the model's template)
    )

    @property
    def scale(self) -> float:
        """Crop pixels per input pixel: below 0.5 the face is more than twice the model's size."""
        return similarity_scale(self.matrix)


@dataclass
class Result:
    image: np.ndarray  # restored image, the input's layout and dtype, up-scaled by `upscale`
    faces: list[FaceResult]
    timings: dict[str, float] = field(default_factory=dict)  # seconds: detection, alignment, network, paste


@dataclass
class _Prepared:
    """An image after detection and alignment, waiting for the network."""

    color: np.ndarray  # (H, W, 3) uint8 or uint16
    alpha: np.ndarray | None  # (H, W) same dtype
    grey: bool
    squeeze: bool  # input was (H, W) rather than (H, W, 1)
    max_value: float
    faces: list[FaceResult]
    crops_full: list[np.ndarray]  # float32 crops at full depth (S, S, 3)
    aligned: bool
    timings: dict[str, float]


def split_layout(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool, bool, float]:
    """(color (H, W, 3), alpha or None, grey?, was 2-D?, max value) of a grey/grey+alpha/RGB/RGBA array."""
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise PoseFaceError(f"image dtype {image.dtype}: pass uint8 or uint16 pixels")
    squeeze = image.ndim == 2
    if squeeze:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4) or min(image.shape[:2]) < 1:
        raise PoseFaceError(f"image shape {image.shape}: expected (H, W), or (H, W, C) with C = 1, 2, 3 or 4")
    channels = image.shape[2]
    grey = channels in (1, 2)
    color = np.repeat(image[..., :1], 3, axis=2) if grey else image[..., :3]
    alpha = image[..., -1] if channels in (2, 4) else None
    return np.ascontiguousarray(color), alpha, grey, squeeze, 255.0 if image.dtype == np.uint8 else 65535.0


def merge_layout(color: np.ndarray, alpha: np.ndarray | None, grey: bool, squeeze: bool) -> np.ndarray:
    """Inverse of split_layout."""
    if grey:
        luma = color.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        same = (color[..., 0] == color[..., 1]) & (color[..., 1] == color[..., 2])
        luma = np.where(same, color[..., 0], np.rint(luma))  # grey pixels stay exact
        color = luma.astype(color.dtype)[..., None]
    channels = [color] if alpha is None else [color, alpha[..., None]]
    out = np.concatenate(channels, axis=2) if len(channels) > 1 else color
    if squeeze and out.shape[2] == 1:
        out = out[..., 0]
    return out


def to_uint8(color: np.ndarray, max_value: float) -> np.ndarray:
    if max_value == 255.0 and color.dtype == np.uint8:
        return color
    return np.clip(np.rint(color.astype(np.float32) * (255.0 / max_value)), 0, 255).astype(np.uint8)


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    if array.shape[1] == width and array.shape[0] == height:
        return array.copy()
    shrinking = width < array.shape[1]
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)


def not_enough_memory(width: int, height: int) -> str:
    """Why an image is skipped when its `width` x `height` output does not fit in memory."""
    return f"not enough memory for the {width}x{height} output; lower --upscale"


class Restorer:
    """Face restoration of whole photos (or aligned crops) with a PoseFace or GPEN model.

    Give `weights` (a file; None = the bundled model; a .onnx export runs on ONNX Runtime) or an already
    built `model` whose `.config` is a `poseface.models.config.ModelConfig` and whose forward maps
    (N, 3, S, S) in [-1, 1] to the same.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        model: torch.nn.Module | None = None,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        batch_size: int = 4,
        upscale: float = 1.0,
        fidelity: float = 1.0,
        detector: DetectorOptions | str = "auto",
        only_center_face: bool = False,
        aligned: bool = False,
        antialias: bool = False,
        keep_detail: bool = True,
    ):
        self.device = resolve_device(device)
        if precision not in PRECISIONS:
            raise ParameterError("precision", precision, f"unknown; use one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ParameterError(
                "precision",
                precision,
                f"half precision runs only on CUDA, not on {self.device.type}; "
                "use {flag}bf16 (fast on recent CPUs) or fp32",
            )
        if batch_size < 1:
            raise ParameterError("batch_size", batch_size, "must be at least 1")
        if not 1.0 <= upscale <= 16.0:
            raise ParameterError("upscale", f"{upscale:g}", "must be between 1 and 16 (the output size factor)")
        if not 0.0 <= fidelity <= 1.0:
            raise ParameterError("fidelity", fidelity, "must be between 0 (input face) and 1 (fully restored)")
        self.precision = precision
        self.batch_size = int(batch_size)
        self.upscale = float(upscale)
        self.fidelity = float(fidelity)
        self.detector = detector if isinstance(detector, DetectorOptions) else DetectorOptions(method=detector)
        self.only_center_face = only_center_face
        self.aligned = aligned
        self.antialias = antialias  # prefilter faces shrunk into the output (see paste.antialiased)
        self.keep_detail = keep_detail  # never blurrier than the input (see faces/detail.py)
        if model is None:
            model = load_restoration_model(weights, device)
        config = getattr(model, "config", None)
        if config is None or not hasattr(config, "template"):
            raise PoseFaceError(
                "the model has no .config (poseface.models.config.ModelConfig); cannot know its face size and template"
            )
        if precision not in getattr(model, "precisions", PRECISIONS):  # an ONNX export runs in fp32 only
            raise PoseFaceError(
                f"--precision {precision}: {getattr(model, 'path', 'this model')} runs only in "
                f"{', '.join(model.precisions)}; drop --precision or pass the .safetensors weights"
            )
        self.model = model.to(self.device).eval()
        rule = getattr(model, "detail_rule", None)  # fitted by `poseface fit-detail`; else the fixed rule
        where = getattr(model, "path", weights or "the model")
        self.detail_rule = FusionRule.from_dict(rule, where=str(where)) if isinstance(rule, dict) else None
        self.size = int(config.size)
        self.template = np.asarray(config.template(), dtype=np.float64)
        self.mask = face_mask(self.size, self.template)

    # ---- the network -------------------------------------------------------------------------
    def _autocast(self, precision: str):
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _forward(self, batch: torch.Tensor, precision: str) -> torch.Tensor:
        with torch.inference_mode(), self._autocast(precision):
            out = inference_forward(self.model)(batch)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float()

    def restore_faces(self, faces: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB aligned faces -> (N, S, S, 3) uint8 restored, `batch_size` at a time.

        A face for which the network gives NaN/inf (in any precision, after an fp32 retry) comes back as
        it went in; `restore_faces_checked` also says which."""
        return self.restore_faces_checked(faces)[0]

    def restore_faces_checked(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`restore_faces`, plus an (N,) bool array: True where the network output was not finite."""
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[1:] != (self.size, self.size, 3) or faces.dtype != np.uint8:
            raise PoseFaceError(f"faces {faces.shape} {faces.dtype}: expected (N, {self.size}, {self.size}, 3) uint8")
        outputs, bad = [], []
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start : start + self.batch_size]
            batch = images_to_tensor(chunk, self.device)
            out = self._forward(batch, self.precision)
            if self.precision != "fp32" and not torch.isfinite(out).all():
                log.warning("poseface: %s gave NaN/inf for this batch; redone in fp32", self.precision)
                out = self._forward(batch, "fp32")
            non_finite = (~torch.isfinite(out).flatten(1).all(dim=1)).cpu().numpy()
            restored = tensor_to_images(out)
            restored[non_finite] = chunk[non_finite]  # left as it was
            outputs.append(restored)
            bad.append(non_finite)
        if not outputs:
            return np.zeros((0, self.size, self.size, 3), np.uint8), np.zeros(0, bool)
        return np.concatenate(outputs), np.concatenate(bad)

    # ---- one image ---------------------------------------------------------------------------
    def restore_image(self, image: np.ndarray, aligned: bool | None = None) -> Result:
        """Restore every face of one image (or one aligned crop) and return the whole image."""
        return next(self.restore_stream([(None, image)], aligned=aligned))[1]

    def restore_stream(
        self,
        items: Iterable[tuple[Any, np.ndarray]],
        aligned: bool | None = None,
        on_error: Callable[[Any, PoseFaceError], None] | None = None,
        faces: Callable[[Any], list[DetectedFace]] | None = None,
    ) -> Iterator[tuple[Any, Result]]:
        """Restore (key, image) pairs; faces of consecutive images share network batches.

        Yields (key, Result) in input order. Images are held until `batch_size` faces (or images)
        are waiting, so memory stays at about batch_size images. With `on_error`, an image whose
        detection or alignment fails with a PoseFaceError, or whose output does not fit in memory,
        is reported there and skipped (without it, the latter is a PoseFaceError too). With
        `faces`, `faces(key)` gives an image's detected faces instead of running detection (videos
        pass their temporally smoothed landmarks this way, faces/video.py).
        """
        aligned = self.aligned if aligned is None else aligned
        pending: list[tuple[Any, _Prepared]] = []
        for key, image in items:
            try:
                pending.append((key, self._prepare(image, aligned, None if faces is None else faces(key))))
            except PoseFaceError as exc:
                if on_error is None:
                    raise
                on_error(key, exc)
                continue
            if sum(len(p.faces) for _, p in pending) >= self.batch_size or len(pending) >= self.batch_size:
                yield from self._finish(pending, on_error)
                pending = []
        yield from self._finish(pending, on_error)

    def _prepare(self, image: np.ndarray, aligned: bool, given: list[DetectedFace] | None = None) -> _Prepared:
        color, alpha, grey, squeeze, max_value = split_layout(image)
        timings = {"detection": 0.0, "alignment": 0.0, "network": 0.0, "paste": 0.0}
        start = time.perf_counter()
        if aligned:
            height, width = color.shape[:2]
            if min(height, width) < MIN_ALIGNED_SIZE:
                raise PoseFaceError(
                    f"aligned input of {width}x{height} pixels is smaller than the minimum of {MIN_ALIGNED_SIZE} px on the shorter side; "
                    "pass a larger face crop, or drop --aligned for a whole photo"
                )
            found = self._off_template_face(to_uint8(color, max_value))
            if found is None:
                face, crop = self._as_given(color, max_value)
                timings["alignment"] = time.perf_counter() - start
                return _Prepared(color, alpha, grey, squeeze, max_value, [face], [crop], True, timings)
            detected = [found]  # cut with another template: warped to the model's and pasted back like a photo's face
        else:
            rgb8 = to_uint8(color, max_value)
            detected = detect_faces(rgb8, self.detector) if given is None else list(given)
            if self.only_center_face:
                detected = center_face(detected, *rgb8.shape[:2])
            timings["detection"] = time.perf_counter() - start
            start = time.perf_counter()
        faces: list[FaceResult] = []
        crops_full: list[np.ndarray] = []
        for face in detected:
            aligned_crop = align_face(color, face.points5, self.template, self.size)
            crops_full.append(aligned_crop.crop)
            crop8 = to_uint8(np.clip(aligned_crop.crop, 0, max_value), max_value)
            faces.append(
                FaceResult(
                    face.box,
                    face.score,
                    face.detector,
                    face.points5,
                    aligned_crop.matrix,
                    crop8,
                    alignment=aligned_crop.rule,
                )
            )
        timings["alignment"] = time.perf_counter() - start
        return _Prepared(color, alpha, grey, squeeze, max_value, faces, crops_full, False, timings)

    def _as_given(self, color: np.ndarray, max_value: float) -> tuple[FaceResult, np.ndarray]:
        """An aligned crop at the model's template: resized to the model size, as it is."""
        height, width = color.shape[:2]
        crop = resize_to_model(color.astype(np.float32), self.size)
        matrix = np.array(
            [
                [self.size / width, 0, 0.5 * self.size / width - 0.5],
                [0, self.size / height, 0.5 * self.size / height - 0.5],
            ]
        )
        crop8 = to_uint8(np.clip(crop, 0, max_value), max_value)
        return FaceResult(None, 1.0, "aligned", None, matrix, crop8, alignment="as given"), crop

    def _off_template_face(self, crop8: np.ndarray) -> DetectedFace | None:
        """The face of an aligned crop if its eyes are more than `OFF_TEMPLATE` of the crop away from
        the model's template (e.g. an FFHQ-style crop for a UTKFace-template model), else None."""
        height, width = crop8.shape[:2]
        found = center_face(
            detect_faces(crop8, DetectorOptions(method="hog", min_face_size=max(16, min(height, width) // 5))),
            height,
            width,
        )
        if not found:
            return None
        expected = np.asarray(self.template)[:2] * [width / self.size, height / self.size]
        offset = np.abs(found[0].points5[:2] - expected).max() / max(height, width)
        return found[0] if offset > OFF_TEMPLATE else None

    def _finish(
        self, pending: list[tuple[Any, _Prepared]], on_error: Callable[[Any, PoseFaceError], None] | None = None
    ) -> Iterator[tuple[Any, Result]]:
        all_faces = [face for _, prepared in pending for face in prepared.faces]
        start = time.perf_counter()
        restored, bad = self.restore_faces_checked(np.stack([f.crop for f in all_faces])) if all_faces else ([], [])
        network_seconds = time.perf_counter() - start
        for face, out, non_finite in zip(all_faces, restored, bad):
            face.non_finite = bool(non_finite)
            keep = self.keep_detail and not non_finite
            face.restored = restore_detail(face.crop, out, self.detail_rule) if keep else out
        for key, prepared in pending:
            if all_faces:
                prepared.timings["network"] = network_seconds * len(prepared.faces) / len(all_faces)
            start = time.perf_counter()
            try:
                image = self._paste(prepared)
            except MemoryError:  # a huge --upscale output: this image only, the others go on
                error = PoseFaceError(not_enough_memory(*self.output_size(*prepared.color.shape[1::-1])))
                if on_error is None:
                    raise error from None
                on_error(key, error)
                continue
            prepared.timings["paste"] = time.perf_counter() - start
            yield key, Result(image=image, faces=prepared.faces, timings=prepared.timings)

    def _face_to_paste(self, face: FaceResult, crop_full: np.ndarray, max_value: float) -> np.ndarray:
        """crop + fidelity * (restored - crop), at full depth.

        The change the network made is measured on the 8-bit crop it saw and added to the
        full-depth crop, so an identity network changes nothing (even in 16-bit) and
        fidelity 0 gives the input face back.
        """
        scale = max_value / 255.0
        change = face.restored.astype(np.float32) - face.crop.astype(np.float32)
        return crop_full + self.fidelity * scale * change

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the output for an input of `width` x `height` (times `upscale`)."""
        return max(1, round(width * self.upscale)), max(1, round(height * self.upscale))

    def _paste(self, prepared: _Prepared) -> np.ndarray:
        height, width = prepared.color.shape[:2]
        out_w, out_h = self.output_size(width, height)
        alpha = None if prepared.alpha is None else _resize(prepared.alpha, out_w, out_h)
        if prepared.aligned:
            face = prepared.faces[0]
            full = self._face_to_paste(face, prepared.crops_full[0], prepared.max_value)
            color = _resize(np.clip(full, 0, prepared.max_value), out_w, out_h)
            share = detail_share(face.matrix) if self.keep_detail else 0.0
            if share > 0:  # a crop larger than the model size keeps its own fine detail (faces/detail.py)
                own = _resize(prepared.color.astype(np.float32), out_w, out_h)
                color = color + share * (own - _resize(prepared.crops_full[0], out_w, out_h))
            color = np.clip(np.rint(color), 0, prepared.max_value).astype(prepared.color.dtype)
        else:
            color = _resize(prepared.color, out_w, out_h)
            paste = []
            for face, crop in zip(prepared.faces, prepared.crops_full):
                if face.non_finite:  # never pasted: the photo keeps its own pixels there
                    continue
                matrix = upscale_matrix(face.matrix, out_w / width, out_h / height)
                pixels = self._face_to_paste(face, crop, prepared.max_value)
                share = detail_share(matrix) if self.keep_detail else 0.0
                paste.append(PasteFace(antialiased(pixels, matrix) if self.antialias else pixels, matrix, crop, share))
            paste_faces(color, paste, self.mask, prepared.max_value)
        return merge_layout(color, alpha, prepared.grey, prepared.squeeze)
