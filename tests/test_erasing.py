"""ACoL threshold erasing and HCLNet complementary map (wsol_utils.nets.erasing, docs/methods.md §1.3-§1.4)."""

from __future__ import annotations

import pytest
import torch

from wsol_utils.nets.erasing import erase_by_threshold, erase_complementary, erasing_mask, normalized_attention

# 0..8 normalizes to k/8: 0, .125, .25 / .375, .5, .625 / .75, .875, 1
RAMP_3X3 = torch.arange(9, dtype=torch.float32).reshape(1, 3, 3)


def _features(batch: int = 1, channels: int = 2, size: tuple[int, int] = (3, 3)) -> torch.Tensor:
    return torch.arange(1, batch * channels * size[0] * size[1] + 1, dtype=torch.float32).reshape(
        batch, channels, *size
    )


@pytest.mark.parametrize(
    ("delta", "expected_kept"),
    [
        (0.6, [[1, 1, 1], [1, 1, 0], [0, 0, 0]]),  # erase 5/8, 6/8, 7/8, 1
        (0.5, [[1, 1, 1], [1, 0, 0], [0, 0, 0]]),  # 4/8 == 0.5 is erased: mask is strict M < delta
        (0.1, [[1, 0, 0], [0, 0, 0], [0, 0, 0]]),  # only the minimum survives
    ],
)
def test_threshold_erases_exactly_the_cells_at_or_above_delta(delta, expected_kept):
    features = _features()
    kept = torch.tensor(expected_kept, dtype=torch.float32)
    erased = erase_by_threshold(features, RAMP_3X3, delta)
    torch.testing.assert_close(erased, features * kept, rtol=0, atol=0)
    torch.testing.assert_close(erasing_mask(features, RAMP_3X3, delta)[0, 0], kept, rtol=0, atol=0)


def test_normalization_is_per_sample():
    maps = torch.cat([RAMP_3X3, 10.0 * RAMP_3X3 - 3.0])  # same shape of map, other scale and offset
    features = _features(batch=2)
    mask = erasing_mask(features, maps, 0.6)
    torch.testing.assert_close(mask[0], mask[1], rtol=0, atol=0)
    assert mask.sum().item() == 2 * 5


def test_map_is_resized_bilinearly_to_the_features():
    # 2x2 map [[0, 1], [0, 1]] -> 4x4; align_corners=False samples source columns -0.25, .25, .75, 1.25,
    # clamped, so the columns read 0, .25, .75, 1.
    maps = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    features = torch.ones(1, 3, 4, 4)
    expected_attention = torch.tensor([0.0, 0.25, 0.75, 1.0]).expand(4, 4)
    torch.testing.assert_close(normalized_attention(features, maps)[0, 0], expected_attention)
    erased = erase_by_threshold(features, maps, 0.6)
    expected = torch.tensor([1.0, 1.0, 0.0, 0.0]).expand(3, 4, 4)
    torch.testing.assert_close(erased[0], expected, rtol=0, atol=0)


def test_constant_map_erases_nothing():
    features = _features()
    constant = torch.full((1, 3, 3), 7.0)
    torch.testing.assert_close(erase_by_threshold(features, constant, 0.01), features, rtol=0, atol=0)
    torch.testing.assert_close(erase_complementary(features, constant), features, rtol=0, atol=0)


def test_threshold_mask_passes_no_gradient_to_the_map():
    features = _features().requires_grad_()
    maps = RAMP_3X3.clone().requires_grad_()
    erase_by_threshold(features, maps, 0.6).sum().backward()
    assert maps.grad is None or torch.count_nonzero(maps.grad) == 0
    kept = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(features.grad, kept.expand(1, 2, 3, 3), rtol=0, atol=0)


def test_complementary_is_features_times_one_minus_attention():
    features = _features()
    expected = features * (1.0 - RAMP_3X3.unsqueeze(1) / 8.0)
    torch.testing.assert_close(erase_complementary(features, RAMP_3X3), expected, rtol=0, atol=0)


@pytest.mark.parametrize("detach", [True, False])
def test_complementary_gradient_to_the_map_follows_detach(detach):
    features = _features().requires_grad_()
    maps = RAMP_3X3.clone().requires_grad_()
    erase_complementary(features, maps, detach=detach).sum().backward()
    reached_map = maps.grad is not None and torch.count_nonzero(maps.grad).item() > 0
    assert reached_map is not detach
    torch.testing.assert_close(features.grad, (1.0 - RAMP_3X3 / 8.0).unsqueeze(1).expand(1, 2, 3, 3))


@pytest.mark.parametrize("delta", [0.0, 1.0, 1.5, -0.2, True, float("nan"), "0.6"])
def test_bad_delta_is_a_value_error(delta):
    with pytest.raises(ValueError, match="delta"):
        erase_by_threshold(_features(), RAMP_3X3, delta)


def test_bad_shapes_are_value_errors():
    with pytest.raises(ValueError, match="maps"):
        erase_by_threshold(_features(), RAMP_3X3[0], 0.6)  # (h, w) instead of (B, h, w)
    with pytest.raises(ValueError, match="batch sizes"):
        erase_complementary(_features(batch=2), RAMP_3X3)
    with pytest.raises(ValueError, match="features"):
        erase_complementary(torch.ones(2, 3, 3), RAMP_3X3)
