"""Full-fidelity reading and writing used by `poseface restore` (grey, alpha, 16-bit, EXIF)."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from poseface.errors import PoseFaceError
from poseface.imageio import (
    atomic_write,
    check_max_pixels,
    check_output_file,
    check_output_folder,
    read_image_full,
    read_rgb,
    write_image_full,
)


def pattern(height=24, width=36):
    return np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_colour_and_grey_round_trip(tmp_path, suffix):
    deep = np.random.default_rng(1).integers(0, 65536, size=(20, 30, 3), dtype=np.uint16)
    write_image_full(tmp_path / f"c{suffix}", deep)
    back = read_image_full(tmp_path / f"c{suffix}")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, deep)
    grey = deep[..., 0]
    write_image_full(tmp_path / f"g{suffix}", grey)
    np.testing.assert_array_equal(read_image_full(tmp_path / f"g{suffix}"), grey)


def test_16_bit_to_an_8_bit_format_is_reduced(tmp_path):
    deep = np.full((8, 8, 3), 257 * 200, np.uint16)
    write_image_full(tmp_path / "x.jpg", deep)
    back = read_image_full(tmp_path / "x.jpg")
    assert back.dtype == np.uint8 and abs(int(back.mean()) - 200) <= 1


def test_grey_alpha_palette_and_rgba_layouts(tmp_path):
    rgb = pattern()
    Image.fromarray(rgb[..., 0]).save(tmp_path / "l.png")
    assert read_image_full(tmp_path / "l.png").shape == (24, 36)
    la = np.dstack([rgb[..., 0], rgb[..., 1]])
    write_image_full(tmp_path / "la.png", la)
    np.testing.assert_array_equal(read_image_full(tmp_path / "la.png"), la)
    rgba = np.dstack([rgb, rgb[..., 2]])
    write_image_full(tmp_path / "rgba.webp", rgba)
    assert read_image_full(tmp_path / "rgba.webp").shape == (24, 36, 4)
    write_image_full(tmp_path / "rgba.jpg", rgba)  # JPEG has no alpha: dropped
    assert read_image_full(tmp_path / "rgba.jpg").shape == (24, 36, 3)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "p.png", transparency=0)
    assert read_image_full(tmp_path / "p.png").shape == (24, 36, 4)


def test_exif_orientation_is_applied(tmp_path):
    yy, xx = np.mgrid[0:20, 0:40]
    rgb = np.dstack([xx * 6, yy * 12, np.full_like(xx, 128)]).astype(np.uint8)  # smooth: JPEG keeps it
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "o.jpg", exif=exif, quality=100)
    back = read_image_full(tmp_path / "o.jpg")
    assert back.shape == (40, 20, 3)
    expected = np.rot90(rgb, k=-1)
    assert np.abs(back.astype(int) - expected).mean() < 3  # JPEG noise only
    assert np.abs(back.astype(int) - np.rot90(rgb, k=1)).mean() > 30  # not the other way round
    deep = np.random.default_rng(2).integers(0, 65536, size=(10, 16, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep[..., ::-1])
    # a 16-bit PNG read through OpenCV gets the orientation from its EXIF too (none here)
    assert read_image_full(tmp_path / "d.png").shape == (10, 16, 3)


def test_decoding_limit_is_enforced_below_twice_pillows_limit(tmp_path):
    Image.fromarray(pattern(100, 100)).save(tmp_path / "big.png")
    with pytest.raises(PoseFaceError, match="decoding limit of 6000 pixels"):
        read_image_full(tmp_path / "big.png", max_pixels=6000)  # 10,000 pixels < 2 x 6,000
    assert read_image_full(tmp_path / "big.png", max_pixels=10000).shape == (100, 100, 3)


def test_read_rgb_refuses_above_the_limit_and_accepts_exactly_the_limit(tmp_path):
    Image.fromarray(pattern(100, 100)).save(tmp_path / "big.png")
    with pytest.raises(PoseFaceError, match="image of 100x100 pixels is larger than the decoding limit of 6000 pixels"):
        read_rgb(tmp_path / "big.png", max_pixels=6000)  # Pillow alone only warns below twice its limit
    assert read_rgb(tmp_path / "big.png", max_pixels=10000).shape == (100, 100, 3)
    with pytest.raises(PoseFaceError, match="decoding limit of 9999 pixels"):
        read_rgb(tmp_path / "big.png", max_pixels=9999)


def test_atomic_write_without_replace_keeps_an_existing_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("theirs")
    with pytest.raises(PoseFaceError, match=r"a.txt: already exists and was kept; pass --overwrite or choose another -o"):
        atomic_write(target, lambda tmp: Path(tmp).write_text("ours"), replace=False)
    assert target.read_text() == "theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temporary left
    atomic_write(tmp_path / "b.txt", lambda tmp: Path(tmp).write_text("ours"), replace=False)
    assert (tmp_path / "b.txt").read_text() == "ours"
    write_image_full(tmp_path / "c.png", pattern(4, 4), replace=False)
    with pytest.raises(PoseFaceError, match="c.png: already exists"):
        write_image_full(tmp_path / "c.png", pattern(5, 5), replace=False)
    assert read_image_full(tmp_path / "c.png").shape == (4, 4, 3)


def test_output_checks_name_the_path_and_the_fix(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(PoseFaceError, match=r"file.txt: exists and is not a folder; choose another output folder \(-o\)"):
        check_output_folder(a_file)
    with pytest.raises(PoseFaceError, match=r"out: cannot be created, .*file.txt is a file; choose another output folder \(-o\)"):
        check_output_folder(a_file / "sub" / "out")
    assert check_output_folder(tmp_path / "new" / "out") == tmp_path / "new" / "out"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(PoseFaceError, match="already exists and was kept"):
        check_output_file(a_file, overwrite=False)
    assert check_output_file(a_file, overwrite=True) == a_file
    with pytest.raises(PoseFaceError, match="is a folder; give a file name"):
        check_output_file(tmp_path)
    with pytest.raises(PoseFaceError, match="--max-pixels 0: must be at least 1"):
        check_max_pixels(0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PoseFaceError, match="cannot be written, .*read_only is read-only for this user"):
            check_output_folder(folder / "out")
    finally:
        folder.chmod(0o755)
