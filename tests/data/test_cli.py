import json
import os

import pytest

from poseface.cli import main


def test_degrade_command_writes_a_test_set(image_folder, tmp_path, capsys):
    out = tmp_path / "set"
    assert (
        main(["degrade", str(image_folder), "-o", str(out), "--seed", "3", "--size", "32", "--preset", "mild"]) == 1
    )  # 2 skipped
    assert (out / "contact_sheet.png").is_file() and len(list((out / "lq").iterdir())) == 3
    assert json.loads((out / "params.json").read_text())["settings"]["preset"] == "mild"
    captured = capsys.readouterr()
    assert "contact_sheet.png" in captured.out
    assert captured.err.count("WARNING: skipped") == 2  # broken.jpg and notes.txt: one line each
    assert "2 unreadable image(s) skipped" in captured.err


def test_degrade_errors_are_one_line_without_traceback(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["degrade", str(empty), "-o", str(tmp_path / "o"), "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"poseface: error: {empty}: no image files") and err.count("\n") == 1 and "Traceback" not in err
    )
    assert main(["degrade", str(empty), "-o", str(tmp_path / "o"), "--seed", "1", "--preset", "extreme"]) == 2
    err = capsys.readouterr().err
    assert "poseface: error:" in err and err.count("\n") == 1


def test_landmarks_command_reports_counts(image_folder, tmp_path, capsys):
    out = tmp_path / "lm.json"
    assert main(["landmarks", str(image_folder), "-o", str(out), "--no-full-crop"]) == 1  # 2 unreadable
    captured = capsys.readouterr().out
    assert "2 faces" in captured and "1 without a face" in captured and "2 unreadable" in captured
    assert main(["landmarks", str(image_folder), "-o", str(out)]) == 0
    assert "5 already done" in capsys.readouterr().out


def test_degrade_split_option_keeps_the_held_out_faces(image_folder, tmp_path, capsys):
    from poseface.data.dataset import in_validation_split

    out = tmp_path / "val"
    assert (
        main(
            [
                "degrade",
                str(image_folder),
                "-o",
                str(out),
                "--seed",
                "0",
                "--size",
                "32",
                "--split",
                "val",
                "--val-fraction",
                "0.9",
            ]
        )
        == 0
    )  # the unreadable files are in the train split
    names = {"face.png", "face_flipped.jpg", "sub/grey.png"}
    expected = {n.replace("/", "__").rsplit(".", 1)[0] for n in names if in_validation_split(n, 0.9)}
    assert expected and {p.stem for p in (out / "gt").iterdir()} == expected
    assert json.loads((out / "params.json").read_text())["settings"]["val_fraction"] == 0.9


def _only_readable(image_folder):
    (image_folder / "broken.jpg").unlink()
    (image_folder / "notes.txt").unlink()
    return image_folder


def test_degrade_and_landmarks_exit_0_when_every_image_is_read(image_folder, tmp_path, capsys):
    folder = _only_readable(image_folder)
    assert main(["degrade", str(folder), "-o", str(tmp_path / "set"), "--seed", "3", "--size", "32"]) == 0
    assert main(["landmarks", str(folder), "-o", str(tmp_path / "lm.json")]) == 0


def _unwritable_outputs(tmp_path):
    """An existing file, a path below a file, and (not as root, who writes anywhere) a read-only folder."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    outputs = [a_file / "out"]
    if os.geteuid() != 0:
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o555)
        outputs.append(read_only / "out")
    return a_file, outputs


@pytest.mark.parametrize("command", ["degrade", "landmarks"])
def test_an_unwritable_output_is_refused_before_any_image_is_read(command, image_folder, tmp_path, capsys, monkeypatch):
    from poseface.data import sources

    monkeypatch.setattr(
        sources.FolderSource, "read", lambda self, index: pytest.fail("read before the output was checked")
    )
    extra = ["--seed", "1"] if command == "degrade" else []
    a_file, outputs = _unwritable_outputs(tmp_path)
    if command == "degrade":
        outputs.append(a_file)  # an existing file as the output folder
    for out in outputs:
        assert main([command, str(image_folder), "-o", str(out), *extra]) == 2, out
        err = capsys.readouterr().err
        assert err.startswith(f"poseface: error: {out}: ") and err.count("\n") == 1 and "choose another" in err
