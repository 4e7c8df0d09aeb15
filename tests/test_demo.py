from poseface.demo import main


def test_demo_writes_the_three_images_and_prints_metrics(tmp_path, capsys):
    assert main(["-o", str(tmp_path)]) == 0
    for name in ("astronaut_degraded.png", "astronaut_restored.png", "astronaut_compare.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "1 face(s) restored" in out and "| degraded |" in out


def test_demo_with_bad_weights_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    assert main(["-o", str(tmp_path / "o"), "--weights", str(bad)]) == 2
    assert "bad.safetensors" in capsys.readouterr().err
