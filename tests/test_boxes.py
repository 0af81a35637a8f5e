"""Tests for wsol_utils.scoring.boxes, the plumbing both wsoleval evaluators share: every expected number is computed
by hand in the comments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from wsol_utils.scoring.boxes import (
    best_threshold,
    box_iou,
    box_overlap,
    broadcast_iou,
    check_gt_boxes,
    check_iou_levels,
    check_mask,
    check_scoremap,
    max_box_accuracy,
    pxap_bin_edges,
    pxap_from_histograms,
    quantize_scoremap,
    rescale_boxes,
    threshold_list,
    to_numpy,
)

# ----------------------------------------------------------------------------------------------------------
# IoU (wsoleval's +1 pixel convention)
# ----------------------------------------------------------------------------------------------------------


def test_box_iou_inclusive_hand_numbers():
    a = np.array([[0, 0, 9, 9]])
    b = np.array([[5, 5, 14, 14], [20, 20, 30, 30], [0, 0, 9, 9], [9, 0, 18, 9]])
    # [0,0,9,9] vs [5,5,14,14]: inter 5*5 = 25, areas 100 + 100 - 25 = 175
    # disjoint -> 0; identical -> 1; sharing column 9: inter 1*10 = 10, union 100 + 100 - 10 = 190
    np.testing.assert_allclose(box_iou(a, b), [[25 / 175, 0.0, 1.0, 10 / 190]])


def test_box_iou_exclusive_drops_the_plus_one():
    a = np.array([[0, 0, 9, 9]])
    b = np.array([[5, 5, 14, 14], [9, 0, 18, 9]])
    # inter 4*4 = 16, areas 81 + 81 - 16 = 146; sharing only the line x = 9: intersection 0
    np.testing.assert_allclose(box_iou(a, b, inclusive=False), [[16 / 146, 0.0]])


def test_box_iou_degenerate_union_is_zero_not_nan():
    points = np.array([[3, 3, 3, 3]])
    assert box_iou(points, points, inclusive=False)[0, 0] == 0.0
    assert box_iou(points, points, inclusive=True)[0, 0] == 1.0  # one pixel, inclusive


def test_box_iou_shape_and_symmetry():
    rng = np.random.default_rng(0)
    xy = rng.integers(0, 20, size=(5, 2))
    a = np.concatenate([xy, xy + rng.integers(0, 10, size=(5, 2))], axis=1)
    b = a[:3] + 2
    ious = box_iou(a, torch.as_tensor(b))
    assert ious.shape == (5, 3)
    np.testing.assert_allclose(ious, box_iou(b, a).T)


@pytest.mark.parametrize(
    "bad",
    [np.array([[5, 0, 2, 4]]), np.array([[0, 0, np.nan, 4]]), np.array([0, 0, 4, 4]), np.zeros((2, 5))],
)
def test_box_iou_rejects_bad_boxes(bad):
    with pytest.raises(ValueError, match="boxes_a"):
        box_iou(bad, np.array([[0, 0, 1, 1]]))


def test_broadcast_iou_unchecked_inclusive_and_degenerate():
    a, b = np.array([[0, 0, 1, 1], [5, 5, 5, 5]]), np.array([[1, 1, 2, 2], [0, 0, -2, 0]])
    # [0,0,1,1] vs [1,1,2,2]: inter 1 pixel, union 4 + 4 - 1 = 7. The unordered [0,0,-2,0] has "area"
    # (-2 - 0 + 1) * 1 = -1 and no overlap: with [0,0,1,1] union 4 - 1 = 3, IoU 0 / 3 = 0; with the one-pixel
    # [5,5,5,5] union 1 - 1 = 0: degenerate -> 0, never NaN. [5,5,5,5] vs [1,1,2,2]: disjoint -> 0
    np.testing.assert_array_equal(broadcast_iou(a[:, None], b[None]), [[1 / 7, 0.0], [0.0, 0.0]])
    # aligned pairs (no [:, None]): the diagonal of the matrix
    np.testing.assert_array_equal(broadcast_iou(a, b), [1 / 7, 0.0])


def test_box_overlap_counts_pixels_exactly_for_int_boxes():
    inter, area_a, area_b = box_overlap(np.array([2, 3, 6, 4]), np.array([5, 0, 9, 9]))
    # columns 5..6 (2) x rows 3..4 (2) = 4; areas 5 * 2 = 10 and 5 * 10 = 50
    assert (int(inter), int(area_a), int(area_b)) == (4, 10, 50)
    assert np.asarray(inter).dtype == np.int64  # integer boxes: exact integer counts
    inter, area_a, _ = box_overlap(np.array([2.0, 3.0, 6.0, 4.0]), np.array([5.0, 0.0, 9.0, 9.0]), inclusive=False)
    assert (float(inter), float(area_a)) == (1.0, 4.0)  # (6 - 5) * (4 - 3); (6 - 2) * (4 - 3)


# ----------------------------------------------------------------------------------------------------------
# GT rescaling (wsoleval resize_bbox)
# ----------------------------------------------------------------------------------------------------------


def test_rescale_boxes_truncates_like_wsoleval():
    boxes = np.array([[10, 20, 99, 199], [125, 0, 499, 374]])
    # 10*224/500 = 4.48 -> 4; 20*224/375 = 11.95 -> 11; 99*224/500 = 44.35 -> 44; 199*224/375 = 118.87 -> 118
    # 125*224/500 = 56.0 -> 56; 499*224/500 = 223.55 -> 223; 374*224/375 = 223.40 -> 223
    np.testing.assert_array_equal(rescale_boxes(boxes, (500, 375), 224), [[4, 11, 44, 118], [56, 0, 223, 223]])
    with pytest.raises(ValueError, match="negative"):
        rescale_boxes(np.array([[-1, 0, 5, 5]]), (10, 10))


def test_rescale_boxes_to_a_non_square_map():
    boxes = np.array([[0, 0, 499, 332], [13, 7, 101, 99]])
    # to (224, 224) from (500, 333): 499*224/500 = 223.55 -> 223; 332*224/333 = 223.33 -> 223;
    # 13*224/500 = 5.82 -> 5; 7*224/333 = 4.71 -> 4; 101*224/500 = 45.25 -> 45; 99*224/333 = 66.59 -> 66
    out = rescale_boxes(boxes, (500, 333), (224, 224))
    np.testing.assert_array_equal(out, [[0, 0, 223, 223], [5, 4, 45, 66]])
    assert out.dtype == np.int64
    # (w, h) order: 10 * 3 / 30 = 1, 20 * 3 / 30 = 2 in x; 10 * 6 / 30 = 2, 20 * 6 / 30 = 4 in y
    np.testing.assert_array_equal(rescale_boxes(np.array([[10, 10, 20, 20]]), (30, 30), (3, 6)), [[1, 2, 2, 4]])
    with pytest.raises(ValueError, match="positive"):
        rescale_boxes(np.array([[0, 0, 1, 1]]), (0, 10))


# ----------------------------------------------------------------------------------------------------------
# Thresholds, quantisation, summaries
# ----------------------------------------------------------------------------------------------------------


def test_threshold_list_length_and_ends():
    thresholds = threshold_list(0.001)
    assert len(thresholds) == 1000 and thresholds[0] == 0.0 and thresholds[-1] == pytest.approx(0.999)
    np.testing.assert_array_equal(threshold_list(0.25), [0.0, 0.25, 0.5, 0.75])  # 1 is never a threshold
    for bad in (0.0, 1.0, -0.1, "0.1"):
        with pytest.raises(ValueError, match="interval"):
            threshold_list(bad)  # type: ignore[arg-type]  # on purpose


def test_pxap_bin_edges_append_one_two_three():
    np.testing.assert_array_equal(pxap_bin_edges(0.25), [0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0])


def test_quantize_scoremap_truncates_in_float64():
    # 0.5 * 255 = 127.5 -> 127; 1/255 * 255 -> 1 (float64: exactly 1.0); 0.999 * 255 = 254.7 -> 254
    scoremap = np.array([[0.0, 0.5], [1 / 255, 0.999], [1.0, 0.1]], dtype=np.float64)
    np.testing.assert_array_equal(quantize_scoremap(scoremap), [[0, 127], [1, 254], [255, 25]])
    assert quantize_scoremap(scoremap).dtype == np.uint8
    # float32 is widened first: float32(0.1) = 0.100000001490116..., * 255 = 25.50000038 -> 25
    assert quantize_scoremap(np.array([[0.1]], dtype=np.float32))[0, 0] == 25


def test_best_threshold_takes_the_first_maximum():
    # accuracies 100 * [1, 3, 3, 2] / 4 = [25, 75, 75, 50]: max 75, first reached at t = 0.25
    assert best_threshold(np.array([1, 3, 3, 2]), 4, threshold_list(0.25)) == {"accuracy": 75.0, "threshold": 0.25}


def test_max_box_accuracy_hand_case():
    correct_v1 = np.array([0, 2, 1, 0])  # of 2 images, at thresholds 0, .25, .5, .75
    correct_v2 = np.array([[2, 2, 1, 0], [0, 1, 1, 0]])  # levels 30, 70
    result = max_box_accuracy(correct_v1, correct_v2, 2, 0.25, (30, 70))
    # V1: [0, 100, 50, 0] -> 100 at .25; V2 level 30: 100 at 0; level 70: 50 at .25; mean (100 + 50) / 2 = 75
    assert result == {
        "num_images": 2,
        "interval": 0.25,
        "iou_levels": [30, 70],
        "maxboxacc": 100.0,
        "maxboxacc_threshold": 0.25,
        "maxboxacc_v2": 75.0,
        "v2_per_iou": {"30": {"accuracy": 100.0, "threshold": 0.0}, "70": {"accuracy": 50.0, "threshold": 0.25}},
    }


def test_pxap_from_histograms_hand_case():
    # bins [0,.25) [.25,.5) [.5,.75) [.75,1) [1,2) [2,3]; fg [0,1,0,1,1,0], bg [2,0,1,1,0,0]
    # tp = [0,1,2,2,3,3], fp = [0,0,1,2,2,4]; recall = tp/3; precision = [-, 1, 2/3, 1/2, 3/5, 3/7]
    # diff(recall) = [1/3, 1/3, 0, 1/3, 0] -> PxAP = 100 * (1/3 + 2/9 + 1/5) = 100 * 34/45
    background, foreground = np.array([2, 0, 1, 1, 0, 0.0]), np.array([0, 1, 0, 1, 1, 0.0])
    assert pxap_from_histograms(background, foreground) == pytest.approx(100 * 34 / 45)
    with pytest.raises(ValueError, match="no foreground"):
        pxap_from_histograms(background, np.zeros(6))


# ----------------------------------------------------------------------------------------------------------
# Conversion and checks
# ----------------------------------------------------------------------------------------------------------


def test_to_numpy_takes_tensors_arrays_and_lists():
    array = np.arange(3.0)
    assert to_numpy(array) is array  # no copy
    np.testing.assert_array_equal(to_numpy(torch.arange(3.0, requires_grad=True)), array)
    np.testing.assert_array_equal(to_numpy([[1, 2]]), [[1, 2]])
    with pytest.raises(ValueError, match="`boxes` must be an array"):
        to_numpy([[1, 2], [3]], "boxes")  # ragged


@pytest.mark.parametrize(
    ("scoremap", "match"),
    [
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), 1.5), r"\[0, 1\]"),
        (np.full((4, 4), -np.inf), r"\[0, 1\]"),
        (np.zeros((2, 4, 4)), "2-D"),
        (np.zeros((4, 4), dtype=np.uint8), "float"),
        (np.zeros((0, 4)), "empty"),
    ],
)
def test_check_scoremap_rejects_bad_maps(scoremap, match):
    with pytest.raises(ValueError, match=match):
        check_scoremap(scoremap, "m")


def test_check_scoremap_returns_float64():
    checked = check_scoremap(np.array([[0.25, 1.0]], dtype=np.float32))
    assert checked.dtype == np.float64 and checked.tolist() == [[0.25, 1.0]]


def test_check_gt_boxes_truncates_and_refuses_empty_or_negative():
    boxes = check_gt_boxes(np.array([[7.9, 7.2, 9.6, 9.99]]), "gt")
    assert boxes.dtype == np.int64 and boxes.tolist() == [[7, 7, 9, 9]]
    for bad in (np.zeros((0, 4)), np.array([[-1, 0, 3, 3]])):
        with pytest.raises(ValueError, match="at least one GT box, with non-negative"):
            check_gt_boxes(bad, "gt")


def test_check_mask_values_and_shape():
    mask = np.array([[0, 1], [255, 1]], dtype=np.uint8)
    assert check_mask(mask, (2, 2), "m") is mask
    with pytest.raises(ValueError, match=r"0 .background"):
        check_mask(np.full((2, 2), 2, np.uint8), None, "m")
    with pytest.raises(ValueError, match="shape"):
        check_mask(mask, (3, 2), "m")


def test_check_iou_levels():
    levels: list[Any] = [30, np.int64(50), 100]  # numpy integers count as integers
    assert check_iou_levels(levels) == (30, 50, 100)
    for bad in ([], [0], [101], [0.5], [50.0]):
        with pytest.raises(ValueError, match="iou_levels"):
            check_iou_levels(bad)  # type: ignore[arg-type]  # on purpose
