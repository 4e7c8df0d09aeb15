"""`poseface train` on the command line: what is refused before any work."""

from pathlib import Path

from poseface.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "small-128.yaml"


def test_an_unwritable_out_dir_is_refused_before_training_starts(tmp_path, capsys, monkeypatch):
    from poseface.train import distributed

    monkeypatch.setattr(distributed, "setup", lambda device: (_ for _ in ()).throw(AssertionError("training started")))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["train", str(CONFIG), "--out-dir", str(a_file / "run")]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"poseface: error: {a_file / 'run'}: cannot be created, {a_file} is a file; choose another output folder (--out-dir)\n"
    )
