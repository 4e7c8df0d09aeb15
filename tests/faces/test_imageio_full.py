"""Full-fidelity reading and writing used by `poseface restore` (grey, alpha, 16-bit, EXIF)."""

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from poseface.errors import PoseFaceError
from poseface.imageio import (
    IMAGE_SUFFIXES,
    OUTPUT_SUFFIXES,
    atomic_write,
    broken_links,
    check_max_pixels,
    check_output_file,
    check_output_folder,
    list_images,
    read_image_and_metadata,
    read_image_full,
    read_rgb,
    stale_temporary_images,
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
    with pytest.raises(
        PoseFaceError, match=r"a.txt: already exists and was kept; pass --overwrite or choose another -o"
    ):
        atomic_write(target, lambda tmp: Path(tmp).write_text("ours"), replace=False)
    assert target.read_text() == "theirs" and sorted(p.name for p in tmp_path.iterdir()) == [
        "a.txt"
    ]  # no temporary left
    atomic_write(tmp_path / "b.txt", lambda tmp: Path(tmp).write_text("ours"), replace=False)
    assert (tmp_path / "b.txt").read_text() == "ours"
    write_image_full(tmp_path / "c.png", pattern(4, 4), replace=False)
    with pytest.raises(PoseFaceError, match="c.png: already exists"):
        write_image_full(tmp_path / "c.png", pattern(5, 5), replace=False)
    assert read_image_full(tmp_path / "c.png").shape == (4, 4, 3)


def test_output_checks_name_the_path_and_the_fix(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(
        PoseFaceError, match=r"file.txt: exists and is not a folder; choose another output folder \(-o\)"
    ):
        check_output_folder(a_file)
    with pytest.raises(
        PoseFaceError, match=r"out: cannot be created, .*file.txt is a file; choose another output folder \(-o\)"
    ):
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


def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def with_exif(image, orientation=6):
    exif = image.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "PoseFace test camera"  # Make
    return exif


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_icc_profile_and_exif_are_kept_with_the_orientation_reset(tmp_path, suffix):
    image = Image.fromarray(pattern())
    image.save(tmp_path / f"in{suffix}", icc_profile=srgb_profile(), exif=with_exif(image))
    pixels, metadata = read_image_and_metadata(tmp_path / f"in{suffix}")
    assert pixels.shape == (36, 24, 3)  # rotated upright on read
    write_image_full(tmp_path / f"out{suffix}", pixels, metadata=metadata)
    with Image.open(tmp_path / f"out{suffix}") as written:
        assert written.info.get("icc_profile") == srgb_profile()
        exif = written.getexif()
        assert exif[0x0112] == 1 and exif[0x010F] == "PoseFace test camera"
        assert written.size == (24, 36)  # the TIFF input's own width/height tags are not carried over


def test_without_metadata_nothing_is_added(tmp_path):
    write_image_full(tmp_path / "plain.png", pattern())
    with Image.open(tmp_path / "plain.png") as written:
        assert "icc_profile" not in written.info and not written.getexif()


def test_an_animated_gif_reads_its_first_frame_and_counts_frames(tmp_path):
    frames = [Image.fromarray(np.full((20, 30, 3), value, np.uint8)) for value in (10, 120, 240)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    pixels, metadata = read_image_and_metadata(tmp_path / "a.gif")
    assert pixels.shape == (20, 30, 3) and abs(int(pixels.mean()) - 10) <= 2
    assert metadata.frames == 3
    assert ".gif" in IMAGE_SUFFIXES and ".gif" not in OUTPUT_SUFFIXES
    assert list_images(tmp_path) == [tmp_path / "a.gif"]


def test_broken_links_with_an_image_suffix_are_found(tmp_path):
    Image.fromarray(pattern()).save(tmp_path / "real.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (tmp_path / "fine.png").symlink_to(tmp_path / "real.png")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "deleted.txt")  # not an image name: not an input anyway
    assert broken_links(tmp_path) == [tmp_path / "sub" / "gone.jpg"]
    assert broken_links(tmp_path, recursive=False) == []


def test_stale_temporary_images_are_exactly_atomic_writes_own(tmp_path):
    write_image_full(tmp_path / "kept.png", pattern())
    own = [".tmp-abc_0129.png", ".tmp-zzzzzzzz.jpg", ".tmp-k3j2h1g0.tif"]
    others = [".tmp-short.png", ".tmp-abcdefgh.txt", "x.tmp-abcdefgh.png", ".tmp-abcdefgh.png.bak", ".tmp-ABCDEFGH.png"]
    for name in own + others:
        (tmp_path / name).write_bytes(b"half written")
        os.utime(tmp_path / name, (1_000_000, 1_000_000))
    (tmp_path / ".tmp-newnewne.png").write_bytes(b"still being written")  # newer than the cut-off
    assert [p.name for p in stale_temporary_images(tmp_path, older_than=time.time() - 60)] == sorted(own)
    # the pattern is the one atomic_write really uses
    seen = []
    atomic_write(tmp_path / "probe.png", lambda tmp: seen.append(Path(tmp).name) or Path(tmp).write_bytes(b"x"))
    (tmp_path / seen[0]).write_bytes(b"left behind")
    os.utime(tmp_path / seen[0], (1_000_000, 1_000_000))
    assert seen[0] in [p.name for p in stale_temporary_images(tmp_path, older_than=time.time())]


def test_write_image_full_keeps_metadata_and_an_existing_file_together(tmp_path):
    image = Image.fromarray(pattern())
    image.save(tmp_path / "in.jpg", icc_profile=srgb_profile(), exif=with_exif(image))
    pixels, metadata = read_image_and_metadata(tmp_path / "in.jpg")
    write_image_full(tmp_path / "out.jpg", pixels, metadata=metadata, replace=False)
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.info.get("icc_profile") == srgb_profile() and written.getexif()[0x0112] == 1
    before = (tmp_path / "out.jpg").read_bytes()
    with pytest.raises(PoseFaceError, match="out.jpg: already exists and was kept"):
        write_image_full(tmp_path / "out.jpg", pixels[:5], metadata=metadata, replace=False)
    assert (tmp_path / "out.jpg").read_bytes() == before
    assert not stale_temporary_images(tmp_path, older_than=time.time() + 60)  # no temporary left behind
