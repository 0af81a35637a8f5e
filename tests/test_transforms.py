"""Tests for wsol_utils.data.transforms: every transform moves boxes exactly (hand-computed) and with the pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol_utils.data.base import tight_boxes
from wsol_utils.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WSOLTransform,
    crop_boxes,
    denormalize,
    hflip_boxes,
    make_transform,
    normalize,
    resize_boxes,
)


def test_resize_boxes_scales_each_axis() -> None:
    boxes = resize_boxes(np.array([[5, 4, 25, 20]]), old_size=(40, 30), new_size=(80, 15))
    np.testing.assert_allclose(boxes, [[10, 2, 50, 10]])


def test_crop_boxes_shifts_and_clips_to_the_crop() -> None:
    boxes = crop_boxes(np.array([[10, 8, 50, 40], [0, 0, 3, 3]]), left=5, top=6, width=30, height=30)
    np.testing.assert_allclose(boxes, [[5, 2, 29, 29], [0, 0, 0, 0]])


def test_hflip_boxes_uses_inclusive_columns() -> None:
    # columns 5..25 of a 40-wide image become columns 14..34; flipping twice is the identity
    boxes = np.array([[5, 4, 25, 20]], dtype=np.float32)
    np.testing.assert_allclose(hflip_boxes(boxes, 40), [[14, 4, 34, 20]])
    np.testing.assert_allclose(hflip_boxes(hflip_boxes(boxes, 40), 40), boxes)


def test_test_protocol_resizes_to_square_without_crop() -> None:
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    out, boxes, mask = make_transform("test", 20)(image, np.array([[5, 4, 25, 20]]), None)
    assert out.shape == (3, 20, 20) and mask is None
    np.testing.assert_allclose(boxes.numpy(), [[2.5, 4 * 20 / 30, 12.5, 20 * 20 / 30]], rtol=1e-6)


def test_test_crop_protocol_resizes_256_and_center_crops_224() -> None:
    image = np.zeros((512, 512, 3), dtype=np.uint8)
    out, boxes, _ = make_transform("test_crop", 224)(image, np.array([[100, 50, 300, 400]]), None)
    assert out.shape == (3, 224, 224)
    # x0.5 -> (50, 25, 150, 200), then the 16-pixel center-crop offset
    np.testing.assert_allclose(boxes.numpy(), [[34, 9, 134, 184]])


def _box_image(size: int, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = box
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[y0 : y1 + 1, x0 : x1 + 1] = 1
    return np.repeat(mask[..., None] * 255, 3, axis=2).astype(np.uint8), mask


@pytest.mark.parametrize("seed", range(12))
def test_train_crop_and_flip_move_boxes_with_the_pixels(seed: int) -> None:
    # a 256x256 input is not resampled by "train" at 224, so crop + flip must move the box exactly as the mask
    box = (40, 60, 150, 200)
    image, mask = _box_image(256, box)
    transform = make_transform("train", 224, generator=torch.Generator().manual_seed(seed))
    out, boxes, out_mask = transform(image, np.array([box]), mask)
    assert out_mask is not None
    assert out.shape == (3, 224, 224) and out_mask.shape == (224, 224)
    np.testing.assert_array_equal(boxes.numpy(), tight_boxes(out_mask.numpy()[None] > 0))
    white = (denormalize(out)[0] > 0.5).numpy()
    np.testing.assert_array_equal(white, out_mask.numpy() > 0)


def test_flip_happens_about_half_the_time() -> None:
    image, mask = _box_image(32, (2, 2, 10, 10))
    transform = WSOLTransform(flip=True, generator=torch.Generator().manual_seed(0))
    flipped = sum(int(transform(image, np.array([[2, 2, 10, 10]]), mask)[1][0, 0] == 21) for _ in range(200))
    assert 70 < flipped < 130


def test_normalize_matches_imagenet_statistics_and_denormalize_inverts_it() -> None:
    ones = torch.ones(3, 2, 2)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    np.testing.assert_allclose(normalize(ones)[:, 0, 0].numpy(), expected, rtol=1e-6)
    images = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(denormalize(normalize(images)), images)


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown"):
        make_transform("random_resized", 224)
    with pytest.raises(ValueError, match="crop=300 is larger than resize=256"):
        WSOLTransform(resize=256, crop=300)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        make_transform("test", 8)(np.zeros((8, 8), dtype=np.uint8), np.zeros((0, 4)), None)


@pytest.mark.parametrize("name", ["flip", "identity"])
def test_batch_equals_one_call_per_image_with_the_same_draws(name: str) -> None:
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    boxes = rng.uniform(0, 15, (9, 2, 4)).astype(np.float32)
    masks = rng.integers(0, 2, (9, 16, 16), dtype=np.uint8)
    one = make_transform(name, 16, torch.Generator().manual_seed(7))
    batched = make_transform(name, 16, torch.Generator().manual_seed(7))
    expected = [one(images[i], boxes[i], masks[i]) for i in range(9)]
    got = batched.batch(images, boxes, masks)
    assert len(got) == 9
    for (image, box, mask), (want_image, want_box, want_mask) in zip(got, expected):
        assert mask is not None and want_mask is not None and torch.equal(mask, want_mask)
        assert torch.equal(image, want_image) and torch.equal(box, want_box)
    flipped = [not torch.equal(b, torch.from_numpy(boxes[i])) for i, (_, b, _) in enumerate(got)]
    assert any(flipped) == (name == "flip")  # seed 7 flips some of 9 images


def test_batch_refuses_a_resize_or_a_crop() -> None:
    images = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    boxes = np.zeros((2, 1, 4), dtype=np.float32)
    assert not make_transform("identity", 32).batchable((16, 16))
    with pytest.raises(ValueError, match="resize or a crop"):
        make_transform("identity", 32).batch(images, boxes)
    with pytest.raises(ValueError, match="resize or a crop"):
        make_transform("train", 16).batch(images, boxes)
