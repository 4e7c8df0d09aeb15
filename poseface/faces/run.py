"""Restoring many files: input collection, output naming, bad-file handling, progress and summary.

Used by `poseface restore` (poseface/faces/cli.py); the image work itself is `Restorer`.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from tqdm import tqdm

from poseface.errors import PoseFaceError
from poseface.faces.restorer import Restorer, Result, not_enough_memory, split_layout, to_uint8
from poseface.faces.visualize import draw_boxes
from poseface.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    OUTPUT_SUFFIXES,
    TEMPORARY_PREFIX,
    VIDEO_SUFFIXES,
    ImageMetadata,
    already_exists,
    atomic_write,
    broken_links,
    list_images,
    read_image_and_metadata,
    stale_temporary_images,
    write_image_full,
)

EXTENSIONS = ("auto", "png", "jpg", "webp", "tif")
SIDE_FOLDERS = ("faces", "compare", "boxes")  # OUT/<these>/: --save-faces, --compare, --draw-boxes
GLOB_CHARACTERS = set("*?[")
STALE_TEMPORARY_SECONDS = 60.0  # a temporary image this much older than the run start is a killed run's
TEMPORARY_PATTERN = f"{TEMPORARY_PREFIX}*"


@dataclass
class InputFile:
    path: Path
    relative: Path  # output name without suffix, relative to the output folder (keeps sub-folders)


@dataclass
class RunOptions:
    output: Path
    ext: str = "auto"
    suffix: str = ""
    save_faces: bool = False
    compare: bool = False
    draw_boxes: bool = False  # also write the output with numbered boxes and scores to OUT/boxes/
    recursive: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS  # inputs and outputs (with --upscale) above this are skipped
    overwrite: bool = False  # replace files already in the output folder (else that input is skipped)
    progress: bool | None = (
        True  # True: always (piped too, as the other commands); False: --quiet; None: only on a terminal
    )


@dataclass
class Summary:
    images: int = 0  # images read and written
    videos: int = 0  # videos written (faces/video.py); their frames count in faces_* but not in images
    frames: int = 0  # frames of those videos
    faces_found: int = 0
    faces_restored: int = 0
    without_face: int = 0
    non_finite_faces: int = 0  # faces the network gave NaN/inf for, left as they were
    alignments: dict[str, int] = field(default_factory=dict)  # alignment rule -> faces (FaceResult.alignment)
    large_faces: int = 0  # faces more than twice the model's size
    model_size: int = 0  # the restorer's face size, for the large-face line
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    seconds: dict[str, float] = field(
        default_factory=lambda: {"detection": 0.0, "alignment": 0.0, "network": 0.0, "paste": 0.0}
    )
    total_seconds: float = 0.0

    def lines(self, output: Path) -> list[str]:
        out = [
            f"poseface restore: {self.images} image(s) written to {output}, {self.faces_found} face(s) found, "
            f"{self.faces_restored} restored, {self.without_face} image(s) without a face (written unchanged), "
            f"{len(self.skipped)} file(s) skipped"
            + (f", {self.videos} video(s) of {self.frames} frames written" if self.videos else "")
            + (
                f", {self.non_finite_faces} face(s) left as they were (the network gave NaN/inf)"
                if self.non_finite_faces
                else ""
            )
        ]
        out += [f"  skipped {reason}" for _, reason in self.skipped]
        if len(self.alignments) > 1 or set(self.alignments) - {"5-point"}:
            out.append("  aligned: " + ", ".join(f"{n} by {rule}" for rule, n in sorted(self.alignments.items())))
        if self.large_faces:
            out.append(
                f"  {self.large_faces} face(s) more than twice the model's {self.model_size} px: the network restores them at "
                f"{self.model_size} px, their fine detail is the photo's own (docs/faces.md)"
            )
        if self.faces_restored:
            per_face = {k: v / self.faces_restored for k, v in self.seconds.items()}
            out.append(
                f"  {self.total_seconds / self.faces_restored:.3f} s per face in total; "
                + ", ".join(f"{k} {v:.3f}" for k, v in per_face.items())
            )
        return out


def _is_glob(text: str) -> bool:
    return any(c in GLOB_CHARACTERS for c in text)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _broken_link(path: Path) -> tuple[str, str]:
    return str(path), f"{path}: broken symbolic link to {os.readlink(path)}"


def collect_inputs(
    inputs: list[str], output: Path, recursive: bool = False
) -> tuple[list[InputFile], list[tuple[str, str]]]:
    """Files to restore and (input, reason) for inputs that name nothing or are broken symbolic links.

    Refuses (PoseFaceError) an output folder equal to an input folder or to the folder of an input
    file, so an input can never be overwritten. Files already inside the output folder are not
    inputs (a second run over `photos/` with `-o photos/restored` does not restore its own output).
    """
    files: list[InputFile] = []
    missing: list[tuple[str, str]] = []
    output = Path(output)
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            if path.resolve() == output.resolve():
                raise PoseFaceError(
                    f"{output}: the output folder is the input folder {text}; choose another output folder (-o)"
                )
            for found in list_images(path, recursive=recursive, suffixes=IMAGE_SUFFIXES + VIDEO_SUFFIXES):
                if not _inside(found, output):
                    files.append(InputFile(found, found.relative_to(path).with_suffix("")))
            missing += [
                _broken_link(link)
                for link in broken_links(path, recursive=recursive, suffixes=IMAGE_SUFFIXES + VIDEO_SUFFIXES)
                if not _inside(link.parent, output)
            ]
        elif path.is_file():
            files.append(InputFile(path, Path(path.stem)))
        elif path.is_symlink():
            missing.append(_broken_link(path))
        elif _is_glob(text):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text), recursive=True))
            broken = [_broken_link(m) for m in matches if m.is_symlink() and not m.exists()]
            missing += broken
            matches = [m for m in matches if m.is_file() and not _inside(m, output)]
            if not matches and not broken:
                missing.append((text, f"{text}: the pattern matches no file"))
            files += [InputFile(m, Path(m.stem)) for m in matches]
        else:
            missing.append((text, f"{text}: no such file or folder"))
    unique: dict[Path, InputFile] = {}
    for item in files:
        unique.setdefault(item.path.resolve(), item)
    files = list(unique.values())
    for item in files:
        if item.path.parent.resolve() == output.resolve():
            raise PoseFaceError(
                f"{output}: the output folder holds the input {item.path}; choose another output folder (-o)"
            )
    return files, missing


def _unique(base: Path, ext: str, taken: set[str]) -> Path:
    candidate, counter = base, 1
    while (str(candidate) + ext).lower() in taken:
        counter += 1
        candidate = base.parent / f"{base.name}_{counter}"
    taken.add((str(candidate) + ext).lower())
    return candidate


def output_paths(files: list[InputFile], options: RunOptions) -> dict[Path, tuple[Path, Path]]:
    """input -> (output image path, name of its side outputs relative to faces/ and compare/).

    Inputs whose names collide get _2, _3, ... (never overwrite each other); side outputs are
    always PNG, so their names are made unique whatever the image format.
    """
    taken_images: set[str] = set()
    taken_sides: set[str] = set()
    result = {}
    for item in files:
        ext = item.path.suffix.lower() if options.ext == "auto" else "." + options.ext
        if ext not in OUTPUT_SUFFIXES:
            ext = ".png"
        base = item.relative.parent / (item.relative.name + options.suffix)
        image = _unique(base, ext, taken_images)
        side = _unique(item.relative, "", taken_sides)
        result[item.path] = (options.output / (str(image) + ext), side)
    return result


def _copy_atomically(source: Path, target: Path, replace: bool) -> None:
    atomic_write(target, lambda tmp: (shutil.copyfile(source, tmp), shutil.copymode(source, tmp)), replace)


def _faces_folder(options: RunOptions, side: Path) -> Path:
    return options.output / "faces" / side.parent


def _compare_path(options: RunOptions, side: Path) -> Path:
    return options.output / "compare" / (str(side) + ".png")


def _boxes_path(options: RunOptions, side: Path) -> Path:
    return options.output / "boxes" / (str(side) + ".png")


def existing_outputs(target: Path, side: Path, options: RunOptions) -> list[Path]:
    """Files already there that restoring this input would write: the image, and with
    --compare / --save-faces its comparison and face crops (`<name>_<k>_crop.png`, `_restored.png`)."""
    found = [target] if target.exists() else []
    if options.compare and _compare_path(options, side).exists():
        found.append(_compare_path(options, side))
    if options.draw_boxes and _boxes_path(options, side).exists():
        found.append(_boxes_path(options, side))
    folder = _faces_folder(options, side)
    if options.save_faces and folder.is_dir():
        pattern = re.compile(re.escape(side.name) + r"_\d+_(crop|restored)\.png")
        found += sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))
    return found


def kept_reason(path: Path, target: Path, existing: list[Path]) -> str:
    """Why an input is skipped: its first existing output is kept. --suffix renames only the image,
    not its faces/ and compare/ files."""
    other = "-o or --suffix" if existing[0] == target else "-o"
    return f"{path}: {already_exists(existing[0], other)}"


def too_large_output_reason(path: Path, image: np.ndarray, restorer: Restorer, max_pixels: int) -> str | None:
    """Why an input is skipped because its output (times --upscale) exceeds `max_pixels`, else None."""
    width, height = restorer.output_size(image.shape[1], image.shape[0])
    if width * height <= max_pixels:
        return None
    return (
        f"{path}: the output would be {width}x{height} pixels (--upscale {restorer.upscale:g}), more than --max-pixels {max_pixels}; "
        "lower --upscale or raise --max-pixels"
    )


def compare_image(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Input (Lanczos-resized to the output size) | output, as 8-bit RGB."""

    def rgb8(image: np.ndarray) -> np.ndarray:
        color, _, _, _, max_value = split_layout(image)
        return to_uint8(color, max_value)

    left, right = rgb8(before), rgb8(after)
    if left.shape != right.shape:
        left = cv2.resize(left, (right.shape[1], right.shape[0]), interpolation=cv2.INTER_LANCZOS4)
    return np.concatenate([left, right], axis=1)


def _output_folders(targets: dict[Path, tuple[Path, Path]], options: RunOptions) -> set[Path]:
    """Every folder this run writes files into."""
    folders = {target.parent for target, _ in targets.values()}
    for side_folder, wanted in (
        ("faces", options.save_faces),
        ("compare", options.compare),
        ("boxes", options.draw_boxes),
    ):
        if wanted:
            folders |= {options.output / side_folder / side.parent for _, side in targets.values()}
    return folders


def remove_stale_temporary_files(folders: set[Path], started: float) -> int:
    """Delete the temporary images a killed run left in `folders` (atomic_write's own name pattern,
    last modified a minute or more before `started`, so a run going on in parallel keeps its own)."""
    removed = 0
    for folder in sorted(folders):
        for stale in stale_temporary_images(folder, older_than=started - STALE_TEMPORARY_SECONDS):
            try:
                stale.unlink()
                removed += 1
            except OSError as exc:
                print(
                    f"poseface: {stale}: could not remove this stale temporary file ({exc}); delete it by hand",
                    file=sys.stderr,
                )
    if removed:
        print(
            f"poseface: removed {removed} stale temporary file(s) ({TEMPORARY_PATTERN}) left by an interrupted run",
            file=sys.stderr,
        )
    return removed


def progress_bar(options: RunOptions, **kwargs) -> tqdm:
    """A tqdm bar shown as `options.progress` says (None = only on a terminal)."""
    return tqdm(disable=(not options.progress) if options.progress is not None else None, **kwargs)


def restore_files(restorer: Restorer, inputs: list[str], options: RunOptions) -> Summary:
    """Restore every image among `inputs` into `options.output`, then every video (faces/video.py);
    bad files are skipped with one line."""
    start_all = time.perf_counter()
    started = time.time()
    files, missing = collect_inputs(inputs, options.output, options.recursive)
    summary = Summary(skipped=list(missing), model_size=restorer.size)
    for _, reason in missing:
        print(f"poseface: skipped {reason}", file=sys.stderr)
    videos = [item for item in files if item.path.suffix.lower() in VIDEO_SUFFIXES]
    files = [item for item in files if item.path.suffix.lower() not in VIDEO_SUFFIXES]
    targets = output_paths(files, options)
    remove_stale_temporary_files(_output_folders(targets, options), started)
    bar = progress_bar(options, total=len(files), unit="image", desc="restore")

    def skip(path: Path, reason: str) -> None:
        summary.skipped.append((str(path), reason))
        bar.write(f"poseface: skipped {reason}", file=sys.stderr)
        bar.update(1)

    metadata: dict[Path, ImageMetadata] = {}

    def readable() -> Iterator[tuple[Path, np.ndarray]]:
        for item in files:
            target, side = targets[item.path]
            existing = [] if options.overwrite else existing_outputs(target, side, options)
            if existing:
                skip(item.path, kept_reason(item.path, target, existing))
                continue
            try:
                image, metadata[item.path] = read_image_and_metadata(item.path, options.max_pixels)
            except PoseFaceError as exc:
                skip(item.path, str(exc))
                continue
            too_large = too_large_output_reason(item.path, image, restorer, options.max_pixels)
            if too_large:
                metadata.pop(item.path, None)
                skip(item.path, too_large)
                continue
            if metadata[item.path].frames > 1:
                bar.write(
                    f"poseface: {item.path}: only the first of {metadata[item.path].frames} frames was restored "
                    "(animated and multi-page images are not supported; split the frames to restore them all)",
                    file=sys.stderr,
                )
            yield item.path, image

    originals: dict[Path, np.ndarray] = {}

    def remember(stream):
        for path, image in stream:
            if options.compare or options.draw_boxes:
                originals[path] = image
            yield path, image

    def failed(path: Path, exc: PoseFaceError) -> None:
        originals.pop(path, None)
        metadata.pop(path, None)
        skip(path, f"{path}: {exc}")

    for path, result in restorer.restore_stream(remember(readable()), on_error=failed):
        target, side = targets[path]
        try:
            _write_outputs(
                path, target, side, result, restorer, options, originals.pop(path, None), metadata.pop(path, None)
            )
        except (OSError, PoseFaceError) as exc:
            skip(path, f"{target}: could not be written ({exc})")
            continue
        except MemoryError:  # encoding a huge --upscale output: skip this image, go on with the others
            skip(path, f"{path}: {not_enough_memory(result.image.shape[1], result.image.shape[0])}")
            continue
        summary.images += 1
        summary.faces_found += len(result.faces)
        broken = [k for k, face in enumerate(result.faces) if face.non_finite]
        if broken:
            summary.non_finite_faces += len(broken)
            bar.write(
                f"poseface: {path}: the network gave NaN/inf for face(s) {', '.join(str(k) for k in broken)}; "
                "left as they were (check the weights, or try --precision fp32)",
                file=sys.stderr,
            )
        summary.faces_restored += sum(face.restored is not None and not face.non_finite for face in result.faces)
        for face in result.faces:
            summary.alignments[face.alignment] = summary.alignments.get(face.alignment, 0) + 1
        summary.large_faces += sum(face.scale < 0.5 for face in result.faces)
        summary.without_face += not result.faces
        if not result.faces and not restorer.aligned:
            bar.write(f"poseface: {path}: {no_face_hint(restorer)}", file=sys.stderr)
        for key, value in result.timings.items():
            summary.seconds[key] = summary.seconds.get(key, 0.0) + value
        bar.update(1)
        bar.set_postfix(faces=summary.faces_restored)
    bar.close()
    if videos:
        from poseface.faces.video import restore_videos  # after the images: it imports this module

        restore_videos(restorer, videos, options, summary, started)
    summary.total_seconds = time.perf_counter() - start_all
    return summary


def no_face_hint(restorer: Restorer) -> str:
    """The line for a photo without a face: what was looked for and the knob to try."""
    options = restorer.detector
    return (
        f"no face found, written unchanged (looked for faces from {options.min_face_size} px with score >= {options.min_score:g}; "
        f"try --min-face-size {max(8, options.min_face_size // 2)}, --min-score {options.min_score - 0.3:g} or --detector cnn)"
    )


def _write_outputs(
    path: Path,
    target: Path,
    side: Path,
    result: Result,
    restorer: Restorer,
    options: RunOptions,
    original: np.ndarray | None,
    metadata: ImageMetadata | None = None,
) -> None:
    if target.resolve() == path.resolve():
        raise PoseFaceError("the output would overwrite the input")
    replace = options.overwrite
    if not result.faces and restorer.upscale == 1.0 and target.suffix.lower() == path.suffix.lower():
        _copy_atomically(path, target, replace)  # no face: the file itself, byte for byte
    else:
        write_image_full(target, result.image, metadata=metadata, replace=replace)  # ICC profile and EXIF of the input
    if options.save_faces:
        folder = _faces_folder(options, side)
        for k, face in enumerate(result.faces):
            write_image_full(folder / f"{side.name}_{k}_crop.png", face.crop, replace=replace)
            if face.restored is not None:
                write_image_full(folder / f"{side.name}_{k}_restored.png", face.restored, replace=replace)
    if options.compare and original is not None:
        write_image_full(_compare_path(options, side), compare_image(original, result.image), replace=replace)
    if options.draw_boxes:
        color, _, _, _, max_value = split_layout(result.image)
        scale = result.image.shape[1] / original.shape[1] if original is not None else restorer.upscale
        write_image_full(
            _boxes_path(options, side), draw_boxes(to_uint8(color, max_value), result.faces, scale), replace=replace
        )


__all__ = ["RunOptions", "Summary", "collect_inputs", "output_paths", "restore_files"]
