"""Tests for wsol_utils.scoring.boxeval: the fast evaluator must give the literal reference's numbers exactly."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from score_maps import blobs, corner_cases, generated_dataset, gt_boxes_for, normalize

from wsol_utils.scoring import boxeval
from wsol_utils.scoring.boxes import quantize_scoremap
from wsol_utils.scoring.boxeval import (
    BoxEvaluator,
    PxAPEvaluator,
    _contours_of_levels,
    _level_windows,
    _tree_contour_boxes,
    component_tree_available,
    image_threshold_hits,
    image_threshold_ious,
)
from wsol_utils.scoring.metrics import reference_box_metrics, reference_pxap

# ------------------------------------------------------------------ generated maps with the corner cases


def _fast(maps: list, boxes: list, **kwargs) -> dict:
    evaluator = BoxEvaluator(**kwargs)
    for scoremap, gt in zip(maps, boxes):
        evaluator.accumulate(scoremap, gt)
    return evaluator.compute()


def _opencv_contours(img: np.ndarray, low: int) -> Any:
    """wsoleval's ``findContours`` of the binary image ``img >= low``, traced alone."""
    return cv2.findContours((img >= low).astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]


def _opencv_boxes(contours: Any, shape: tuple[int, ...]) -> list[list[int]]:
    """wsoleval's boxes of ``contours`` in an ``(H, W)`` map: ``boundingRect``, clipped to ``[x, y, min(x + w, W - 1),
    min(y + h, H - 1)]``, in OpenCV's order (no placeholder for an empty list)."""
    height, width = shape
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return boxes


# ------------------------------------------------------------------ hand-computed cases


def test_square_blob_box_is_one_pixel_wider_as_wsoleval() -> None:
    scoremap = np.zeros((6, 6))
    scoremap[1:4, 1:4] = 1.0  # 3x3 square: boundingRect (1, 1, 3, 3) -> box [1, 1, 4, 4]
    iou_largest, iou_all = image_threshold_ious(scoremap, np.array([[1, 1, 3, 3]]), np.array([0.0, 0.5, 0.99]))
    np.testing.assert_array_equal(iou_largest, [9 / 16] * 3)
    np.testing.assert_array_equal(iou_all, [9 / 16] * 3)


def test_empty_map_scores_the_zero_box() -> None:
    # no contour -> box [0, 0, 0, 0]: IoU 1 with a GT box that is the top-left pixel, 0 elsewhere
    ious = image_threshold_ious(np.zeros((5, 5)), np.array([[0, 0, 0, 0], [3, 3, 4, 4]]), np.array([0.0, 0.5]))
    np.testing.assert_array_equal(ious, [[1.0, 1.0], [1.0, 1.0]])


def test_hole_contour_counts_for_v2_but_not_v1() -> None:
    scoremap = np.ones((9, 9))
    scoremap[3:6, 3:6] = 0.0  # a 3x3 hole; its contour's box is [2, 2, 7, 7]
    gt = np.array([[2, 2, 6, 6]])
    iou_largest, iou_all = image_threshold_ious(scoremap, gt, np.array([0.5]))
    assert iou_largest[0] == 25 / 81  # the outer contour's box [0, 0, 9, 9] clipped to [0, 0, 8, 8]
    assert iou_all[0] == 25 / 36


def test_floor_skips_only_binary_images_whose_boxes_cannot_reach_it() -> None:
    scoremap = np.zeros((10, 10))
    scoremap[4, 4] = 1.0  # at t = 0.5 one pixel: box [4, 4, 5, 5], covering at most 4 / 100 of the GT box
    scoremap[1:9, 1:9] = np.maximum(scoremap[1:9, 1:9], 0.4)  # at t = 0.2: box [1, 1, 9, 9] (clipped)
    gt = np.array([[0, 0, 9, 9]])
    thresholds = np.array([0.2, 0.5])
    exact_largest, exact_all = image_threshold_ious(scoremap, gt, thresholds)
    np.testing.assert_array_equal(exact_all, [81 / 100, 4 / 100])
    largest, every = image_threshold_ious(scoremap, gt, thresholds, floor=0.3)
    np.testing.assert_array_equal(every, [81 / 100, 0.0])  # 0.04 < 0.3: not traced, reported as 0
    np.testing.assert_array_equal(largest, [exact_largest[0], 0.0])
    np.testing.assert_array_equal(image_threshold_ious(scoremap, gt, thresholds, floor=0.04)[1], exact_all)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("skipped", [0.0, 0.6])
def test_one_cut_stack_traces_each_binary_image_as_findcontours_alone(seed: int, skipped: float) -> None:
    """The stacked, window-cut tracing gives, level by level and in order, the boxes and areas of
    ``findContours`` on each uncut binary image (OpenCV's own ``boundingRect`` and ``contourArea``), also when
    the lowest levels are left out (as pruned levels are), so that the window is smaller than the map."""
    rng = np.random.default_rng(seed)
    maps = [*corner_cases(16), np.zeros((1, 1))] + [blobs(rng, 40, 29) for _ in range(12)]
    for scoremap in maps:
        img = quantize_scoremap(scoremap)
        values = np.flatnonzero(np.bincount(img.ravel(), minlength=256))
        lows = np.append(values[int(skipped * len(values)) :], [256])  # the last level has no pixel
        found = _contours_of_levels(img, lows, _level_windows(img, lows)[0])
        ends = np.append(found.starts[1:], len(found.boxes))
        for low, start, end in zip(lows, found.starts, ends):
            contours = _opencv_contours(img, low)
            assert found.boxes[start:end].tolist() == (_opencv_boxes(contours, img.shape) or [[0, 0, 0, 0]])
            areas = [2 * cv2.contourArea(contour) for contour in contours] or [0.0]
            assert found.areas2[start:end].tolist() == areas


# ------------------------------------------------------------------ the component tree (V1/V2 hits without tracing)

needs_tree = pytest.mark.skipif(not component_tree_available(), reason="the component tree is not compiled")


def test_component_tree_is_built() -> None:
    """Where a C compiler and Python's headers are, `make install` must have compiled the component tree (else the
    evaluator silently runs at half speed)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        pytest.skip("no C compiler or no Python.h: the tracing path is the evaluator's only path here")
    assert component_tree_available(), "wsol_utils/scoring/_component_tree.c was not compiled: run `make install`"


@needs_tree
def test_tree_boxes_of_a_ring_with_an_island_by_hand() -> None:
    img = np.zeros((9, 9), dtype=np.uint8)
    img[1:7, 1:7] = 200  # a ring: rows/cols 1-6 ...
    img[3:5, 3:5] = 0  # ... around a 2x2 hole (rows/cols 3-4)
    img[8, 8] = 120  # a lone pixel in the corner, 8-separated from the ring
    boxes, starts = _tree_contour_boxes(img, np.array([120, 200]))
    np.testing.assert_array_equal(starts, [0, 3])
    # level 120: the ring [1, 1, 6 + 1, 6 + 1], the pixel [8, 8, 8, 8] (clipped at W - 1), the hole grown by one
    # pixel [2, 2, 5 + 1, 5 + 1]; level 200: the ring and its hole
    assert sorted(boxes[:3].tolist()) == sorted([[1, 1, 7, 7], [8, 8, 8, 8], [2, 2, 6, 6]])
    assert sorted(boxes[3:].tolist()) == sorted([[1, 1, 7, 7], [2, 2, 6, 6]])


@needs_tree
@pytest.mark.parametrize("seed", range(3))
def test_tree_boxes_are_findcontours_boxes_level_by_level(seed: int) -> None:
    """The untraced boxes are, level by level, the multiset of OpenCV's boxes (outer and hole contours, nested
    islands, 8- against 4-connectivity on the checkerboard, maps touching the border)."""
    rng = np.random.default_rng(seed)
    maps = [*corner_cases(16), np.zeros((1, 1)), rng.random((1, 7)), rng.random((23, 17)), rng.random((40, 3))]
    maps += [blobs(rng, 40, 29) for _ in range(10)]
    for scoremap in maps:
        img = quantize_scoremap(scoremap)
        values = np.flatnonzero(np.bincount(img.ravel(), minlength=256))
        lows = values[seed * len(values) // 4 :]  # the lowest levels left out, as pruned levels are
        boxes, starts = _tree_contour_boxes(img, lows)
        ends = np.append(starts[1:], len(boxes))
        for low, start, end in zip(lows, starts, ends):
            expected = _opencv_boxes(_opencv_contours(img, low), img.shape)
            assert sorted(boxes[start:end].tolist()) == sorted(expected)


@needs_tree
def test_tree_rejects_bad_input_with_a_clear_error() -> None:
    tree = boxeval._component_tree
    assert tree is not None
    image = np.zeros((4, 5), dtype=np.uint8)
    with pytest.raises(ValueError, match="height \\* width"):
        tree.level_contour_boxes(image.data, 4, 4, np.array([1], dtype=np.int32).data)
    with pytest.raises(ValueError, match="strictly ascending"):
        tree.level_contour_boxes(image.data, 4, 5, np.array([3, 3], dtype=np.int32).data)
    with pytest.raises(ValueError, match="strictly ascending"):
        tree.level_contour_boxes(image.data, 4, 5, np.array([256], dtype=np.int32).data)


def test_hits_of_a_hole_by_hand_on_both_paths() -> None:
    scoremap = np.ones((9, 9))
    scoremap[3:6, 3:6] = 0.0  # outer box [0, 0, 8, 8]: IoU 25 / 81 with the GT box; hole box [2, 2, 7, 7]: 25 / 36
    gt = np.array([[2, 2, 6, 6]])
    paths = [False, True] if component_tree_available() else [False]
    for component_tree in paths:
        hit_v1, hit_v2 = image_threshold_hits(scoremap, gt, np.array([0.5]), (30, 50, 70), component_tree)
        assert hit_v1.tolist() == [False]  # the contours disagree about IoU 50: the largest (outer) decides
        assert hit_v2.tolist() == [[True], [True], [False]]  # 25 / 36 = 0.69


@needs_tree
@pytest.mark.parametrize("seed", range(2))
def test_hits_from_the_tree_equal_hits_from_tracing(seed: int) -> None:
    maps, boxes = generated_dataset(60, seed=10 + seed)
    rng = np.random.default_rng(seed)
    maps += [normalize(rng.random((31, 26))) for _ in range(5)]  # islands and holes at every level
    boxes += [gt_boxes_for(rng, 31, 26) for _ in range(5)]
    thresholds = np.arange(0, 1, 0.001)
    for scoremap, gt in zip(maps, boxes):
        for levels in [(30, 50, 70), (10, 90)]:
            tree = image_threshold_hits(scoremap, gt, thresholds, levels, component_tree=True)
            traced = image_threshold_hits(scoremap, gt, thresholds, levels, component_tree=False)
            np.testing.assert_array_equal(tree[0], traced[0])
            np.testing.assert_array_equal(tree[1], traced[1])


def test_tree_required_but_not_compiled_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boxeval, "_component_tree", None)
    with pytest.raises(RuntimeError, match="make install"):
        image_threshold_hits(np.ones((4, 4)), np.array([[0, 0, 3, 3]]), np.array([0.5]), component_tree=True)
    evaluator = BoxEvaluator(interval=0.1)  # None: falls back to tracing, same counts
    evaluator.accumulate(np.ones((4, 4)), np.array([[0, 0, 3, 3]]))
    assert evaluator.compute()["maxboxacc"] == 100.0


# ------------------------------------------------------------------ parity with the literal reference


def test_parity_with_reference_on_hundreds_of_maps_coarse_interval() -> None:
    maps, boxes = generated_dataset(300, seed=0)
    rng = np.random.default_rng(8)
    maps += [blobs(rng, 224, 224) for _ in range(3)]  # full-size maps as wsoleval scores them
    boxes += [
        np.array([[40, 30, 150, 200], [0, 0, 223, 223]]),
        np.array([[100, 0, 223, 50]]),
        gt_boxes_for(rng, 224, 224),
    ]
    for interval in (0.05, 0.3):
        assert _fast(maps, boxes, interval=interval) == reference_box_metrics(maps, boxes, interval=interval)


def test_parity_with_reference_at_interval_0001() -> None:
    maps, boxes = generated_dataset(20, seed=1)
    kwargs: dict[str, Any] = {"interval": 0.001, "iou_levels": (30, 50, 70, 90)}
    assert _fast(maps, boxes, **kwargs) == reference_box_metrics(maps, boxes, **kwargs)


def test_merge_of_two_halves_equals_one_pass() -> None:
    maps, boxes = generated_dataset(40, seed=3)
    first, second = BoxEvaluator(interval=0.01), BoxEvaluator(interval=0.01)
    for index, (scoremap, gt) in enumerate(zip(maps, boxes)):
        (first if index % 2 else second).accumulate(scoremap, gt)
    assert first.merge(second).compute() == _fast(maps, boxes, interval=0.01)
    with pytest.raises(ValueError, match="differ"):
        first.merge(BoxEvaluator(interval=0.02))


@pytest.mark.parametrize("threads", [1, 3])
def test_accumulate_batch_takes_tensors(threads: int) -> None:
    maps, boxes = generated_dataset(20, seed=4, sizes=(20,))
    maps, boxes = maps[-6:], boxes[-6:]
    evaluator = BoxEvaluator(interval=0.02)
    evaluator.accumulate_batch(torch.tensor(np.stack(maps)), [torch.tensor(b) for b in boxes], threads=threads)
    assert evaluator.compute() == _fast(maps, boxes, interval=0.02)
    one_by_one = BoxEvaluator(interval=0.02)
    for scoremap, gt in zip(maps, boxes):
        one_by_one.accumulate(scoremap, gt)
    np.testing.assert_array_equal(evaluator.correct_v1, one_by_one.correct_v1)
    np.testing.assert_array_equal(evaluator.correct_v2, one_by_one.correct_v2)
    with pytest.raises(ValueError, match="at least one GT box"):
        evaluator.accumulate_batch(np.stack(maps[:2]), [boxes[0], np.zeros((0, 4))])


@pytest.mark.parametrize(
    ("scoremap", "match"),
    [
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), 1.5), r"\[0, 1\]"),
        (np.zeros((2, 4, 4)), "2-D"),
        (np.zeros((4, 4), dtype=np.uint8), "float"),
    ],
)
def test_bad_scoremap_raises(scoremap: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BoxEvaluator().accumulate(scoremap, np.array([[0, 0, 1, 1]]))


def test_no_gt_box_and_no_image_raise() -> None:
    with pytest.raises(ValueError, match="at least one GT box"):
        BoxEvaluator().accumulate(np.zeros((4, 4)), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="no image"):
        BoxEvaluator().compute()


# ------------------------------------------------------------------ PxAP


def test_pxap_perfect_separation_is_100() -> None:
    evaluator = PxAPEvaluator(interval=0.01)
    evaluator.accumulate(torch.tensor([[1.0, 0.0]]), torch.tensor([[1, 0]], dtype=torch.uint8))
    assert evaluator.compute() == 100.0


def test_pxap_parity_with_reference_and_ignore_pixels() -> None:
    rng = np.random.default_rng(5)
    maps = [blobs(rng, 20, 20) for _ in range(12)] + [np.full((20, 20), 0.007), np.ones((20, 20))]
    maps.append(np.round(rng.random((20, 20)), 3))  # values on the bin edges
    masks = [rng.choice(np.array([0, 1, 255], dtype=np.uint8), size=(20, 20), p=[0.5, 0.4, 0.1]) for _ in maps]
    for interval in (0.001, 0.05):
        halves = [PxAPEvaluator(interval=interval), PxAPEvaluator(interval=interval)]
        first = np.stack(maps[:7]).astype(np.float32)  # a float32 tensor batch, compared in float64
        halves[0].accumulate(torch.tensor(first), torch.tensor(np.stack(masks[:7])))
        for scoremap, mask in zip(maps[7:], masks[7:]):
            halves[1].accumulate(scoremap, mask)  # float64 numpy maps one at a time
        expected = reference_pxap(list(first) + maps[7:], masks, interval=interval)
        assert halves[0].merge(halves[1]).compute() == expected


@pytest.mark.parametrize("device", [None, "cpu"])  # numpy binning / torch binning of the same arrays
def test_pxap_ignore_pixels_count_in_neither_histogram(device: str | None) -> None:
    evaluator = PxAPEvaluator(interval=0.5, device=device)
    evaluator.accumulate(np.array([[0.9, 0.2, 0.6, 0.5, 1.0]]), np.array([[1, 0, 255, 1, 1]], dtype=np.uint8))
    background, foreground = evaluator.histograms()
    np.testing.assert_array_equal(foreground, [0, 2, 1, 0])  # bins [0, .5), [.5, 1), [1, 2), [2, 3]
    np.testing.assert_array_equal(background, [1, 0, 0, 0])


def test_pxap_without_foreground_raises() -> None:
    evaluator = PxAPEvaluator(interval=0.1)
    evaluator.accumulate(np.ones((2, 2)), np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="no foreground"):
        evaluator.compute()
