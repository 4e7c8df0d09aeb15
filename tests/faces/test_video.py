"""Videos: temporal smoothing of landmarks, and `poseface restore clip.mp4 -o out/` end to end."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from poseface.cli import main
from poseface.faces import restorer as restorer_module
from poseface.faces import video
from poseface.faces.align import invert_affine, transform_points, umeyama
from poseface.faces.detect import DetectedFace
from poseface.faces.video import SMOOTH_RADIUS, TrackSmoother, link_faces
from poseface.models.config import ModelConfig

from .conftest import ASTRONAUT_BOX, ConstantModel, IdentityModel

TEMPLATE = np.asarray(ModelConfig(size=512).template())
FPS = 12
FRAMES = 12


def face_at(points: np.ndarray) -> DetectedFace:
    """A detected face with these 5 points and a box around them."""
    x0, y0 = points.min(axis=0) - 20
    x1, y1 = points.max(axis=0) + 20
    return DetectedFace(box=(x0, y0, x1, y1), score=1.0, detector="hog", landmarks=np.zeros((68, 2)), points5=points)


def smooth(frames: list[list[DetectedFace]], radius: int = SMOOTH_RADIUS) -> list[list[np.ndarray]]:
    """Smoothed points of every face of every frame, checking frames come back once each, in order."""
    smoother = TrackSmoother(radius)
    out = []
    for index, faces in enumerate(frames):
        out += smoother.push(index, faces)
    out += smoother.flush()
    assert [key for key, _ in out] == list(range(len(frames)))
    return [[face.points5 for face in faces] for _, faces in out]


def crop_jitter(points: list[np.ndarray]) -> np.ndarray:
    """How far the aligned crop's feature positions move in the image from one frame to the next (px)."""
    placed = [transform_points(invert_affine(umeyama(p, TEMPLATE)), TEMPLATE) for p in points]
    return np.array([np.abs(b - a).max() for a, b in zip(placed, placed[1:])])


BASE = np.array([[200.0, 120.0], [240.0, 120.0], [220.0, 140.0], [205.0, 160.0], [235.0, 160.0]])  # a 40 px face


def test_jittered_landmarks_of_a_static_face_give_a_much_steadier_alignment():
    rng = np.random.default_rng(0)
    raw = [BASE + rng.normal(0, 1.5, BASE.shape) for _ in range(40)]
    smoothed = [faces[0] for faces in smooth([[face_at(p)] for p in raw])]
    raw_jitter, smooth_jitter = crop_jitter(raw), crop_jitter(smoothed)
    assert smooth_jitter.mean() < 0.3 * raw_jitter.mean()  # 7-frame window: 7x less frame-to-frame change inside
    interior = np.array(smoothed[SMOOTH_RADIUS:-SMOOTH_RADIUS])
    assert np.abs(interior - BASE).std() < 0.5 * np.abs(np.array(raw) - BASE).std()


def test_a_moving_face_is_followed_without_lag_and_acceleration_within_the_stated_bound():
    steps = np.arange(30)[:, None, None]
    linear = [BASE + p for p in steps * np.array([6.0, -2.0])]  # 6 px/frame right, 2 up
    smoothed = [faces[0] for faces in smooth([[face_at(p)] for p in linear])]
    np.testing.assert_allclose(smoothed, linear, atol=1e-9)  # constant speed: no lag at all
    a = 0.5  # px/frame^2
    accelerating = [BASE + np.array([0.5 * a * t * t, 0.0]) for t in range(30)]
    error = np.abs(np.array([faces[0] for faces in smooth([[face_at(p)] for p in accelerating])]) - accelerating).max(
        axis=(1, 2)
    )
    bound = a * SMOOTH_RADIUS * (SMOOTH_RADIUS + 1) / 6  # TrackSmoother's docstring: a k(k+1)/6
    assert error.max() == pytest.approx(bound) and error[0] == 0  # reached inside, none at the first frame


def test_faces_keep_their_own_track_when_the_detector_lists_them_in_another_order():
    rng = np.random.default_rng(1)
    bases = [BASE, BASE + np.array([300.0, 0.0])]
    frames = []
    for t in range(20):
        faces = [face_at(b + rng.normal(0, 1.5, BASE.shape)) for b in bases]
        frames.append(faces if t % 2 else faces[::-1])
    raw_error, smooth_error = [], []
    for faces, points in list(zip(frames, smooth(frames)))[SMOOTH_RADIUS:-SMOOTH_RADIUS]:
        for face, smoothed in zip(faces, points):
            own = bases[int(face.points5[0, 0] > 350)]
            raw_error.append(np.abs(face.points5 - own).mean())
            smooth_error.append(np.abs(smoothed - own).mean())
    assert np.mean(smooth_error) < 0.6 * np.mean(raw_error)  # smoothed along its own track, never with the other face
    assert link_faces([(0, 0, 10, 10)], [(50, 50, 60, 60), (1, 1, 11, 11)]) == [None, 0]


def make_clip(path: Path, image: np.ndarray, frames: int = FRAMES, audio: bool = True) -> list[np.ndarray]:
    """A short H.264 clip of a face crop of `image` sliding 2 px per frame, with a 440 Hz tone; its frames."""
    x0, y0, x1, y1 = ASTRONAUT_BOX
    shots = [
        np.ascontiguousarray(image[y0 - 40 : y1 + 34, x0 - 40 + 2 * t : x1 + 34 + 2 * t]) for t in range(frames)
    ]  # 161 px
    shots = [np.ascontiguousarray(s[:160, :160]) for s in shots]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 160, 160, "yuv420p"
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.layout = "mono"
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * frames // FPS) / 16000)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    tone[None, start : start + 1024].copy(), format="fltp", layout="mono"
                )
                chunk.sample_rate = 16000
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
        for shot in shots:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(shot, format="rgb24")))
        container.mux(stream.encode(None))
    return shots


def read_clip(path: Path) -> tuple[list[np.ndarray], Fraction, int]:
    """(frames, frame rate, number of audio streams)."""
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        audio = len(container.streams.audio)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames, rate, audio


@pytest.fixture
def clip(tmp_path, astronaut) -> tuple[Path, list[np.ndarray]]:
    path = tmp_path / "clip.mp4"
    return path, make_clip(path, astronaut)


def restore_args(path: Path, out: Path, *extra: str) -> list[str]:
    return [
        "restore",
        str(path),
        "-o",
        str(out),
        "--weights",
        "stand-in.pth",
        "--device",
        "cpu",
        "--min-face-size",
        "40",
        *extra,
    ]


def use_model(monkeypatch, model) -> None:
    monkeypatch.setattr(restorer_module, "load_restoration_model", lambda weights, device: model)


def test_a_video_is_restored_frame_by_frame_with_its_rate_audio_and_upscaled_size(clip, tmp_path, monkeypatch, capsys):
    path, shots = clip
    use_model(monkeypatch, ConstantModel((250, 20, 200), size=128))
    out = tmp_path / "out"
    assert main(restore_args(path, out, "--upscale", "2")) == 0
    assert f"1 video(s) of {FRAMES} frames written" in capsys.readouterr().out
    frames, rate, audio = read_clip(out / "clip.mp4")
    assert len(frames) == FRAMES and rate == FPS and audio == 1
    assert frames[0].shape == (320, 320, 3)
    assert not any(p.name.startswith(".poseface-video-") for p in out.iterdir())  # the cache went after the mux
    face, corner = (
        (slice(100, 220), slice(100, 220)),
        (slice(0, 30), slice(0, 30)),
    )  # face middle, background, x2 pixels
    for restored, shot in zip(frames, shots):
        before, after = np.repeat(np.repeat(shot, 2, 0), 2, 1).astype(float), restored.astype(float)
        assert after[face][..., 1].mean() < before[face][..., 1].mean() - 40  # green fell: the magenta face is pasted
        assert np.abs(after[corner] - before[corner]).mean() < 6  # the background is the frame's own (codec loss only)
    assert main(restore_args(path, out)) == 1  # kept without --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(restore_args(path, out, "--overwrite")) == 0
    assert read_clip(out / "clip.mp4")[0][0].shape == (160, 160, 3)


def test_a_killed_run_resumes_with_only_the_remaining_frames(clip, tmp_path, monkeypatch, capsys):
    path, _ = clip
    model = IdentityModel(128)
    use_model(monkeypatch, model)
    written, detected = [], []
    real_write, real_detect = video.write_frame, video.detect_faces

    def write_then_die(cache, index, image):
        if len(written) == 5:
            raise KeyboardInterrupt  # the run is killed while frame 6 waits to be written
        written.append(index)
        real_write(cache, index, image)

    def counting_detect(image, options):
        detected.append(1)
        return real_detect(image, options)

    monkeypatch.setattr(video, "write_frame", write_then_die)
    monkeypatch.setattr(video, "detect_faces", counting_detect)
    out = tmp_path / "out"
    assert main(restore_args(path, out)) == 130
    assert written == [0, 1, 2, 3, 4] and not (out / "clip.mp4").exists()
    assert sorted(p.name for p in (out / ".poseface-video-clip.mp4").glob("*.png")) == [
        f"{i:06d}.png" for i in range(5)
    ]
    written.clear(), detected.clear(), model.batch_sizes.clear()
    monkeypatch.setattr(
        video, "write_frame", lambda cache, index, image: (written.append(index), real_write(cache, index, image))
    )
    assert main(restore_args(path, out)) == 0
    assert written == list(range(5, FRAMES))  # only the remaining frames were restored
    assert sum(model.batch_sizes) == FRAMES - 5  # one face per frame through the network
    assert len(detected) == FRAMES - 5 + SMOOTH_RADIUS  # plus the frames the smoothing window reaches back to
    assert len(read_clip(out / "clip.mp4")[0]) == FRAMES


def test_without_pyav_a_video_is_one_line(clip, tmp_path, monkeypatch, capsys):
    path, _ = clip
    use_model(monkeypatch, IdentityModel(128))
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    assert main(restore_args(path, tmp_path / "out")) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "PyAV" in line]
    assert lines == [f"poseface: skipped {path}: video needs PyAV; pip install 'poseface[video]'"]


def test_a_file_that_is_not_a_video_is_skipped_with_one_line(tmp_path, monkeypatch, capsys):
    use_model(monkeypatch, IdentityModel(128))
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(restore_args(bad, tmp_path / "out")) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "notes.mp4" in line]
    assert len(lines) == 1 and lines[0].startswith(f"poseface: skipped {bad}: not a readable video (")
    assert lines[0].endswith("; check the file with ffprobe")


def test_a_video_inside_an_input_folder_is_picked_up_with_the_images(tmp_path, monkeypatch, capsys):
    from poseface.faces.run import collect_inputs

    folder = tmp_path / "inbox"
    (folder / "trip").mkdir(parents=True)
    (folder / "trip" / "notes.mp4").write_text("not a video")
    (folder / "readme.txt").write_text("not an input")
    files, missing = collect_inputs([str(folder)], tmp_path / "out", recursive=True)
    assert [item.path.name for item in files] == ["notes.mp4"] and missing == []
    assert collect_inputs([str(folder)], tmp_path / "out", recursive=False)[0] == []  # sub-folder, not recursive
    use_model(monkeypatch, IdentityModel(128))
    assert main(restore_args(folder, tmp_path / "out", "-r")) == 1  # reached the video reader: skipped, one line
    assert "notes.mp4: not a readable video" in capsys.readouterr().err
