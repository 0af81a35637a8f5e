"""Fusion of the two branches' maps (wsol_utils.nets.fusion, docs/methods.md §1.5, HCLNet eqs. 1-5)."""

from __future__ import annotations

import math

import pytest
import torch

from wsol_utils.nets.fusion import fuse, fuse_add, fuse_l1, fuse_max, l1_fusion_weights


def _maps(*classes: list[float]) -> torch.Tensor:
    """One sample, one row: ``_maps([..], [..])`` -> (1, C, 1, W)."""
    return torch.tensor([[[row] for row in classes]], dtype=torch.float32)


# Raw maps whose normalized versions are easy to read:
#   A: class 0 [1, 3, 2] -> [0, 1, .5];  class 1 [3, -1, -1] -> [1, 0, 0]
#   B: class 0 [5, 2, 2] -> [1, 0, 0];   class 1 [10, 20, 30] -> [0, .5, 1]
RAW_A = _maps([1.0, 3.0, 2.0], [3.0, -1.0, -1.0])
RAW_B = _maps([5.0, 2.0, 2.0], [10.0, 20.0, 30.0])


def test_max_and_add_on_hand_computed_maps():
    a, b = _maps([0.0, 2.0, 4.0]), _maps([1.0, 3.0, 2.0])  # normalized: [0, .5, 1] and [0, 1, .5]
    torch.testing.assert_close(fuse_max(a, b), _maps([0.0, 1.0, 1.0]), rtol=0, atol=0)
    torch.testing.assert_close(fuse_add(a, b), _maps([0.0, 1.5, 1.5]), rtol=0, atol=0)


def test_l1_ratio_without_block_average():
    # activity A = [1, 1, .5], B = [1, .5, 1] -> w_A = [1/2, 2/3, 1/3]
    expected = _maps([0.5, 2 / 3, 1 / 6], [0.5, 1 / 6, 2 / 3])
    torch.testing.assert_close(fuse_l1(RAW_A, RAW_B, block_radius=0), expected)
    torch.testing.assert_close(l1_fusion_weights(RAW_A, RAW_B, block_radius=0), _maps([0.5, 2 / 3, 1 / 3]))


def test_l1_ratio_with_3x3_block_average():
    # block means over the cells inside the map: A = [2/2, 2.5/3, 1.5/2], B = [1.5/2, 2.5/3, 1.5/2]
    # -> w_A = [4/7, 1/2, 1/2]
    expected = _maps([3 / 7, 0.5, 0.25], [4 / 7, 0.25, 0.5])
    torch.testing.assert_close(fuse_l1(RAW_A, RAW_B, block_radius=1), expected)


def test_l1_softmax_without_block_average():
    sigmoid = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731 - softmax of two = sigmoid of the difference
    w_a = [0.5, sigmoid(0.5), sigmoid(-0.5)]
    expected = _maps(
        [w_a[0] * 0 + (1 - w_a[0]) * 1, w_a[1] * 1, w_a[2] * 0.5],
        [w_a[0] * 1, (1 - w_a[1]) * 0.5, (1 - w_a[2]) * 1],
    )
    torch.testing.assert_close(fuse_l1(RAW_A, RAW_B, block_radius=0, weights="softmax"), expected)


def test_l1_ratio_guards_zero_over_zero():
    a, b = _maps([0.0, 1.0]), _maps([0.0, 1.0])  # both activities are 0 in column 0
    torch.testing.assert_close(l1_fusion_weights(a, b, block_radius=0), _maps([0.5, 0.5]), rtol=0, atol=0)
    constant = torch.full((2, 3, 4, 4), 5.0)  # normalizes to zeros everywhere
    fused = fuse_l1(constant, constant)
    assert torch.isfinite(fused).all() and torch.count_nonzero(fused) == 0


def _naive_l1_softmax_reference(a: torch.Tensor, b: torch.Tensor, radius: int) -> torch.Tensor:
    """Eqs. 2-5 in float64 with plain loops and the naive exp, block mean over the cells inside the map."""

    def normalize(x):
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
        return (x - lo) / (hi - lo)

    na, nb = normalize(a.double()), normalize(b.double())
    act_a, act_b = na.abs().sum(1), nb.abs().sum(1)  # (B, H, W)
    _, height, width = act_a.shape
    fused = torch.empty_like(na)
    for y in range(height):
        for x in range(width):
            ys, xs = slice(max(0, y - radius), y + radius + 1), slice(max(0, x - radius), x + radius + 1)
            ea, eb = act_a[:, ys, xs].mean(dim=(1, 2)).exp(), act_b[:, ys, xs].mean(dim=(1, 2)).exp()
            w_a = (ea / (ea + eb))[:, None]
            fused[:, :, y, x] = w_a * na[:, :, y, x] + (1 - w_a) * nb[:, :, y, x]
    return fused


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_l1_softmax_matches_a_float64_naive_reference(radius):
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 3, 5, 6, generator=generator), torch.randn(2, 3, 5, 6, generator=generator)
    ours = fuse_l1(a, b, block_radius=radius, weights="softmax")
    torch.testing.assert_close(ours.double(), _naive_l1_softmax_reference(a, b, radius), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weights", ["ratio", "softmax"])
def test_l1_with_1000_classes_and_huge_values_stays_finite(weights):
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(2, 1000, 7, 7, generator=generator) * 1e30
    b = torch.randn(2, 1000, 7, 7, generator=generator) * 1e30
    fused = fuse_l1(a, b, weights=weights)
    assert torch.isfinite(fused).all()
    assert fused.min() >= 0 and fused.max() <= 1
    # the naive softmax really overflows here (activities are in the hundreds): the test is not vacuous
    activity = fuse_max(a, a).sum(1)
    assert torch.isnan(activity.exp() / (activity.exp() + activity.exp())).any()


def test_fuse_dispatches_and_validates():
    torch.testing.assert_close(fuse(RAW_A, RAW_B, "max", block_radius=1), fuse_max(RAW_A, RAW_B))
    torch.testing.assert_close(fuse(RAW_A, RAW_B, "add"), fuse_add(RAW_A, RAW_B))
    torch.testing.assert_close(
        fuse(RAW_A, RAW_B, "l1", block_radius=0, weights="softmax"),
        fuse_l1(RAW_A, RAW_B, block_radius=0, weights="softmax"),
    )
    with pytest.raises(ValueError, match=r"'add', 'l1', 'max'"):
        fuse(RAW_A, RAW_B, "mean")
    with pytest.raises(ValueError, match="radius"):
        fuse(RAW_A, RAW_B, "l1", radius=1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fuse_max(RAW_A, RAW_B[:, :1]), "same shape"),
        (lambda: fuse_add(RAW_A[0], RAW_B[0]), "`a`"),
        (lambda: fuse_l1(RAW_A, RAW_B, block_radius=-1), "block_radius"),
        (lambda: fuse_l1(RAW_A, RAW_B, block_radius=1.5), "block_radius"),  # type: ignore[arg-type]  # on purpose
        (lambda: fuse_l1(RAW_A, RAW_B, weights="exp"), "weights"),
    ],
)
def test_bad_input_is_a_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
