"""Composite group photos for the detection benchmark: true boxes, tones, and the recall/FP scoring."""

import numpy as np
import pytest

from poseface.faces.composite import GroupPhotoConfig, group_photo, iou, score_detections


def test_group_photo_places_every_face_at_the_asked_sizes(astronaut):
    crop = astronaut[30:250, 130:350]
    photo = group_photo([crop] * 12, GroupPhotoConfig(faces=12, per_row=6, tone="sepia", jpeg_quality=40), seed=0)
    assert len(photo.boxes) == 12 and photo.image.dtype == np.uint8 and photo.image.ndim == 3
    widths = [x1 - x0 for x0, _, x1, _ in photo.boxes]
    assert 29 <= min(widths) and max(widths) <= 46
    height, width = photo.image.shape[:2]
    assert all(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height for x0, y0, x1, y1 in photo.boxes)
    grey = group_photo([crop] * 3, GroupPhotoConfig(faces=3, tone="grey"), seed=1).image
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])


def test_scoring_counts_each_true_face_once():
    truth = [(0, 0, 10, 10), (20, 0, 30, 10)]
    assert iou(truth[0], truth[0]) == pytest.approx(1.0) and iou(truth[0], truth[1]) == 0.0
    found = [(0, 0, 10, 10), (1, 1, 10, 10), (50, 50, 60, 60)]  # a duplicate and a false positive
    assert score_detections(truth, found) == (1, 2)
