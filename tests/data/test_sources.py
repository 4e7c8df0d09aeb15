import logging
import multiprocessing
import pickle
import tarfile

import numpy as np
import pytest

from poseface.data.sources import FolderSource, TarSource, common_prefix_dir, open_source, output_stems
from poseface.errors import PoseFaceError

EXPECTED = ["broken.jpg", "face.png", "face_flipped.jpg", "notes.txt", "sub/grey.png"]


def test_folder_source_lists_images_by_suffix_and_reads_rgb(image_folder, face_crop):
    source = open_source(image_folder)
    assert isinstance(source, FolderSource)
    assert source.names == EXPECTED  # sorted, relative, hidden files ignored; notes.txt is skipped when read
    assert np.array_equal(source.read(source.index_of("face.png")), face_crop)
    assert source.read(source.index_of("sub/grey.png")).shape == (160, 120, 3)


def test_tar_source_reads_members_in_place_and_matches_the_folder(image_tar, image_folder):
    source = open_source(image_tar)
    folder = open_source(image_folder)
    assert isinstance(source, TarSource)
    assert source.names == ["faces/" + n for n in EXPECTED]
    for name in ("face.png", "face_flipped.jpg", "sub/grey.png"):
        assert np.array_equal(source.read(source.index_of("faces/" + name)), folder.read(folder.index_of(name)))
    assert source.label(0).endswith("hq.tar:faces/broken.jpg")


@pytest.mark.parametrize("kind", ["folder", "tar"])
def test_unreadable_images_are_skipped_with_one_warning_each_and_counted(kind, image_folder, image_tar, caplog):
    source = open_source(image_folder if kind == "folder" else image_tar)
    broken = next(i for i, n in enumerate(source.names) if n.endswith("broken.jpg"))
    with pytest.raises(PoseFaceError, match="broken.jpg: not a readable image"):
        source.read(broken)
    with caplog.at_level(logging.WARNING, logger="poseface.data"):
        results = [source.read_or_skip(i) for i in range(len(source))]
    assert [r is None for r in results] == [True, False, False, True, False]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "broken.jpg" in warnings[0] and "notes.txt" in warnings[1]
    assert all("\n" not in w for w in warnings)
    assert len(source.skipped) == 2
    source.read_or_skip(broken)  # asking again does not count twice
    assert len(source.skipped) == 2


def _read_in_child(source, index, queue):
    queue.put(source.read(index).sum())


def test_tar_source_pickles_and_reopens_its_file_in_each_process(image_tar):
    source = open_source(image_tar)
    expected = int(source.read(1).sum())  # opens the handle in the parent first
    clone = pickle.loads(pickle.dumps(source))
    assert clone._handle is None and int(clone.read(1).sum()) == expected
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_read_in_child, args=(source, i, queue)) for i in (1, 2, 4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    got = sorted(int(queue.get(timeout=5)) for _ in workers)
    assert got == sorted(int(source.read(i).sum()) for i in (1, 2, 4))
    assert int(source.read(1).sum()) == expected  # the parent's handle is still positioned correctly


def test_tar_source_is_safe_to_share_between_threads(image_tar):
    from concurrent.futures import ThreadPoolExecutor

    source = open_source(image_tar)
    expected = {i: source.read(i).sum() for i in (1, 2, 4)}
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: (i, source.read(i).sum()), [1, 2, 4] * 30))
    assert all(value == expected[i] for i, value in got)


def test_empty_or_imageless_sources_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PoseFaceError, match="empty: no image files"):
        open_source(empty)
    (empty / ".DS_Store").write_text("x")
    with pytest.raises(PoseFaceError, match="no image files"):
        open_source(empty)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(PoseFaceError, match="no such folder"):
        open_source(tmp_path / "missing")
    text_only = tmp_path / "text.tar"
    with tarfile.open(text_only, "w") as archive:
        archive.add(empty / ".DS_Store", arcname="faces/.DS_Store")
    with pytest.raises(PoseFaceError, match="no image files"):
        open_source(text_only)


def test_compressed_tar_is_refused_with_a_fix(tmp_path, image_folder):
    path = tmp_path / "hq.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(image_folder / "face.png", arcname="face.png")
    with pytest.raises(PoseFaceError, match="decompress"):
        open_source(path)


def test_output_stems_drop_the_shared_folder_and_stay_unique():
    assert common_prefix_dir(["utkface/a.jpg", "utkface/b.jpg"]) == "utkface/"
    assert output_stems(["utkface/a.jpg", "utkface/b.jpg"]) == ["a", "b"]
    assert output_stems(["x/a.jpg", "y/a.jpg"]) == ["x__a", "y__a"]
    stems = output_stems(["a.jpg", "a.png"])
    assert len(set(stems)) == 2


def test_utkface_tar_is_indexed_and_readable(utkface_tar):
    source = open_source(utkface_tar)
    assert len(source) == 19807  # two of them have no ".jpg" suffix but are JPEGs
    odd = source.index_of("utkface/55_0_0_20170116232725357jpg")
    assert source.read(odd).shape == (200, 200, 3)
    image = source.read(0)
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    assert output_stems(source.names[:2])[0] == source.names[0].split("/")[-1].rsplit(".", 1)[0]


def test_read_rgb_bytes_enforces_the_pixel_limit_exactly():
    import io

    from PIL import Image

    from poseface.imageio import read_rgb_bytes

    limit_before = Image.MAX_IMAGE_PIXELS
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(buffer, "PNG")
    assert read_rgb_bytes(buffer.getvalue(), "a.png", max_pixels=10000).shape == (100, 100, 3)
    with pytest.raises(
        PoseFaceError, match="a.png: image of 100x100 pixels is larger than the decoding limit of 6000 pixels"
    ):
        read_rgb_bytes(buffer.getvalue(), "a.png", max_pixels=6000)  # Pillow alone only warns below twice its limit
    assert Image.MAX_IMAGE_PIXELS == limit_before  # the global limit is put back
