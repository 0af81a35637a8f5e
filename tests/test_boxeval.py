"""Tests for wsol_utils.scoring.boxeval: the fast evaluator must give the literal reference's numbers exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from wsol_utils.data.metadata import read_wsoleval_metadata, write_wsoleval_metadata
from wsol_utils.scoring.boxes import quantize_scoremap, rescale_boxes
from wsol_utils.scoring.boxeval import (
    BoxEvaluator,
    PxAPEvaluator,
    _contours_of_levels,
    _level_windows,
    evaluate_scoremaps,
    image_threshold_ious,
    load_mask,
    load_scoremap,
)
from wsol_utils.scoring.metrics import reference_box_metrics, reference_pxap

# ------------------------------------------------------------------ generated maps with the corner cases


def _normalize(raw: np.ndarray) -> np.ndarray:
    """wsoleval's normalize_scoremap: min-max to [0, 1]; constant -> zeros."""
    raw = raw - raw.min()
    return raw / raw.max() if raw.max() > 0 else np.zeros_like(raw)


def _blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Sum of Gaussians, some negative (holes, rings), centres partly outside (touching the border)."""
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    raw = np.zeros((height, width))
    for _ in range(rng.integers(1, 6)):
        cy, cx = rng.uniform(-0.1, 1.1) * height, rng.uniform(-0.1, 1.1) * width
        sigma = rng.uniform(0.04, 0.3) * max(height, width)
        amplitude = rng.uniform(0.3, 1.0) * rng.choice([1.0, 1.0, -0.7])
        raw += amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    if rng.random() < 0.3:
        raw += rng.normal(0, 0.05, raw.shape)  # speckle: many small components
    return _normalize(raw)


def _corner_cases(size: int) -> list[np.ndarray]:
    zeros = np.zeros((size, size))
    single = zeros.copy()
    single[size // 2, size // 3] = 1.0
    corner = zeros.copy()
    corner[0, -1] = 1.0
    ring = np.zeros((size, size))
    cv2.circle(ring, (size // 2, size // 2), size // 3, 1.0, thickness=max(1, size // 8))
    nested = ring.copy()
    nested[size // 2 - 1 : size // 2 + 2, size // 2 - 1 : size // 2 + 2] = 0.6  # an island inside the hole
    border = np.ones((size, size))
    border[1:-1, 1:-1] = 0.3
    checker = (np.indices((size, size)).sum(axis=0) % 2).astype(np.float64)
    ramp = np.tile(np.linspace(0, 1, size), (size, 1))
    half = 0.5 * ramp  # max below 1: wsoleval's cut-off is int(t * img.max())
    edge = np.full((size, size), 0.001 * 7)  # values exactly on threshold edges
    edge[2:5, 3:9] = 1.0
    return [zeros, single, corner, ring, nested, border, checker, ramp, half, edge, np.ones((size, size))]


def _gt_boxes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """1-3 random inclusive boxes; sometimes the full image or a 1-pixel box at the corner."""
    boxes = []
    for _ in range(rng.integers(1, 4)):
        x0, x1 = np.sort(rng.integers(0, width, 2))
        y0, y1 = np.sort(rng.integers(0, height, 2))
        boxes.append([x0, y0, x1, y1])
    if rng.random() < 0.2:
        boxes.append(rng.choice([[0, 0, width - 1, height - 1], [0, 0, 0, 0]]))
    return np.asarray(boxes, dtype=np.int64)


def _dataset(count: int, seed: int, sizes: tuple[int, ...] = (12, 24, 33)) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    maps = [*_corner_cases(16), np.ones((1, 1)), np.zeros((2, 3))]
    maps += [_blobs(rng, int(rng.choice(sizes)), int(rng.choice(sizes))) for _ in range(count - len(maps))]
    maps[-count // 4 :] = [scoremap.astype(np.float32) for scoremap in maps[-count // 4 :]]  # engine maps are float32
    boxes = [_gt_boxes(rng, *scoremap.shape) for scoremap in maps]
    return maps, boxes


def _fast(maps: list, boxes: list, **kwargs) -> dict:
    evaluator = BoxEvaluator(**kwargs)
    for scoremap, gt in zip(maps, boxes):
        evaluator.accumulate(scoremap, gt)
    return evaluator.compute()


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
    maps = [*_corner_cases(16), np.zeros((1, 1))] + [_blobs(rng, 40, 29) for _ in range(12)]
    for scoremap in maps:
        img = quantize_scoremap(scoremap)
        height, width = img.shape
        values = np.flatnonzero(np.bincount(img.ravel(), minlength=256))
        lows = np.append(values[int(skipped * len(values)) :], [256])  # the last level has no pixel
        found = _contours_of_levels(img, lows, _level_windows(img, lows)[0])
        ends = np.append(found.starts[1:], len(found.boxes))
        for low, start, end in zip(lows, found.starts, ends):
            binary = (img >= low).astype(np.uint8)
            contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            expected = [[0, 0, 0, 0]] if not contours else []
            for contour in contours:
                x, y, w, h = cv2.boundingRect(contour)
                expected.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
            assert found.boxes[start:end].tolist() == expected
            areas = [2 * cv2.contourArea(contour) for contour in contours] or [0.0]
            assert found.areas2[start:end].tolist() == areas


# ------------------------------------------------------------------ parity with the literal reference


def test_parity_with_reference_on_hundreds_of_maps_coarse_interval() -> None:
    maps, boxes = _dataset(300, seed=0)
    rng = np.random.default_rng(8)
    maps += [_blobs(rng, 224, 224) for _ in range(3)]  # full-size maps as wsoleval scores them
    boxes += [np.array([[40, 30, 150, 200], [0, 0, 223, 223]]), np.array([[100, 0, 223, 50]]), _gt_boxes(rng, 224, 224)]
    for interval in (0.05, 0.3):
        assert _fast(maps, boxes, interval=interval) == reference_box_metrics(maps, boxes, interval=interval)


def test_parity_with_reference_at_interval_0001() -> None:
    maps, boxes = _dataset(20, seed=1)
    kwargs: dict[str, Any] = {"interval": 0.001, "iou_levels": (30, 50, 70, 90)}
    assert _fast(maps, boxes, **kwargs) == reference_box_metrics(maps, boxes, **kwargs)


def test_merge_of_two_halves_equals_one_pass() -> None:
    maps, boxes = _dataset(40, seed=3)
    first, second = BoxEvaluator(interval=0.01), BoxEvaluator(interval=0.01)
    for index, (scoremap, gt) in enumerate(zip(maps, boxes)):
        (first if index % 2 else second).accumulate(scoremap, gt)
    assert first.merge(second).compute() == _fast(maps, boxes, interval=0.01)
    with pytest.raises(ValueError, match="differ"):
        first.merge(BoxEvaluator(interval=0.02))


@pytest.mark.parametrize("threads", [1, 3])
def test_accumulate_batch_takes_tensors(threads: int) -> None:
    maps, boxes = _dataset(20, seed=4, sizes=(20,))
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
    maps = [_blobs(rng, 20, 20) for _ in range(12)] + [np.full((20, 20), 0.007), np.ones((20, 20))]
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


# ------------------------------------------------------------------ a wsoleval folder, streamed


def _wsoleval_folder(root: Path, maps: list, boxes: list) -> tuple[Path, Path]:
    ids = [f"val/class_{i % 3}/img_{i}.jpg" for i in range(len(maps))]
    sizes = {i: (2 * m.shape[1] + 1, 3 * m.shape[0]) for i, m in zip(ids, maps)}  # original sizes
    original = {i: b * [2, 3, 2, 3] for i, b in zip(ids, boxes)}  # rescaled back with int() truncation
    write_wsoleval_metadata(root / "meta", ids, dict.fromkeys(ids, 0), sizes, original)
    for image_id, scoremap in zip(ids, maps):
        path = root / "maps" / f"{image_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, scoremap)
    return root / "meta", root / "maps"


def test_evaluate_scoremaps_matches_reference_in_process_and_with_workers(tmp_path: Path) -> None:
    maps, boxes = _dataset(40, seed=6)
    meta, folder = _wsoleval_folder(tmp_path, maps, boxes)
    parsed = read_wsoleval_metadata(meta)
    gts = [
        rescale_boxes(parsed.boxes[i], parsed.sizes[i], (m.shape[1], m.shape[0]))
        for i, m in zip(parsed.image_ids, maps)
    ]
    expected = reference_box_metrics(maps, gts, interval=0.02)
    one = evaluate_scoremaps(meta, folder, interval=0.02, workers=1, progress=False)
    two = evaluate_scoremaps(meta, folder, interval=0.02, workers=2, progress=False, chunk_size=7)
    assert one == two == expected


def test_evaluate_scoremaps_masks_png_ignore_and_npy(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    maps = [_blobs(rng, 16, 16) for _ in range(4)]
    boxes = [np.array([[1, 1, 8, 8]])] * 4
    meta, folder = _wsoleval_folder(tmp_path, maps, boxes)
    ids = (meta / "image_ids.txt").read_text().split()
    masks = [rng.choice(np.array([0, 1, 255], dtype=np.uint8), size=(16, 16)) for _ in maps]
    mask_dir = tmp_path / "masks"
    for index, (image_id, mask) in enumerate(zip(ids, masks)):
        (mask_dir / image_id).parent.mkdir(parents=True, exist_ok=True)
        if index % 2:
            np.save(mask_dir / f"{image_id}.npy", mask)
        else:  # PNG at twice the size (nearest resize back), ignore in a second PNG
            big = np.kron(mask, np.ones((2, 2), dtype=np.uint8))
            cv2.imwrite(str(mask_dir / f"{image_id}.png"), np.where(big == 1, 255, 0).astype(np.uint8))
            cv2.imwrite(str(mask_dir / f"{image_id}.ignore.png"), np.where(big == 255, 200, 0).astype(np.uint8))
    np.testing.assert_array_equal(load_mask(mask_dir, ids[0], (16, 16)), masks[0])
    result = evaluate_scoremaps(meta, folder, interval=0.01, mask_dir=mask_dir, workers=1, progress=False)
    assert result["pxap"] == reference_pxap(maps, masks, interval=0.01)


def test_evaluate_scoremaps_nan_map_scores_as_zeros(tmp_path: Path) -> None:
    maps = [np.full((8, 8), np.nan), np.zeros((8, 8))]
    boxes = [np.array([[0, 0, 0, 0]]), np.array([[0, 0, 0, 0]])]
    meta, folder = _wsoleval_folder(tmp_path, maps, boxes)
    with pytest.warns(UserWarning, match="1 score map"):
        result = evaluate_scoremaps(meta, folder, interval=0.1, workers=1, progress=False)
    assert result["maxboxacc"] == 100.0  # both maps are empty -> zero box -> IoU 1 with [0, 0, 0, 0]


def test_evaluate_scoremaps_missing_and_bad_maps(tmp_path: Path) -> None:
    maps = [np.zeros((8, 8))] * 5
    meta, folder = _wsoleval_folder(tmp_path, maps, [np.array([[0, 0, 3, 3]])] * 5)
    ids = (meta / "image_ids.txt").read_text().split()
    for image_id in ids[1:4]:
        (folder / f"{image_id}.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"3 of 5 score maps are missing, e\.g\. .*img_1\.jpg\.npy"):
        evaluate_scoremaps(meta, folder, workers=1, progress=False)
    for image_id in ids[1:4]:
        np.save(folder / f"{image_id}.npy", np.zeros((8, 8)))
    np.save(folder / f"{ids[2]}.npy", np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match=r"img_2\.jpg\.npy: a score map must be 2-D"):
        evaluate_scoremaps(meta, folder, workers=1, progress=False)


# ------------------------------------------------------------------ untrusted files: paths and .npy headers


def _npy_header_only(path: Path, shape: tuple[int, ...], dtype: str, data: bytes = b"") -> Path:
    """A ``.npy`` file whose header claims ``shape`` / ``dtype``, followed by ``data`` (none by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
        )
        handle.write(data)
    return path


def test_evaluate_scoremaps_refuses_ids_leaving_the_folders_naming_the_line(tmp_path: Path) -> None:
    """A valid map and mask wait at ``../../x.npy`` outside both folders: without the check they would be read."""
    maps, boxes = [np.zeros((8, 8)), np.zeros((8, 8))], [np.array([[0, 0, 3, 3]])] * 2
    meta, folder = _wsoleval_folder(tmp_path / "a" / "b", maps, boxes)
    ids = (meta / "image_ids.txt").read_text().split()
    for name in ("image_ids", "class_labels", "image_sizes", "localization"):
        path = meta / f"{name}.txt"
        path.write_text(path.read_text().replace(ids[1], "../../x"))
    np.save(tmp_path / "a" / "x.npy", np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"image_ids\.txt:2: image id '\.\./\.\./x' climbs out of its folder"):
        evaluate_scoremaps(meta, folder, workers=1, progress=False)


@pytest.mark.parametrize("image_id", ["../x", "/abs/path", "val/../../x"])
def test_load_mask_stays_in_the_mask_folder(tmp_path: Path, image_id: str) -> None:
    masks = tmp_path / "data" / "masks"
    masks.mkdir(parents=True)
    np.save(tmp_path / "data" / "x.npy", np.zeros((4, 4), dtype=np.uint8))  # what "../x" would reach
    with pytest.raises(ValueError, match=rf"image id '{image_id}' leads outside .*masks"):
        load_mask(masks, image_id, (4, 4))


def test_a_header_claiming_100000_squared_float64_is_refused_before_reading(tmp_path: Path) -> None:
    huge = _npy_header_only(tmp_path / "huge.npy", (100000, 100000), "<f8")
    with pytest.raises(ValueError, match=r"huge\.npy: header claims a 100000 x 100000 score map, more than"):
        load_scoremap(huge)
    with pytest.raises(ValueError, match=r"huge\.npy: header claims a 100000 x 100000 mask"):
        load_mask(tmp_path, "huge", (4, 4))


@pytest.mark.parametrize(
    ("shape", "dtype", "data", "match"),
    [
        ((4, 4), "<f8", bytes(120), r"claims \(4, 4\) float64 \(128 bytes of data\), the file holds 120: truncated"),
        ((4, 4), "|O", b"", r"a score map must be a float \(values in \[0, 1\]\) array, got dtype object"),
        ((4, 4), "<i8", bytes(8 * 16), r"a score map must be a float .* got dtype int64"),
        ((2, 4, 4), "<f4", bytes(4 * 32), r"a score map must be 2-D \(H, W\), got shape \(2, 4, 4\)"),
        ((-1, 4), "<f8", bytes(8 * 8), r"a score map must be 2-D \(H, W\), got shape \(-1, 4\)"),
    ],
)
def test_bad_npy_headers_name_the_file(tmp_path: Path, shape: tuple[int, ...], dtype: str, data: bytes, match: str):
    path = _npy_header_only(tmp_path / "m.npy", shape, dtype, data)
    with pytest.raises(ValueError, match=rf"m\.npy: (header )?{match}"):
        load_scoremap(path)


def test_pickled_object_mask_is_refused_naming_the_file_and_runs_nothing(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    payload = np.empty((2, 2), dtype=object)
    payload[0, 0] = _Touch(ran)
    np.save(tmp_path / "m.npy", payload, allow_pickle=True)
    with pytest.raises(ValueError, match=r"m\.npy: a mask must be a numeric array, got dtype object"):
        load_mask(tmp_path, "m", (2, 2))
    assert not ran.exists()


class _Touch:
    """Unpickling it creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def test_header_checked_maps_and_masks_load_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for dtype in (np.float16, np.float32, np.float64, ">f8"):
        scoremap = rng.random((5, 7)).astype(dtype)
        np.save(tmp_path / "s.npy", scoremap)
        loaded, had_nan = load_scoremap(tmp_path / "s.npy")
        assert loaded.dtype == scoremap.dtype and not had_nan
        np.testing.assert_array_equal(loaded, scoremap)
    fortran = np.asfortranarray(rng.random((6, 3)))
    np.save(tmp_path / "f.npy", fortran)
    np.testing.assert_array_equal(load_scoremap(tmp_path / "f.npy")[0], fortran)
    mask = rng.choice(np.array([0, 1, 255], dtype=np.uint8), size=(5, 7))
    np.save(tmp_path / "k.npy", mask)
    np.testing.assert_array_equal(load_mask(tmp_path, "k", (5, 7)), mask)
