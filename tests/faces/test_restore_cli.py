"""`poseface restore` end to end, in-process, with files the tests make."""

import io
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from poseface.cli import main
from poseface.faces import restorer as restorer_module
from poseface.imageio import read_image_full

from .conftest import IdentityModel


@pytest.fixture
def identity_weights(monkeypatch):
    """--weights anything.pth loads an identity model (128 px) instead of a real network."""
    monkeypatch.setattr(restorer_module, "load_restoration_model", lambda weights, device: IdentityModel(128))
    return "identity.pth"


@pytest.fixture
def photos(tmp_path, astronaut):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(astronaut[:, ::-1]).save(folder / "sub" / "astronaut.png")  # same name, other folder
    Image.fromarray(np.full((80, 120, 3), 140, np.uint8)).save(folder / "wall.jpg", quality=90)  # no face
    (folder / "empty.jpg").write_bytes(b"")
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    (folder / "letter.png").write_text("not an image")
    return folder


def test_folder_run_writes_outputs_and_reports_every_bad_file(photos, tmp_path, identity_weights, capsys):
    out = tmp_path / "out"
    code = main(
        ["restore", str(photos), "-r", "-o", str(out), "--weights", identity_weights, "--save-faces", "--compare"]
    )
    captured = capsys.readouterr()
    assert code == 1  # some files were skipped
    skipped = [line for line in captured.err.splitlines() if line.startswith("poseface: skipped")]
    assert len(skipped) == 3
    assert any("empty.jpg: empty file" in line for line in skipped)
    assert any("truncated.jpg: not a readable image" in line for line in skipped)
    assert any("letter.png: not a readable image" in line for line in skipped)
    assert "Traceback" not in captured.err
    summary = captured.out
    assert "3 image(s) written" in summary and "2 face(s) found" in summary and "2 restored" in summary
    assert "1 image(s) without a face" in summary and "3 file(s) skipped" in summary and "s per face" in summary
    assert (out / "astronaut.png").is_file() and (out / "sub" / "astronaut.png").is_file()
    assert (out / "wall.jpg").read_bytes() == (photos / "wall.jpg").read_bytes()  # no face: the file unchanged
    for name in ("astronaut_0_crop.png", "astronaut_0_restored.png", "sub/astronaut_0_crop.png"):
        assert (out / "faces" / name).is_file()
    comparison = np.asarray(Image.open(out / "compare" / "astronaut.png"))
    assert comparison.shape == (512, 1024, 3)
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "astronaut.png").stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600
    restored = np.asarray(Image.open(out / "astronaut.png"))
    assert np.abs(restored.astype(int) - np.asarray(Image.open(photos / "astronaut.png"))).mean() < 0.5


def test_decompression_bomb_limit_and_non_image_file_named_directly(photos, tmp_path, identity_weights, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    out = tmp_path / "out"
    code = main(
        [
            "restore",
            str(photos / "astronaut.png"),
            str(notes),
            str(tmp_path / "missing.png"),
            "-o",
            str(out),
            "--weights",
            identity_weights,
            "--max-pixels",
            "100000",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "astronaut.png: image of 512x512 pixels is larger than the decoding limit of 100000 pixels" in err
    assert "notes.txt: not a readable image" in err and "missing.png: no such file or folder" in err
    assert not (out / "astronaut.png").exists()


def test_output_folder_equal_to_an_input_folder_is_refused(photos, identity_weights, capsys):
    code = main(["restore", str(photos), "-o", str(photos), "--weights", identity_weights])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("poseface: error:") and "choose another output folder" in err
    code = main(["restore", str(photos / "astronaut.png"), "-o", str(photos), "--weights", identity_weights])
    assert code == 2 and "holds the input" in capsys.readouterr().err


def test_output_inside_the_input_folder_is_not_restored_again(photos, identity_weights, capsys):
    out = photos / "restored"
    assert main(["restore", str(photos), "-r", "-o", str(out), "--weights", identity_weights, "--suffix", "_r"]) == 1
    assert (out / "astronaut_r.png").is_file()
    capsys.readouterr()
    main(["restore", str(photos), "-r", "-o", str(out), "--weights", identity_weights, "--suffix", "_r", "--overwrite"])
    assert "3 image(s) written" in capsys.readouterr().out  # not 5: its own outputs are no inputs
    assert not (out / "restored").exists()


def test_globs_ext_suffix_and_name_collisions(photos, tmp_path, identity_weights, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(photos / "astronaut.png", other / "astronaut.png")
    out = tmp_path / "out"
    code = main(
        [
            "restore",
            str(photos / "*.png"),
            str(other / "astronaut.png"),
            "-o",
            str(out),
            "--weights",
            identity_weights,
            "--ext",
            "jpg",
            "--suffix",
            "_x",
        ]
    )
    assert code == 1  # letter.png matches the glob and is skipped
    assert (out / "astronaut_x.jpg").is_file() and (out / "astronaut_x_2.jpg").is_file()
    assert Image.open(out / "astronaut_x.jpg").format == "JPEG"


def test_grey_rgba_and_16_bit_files_are_written_back_in_kind(tmp_path, astronaut, identity_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    Image.fromarray(grey).save(folder / "grey.png")
    alpha = np.full((512, 512), 77, np.uint8)
    Image.fromarray(np.dstack([astronaut, alpha])).save(folder / "rgba.png")
    deep = astronaut.astype(np.uint16) * 257 + 3
    cv2.imwrite(str(folder / "deep.png"), deep[..., ::-1])
    cv2.imwrite(str(folder / "deep.tif"), deep[..., ::-1])
    out = tmp_path / "out"
    assert main(["restore", str(folder), "-o", str(out), "--weights", identity_weights, "--save-faces"]) == 0
    assert read_image_full(out / "grey.png").shape == (512, 512)
    assert (out / "faces" / "deep_0_crop.png").is_file() and (out / "faces" / "deep_2_0_crop.png").is_file()
    rgba = read_image_full(out / "rgba.png")
    assert rgba.shape == (512, 512, 4) and (rgba[..., 3] == 77).all()
    for name in ("deep.png", "deep.tif"):
        back = read_image_full(out / name)
        assert back.dtype == np.uint16 and back.shape == (512, 512, 3)
        assert (back[300:] == deep[300:]).all()  # background (below the face) kept at 16 bits
    assert (
        main(
            [
                "restore",
                str(folder / "deep.png"),
                "-o",
                str(tmp_path / "jpg"),
                "--weights",
                identity_weights,
                "--ext",
                "jpg",
            ]
        )
        == 0
    )
    assert read_image_full(tmp_path / "jpg" / "deep.jpg").dtype == np.uint8


def test_aligned_mode_and_upscale(tmp_path, astronaut, identity_weights):
    crop = np.ascontiguousarray(astronaut[60:188, 160:288])
    Image.fromarray(crop).save(tmp_path / "crop.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "restore",
                str(tmp_path / "crop.png"),
                "-o",
                str(out),
                "--weights",
                identity_weights,
                "--aligned",
                "--upscale",
                "2",
            ]
        )
        == 0
    )
    restored = np.asarray(Image.open(out / "crop.png"))
    assert restored.shape == (256, 256, 3)


def test_bad_weights_file_and_bad_options_are_one_line_errors(tmp_path, photos, capsys):
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"this is not a checkpoint")
    code = main(["restore", str(photos), "-o", str(tmp_path / "out"), "--weights", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(bad) in err and "Traceback" not in err
    code = main(
        [
            "restore",
            str(photos),
            "-o",
            str(tmp_path / "out"),
            "--weights",
            str(bad),
            "--precision",
            "fp16",
            "--device",
            "cpu",
        ]
    )
    assert code == 2 and "fp16" in capsys.readouterr().err


def test_a_real_poseface_checkpoint_runs_end_to_end(tmp_path, astronaut, capsys):
    from poseface.models import ModelConfig, PoseFaceNet, save_model

    weights = save_model(
        PoseFaceNet(ModelConfig(size=32, style_dim=32, n_mlp=2, narrow=0.0625)), tmp_path / "tiny.safetensors"
    )
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "restore",
                str(tmp_path / "a.png"),
                "-o",
                str(out),
                "--weights",
                str(weights),
                "--device",
                "cpu",
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    assert "1 restored" in capsys.readouterr().out
    result = np.asarray(Image.open(out / "a.png"))
    changed = (result != astronaut).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any() and 150 < xs.mean() < 300 and 50 < ys.mean() < 200  # only around the face


def test_a_detection_failure_skips_that_file_only(photos, tmp_path, identity_weights, capsys, monkeypatch):
    from poseface.errors import PoseFaceError
    from poseface.faces import detect

    real = detect.detect_faces

    def flaky(image, options=None):
        if image.shape[:2] == (80, 120):  # wall.jpg
            raise PoseFaceError("dlib hog face detection failed (test)")
        return real(image, options)

    monkeypatch.setattr(restorer_module, "detect_faces", flaky)
    out = tmp_path / "out"
    assert (
        main(
            [
                "restore",
                str(photos / "wall.jpg"),
                str(photos / "astronaut.png"),
                "-o",
                str(out),
                "--weights",
                identity_weights,
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "wall.jpg: dlib hog face detection failed (test)" in captured.err
    assert (out / "astronaut.png").is_file() and not (out / "wall.jpg").exists()


def _kept_lines(err: str, other: str = "-o or --suffix") -> list[str]:
    return [
        line
        for line in err.splitlines()
        if line.endswith(f"already exists and was kept; pass --overwrite or choose another {other}")
    ]


def test_a_file_already_in_the_output_folder_is_kept_unless_overwrite(photos, tmp_path, identity_weights, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "astronaut.png").write_bytes(b"a different photo of the same name")
    inputs = [str(photos / "astronaut.png"), str(photos / "wall.jpg")]
    assert main(["restore", *inputs, "-o", str(out), "--weights", identity_weights]) == 1
    captured = capsys.readouterr()
    kept = _kept_lines(captured.err)
    assert len(kept) == 1 and kept[0].startswith(
        f"poseface: skipped {photos / 'astronaut.png'}: {out / 'astronaut.png'}"
    )
    assert (out / "astronaut.png").read_bytes() == b"a different photo of the same name"
    assert (out / "wall.jpg").is_file() and "1 image(s) written" in captured.out  # the rest of the run went on
    assert main(["restore", *inputs, "-o", str(out), "--weights", identity_weights, "--overwrite"]) == 0
    assert read_image_full(out / "astronaut.png").shape == (512, 512, 3)


@pytest.mark.parametrize("side", ["compare/astronaut.png", "faces/astronaut_0_crop.png"])
def test_an_existing_side_output_keeps_that_input_from_being_restored(side, photos, tmp_path, identity_weights, capsys):
    out = tmp_path / "out"
    (out / side).parent.mkdir(parents=True)
    (out / side).write_bytes(b"someone else's file")
    (out / "faces").mkdir(exist_ok=True)
    (out / "faces" / "astronaut_b_0_crop.png").write_bytes(
        b"another input's crop"
    )  # not astronaut's: no reason to skip
    code = main(
        [
            "restore",
            str(photos / "astronaut.png"),
            "-o",
            str(out),
            "--weights",
            identity_weights,
            "--compare",
            "--save-faces",
        ]
    )
    kept = _kept_lines(capsys.readouterr().err, "-o")  # --suffix would not rename the side output
    assert code == 1 and len(kept) == 1 and f"{out / side}: already exists" in kept[0]
    assert (out / side).read_bytes() == b"someone else's file" and not (out / "astronaut.png").exists()


def test_a_file_appearing_while_the_run_works_is_not_replaced(photos, tmp_path, identity_weights, capsys, monkeypatch):
    from poseface.faces import run

    out = tmp_path / "out"
    real = run.write_image_full

    def someone_writes_first(path, array, **kwargs):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"written meanwhile")
        return real(path, array, **kwargs)

    monkeypatch.setattr(run, "write_image_full", someone_writes_first)
    assert main(["restore", str(photos / "astronaut.png"), "-o", str(out), "--weights", identity_weights]) == 1
    assert "already exists and was kept" in capsys.readouterr().err
    assert (out / "astronaut.png").read_bytes() == b"written meanwhile"


@pytest.fixture
def model_must_not_load(monkeypatch):
    def fail(weights, device):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(restorer_module, "load_restoration_model", fail)


def _unwritable_outputs(tmp_path) -> list:
    """-o values that cannot be written: an existing file, a folder below a file, and (not as root,
    who writes anywhere) a read-only folder."""
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    outputs = [a_file, a_file / "out"]
    if os.geteuid() != 0:
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o555)
        outputs.append(read_only / "out")
    return outputs


def test_an_unwritable_output_folder_is_refused_before_the_model_loads(photos, tmp_path, model_must_not_load, capsys):
    for out in _unwritable_outputs(tmp_path):
        code = main(["restore", str(photos / "astronaut.png"), "-o", str(out), "--weights", "identity.pth"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, (out, err)
        assert err.startswith(f"poseface: error: {out}: ") and "choose another output folder (-o)" in err


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_pixels_must_be_positive(value, photos, tmp_path, model_must_not_load, capsys):
    code = main(["restore", str(photos / "astronaut.png"), "-o", str(tmp_path / "out"), "--max-pixels", value])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"--max-pixels {value}: must be at least 1" in err


@pytest.mark.parametrize("value", ["0", "-1", "17", "nan"])
def test_upscale_out_of_range_is_one_line_before_the_model_loads(value, photos, tmp_path, model_must_not_load, capsys):
    code = main(["restore", str(photos / "astronaut.png"), "-o", str(tmp_path / "out"), "--upscale", value])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"--upscale {value}: must be between 1 and 16" in err


def test_an_image_of_exactly_max_pixels_is_restored(photos, tmp_path, identity_weights):
    out = tmp_path / "out"
    assert (
        main(
            [
                "restore",
                str(photos / "astronaut.png"),
                "-o",
                str(out),
                "--weights",
                identity_weights,
                "--max-pixels",
                str(512 * 512),
            ]
        )
        == 0
    )
    assert (out / "astronaut.png").is_file()


def test_an_upscaled_output_above_max_pixels_skips_that_file(photos, tmp_path, identity_weights, capsys):
    out = tmp_path / "out"
    inputs = [str(photos / "astronaut.png"), str(photos / "wall.jpg")]  # 512 x 512 and 120 x 80
    code = main(
        [
            "restore",
            *inputs,
            "-o",
            str(out),
            "--weights",
            identity_weights,
            "--upscale",
            "2",
            "--max-pixels",
            str(512 * 512),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    line = [x for x in err.splitlines() if "astronaut.png" in x]
    assert (
        len(line) == 1
        and "the output would be 1024x1024 pixels (--upscale 2), more than --max-pixels 262144" in line[0]
    )
    assert "lower --upscale or raise --max-pixels" in line[0]
    assert not (out / "astronaut.png").exists() and read_image_full(out / "wall.jpg").shape == (160, 240, 3)


def test_an_animated_gif_in_a_folder_is_restored_as_its_first_frame_with_one_line(
    tmp_path, astronaut, identity_weights, capsys
):
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [Image.fromarray(astronaut), Image.fromarray(astronaut[::-1]), Image.fromarray(astronaut[:, ::-1])]
    frames[0].save(folder / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / "out"
    assert main(["restore", str(folder), "-o", str(out), "--weights", identity_weights]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "clip.gif" in line]
    assert len(notes) == 1 and "only the first of 3 frames was restored" in notes[0]
    assert "1 image(s) written" in captured.out and "1 restored" in captured.out
    assert Image.open(out / "clip.png").format == "PNG"  # --ext auto: a GIF becomes a PNG
    assert not (out / "clip.gif").exists()


def test_broken_symbolic_links_in_an_input_folder_are_skipped_with_one_line(photos, tmp_path, identity_weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photos / "wall.jpg", folder / "wall.jpg")
    (folder / "gone.png").symlink_to(tmp_path / "deleted.png")
    out = tmp_path / "out"
    assert main(["restore", str(folder), "-o", str(out), "--weights", identity_weights]) == 1
    captured = capsys.readouterr()
    line = f"poseface: skipped {folder / 'gone.png'}: broken symbolic link to {tmp_path / 'deleted.png'}"
    assert captured.err.splitlines().count(line) == 1
    assert "1 image(s) written" in captured.out and "1 file(s) skipped" in captured.out
    for named in (str(folder / "gone.png"), str(folder / "*.png")):  # named directly, or matched by a glob
        assert main(["restore", named, "-o", str(tmp_path / "out2"), "--weights", identity_weights]) == 1
        assert [text for text in capsys.readouterr().err.splitlines() if text.startswith("poseface: skipped")] == [line]


def test_icc_profile_and_exif_survive_restore_with_orientation_1(tmp_path, astronaut, identity_weights):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    crop = Image.fromarray(np.ascontiguousarray(astronaut[60:188, 140:300]))  # 160 wide, 128 high
    exif = crop.getexif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    exif[0x010F] = "PoseFace test camera"
    crop.save(tmp_path / "face.jpg", quality=95, icc_profile=profile, exif=exif)
    out = tmp_path / "out"
    assert (
        main(["restore", str(tmp_path / "face.jpg"), "-o", str(out), "--weights", identity_weights, "--aligned"]) == 0
    )
    with Image.open(out / "face.jpg") as written:
        assert written.info.get("icc_profile") == profile
        assert written.getexif()[0x0112] == 1 and written.getexif()[0x010F] == "PoseFace test camera"
        assert written.size == (128, 160)  # stored upright, as read


def test_aligned_inputs_below_the_minimum_size_are_refused_one_line_each(tmp_path, astronaut, identity_weights, capsys):
    Image.fromarray(astronaut[:1, :1]).save(tmp_path / "dot.png")
    Image.fromarray(astronaut[:15, :200]).save(tmp_path / "strip.png")
    Image.fromarray(np.ascontiguousarray(astronaut[60:188, 160:288])).save(tmp_path / "face.png")
    out = tmp_path / "out"
    code = main(
        [
            "restore",
            str(tmp_path / "dot.png"),
            str(tmp_path / "strip.png"),
            str(tmp_path / "face.png"),
            "-o",
            str(out),
            "--weights",
            identity_weights,
            "--aligned",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    skipped = [line for line in captured.err.splitlines() if line.startswith("poseface: skipped")]
    assert len(skipped) == 2
    assert "dot.png: aligned input of 1x1 pixels is smaller than the minimum of 16 px" in skipped[0]
    assert "strip.png: aligned input of 200x15 pixels" in skipped[1]
    assert (out / "face.png").is_file() and not (out / "dot.png").exists() and not (out / "strip.png").exists()


def test_stale_temporary_files_of_a_killed_run_are_removed_and_only_those(photos, tmp_path, identity_weights, capsys):
    out = tmp_path / "out"
    (out / "faces").mkdir(parents=True)
    stale = [out / ".tmp-a1b2c3d4.jpg", out / "faces" / ".tmp-zz_yy_xx.png"]
    kept = [out / ".tmp-fresh000.png", out / ".tmp-a1b2c3d4.txt", out / "notes.tmp-a1b2c3d4.png", out / "mine.png"]
    for path in stale + kept:
        path.write_bytes(b"half written")
        if path.name != ".tmp-fresh000.png":  # that one could belong to a run going on now
            os.utime(path, (1_000_000, 1_000_000))
    assert (
        main(["restore", str(photos / "wall.jpg"), "-o", str(out), "--weights", identity_weights, "--save-faces"]) == 0
    )
    err = capsys.readouterr().err
    assert "removed 2 stale temporary file(s) (.tmp-*) left by an interrupted run" in err
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)


def test_draw_boxes_no_face_hint_and_large_face_note(tmp_path, astronaut, identity_weights, capsys):
    photos = tmp_path / "in"
    photos.mkdir()
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)  # a 260-px face for a 128-px model
    Image.fromarray(big).save(photos / "big.png")
    Image.fromarray(np.full((80, 120, 3), 140, np.uint8)).save(photos / "wall.png")
    out = tmp_path / "out"
    code = main(["restore", str(photos), "-o", str(out), "--draw-boxes"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    boxes = read_image_full(out / "boxes" / "big.png")
    assert boxes.shape == big.shape and not np.array_equal(
        boxes, read_image_full(out / "big.png")
    )  # the boxes are drawn
    x0, y0, x1, y1 = (int(v * 3) for v in (179, 83, 266, 170))
    assert (
        np.abs(boxes[y0 - 2 : y0 + 3, x0 + 20 : x1 - 20].astype(int) - (60, 220, 60)).sum(axis=-1).min() < 60
    )  # green edge
    assert np.array_equal(
        read_image_full(out / "boxes" / "wall.png"), np.full((80, 120, 3), 140, np.uint8)
    )  # nothing to draw
    assert "wall.png: no face found, written unchanged" in captured.err and "--min-face-size 8" in captured.err
    assert "1 face(s) more than twice the model's 128 px" in captured.out


def test_the_progress_bar_shows_when_piped_and_quiet_hides_it(tmp_path, astronaut, identity_weights, capsys):
    photo = tmp_path / "in.png"
    Image.fromarray(astronaut).save(photo)
    assert main(["restore", str(photo), "-o", str(tmp_path / "a")]) == 0
    assert "restore: 100%" in capsys.readouterr().err  # captured output is not a terminal: the bar shows anyway
    assert main(["restore", str(photo), "-o", str(tmp_path / "b"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "restore:" not in captured.err and "1 image(s) written" in captured.out
