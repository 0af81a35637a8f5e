"""Tests for wsol_utils.data.synthetic: determinism, tight boxes, balance, and that the head is the only
strong class cue (docs/methods.md §3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wsol_utils.data import load
from wsol_utils.data.synthetic import (
    SyntheticConfig,
    SyntheticWSOL,
    export_wsoleval,
    generate,
    head_code,
    synthetic_arrays,
)

SMALL = SyntheticConfig(num_train=60, num_val=20, num_test=40)


@pytest.fixture(scope="module")
def probe_set():
    """1,200 test images at 64 px (defaults otherwise), for the class-cue statistics."""
    return generate(SyntheticConfig(num_test=1200), "test")


def test_generation_is_deterministic_and_seeded() -> None:
    first, second = generate(SMALL, "val"), generate(SMALL, "val")
    for name in ("images", "labels", "parts", "boxes"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    other = generate(SyntheticConfig(num_train=60, num_val=20, num_test=40, seed=1), "val")
    assert not np.array_equal(first.images, other.images)


def test_splits_are_independent_of_other_split_sizes() -> None:
    bigger_train = SyntheticConfig(num_train=200, num_val=20, num_test=40)
    np.testing.assert_array_equal(generate(SMALL, "test").images, generate(bigger_train, "test").images)
    assert not np.array_equal(generate(SMALL, "val").images, generate(SMALL, "test").images[:20])


def test_arrays_have_the_documented_shapes_and_values() -> None:
    arrays = generate(SyntheticConfig(image_size=96, num_test=12), "test")
    assert arrays.images.shape == (12, 96, 96, 3) and arrays.images.dtype == np.uint8
    assert arrays.parts.shape == (12, 96, 96) and set(np.unique(arrays.parts)) == {0, 1, 2}
    assert arrays.boxes.shape == (12, 4) and arrays.labels.dtype == np.int64


def test_boxes_are_tight_around_the_object_mask() -> None:
    arrays = generate(SMALL, "train")
    for parts, box in zip(arrays.parts, arrays.boxes):
        rows, cols = np.nonzero(parts > 0)
        np.testing.assert_array_equal(box, [cols.min(), rows.min(), cols.max(), rows.max()])
        assert 1 <= box[0] and box[2] <= 62 and 1 <= box[1] and box[3] <= 62  # the 1 px margin


def test_every_object_has_a_head_of_the_configured_size_and_a_large_body() -> None:
    arrays = generate(SMALL, "train")
    head_area = (arrays.parts == 2).sum(axis=(1, 2))
    expected = np.pi * (SMALL.head_size * 64 / 2) ** 2  # ~39 px
    assert np.all(np.abs(head_area - expected) < 0.3 * expected)
    body_fraction = (arrays.parts > 0).mean(axis=(1, 2))
    assert np.all((body_fraction > 0.08) & (body_fraction < 0.25))


def test_labels_are_balanced() -> None:
    labels = generate(SyntheticConfig(image_size=32, num_train=1003, num_classes=10), "train").labels
    counts = np.bincount(labels, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1003


def _mean_colour(images: np.ndarray, region: np.ndarray) -> np.ndarray:
    weights = region[..., None].astype(np.float64)
    return (images * weights).sum(axis=(1, 2)) / np.maximum(weights.sum(axis=(1, 2)), 1.0)


def _linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Nearest class mean with pooled covariance (LDA, a linear classifier), fit on the first half."""
    half = len(labels) // 2
    fit_x, fit_y, test_x, test_y = features[:half], labels[:half], features[half:], labels[half:]
    means = np.stack([fit_x[fit_y == c].mean(axis=0) for c in range(num_classes)])
    residual = fit_x - means[fit_y]
    covariance = residual.T @ residual / len(residual) + 1e-3 * np.eye(features.shape[1])
    weights = np.linalg.solve(covariance, means.T)
    bias = -0.5 * np.einsum("cd,dc->c", means, weights)
    return float(((test_x @ weights + bias).argmax(axis=1) == test_y).mean())


def test_head_is_the_only_strong_class_cue(probe_set) -> None:
    # measured at 64 px / 1,200 images: head 1.00, body ~0.5, background ~0.1 (chance 0.1)
    accuracy = {
        name: _linear_probe_accuracy(_mean_colour(probe_set.images, probe_set.parts == value), probe_set.labels, 10)
        for name, value in (("head", 2), ("body", 1), ("background", 0))
    }
    assert accuracy["head"] > 0.9
    assert 0.25 < accuracy["body"] < 0.75
    assert accuracy["background"] < 0.2


def test_head_noise_knob_removes_the_head_cue() -> None:
    noisy = generate(SyntheticConfig(num_test=600, head_noise=1.0), "test")
    accuracy = _linear_probe_accuracy(_mean_colour(noisy.images, noisy.parts == 2), noisy.labels, 10)
    assert accuracy < 0.2  # the head always shows another class's code


def test_head_pixels_carry_the_class_code_colours(probe_set) -> None:
    from wsol_utils.data.synthetic import PALETTE

    index = 0
    code = head_code(probe_set.labels[[index]])[0]
    ring, inner = PALETTE[code[1]], PALETTE[code[0]]
    head = probe_set.images[index][probe_set.parts[index] == 2] / 255.0
    distance_to_code = np.minimum(np.abs(head - ring).max(axis=1), np.abs(head - inner).max(axis=1))
    assert np.median(distance_to_code) < 0.12


def test_config_rejects_bad_knobs() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticConfig(num_classes=31)
    with pytest.raises(ValueError, match="does not fit"):
        SyntheticConfig(body_area=(0.3, 0.45), body_aspect=(2.5, 3.0))
    with pytest.raises(ValueError, match="split"):
        SMALL.num_images("holdout")


def test_cache_round_trip_and_key(tmp_path: Path) -> None:
    written = synthetic_arrays(SMALL, "test", cache_dir=tmp_path)
    files = list(tmp_path.glob("synthetic_*.npz"))
    assert len(files) == 1 and SMALL.key("test") in files[0].name
    read = synthetic_arrays(SMALL, "test", cache_dir=tmp_path)
    np.testing.assert_array_equal(written.images, read.images)
    assert SyntheticConfig(num_test=40, num_train=60, num_val=20, clutter=0.5).key("test") != SMALL.key("test")
    files[0].write_bytes(b"not an npz")  # a damaged cache file is regenerated
    np.testing.assert_array_equal(synthetic_arrays(SMALL, "test", cache_dir=tmp_path).images, written.images)


def test_dataset_items_and_part_masks(tmp_path: Path) -> None:
    dataset = load("synthetic", root=tmp_path, split="test", num_train=60, num_val=20, num_test=40)
    assert isinstance(dataset, SyntheticWSOL)
    image, label, boxes, mask, image_id = dataset[3]
    assert mask is not None
    assert image.shape == (3, 64, 64) and boxes.shape == (1, 4) and mask.shape == (64, 64)
    assert label == int(dataset.labels[3]) and image_id == "test/00003.png"
    head, body = dataset.part_masks([3])
    np.testing.assert_array_equal(mask.numpy(), (head | body)[0].astype(np.uint8))
    assert dataset.num_classes == 10 and len(dataset.class_names) == 10


@pytest.mark.parametrize("transform", [None, "train"])
def test_getitems_equals_one_getitem_per_index(tmp_path: Path, transform: str | None) -> None:
    """The DataLoader's batched fetch: the same items and random flips as one ``dataset[i]`` per index (the
    ``"train"`` transform resizes and crops, so it falls back to per-image calls)."""
    one, batched = (
        SyntheticWSOL(SMALL, "train", transform, tmp_path, generator=torch.Generator().manual_seed(11))
        for _ in range(2)
    )
    indices = [5, 0, 59, 5, 17, 33, 2, 41]
    expected = [one[i] for i in indices]
    got = batched.__getitems__(indices)
    assert len(got) == len(indices)
    for item, want in zip(got, expected):
        assert torch.equal(item[0], want[0]) and item[1] == want[1] and torch.equal(item[2], want[2])
        assert item[3] is not None and want[3] is not None and torch.equal(item[3], want[3]) and item[4] == want[4]


def test_export_reads_back_through_the_wsoleval_loader(tmp_path: Path) -> None:
    export_wsoleval(SMALL, "val", tmp_path / "export", cache_dir=tmp_path / "cache")
    exported = load(
        "wsoleval",
        root=tmp_path / "export",
        split="val",
        image_size=64,
        mask_dir=tmp_path / "export" / "masks",
        num_classes=10,
    )
    original = load("synthetic", root=tmp_path / "cache", split="val", num_train=60, num_val=20, num_test=40)
    assert len(exported) == len(original) == 20
    for index in (0, 7, 19):
        for got, want in zip(exported[index], original[index]):
            if isinstance(got, torch.Tensor):
                assert isinstance(want, torch.Tensor)
                np.testing.assert_array_equal(got.numpy(), want.numpy())
            else:
                assert got == want
