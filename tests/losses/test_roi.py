import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from poseface.losses.roi import component_crop_sizes, crop_components, roi_crop, safe_boxes


def test_integer_box_at_its_own_size_equals_slicing():
    torch.manual_seed(0)
    images = torch.randn(3, 3, 32, 40)
    boxes = torch.tensor([[4.0, 6.0, 14.0, 16.0], [0.0, 0.0, 10.0, 10.0], [30.0, 22.0, 40.0, 32.0]])
    crops = roi_crop(images, boxes, 10)
    for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
        torch.testing.assert_close(crops[i], images[i, :, y1:y2, x1:x2], atol=1e-5, rtol=0)


def test_non_square_output_equals_slicing():
    images = torch.randn(1, 2, 20, 20)
    crops = roi_crop(images, torch.tensor([[3.0, 5.0, 11.0, 9.0]]), (4, 8))
    torch.testing.assert_close(crops[0], images[0, :, 5:9, 3:11], atol=1e-5, rtol=0)


def test_sampling_ratio_two_on_a_double_size_box_is_average_pooling():
    images = torch.randn(2, 3, 24, 24)
    boxes = torch.tensor([[2.0, 4.0, 18.0, 20.0]] * 2)
    crops = roi_crop(images, boxes, 8, sampling_ratio=2)
    expected = F.avg_pool2d(images[:, :, 4:20, 2:18], 2)
    torch.testing.assert_close(crops, expected, atol=1e-5, rtol=0)


def test_half_pixel_box_interpolates_neighbours():
    row = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    crop = roi_crop(row, torch.tensor([[1.5, 0.0, 5.5, 4.0]]), 4)
    # sample centres at x = 2, 3, 4, 5, halfway between pixel centres (value = index) -> 1.5, 2.5, ...
    torch.testing.assert_close(crop[0, 0, 0], torch.tensor([1.5, 2.5, 3.5, 4.5]))


def test_gradient_flows_to_the_image_inside_the_box_only():
    images = torch.randn(1, 3, 16, 16, requires_grad=True)
    roi_crop(images, torch.tensor([[2.0, 3.0, 8.0, 9.0]]), 6).sum().backward()
    grad = images.grad[0, 0]
    assert torch.allclose(grad[3:9, 2:8], torch.ones(6, 6))
    grad[3:9, 2:8] = 0
    assert grad.abs().sum() == 0


def test_boxes_get_no_gradient_and_bad_shapes_are_rejected():
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0]], requires_grad=True)
    roi_crop(torch.randn(1, 3, 8, 8, requires_grad=True), boxes, 4).sum().backward()
    assert boxes.grad is None
    with pytest.raises(ValueError, match="boxes must be"):
        roi_crop(torch.randn(2, 3, 8, 8), torch.zeros(1, 4), 4)
    with pytest.raises(ValueError, match=r"\(N, 3, 4\)"):
        crop_components(torch.randn(2, 3, 8, 8), torch.zeros(2, 2, 4), component_crop_sizes(8))


def test_component_sizes_scale_with_the_image():
    assert component_crop_sizes(512) == {"left_eye": 80, "right_eye": 80, "mouth": 120}
    assert component_crop_sizes(256) == {"left_eye": 40, "right_eye": 40, "mouth": 60}
    assert component_crop_sizes(64) == {"left_eye": 10, "right_eye": 10, "mouth": 15}
    assert component_crop_sizes(16)["left_eye"] == 8  # floor of 8 px


def test_crop_components_order_and_shapes():
    images = torch.randn(2, 3, 64, 64)
    boxes = torch.tensor([[[10.0, 20.0, 20.0, 30.0], [40.0, 20.0, 50.0, 30.0], [20.0, 40.0, 35.0, 55.0]]] * 2)
    crops = crop_components(images, boxes, component_crop_sizes(64))
    assert list(crops) == ["left_eye", "right_eye", "mouth"]
    torch.testing.assert_close(crops["right_eye"], images[:, :, 20:30, 40:50], atol=1e-5, rtol=0)
    torch.testing.assert_close(crops["mouth"], images[:, :, 40:55, 20:35], atol=1e-5, rtol=0)


def test_safe_boxes_replaces_missing_and_non_finite_boxes_by_the_whole_image():
    boxes = torch.tensor(
        [
            [[1.0, 2.0, 3.0, 4.0]] * 3,
            [[math.nan, 0.0, 1.0, 1.0]] + [[1.0, 1.0, 2.0, 2.0]] * 2,
            [[5.0, 5.0, 6.0, 6.0]] * 3,
        ]
    )
    has = torch.tensor([True, True, False])
    fixed = safe_boxes(boxes, has, (32, 48))
    whole = torch.tensor([0.0, 0.0, 48.0, 32.0])
    torch.testing.assert_close(fixed[0], boxes[0])
    torch.testing.assert_close(fixed[1, 0], whole)
    torch.testing.assert_close(fixed[1, 1:], boxes[1, 1:])
    torch.testing.assert_close(fixed[2], whole.expand(3, 4))


def load_tool(name: str):
    """A module of tools/ (scripts at the repository root, outside the package)."""
    path = Path(__file__).resolve().parents[2] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_component_preview_sheet_shows_boxes_and_crops():
    component_preview = load_tool("component_preview").component_preview

    images = torch.zeros(2, 3, 64, 64)
    images[:, :, 20:30, 40:50] = 1.0  # a white square exactly where the right-eye box is
    boxes = torch.tensor([[[10.0, 20.0, 20.0, 30.0], [40.0, 20.0, 50.0, 30.0], [20.0, 40.0, 35.0, 55.0]]] * 2)
    sheet = component_preview(images, boxes, torch.tensor([True, False]))
    assert sheet.shape == (128, 256, 3) and sheet.dtype.name == "uint8"
    assert (sheet[0:64, 128:192] == 255).all()  # row 0, right-eye crop: all white
    assert tuple(sheet[20, 15]) == (255, 0, 0)  # red left-eye box edge on the face
    assert (sheet[64:128, 64:] == 128).all()  # sample without boxes: gray tiles
    assert tuple(sheet[64 + 20, 15]) == (128, 128, 128)  # ... and no boxes drawn
