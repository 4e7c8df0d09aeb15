import json

from poseface.cli import main


def test_degrade_command_writes_a_test_set(image_folder, tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["degrade", str(image_folder), "-o", str(out), "--seed", "3", "--size", "32", "--preset", "mild"]) == 0
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
    assert err.startswith(f"poseface: error: {empty}: no image files") and err.count("\n") == 1 and "Traceback" not in err
    assert main(["degrade", str(empty), "-o", str(tmp_path / "o"), "--seed", "1", "--preset", "extreme"]) == 2
    err = capsys.readouterr().err
    assert "poseface: error:" in err and err.count("\n") == 1


def test_landmarks_command_reports_counts(image_folder, tmp_path, capsys):
    out = tmp_path / "lm.json"
    assert main(["landmarks", str(image_folder), "-o", str(out), "--no-full-crop"]) == 0
    captured = capsys.readouterr().out
    assert "2 faces" in captured and "1 without a face" in captured and "2 unreadable" in captured
    assert main(["landmarks", str(image_folder), "-o", str(out)]) == 0
    assert "5 already done" in capsys.readouterr().out


def test_degrade_split_option_keeps_the_held_out_faces(image_folder, tmp_path, capsys):
    from poseface.data.dataset import in_validation_split

    out = tmp_path / "val"
    assert main(["degrade", str(image_folder), "-o", str(out), "--seed", "0", "--size", "32", "--split", "val", "--val-fraction", "0.9"]) == 0
    names = {"face.png", "face_flipped.jpg", "sub/grey.png"}
    expected = {n.replace("/", "__").rsplit(".", 1)[0] for n in names if in_validation_split(n, 0.9)}
    assert expected and {p.stem for p in (out / "gt").iterdir()} == expected
    assert json.loads((out / "params.json").read_text())["settings"]["val_fraction"] == 0.9
