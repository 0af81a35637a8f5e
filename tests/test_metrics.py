"""Tests for wsol_utils.scoring.metrics: every expected number below is computed by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wsol_utils.scoring import metrics
from wsol_utils.scoring.boxes import box_iou
from wsol_utils.scoring.metrics import (
    best_iou,
    localization_summary,
    map_to_box,
    maps_to_boxes,
    maps_to_boxes_at,
    reference_box_metrics,
    reference_pxap,
    ten_crop_logits,
    topk_correct,
    upsample_maps,
    wsoleval_boxes,
    wsoleval_scoremap,
)

# ----------------------------------------------------------------------------------------------------------
# The papers' protocol: map -> box (docs/methods.md §2.1)
# ----------------------------------------------------------------------------------------------------------


def test_normalize_minmax_is_reexported_from_maps():
    from wsol_utils.nets.maps import normalize_minmax

    assert metrics.normalize_minmax is normalize_minmax


def test_map_to_box_takes_the_larger_blob_not_the_brighter_one():
    scoremap = np.zeros((8, 10), dtype=np.float32)
    scoremap[0:2, 0:2] = 1.0  # small, bright: 4 pixels
    scoremap[4:7, 5:9] = 0.5  # large, dimmer: rows 4..6, cols 5..8 = 12 pixels
    np.testing.assert_array_equal(map_to_box(scoremap, tau=0.2), [5, 4, 8, 6])


def test_map_to_box_uses_8_connectivity():
    scoremap = np.zeros((6, 6), dtype=np.float32)
    scoremap[[0, 1, 2], [0, 1, 2]] = 1.0  # a diagonal: one 3-pixel component with 8-, three with 4-connectivity
    scoremap[5, 3:5] = 1.0  # a horizontal pair: 2 pixels
    np.testing.assert_array_equal(map_to_box(scoremap), [0, 0, 2, 2])


def test_map_to_box_tie_goes_to_the_first_component_in_raster_order():
    scoremap = np.zeros((6, 6), dtype=np.float32)
    scoremap[4:6, 0:2] = 1.0  # 4 pixels, starts at row 4
    scoremap[0:2, 3:5] = 1.0  # 4 pixels, starts at row 0 -> label 1
    np.testing.assert_array_equal(map_to_box(scoremap), [3, 0, 4, 1])


def test_map_to_box_threshold_keeps_values_equal_to_tau_times_max():
    scoremap = np.zeros((3, 5), dtype=np.float32)
    scoremap[1, 2] = 1.0
    scoremap[1, 3] = 0.25  # exactly tau * max for tau = 0.25 (exact in float32)
    np.testing.assert_array_equal(map_to_box(scoremap, tau=0.25), [2, 1, 3, 1])  # >= keeps it
    np.testing.assert_array_equal(map_to_box(scoremap, tau=0.26), [2, 1, 2, 1])


def test_map_to_box_normalizes_first():
    scoremap = np.zeros((8, 8), dtype=np.float32)
    scoremap[2:5, 1:7] = 0.3
    scoremap[3, 3] = 1.0
    shifted = (scoremap + 5.0) * 3.0  # min-max normalization removes offset and scale
    np.testing.assert_array_equal(map_to_box(shifted, tau=0.2), [1, 2, 6, 4])
    np.testing.assert_array_equal(map_to_box(scoremap, tau=0.2), [1, 2, 6, 4])


@pytest.mark.parametrize("fill", [0.0, 0.7, float("nan"), float("inf")])
def test_map_to_box_uninformative_map_gives_the_zero_box(fill):
    scoremap = np.full((5, 7), fill, dtype=np.float32)
    if math.isnan(fill) or math.isinf(fill):
        scoremap[:2, :2] = 1.0  # one bad value spoils the map, whatever else it holds
        scoremap[0, 0] = fill
    np.testing.assert_array_equal(map_to_box(scoremap), [0, 0, 0, 0])


def test_map_to_box_single_pixel_and_border_blob_are_inclusive():
    single = np.zeros((6, 9), dtype=np.float32)
    single[4, 7] = 2.0
    np.testing.assert_array_equal(map_to_box(single), [7, 4, 7, 4])
    border = np.zeros((6, 9), dtype=np.float32)
    border[3:6, 6:9] = 1.0  # touches the right and bottom borders: inclusive box ends at W-1, H-1
    np.testing.assert_array_equal(map_to_box(border), [6, 3, 8, 5])


def test_maps_to_boxes_is_per_sample_and_accepts_tensors_and_arrays():
    maps = torch.zeros(3, 6, 6)
    maps[0, 1:3, 1:4] = 1.0
    maps[1, 5, 5] = 4.0
    # maps[2] stays constant -> zero box
    expected = np.array([[1, 1, 3, 2], [5, 5, 5, 5], [0, 0, 0, 0]], dtype=np.float64)
    np.testing.assert_array_equal(maps_to_boxes(maps), expected)
    np.testing.assert_array_equal(maps_to_boxes(maps.numpy().astype(np.float64)), expected)
    assert maps_to_boxes(maps).shape == (3, 4)


def test_maps_to_boxes_at_several_taus_is_one_call_per_tau():
    maps = torch.zeros(2, 8, 8)
    maps[0, 1:6, 1:6] = 0.3
    maps[0, 2:4, 2:4] = 1.0  # tau 0.2: the 5x5 square; tau 0.5: the 2x2 core
    maps[1, 6, 0:7] = torch.linspace(0.1, 1.0, 7)
    taus = [0.2, 0.5, 1.0]
    at = maps_to_boxes_at(maps, taus)
    assert at.shape == (3, 2, 4)
    np.testing.assert_array_equal(at[0, 0], [1, 1, 5, 5])
    np.testing.assert_array_equal(at[1, 0], [2, 2, 3, 3])
    for tau, boxes in zip(taus, at):
        np.testing.assert_array_equal(boxes, maps_to_boxes(maps, tau))


@pytest.mark.parametrize("tau", [0.0, -0.1, 1.5, float("nan"), "0.2"])
def test_tau_outside_unit_interval_is_rejected(tau):
    with pytest.raises(ValueError, match="tau"):
        map_to_box(np.eye(4, dtype=np.float32), tau=tau)


def test_tau_one_keeps_only_the_maximum():
    scoremap = np.array([[0.0, 0.9, 1.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(map_to_box(scoremap, tau=1.0), [2, 0, 2, 1])


def test_map_shapes_are_checked():
    with pytest.raises(ValueError, match="scoremap"):
        map_to_box(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="scoremaps"):
        maps_to_boxes(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="maps"):
        upsample_maps(torch.zeros(1, 1, 3, 3), 8)


def test_upsample_maps_is_bilinear_without_aligned_corners():
    maps = torch.tensor([[[0.0, 1.0]]])  # (B=1, h=1, w=2)
    # align_corners=False: source x = (x_out + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamp -> 0, .25, .75, 1
    out = upsample_maps(maps, (1, 4), mode="bilinear")  # already in [0, 1]: renormalizing changes nothing
    np.testing.assert_allclose(out.numpy(), [[[0.0, 0.25, 0.75, 1.0]]], atol=1e-7)
    assert upsample_maps(torch.zeros(2, 3, 3), 7).shape == (2, 7, 7)


# ----------------------------------------------------------------------------------------------------------
# IoU
# ----------------------------------------------------------------------------------------------------------


def test_best_iou_takes_the_best_gt_box_per_image():
    preds = np.array([[0, 0, 9, 9], [10, 10, 19, 19]])
    gts: list[np.ndarray | torch.Tensor] = [
        np.array([[5, 5, 14, 14], [0, 0, 9, 9]]),
        torch.tensor([[15.0, 10.0, 24.0, 19.0]]),
    ]
    # image 1: max(25/175, 1) = 1; image 2: inter 5*10 = 50, union 100 + 100 - 50 = 150
    np.testing.assert_allclose(best_iou(preds, gts), [1.0, 50 / 150])


def test_best_iou_equals_the_per_image_max_of_box_iou():
    rng = np.random.default_rng(0)
    corners = rng.integers(0, 40, size=(50, 2))
    preds = np.concatenate([corners, corners + rng.integers(0, 20, size=(50, 2))], axis=1)
    gts = []
    for count in rng.integers(1, 4, size=50):
        start = rng.integers(0, 40, size=(count, 2))
        gts.append(np.concatenate([start, start + rng.integers(0, 20, size=(count, 2))], axis=1))
    expected = [box_iou(pred[None], gt).max() for pred, gt in zip(preds, gts)]
    np.testing.assert_array_equal(best_iou(preds, gts), expected)


def test_best_iou_rejects_missing_gt():
    with pytest.raises(ValueError, match=r"gt_boxes\[0\]"):
        best_iou(np.array([[0, 0, 1, 1]]), [np.zeros((0, 4))])
    with pytest.raises(ValueError, match="entries"):
        best_iou(np.array([[0, 0, 1, 1]]), [])


# ----------------------------------------------------------------------------------------------------------
# Top-1 / Top-5 / GT-known
# ----------------------------------------------------------------------------------------------------------


def _toy_batch() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    logits = torch.tensor(
        [
            [9.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # label 0 is top-1
            [0.0, 8.0, 9.0, 1.0, 2.0, 3.0],  # label 1 is 2nd: top-5 only
            [1.0, 2.0, 9.0, 3.0, 4.0, 5.0],  # label 2 is top-1
            [6.0, 5.0, 4.0, 0.0, 3.0, 2.0],  # label 3 is last (6th): not in the top-5
        ]
    )
    labels = torch.tensor([0, 1, 2, 3])
    ious = np.array([0.5, 0.7, 0.3, 0.9])  # 0.5 counts as correct (>=)
    return logits, labels, ious


def test_topk_correct_on_toy_batch():
    logits, labels, _ = _toy_batch()
    assert topk_correct(logits, labels, 1).tolist() == [True, False, True, False]
    assert topk_correct(logits, labels, 5).tolist() == [True, True, True, False]
    assert topk_correct(logits, labels, 6).tolist() == [True, True, True, True]


def test_localization_summary_on_toy_batch():
    logits, labels, ious = _toy_batch()
    summary = localization_summary(logits, labels, ious)
    # box ok (IoU >= 0.5): [T, T, F, T]; top-1: [T, F, T, F]; top-5: [T, T, T, F]
    # cls top-1 2/4, cls top-5 3/4, loc top-1 (top1 & box) 1/4, loc top-5 (top5 & box) 2/4, GT-known 3/4
    expected_acc = {
        "cls_acc_top1": 50.0,
        "cls_acc_top5": 75.0,
        "loc_acc_top1": 25.0,
        "loc_acc_top5": 50.0,
        "gt_known_loc_acc": 75.0,
    }
    assert set(summary) == set(expected_acc) | {k.replace("_acc", "_err") for k in expected_acc}
    for key, acc in expected_acc.items():
        assert summary[key] == acc
        assert summary[key.replace("_acc", "_err")] == 100.0 - acc


def test_localization_summary_with_fewer_than_five_classes():
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    labels = torch.tensor([0, 0])  # second: label ranked last of 3, still in "top-5" = top-3
    summary = localization_summary(logits, labels, torch.tensor([0.6, 0.6]))
    assert summary["cls_acc_top1"] == 50.0 and summary["cls_err_top5"] == 0.0
    assert summary["loc_acc_top1"] == 50.0 and summary["loc_acc_top5"] == 100.0


def test_localization_summary_rejects_bad_input():
    logits, labels, ious = _toy_batch()
    with pytest.raises(ValueError, match="gt_known_iou"):
        localization_summary(logits, labels, ious[:3])
    with pytest.raises(ValueError, match="gt_known_iou"):
        localization_summary(logits, labels, np.array([0.5, np.nan, 0.1, 0.2]))
    with pytest.raises(ValueError, match="labels"):
        localization_summary(logits, torch.tensor([0, 1, 2, 6]), ious)
    with pytest.raises(ValueError, match="logits"):
        topk_correct(logits[0], labels[:1], 1)


def test_ten_crop_logits_averages_probabilities_per_image():
    # image 0: crops [0, 0] and [ln 3, 0] -> probs [.5, .5] and [.75, .25] -> mean [.625, .375]
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(ten_crop_logits(logits, num_crops=2).numpy(), [[0.625, 0.375], [0.5, 0.5]], rtol=1e-6)
    raw = ten_crop_logits(logits.reshape(2, 2, 2), softmax=False)
    np.testing.assert_allclose(raw.numpy(), [[math.log(3.0) / 2, 0.0], [1.0, 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="num_crops"):
        ten_crop_logits(logits, num_crops=3)


# ----------------------------------------------------------------------------------------------------------
# The literal wsoleval reference (docs/methods.md §2.2)
# ----------------------------------------------------------------------------------------------------------


def _ring() -> np.ndarray:
    ring = np.zeros((10, 10))
    ring[1:9, 1:9] = 0.7
    ring[3:7, 3:7] = 0.0  # the hole
    ring[1, 1] = 1.0
    return ring


def test_wsoleval_boxes_ring_v1_outer_contour_v2_adds_the_hole():
    ring = _ring()
    # outer contour: boundingRect (1, 1, 8, 8) -> [1, 1, 9, 9]; hole contour (inner boundary pixels 2..7):
    # boundingRect (2, 2, 6, 6) -> [2, 2, 8, 8]; contourArea 49 (outer) > 23 (hole, corners cut)
    np.testing.assert_array_equal(wsoleval_boxes(ring, 0.0, multi_contour=False), [[1, 1, 9, 9]])
    np.testing.assert_array_equal(wsoleval_boxes(ring, 0.0, multi_contour=True), [[1, 1, 9, 9], [2, 2, 8, 8]])


def test_wsoleval_boxes_v1_takes_the_largest_contour_area():
    scoremap = np.zeros((12, 12))
    scoremap[0:2, 0:2] = 1.0  # 2x2 pixels: contourArea 1
    scoremap[5:9, 4:10] = 0.5  # 4x6 pixels: contourArea 3 * 5 = 15
    np.testing.assert_array_equal(wsoleval_boxes(scoremap, 0.1, False), [[4, 5, 10, 9]])
    assert sorted(wsoleval_boxes(scoremap, 0.1, True).tolist()) == [[0, 0, 2, 2], [4, 5, 10, 9]]


def test_wsoleval_boxes_no_contour_gives_the_zero_box():
    # an all-zero map: img.max() = 0, nothing is > 0 at any threshold
    np.testing.assert_array_equal(wsoleval_boxes(np.zeros((5, 5)), 0.0, False), [[0, 0, 0, 0]])
    np.testing.assert_array_equal(wsoleval_boxes(np.zeros((5, 5)), 0.0, True), [[0, 0, 0, 0]])


def test_wsoleval_boxes_single_pixel_at_the_highest_threshold():
    scoremap = np.zeros((5, 5))
    scoremap[2, 2] = 1.0  # img 255 > int(0.999 * 255) = 254 -> boundingRect (2, 2, 1, 1) -> [2, 2, 3, 3]
    np.testing.assert_array_equal(wsoleval_boxes(scoremap, 0.999, False), [[2, 2, 3, 3]])
    scoremap[2, 2] = 0.999  # img int(254.745) = 254 = img.max(); cut-off int(0.999 * 254) = 253 -> kept
    np.testing.assert_array_equal(wsoleval_boxes(scoremap, 0.999, False), [[2, 2, 3, 3]])


def test_wsoleval_boxes_clip_only_at_the_border():
    scoremap = np.zeros((8, 10))
    scoremap[5:8, 7:10] = 1.0  # touches right and bottom: x + w = 10 -> min(10, 9) = 9; y + h = 8 -> 7
    scoremap[1:3, 1:4] = 1.0  # inside: x + w = 4, y + h = 3 (one wider than the inclusive box)
    boxes = sorted(wsoleval_boxes(scoremap, 0.5, True).tolist())
    assert boxes == [[1, 1, 4, 3], [7, 5, 9, 7]]


def test_wsoleval_cutoff_is_strict_and_relative_to_the_map_max():
    # public wsoleval: binary = img > int(t * img.max()); the shorthand int(t * 255) (docs/methods.md §2.2, step 5)
    # differs here:
    scoremap = np.zeros((3, 7))
    scoremap[1, 1] = 0.5  # img 127 (0.5 * 255 = 127.5) -> img.max() = 127, cut-off int(0.5 * 127) = 63
    scoremap[1, 3] = 0.25  # img 63 (63.75): not > 63 (strict)
    scoremap[1, 5] = 0.26  # img 66 (66.3): > 63, kept (with int(t * 255) = 127 it would be dropped)
    boxes = sorted(wsoleval_boxes(scoremap, 0.5, True).tolist())
    assert boxes == [[1, 1, 2, 2], [5, 1, 6, 2]]


@pytest.mark.parametrize(
    ("scoremap", "match"),
    [
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), 1.5), r"\[0, 1\]"),
        (np.full((4, 4), -0.1), r"\[0, 1\]"),
        (np.zeros((2, 4, 4)), "2-D"),
        (np.zeros((4, 4), dtype=np.uint8), "float"),
    ],
)
def test_wsoleval_boxes_rejects_bad_maps(scoremap, match):
    with pytest.raises(ValueError, match=match):
        wsoleval_boxes(scoremap, 0.5, False)


def test_wsoleval_scoremap_normalizes_after_cubic_resize():
    raw = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = wsoleval_scoremap(raw, size=(6, 8))
    assert out.shape == (6, 8) and out.dtype == np.float64  # size is (H, W)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(wsoleval_scoremap(3.0 * raw + 7.0, size=(6, 8)), out, atol=1e-12)
    rows = np.tile(np.array([[0.0], [1.0], [3.0]]), (1, 4))  # constant along each row stays so
    out_rows = wsoleval_scoremap(rows, size=5)
    np.testing.assert_allclose(out_rows, np.repeat(out_rows[:, :1], 5, axis=1), atol=1e-12)


@pytest.mark.parametrize("bad_value", [2.0, np.nan])
def test_wsoleval_scoremap_constant_or_nan_map_is_zero(bad_value):
    raw = np.full((7, 7), 2.0)  # constant ...
    raw[3, 3] = bad_value  # ... or holding one NaN
    np.testing.assert_array_equal(wsoleval_scoremap(raw, 14), np.zeros((14, 14)))


def _table_case() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three 10x10 maps whose results at interval 0.25 are worked out in test_reference_box_metrics_hand_table."""
    image1 = np.zeros((10, 10))
    image1[5:10, 5:10] = 0.3  # halo, img 76
    image1[7:10, 7:10] = 1.0  # core, img 255
    image3 = np.full((10, 10), 0.1)  # haze, img 25
    image3[5:10, 5:10] = 0.7  # blob, img 178
    image3[9, 9] = 1.0
    gt_boxes = [
        np.array([[7, 7, 9, 9]]),
        np.array([[2, 2, 6, 6]]),
        np.array([[5, 5, 9, 9], [0, 0, 1, 1]]),  # a second GT box that never wins
    ]
    return [image1, _ring(), image3], gt_boxes


def test_reference_box_metrics_hand_table():
    # thresholds 0, .25, .5, .75 -> cut-offs int(t*255) = 0, 63, 127, 191 (every map reaches 1.0)
    # image 1: t=0,.25: halo+core [5,5,9,9] vs GT [7,7,9,9]: 9/25 = .36; t=.5,.75: core [7,7,9,9] -> 1
    #          V1 = V2 = [.36, .36, 1, 1]
    # image 2 (ring, GT [2,2,6,6]): t<=.5: outer [1,1,9,9]: 25/81 = .309; hole [2,2,8,8]: 25/49 = .510
    #          t=.75: pixel (1,1) -> [1,1,2,2]: 1/(4+25-1) = .036
    #          V1 = [.309, .309, .309, .036]; V2 = [.510, .510, .510, .036]
    # image 3 (GT [5,5,9,9] and [0,0,1,1]): t=0: all -> [0,0,9,9]: max(25/100, 4/100) = .25;
    #          t=.25,.5: blob [5,5,9,9] -> 1; t=.75: pixel (9,9) -> [9,9,9,9] (clipped): 1/25 = .04
    # correct per threshold (images 1,2,3 -> count):
    #   V1 @50: 0011, 0000, 0110 -> [0,1,2,1] -> max 200/3 at t=.5
    #   V2 @30: 1111, 1110, 0110 -> [2,3,3,2] -> 100 first at t=.25
    #   V2 @50: 0011, 1110, 0110 -> [1,2,3,1] -> 100 at t=.5
    #   V2 @70: 0011, 0000, 0110 -> [0,1,2,1] -> 200/3 at t=.5
    #   MaxBoxAccV2 = (100 + 100 + 200/3) / 3 = 800/9
    scoremaps, gt_boxes = _table_case()
    result = reference_box_metrics(scoremaps, gt_boxes, interval=0.25)
    assert result["num_images"] == 3 and result["interval"] == 0.25 and result["iou_levels"] == [30, 50, 70]
    assert result["maxboxacc"] == pytest.approx(200 / 3) and result["maxboxacc_threshold"] == 0.5
    assert result["maxboxacc_v2"] == pytest.approx(800 / 9)
    assert result["v2_per_iou"] == {
        "30": {"accuracy": 100.0, "threshold": 0.25},
        "50": {"accuracy": 100.0, "threshold": 0.5},
        "70": {"accuracy": pytest.approx(200 / 3), "threshold": 0.5},
    }


def test_reference_box_metrics_truncates_gt_and_never_clips_it():
    scoremaps, _ = _table_case()
    image1 = scoremaps[0]
    # fractional GT -> int() -> [7,7,9,9] -> correct at t=.5, .75 (IoU 1)
    fractional = reference_box_metrics([image1], [np.array([[7.9, 7.2, 9.6, 9.99]])], interval=0.25)
    assert fractional["maxboxacc"] == 100.0 and fractional["maxboxacc_threshold"] == 0.5
    # GT beyond the 10x10 map is kept: core [7,7,9,9] vs [7,7,12,12] = 9/36 = .25 -> never >= .3
    outside = reference_box_metrics([image1], [np.array([[7, 7, 12, 12]])], interval=0.25)
    assert outside["maxboxacc"] == 0.0 and outside["v2_per_iou"]["30"]["accuracy"] == 0.0


def test_reference_box_metrics_iou_equal_to_the_level_counts_as_correct():
    scoremap = np.zeros((12, 12))
    scoremap[0:4, 0:4] = 1.0  # boundingRect (0, 0, 4, 4) -> box [0, 0, 4, 4] covering 5 * 5 = 25 pixels
    # GT [0, 0, 9, 4] (50 pixels) contains it: IoU = 25 / 50 = 0.5 exactly -> correct at level 50
    # GT [0, 0, 9, 6] (70 pixels): IoU = 25 / 70 = 0.357 -> correct at 30 only
    result = reference_box_metrics(
        [scoremap, scoremap], [np.array([[0, 0, 9, 4]]), np.array([[0, 0, 9, 6]])], interval=0.5
    )
    assert result["maxboxacc"] == 50.0
    assert [result["v2_per_iou"][k]["accuracy"] for k in ("30", "50", "70")] == [100.0, 50.0, 0.0]


def test_reference_box_metrics_rejects_bad_input():
    scoremaps, gt_boxes = _table_case()
    with pytest.raises(ValueError, match="NaN"):
        reference_box_metrics([np.full((4, 4), np.nan)], [np.array([[0, 0, 1, 1]])])
    with pytest.raises(ValueError, match="different lengths"):
        reference_box_metrics(scoremaps, gt_boxes[:2], interval=0.25)
    with pytest.raises(ValueError, match="no score maps"):
        reference_box_metrics([], [])
    with pytest.raises(ValueError, match="interval"):
        reference_box_metrics(scoremaps, gt_boxes, interval=0.0)
    with pytest.raises(ValueError, match="non-negative"):
        reference_box_metrics(scoremaps[:1], [np.array([[-1, 0, 3, 3]])], interval=0.25)
    with pytest.raises(ValueError, match="iou_levels"):
        reference_box_metrics(scoremaps, gt_boxes, iou_levels=(0.5,))  # type: ignore[arg-type]  # on purpose


def test_reference_pxap_hand_case():
    scores = [np.array([[0.9, 0.6, 0.3, 0.1]]), np.array([[1.0, 0.6, 0.0, 0.8]])]
    masks = [np.array([[1, 0, 1, 0]], np.uint8), np.array([[1, 255, 0, 0]], np.uint8)]
    # bins [0,.25) [.25,.5) [.5,.75) [.75,1) [1,2) [2,3]
    # fg: .9, .3, 1.0 -> [0,1,0,1,1,0]; bg: .6, .1, 0, .8 -> [2,0,1,1,0,0]; the ignored .6 counts nowhere
    # tp = [0,1,2,2,3,3], fp = [0,0,1,2,2,4]; recall = tp/3; precision = [-, 1, 2/3, 1/2, 3/5, 3/7]
    # diff(recall) = [1/3, 1/3, 0, 1/3, 0] -> PxAP = 100 * (1/3 + 2/9 + 1/5) = 100 * 34/45
    assert reference_pxap(scores, masks, interval=0.25) == pytest.approx(100 * 34 / 45)


def test_reference_pxap_perfect_separation_is_100():
    scores = [np.array([[0.9, 0.8, 0.2, 0.1]])]
    masks = [np.array([[1, 1, 0, 0]], np.uint8)]
    assert reference_pxap(scores, masks, interval=0.01) == pytest.approx(100.0)


def test_reference_pxap_rejects_bad_masks():
    scores = [np.zeros((2, 2))]
    with pytest.raises(ValueError, match=r"0 .background"):
        reference_pxap(scores, [np.full((2, 2), 2, np.uint8)])
    with pytest.raises(ValueError, match="shape"):
        reference_pxap(scores, [np.zeros((3, 2), np.uint8)])
    with pytest.raises(ValueError, match="no foreground"):
        reference_pxap(scores, [np.zeros((2, 2), np.uint8)])


def test_box_steps_show_the_papers_rule_and_end_in_the_same_box():
    from wsol_utils.scoring.metrics import box_steps, map_to_box

    scoremap = np.zeros((6, 8))
    scoremap[1:3, 1:3] = 1.0  # 4 px at the max
    scoremap[4, 4:8] = 0.5  # 4 px at half the max...
    scoremap[5, 4:6] = 0.3  # ...plus 2 px below it: the larger component at tau 0.2
    steps = box_steps(scoremap, tau=0.2)
    assert steps["map"].max() == 1.0 and steps["map"].min() == 0.0
    assert steps["foreground"].sum() == 10 and steps["component"].sum() == 6
    assert steps["box"].tolist() == [4.0, 4.0, 7.0, 5.0] == map_to_box(scoremap, 0.2).tolist()
    high = box_steps(scoremap, tau=0.6)  # only the max survives
    assert high["component"].sum() == 4 and high["box"].tolist() == [1.0, 1.0, 2.0, 2.0]
    flat = box_steps(np.full((3, 3), 2.0))
    assert not flat["foreground"].any() and flat["box"].tolist() == [0.0, 0.0, 0.0, 0.0]
