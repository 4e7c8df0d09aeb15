import re

import pytest

from poseface.demo import main
from poseface.models import BUNDLED_WEIGHTS


def table_rows(out: str) -> dict[str, list[float]]:
    rows = {}
    for line in out.splitlines():
        match = re.match(r"\| (degraded|restored|clean) \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = [float(v) for v in match.group(2).split(" | ")]
    return rows


def test_pipeline_check_writes_the_three_images_and_prints_metrics(tmp_path, capsys):
    assert main(["-o", str(tmp_path), "--pipeline-check"]) == 0
    for name in ("astronaut_degraded.png", "astronaut_restored.png", "astronaut_compare.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert "1 face(s) restored" in out and set(rows) == {"degraded", "restored", "clean"}
    # the identity network returns its input: the restored photo is the degraded one up to the paste-back resampling
    assert abs(rows["restored"][0] - rows["degraded"][0]) < 0.5 and rows["clean"][0] == float("inf")


@pytest.mark.skipif(not BUNDLED_WEIGHTS.is_file(), reason="no bundled model in this checkout")
def test_bundled_model_improves_the_degraded_face(tmp_path, capsys):
    assert main(["-o", str(tmp_path)]) == 0
    rows = table_rows(capsys.readouterr().out)
    psnr_face, ssim_face = 3, 4
    assert rows["restored"][psnr_face] > rows["degraded"][psnr_face]
    assert rows["restored"][ssim_face] > rows["degraded"][ssim_face]


def test_demo_with_bad_weights_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    assert main(["-o", str(tmp_path / "o"), "--weights", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.safetensors" in err and len(err.strip().splitlines()) == 1
