"""Per-map min-max normalization (wsol_utils.nets.maps, ARCHITECTURE "Conventions", docs/methods.md §2.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol_utils.nets.maps import normalize_minmax


def _wsoleval_normalize(cam: np.ndarray) -> np.ndarray:
    """wsoleval's normalize_scoremap, written out: NaN or constant -> zeros, else shift and divide by max."""
    if np.isnan(cam).any() or cam.min() == cam.max():
        return np.zeros_like(cam)
    cam = cam - cam.min()
    return cam / cam.max()


def test_hand_computed_values():
    maps = torch.tensor([[2.0, 4.0], [6.0, 10.0]])
    expected = torch.tensor([[0.0, 0.25], [0.5, 1.0]])
    torch.testing.assert_close(normalize_minmax(maps), expected, rtol=0, atol=0)


def test_each_map_of_a_batch_is_normalized_on_its_own():
    maps = torch.stack([torch.tensor([[0.0, 1.0], [2.0, 4.0]]), torch.tensor([[-5.0, -5.0], [-3.0, -1.0]])])
    expected = torch.stack([torch.tensor([[0.0, 0.25], [0.5, 1.0]]), torch.tensor([[0.0, 0.0], [0.5, 1.0]])])
    torch.testing.assert_close(normalize_minmax(maps.reshape(1, 2, 2, 2)), expected.reshape(1, 2, 2, 2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_and_constant_maps_become_zeros(bad):
    maps = torch.stack([torch.full((3, 3), 4.0), torch.arange(9.0).reshape(3, 3)])
    maps[1, 1, 1] = bad
    out = normalize_minmax(maps)
    torch.testing.assert_close(out, torch.zeros_like(maps), rtol=0, atol=0)


def test_matches_wsoleval_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    maps = torch.randn(8, 7, 9, generator=generator) * 3.0 + 1.0
    ours = normalize_minmax(maps).numpy()
    for ours_map, raw in zip(ours, maps.numpy()):
        np.testing.assert_array_equal(ours_map, _wsoleval_normalize(raw))


def test_overflowing_range_is_still_normalized():
    big = torch.finfo(torch.float32).max
    maps = torch.tensor([[-big, 0.0], [0.0, big]])
    torch.testing.assert_close(normalize_minmax(maps), torch.tensor([[0.0, 0.5], [0.5, 1.0]]))


def test_integer_input_and_finite_gradient():
    torch.testing.assert_close(normalize_minmax(torch.tensor([[0, 2], [4, 8]])), torch.tensor([[0, 0.25], [0.5, 1]]))
    maps = torch.tensor([[[1.0, float("nan")], [0.0, 3.0]], [[0.0, 1.0], [2.0, 4.0]]], requires_grad=True)
    normalize_minmax(maps).sum().backward()
    assert maps.grad is not None
    assert torch.isfinite(maps.grad).all()
    assert torch.count_nonzero(maps.grad[0]) == 0


def test_bad_shape_is_a_value_error():
    with pytest.raises(ValueError, match="maps"):
        normalize_minmax(torch.ones(5))
