"""Restoring videos: `poseface restore clip.mp4 -o out/` writes out/clip.mp4 (issue 17).

Every frame is decoded with PyAV (the `video` extra), faces are detected on every frame, linked
between frames by box IoU, and their 5 landmarks are smoothed over time (`TrackSmoother`) before
alignment, so restored faces do not flicker. Faces of consecutive frames share network batches
(`Restorer.restore_stream`). Restored frames are cached as numbered PNGs in
OUT/.poseface-video-<name>/ so a killed run continues where it stopped; once every frame is there
they are encoded at the input's frame rate, its audio streams are copied as they are, and the cache
is removed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
import time
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any, Hashable, Iterator, Sequence

import numpy as np

from poseface.errors import PoseFaceError
from poseface.faces.detect import Box, DetectedFace, box_overlap, detect_faces
from poseface.faces.restorer import Restorer
from poseface.faces.run import (
    InputFile,
    RunOptions,
    Summary,
    kept_reason,
    progress_bar,
    remove_stale_temporary_files,
    too_large_output_reason,
)
from poseface.imageio import atomic_write, read_image_full, write_image_full

SMOOTH_RADIUS = 3  # frames each side: a face's points are averaged over up to 7 frames
MIN_LINK_IOU = 0.3  # a face continues the previous frame's face whose box overlaps it at least this much
CACHE_PREFIX = ".poseface-video-"
FRAME_NAME = re.compile(r"(\d{6})\.png")
MISSING_LIBRARY = "video needs PyAV; pip install 'poseface[video]'"
ENCODERS = {".webm": ("libvpx-vp9", {"crf": "30", "b": "0"})}  # every other container: H.264
DEFAULT_ENCODER = ("libx264", {"crf": "18"})


# ---- temporal smoothing --------------------------------------------------------------------------
def link_faces(previous: Sequence[Box], current: Sequence[Box], min_iou: float = MIN_LINK_IOU) -> list[int | None]:
    """For each box of `current`, the index of the `previous` box it continues, or None.

    Greedy by IoU (best pairs first), each previous box used at most once, pairs under `min_iou` never."""
    pairs = sorted(
        ((box_overlap(p, c)[0], i, j) for i, p in enumerate(previous) for j, c in enumerate(current)), reverse=True
    )
    links: list[int | None] = [None] * len(current)
    used: set[int] = set()
    for overlap, i, j in pairs:
        if overlap >= min_iou and i not in used and links[j] is None:
            links[j] = i
            used.add(i)
    return links


@dataclasses.dataclass
class _Frame:
    key: Hashable
    faces: list[DetectedFace]
    tracks: list[int]  # track id of each face


class TrackSmoother:
    """Centred moving average of each face's 5 points along its track.

    `push(key, faces)` for frames in order returns the frames whose smoothing is decided, `radius`
    frames behind; `flush()` returns the rest at the end. A face's points at frame t are the mean of
    its track's points over frames t-k..t+k, with k = `radius` or less where the track starts or ends
    sooner (the window stays symmetric), so a face moving at constant speed is followed with no lag
    at all; at a constant acceleration of a px/frame^2 the points are off by a k(k+1)/6 px (2a at
    radius 3). Static jitter of sigma px becomes sigma/sqrt(2k+1), and its frame-to-frame change
    shrinks 2k+1 times. Only `points5` is smoothed (the box, score and 68 landmarks are the frame's own).
    """

    def __init__(self, radius: int = SMOOTH_RADIUS, min_iou: float = MIN_LINK_IOU):
        if radius < 0:
            raise PoseFaceError(f"smoothing radius {radius}: must be 0 or more frames")
        self.radius = radius
        self.min_iou = min_iou
        self._window: deque[_Frame] = deque(maxlen=2 * radius + 1)
        self._waiting = 0  # frames at the end of the window not returned yet
        self._next_track = 0

    def push(self, key: Hashable, faces: list[DetectedFace]) -> list[tuple[Hashable, list[DetectedFace]]]:
        previous = self._window[-1] if self._window else _Frame(None, [], [])
        links = link_faces([f.box for f in previous.faces], [f.box for f in faces], self.min_iou)
        tracks = []
        for link in links:
            if link is None:
                tracks.append(self._next_track)
                self._next_track += 1
            else:
                tracks.append(previous.tracks[link])
        self._window.append(_Frame(key, list(faces), tracks))
        self._waiting += 1
        if self._waiting <= self.radius:
            return []
        self._waiting -= 1
        return [self._smoothed(len(self._window) - 1 - self.radius)]

    def flush(self) -> list[tuple[Hashable, list[DetectedFace]]]:
        ready = [self._smoothed(len(self._window) - self._waiting + k) for k in range(self._waiting)]
        self._window.clear()
        self._waiting = 0
        return ready

    def _track_points(self, track: int, index: int, step: int) -> list[np.ndarray]:
        """Points of `track` in frames index+step, index+2 step, ... while it lasts (at most `radius`)."""
        found = []
        for k in range(1, self.radius + 1):
            position = index + k * step
            if not 0 <= position < len(self._window) or track not in self._window[position].tracks:
                break
            frame = self._window[position]
            found.append(frame.faces[frame.tracks.index(track)].points5)
        return found

    def _smoothed(self, index: int) -> tuple[Hashable, list[DetectedFace]]:
        frame = self._window[index]
        out = []
        for face, track in zip(frame.faces, frame.tracks):
            before, after = self._track_points(track, index, -1), self._track_points(track, index, 1)
            k = min(len(before), len(after))
            points = np.mean([face.points5, *before[:k], *after[:k]], axis=0)
            out.append(dataclasses.replace(face, points5=points))
        return frame.key, out


# ---- files ---------------------------------------------------------------------------------------
def require_av(path: Path) -> Any:
    """The `av` module, or PoseFaceError with the one line that says how to get it."""
    try:
        import av
    except ImportError:
        raise PoseFaceError(f"{path}: {MISSING_LIBRARY}") from None
    return av


def video_target(item: InputFile, options: RunOptions) -> Path:
    """OUT/<name><suffix> in the input's container (--ext is for images)."""
    return options.output / item.relative.parent / f"{item.relative.name}{options.suffix}{item.path.suffix}"


def cache_folder(target: Path) -> Path:
    return target.parent / f"{CACHE_PREFIX}{target.name}"


def cached_frames(cache: Path) -> set[int]:
    """Indices of the restored frames already in `cache` (written atomically: each one is whole)."""
    if not cache.is_dir():
        return set()
    return {int(m.group(1)) for m in (FRAME_NAME.fullmatch(p.name) for p in cache.iterdir()) if m}


def frame_path(cache: Path, index: int) -> Path:
    return cache / f"{index:06d}.png"


def write_frame(cache: Path, index: int, image: np.ndarray) -> None:
    write_image_full(frame_path(cache, index), image)


def _fingerprint(path: Path, restorer: Restorer) -> dict[str, Any]:
    """What the cached frames depend on: a rerun with another input or other settings starts over."""
    stat = path.stat()
    return {
        "source": str(path.resolve()),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "upscale": restorer.upscale,
        "fidelity": restorer.fidelity,
        "aligned": restorer.aligned,
        "only_center_face": restorer.only_center_face,
        "detector": dataclasses.asdict(restorer.detector),
        "model_size": restorer.size,
        "smooth_radius": SMOOTH_RADIUS,
    }


def prepare_cache(cache: Path, fingerprint: dict[str, Any]) -> set[int]:
    """Make `cache` hold frames for `fingerprint` (dropping frames made for anything else); the done frames."""
    record = cache / "settings.json"
    if cache.is_dir() and (not record.is_file() or json.loads(record.read_text()) != fingerprint):
        print(
            f"poseface: {cache}: restored frames of another input or other settings; starting this video over",
            file=sys.stderr,
        )
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    if not record.is_file():
        atomic_write(record, lambda tmp: Path(tmp).write_text(json.dumps(fingerprint, sort_keys=True)))
    return cached_frames(cache)


def decode_frames(av: Any, path: Path) -> Iterator[np.ndarray]:
    """Every frame of the first video stream as (H, W, 3) uint8 RGB."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def probe(av: Any, path: Path) -> tuple[int, int, Fraction, int]:
    """(width, height, frame rate, frame count or 0 if the container does not say)."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise PoseFaceError(f"{path}: no video stream in this file; pass a video or an image")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return stream.codec_context.width, stream.codec_context.height, Fraction(rate), int(stream.frames or 0)


# ---- restoring -----------------------------------------------------------------------------------
def frames_to_restore(
    av: Any, path: Path, restorer: Restorer, done: set[int], smoothed: dict[int, list[DetectedFace]], summary: Summary
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) of the frames not in `done`, with their smoothed faces put into `smoothed`.

    Detection runs on every frame within SMOOTH_RADIUS of a frame to restore, so a resumed run
    smooths exactly as an uninterrupted one; `--aligned` frames are whole face crops (no detection)."""
    if restorer.aligned:
        yield from ((i, frame) for i, frame in enumerate(decode_frames(av, path)) if i not in done)
        return
    smoother = TrackSmoother(SMOOTH_RADIUS)
    held: dict[int, np.ndarray] = {}

    def release(ready: list[tuple[Hashable, list[DetectedFace]]]) -> Iterator[tuple[int, np.ndarray]]:
        for index, faces in ready:
            if index in held:
                smoothed[index] = faces
                yield index, held.pop(index)

    for index, frame in enumerate(decode_frames(av, path)):
        needed = any(i not in done for i in range(index - SMOOTH_RADIUS, index + SMOOTH_RADIUS + 1) if i >= 0)
        start = time.perf_counter()
        faces = detect_faces(frame, restorer.detector) if needed else []
        summary.seconds["detection"] += time.perf_counter() - start
        if index not in done:
            held[index] = frame
        yield from release(smoother.push(index, faces))
    yield from release(smoother.flush())


def restore_frames(
    av: Any,
    path: Path,
    cache: Path,
    restorer: Restorer,
    options: RunOptions,
    summary: Summary,
    done: set[int],
    total: int,
) -> None:
    """Restore every frame not yet in `cache` into it, with a progress bar in frames."""
    smoothed: dict[int, list[DetectedFace]] = {}
    faces = None if restorer.aligned else smoothed.pop
    with progress_bar(options, total=total or None, initial=len(done), unit="frame", desc=path.name) as bar:
        for index, result in restorer.restore_stream(
            frames_to_restore(av, path, restorer, done, smoothed, summary), faces=faces
        ):
            write_frame(cache, index, result.image)
            summary.faces_found += len(result.faces)
            summary.faces_restored += sum(face.restored is not None and not face.non_finite for face in result.faces)
            summary.non_finite_faces += sum(face.non_finite for face in result.faces)
            for key in ("alignment", "network", "paste"):
                summary.seconds[key] += result.timings.get(key, 0.0)
            bar.update(1)
            bar.set_postfix(faces=summary.faces_restored)


def _encoder_stream(output: Any, suffix: str, rate: Fraction, width: int, height: int) -> Any:
    codec, settings = ENCODERS.get(suffix.lower(), DEFAULT_ENCODER)
    stream = output.add_stream(codec, rate=rate, options=dict(settings))
    stream.width, stream.height = width, height
    odd = width % 2 or height % 2
    stream.pix_fmt = "yuv444p" if odd and codec == "libx264" else "yuv420p"  # x264's 4:2:0 needs even sides
    return stream


def mux(av: Any, source: Path, cache: Path, count: int, rate: Fraction, destination: str) -> None:
    """Encode cached frames 0..count-1 at `rate` into `destination`, interleaved with `source`'s audio, copied."""
    first = read_image_full(frame_path(cache, 0))
    with av.open(str(source)) as src, av.open(destination, "w") as out:
        video = _encoder_stream(out, Path(destination).suffix, rate, first.shape[1], first.shape[0])
        audio = {stream.index: out.add_stream_from_template(stream) for stream in src.streams.audio}
        packets = (p for p in src.demux(*src.streams.audio) if p.dts is not None) if audio else iter(())
        waiting = next(packets, None)
        for index in range(count):
            image = first if index == 0 else read_image_full(frame_path(cache, index))
            seconds = index / rate
            while waiting is not None and waiting.pts is not None and waiting.pts * waiting.time_base <= seconds:
                waiting.stream = audio[waiting.stream.index]
                out.mux(waiting)
                waiting = next(packets, None)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[..., :3]), format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        while waiting is not None:
            waiting.stream = audio[waiting.stream.index]
            out.mux(waiting)
            waiting = next(packets, None)


def restore_video(restorer: Restorer, item: InputFile, options: RunOptions, summary: Summary, started: float) -> Path:
    """Restore one video into OUT; PoseFaceError (one line) when it is skipped."""
    path = item.path
    target = video_target(item, options)
    if target.exists() and not options.overwrite:
        raise PoseFaceError(kept_reason(path, target, [target]))
    av = require_av(path)
    try:
        width, height, rate, total = probe(av, path)
        too_large = too_large_output_reason(
            path, np.broadcast_to(np.uint8(0), (height, width)), restorer, options.max_pixels
        )
        if too_large:
            raise PoseFaceError(too_large)
        cache = cache_folder(target)
        done = prepare_cache(cache, _fingerprint(path, restorer))
        remove_stale_temporary_files({cache, target.parent}, started)  # frames of a killed run, and a killed mux
        restore_frames(av, path, cache, restorer, options, summary, done, total)
        count = len(cached_frames(cache))
        if count == 0 or cached_frames(cache) != set(range(count)):
            raise PoseFaceError(f"{path}: frames are missing from {cache}; run again to restore them")
        atomic_write(target, lambda tmp: mux(av, path, cache, count, rate, tmp), replace=options.overwrite)
    except av.error.FFmpegError as exc:
        raise PoseFaceError(f"{path}: not a readable video ({exc}); check the file with ffprobe") from None
    shutil.rmtree(cache)
    summary.videos += 1
    summary.frames += count
    return target


def restore_videos(
    restorer: Restorer, videos: list[InputFile], options: RunOptions, summary: Summary, started: float
) -> None:
    """`restore_video` for each; a skipped one is one line in `summary.skipped` and on stderr."""
    if options.compare or options.save_faces or options.draw_boxes:
        print(
            "poseface: --compare, --save-faces and --draw-boxes apply to images; videos are restored without them",
            file=sys.stderr,
        )
    for item in videos:
        try:
            restore_video(restorer, item, options, summary, started)
        except (OSError, PoseFaceError) as exc:
            reason = str(exc) if isinstance(exc, PoseFaceError) else f"{item.path}: {exc}"
            summary.skipped.append((str(item.path), reason))
            print(f"poseface: skipped {reason}", file=sys.stderr)


__all__ = ["TrackSmoother", "link_faces", "restore_video", "restore_videos"]
