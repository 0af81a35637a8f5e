"""Tests for wsol_utils.data.scoremaps: a folder of wsoleval score maps read (untrusted files: paths inside their
folder, .npy headers checked, no unpickling) and scored exactly as the literal reference scores the same maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from score_maps import blobs, generated_dataset

from wsol_utils.data.metadata import read_wsoleval_metadata, write_wsoleval_metadata
from wsol_utils.data.scoremaps import evaluate_scoremaps, load_mask, load_scoremap
from wsol_utils.scoring.boxes import rescale_boxes
from wsol_utils.scoring.metrics import reference_box_metrics, reference_pxap

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
    maps, boxes = generated_dataset(40, seed=6)
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
    maps = [blobs(rng, 16, 16) for _ in range(4)]
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
