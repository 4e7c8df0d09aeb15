import numpy as np
import pytest

from poseface.data.visualize import contact_sheet
from poseface.errors import PoseFaceError


def test_contact_sheet_layout_and_cell_content():
    red = np.zeros((50, 50, 3), np.uint8)
    red[..., 0] = 255
    grey_float = np.full((200, 100), 0.5, np.float32)  # grey, float in [0, 1], not square
    blue = np.zeros((300, 300, 3), np.uint8)
    blue[..., 2] = 255
    sheet = contact_sheet([[red, grey_float, blue], [blue, red, red]], ["a", "b", "c"], cell_size=64, pad=4)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
    assert sheet.shape[1] == 3 * (64 + 4) + 4
    header = sheet.shape[0] - 2 * (64 + 4)
    assert 10 <= header <= 60
    cell = lambda r, c: sheet[header + r * 68 : header + r * 68 + 64, 4 + c * 68 : 4 + c * 68 + 64]  # noqa: E731
    assert (cell(0, 0)[..., 0] == 255).all() and (cell(0, 0)[..., 1] == 0).all()
    assert (cell(1, 0)[..., 2] == 255).all()
    middle = cell(0, 1)
    assert abs(int(middle[32, 32, 0]) - 128) <= 1 and (middle[32, 0] == 255).all()  # letterboxed with white
    assert (sheet[:header] < 128).any()  # the labels were drawn


def test_contact_sheet_with_captions_is_taller_and_checks_shapes():
    image = np.zeros((32, 32, 3), np.uint8)
    plain = contact_sheet([[image, image]], ["x", "y"], cell_size=32)
    captioned = contact_sheet(
        [[image, image]], ["x", "y"], cell_size=32, captions=[["c1", "a very long caption that will not fit"]]
    )
    assert captioned.shape[0] > plain.shape[0] and captioned.shape[1] == plain.shape[1]
    with pytest.raises(PoseFaceError, match="one per label"):
        contact_sheet([[image]], ["x", "y"])
    with pytest.raises(PoseFaceError, match="captions"):
        contact_sheet([[image, image]], ["x", "y"], captions=[["only one"]])
