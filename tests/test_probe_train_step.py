"""Tests for benchmarks/probe_train_step.py: its fused C head (probe_fused_head.c) against PyTorch's convolutions,
and its tiled head against the plain one (the probe's timings mean nothing if the heads compute something else)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from torch import nn

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def probe(load_benchmark, monkeypatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the probe imports bench_train_throughput
    return load_benchmark("probe_train_step")


def _head() -> list[nn.Conv2d]:
    torch.manual_seed(0)
    return [nn.Conv2d(16, 32, 1), nn.Conv2d(32, 32, 1), nn.Conv2d(32, 10, 1)]


def _params(convs: list[nn.Conv2d], flat: bool = False) -> list[torch.Tensor]:
    """``[w1, b1, w2, b2, w3, b3]``; ``flat``: weights as ``(out, in)`` matrices."""
    params: list[torch.Tensor] = []
    for conv in convs:
        assert conv.bias is not None
        params += [conv.weight.view(conv.out_channels, -1) if flat else conv.weight, conv.bias]
    return params


def _reference(convs: list[nn.Conv2d], features: torch.Tensor) -> torch.Tensor:
    return convs[2](F.relu(convs[1](F.relu(convs[0](features)))))


def _gradients(maps: torch.Tensor, upstream: torch.Tensor, features: torch.Tensor, params: list) -> list:
    """Gradients of ``sum(maps * upstream)`` (an upstream gradient that differs per cell) w.r.t. input and params."""
    return list(torch.autograd.grad((maps * upstream).sum(), [features, *params]))


def test_fused_head_equals_the_convolutions_forward_and_backward(probe, tmp_path):
    library = probe._compile_fused_head(tmp_path)
    if isinstance(library, str):
        pytest.skip(library)
    convs = _head()
    params = _params(convs)
    torch.manual_seed(1)
    for _ in range(2):  # twice: the second call runs after other tensors reused the memory the first one freed
        features = torch.randn(2, 16, 8, 12).to(memory_format=torch.channels_last).requires_grad_()
        upstream = torch.randn(2, 10, 8, 12)
        expected_maps = _reference(convs, features)
        maps = probe.FusedHead.apply(features, library, *params)
        torch.testing.assert_close(maps, expected_maps, rtol=1e-5, atol=1e-5)
        expected = _gradients(expected_maps, upstream, features, params)
        for got, want in zip(_gradients(maps, upstream, features, params), expected, strict=True):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        _ = [torch.randn(1 << 18) for _ in range(8)]


def test_fused_head_refuses_what_the_kernel_cannot_take(probe, tmp_path):
    library = probe._compile_fused_head(tmp_path)
    if isinstance(library, str):
        pytest.skip(library)
    params = _params(_head())
    with pytest.raises(ValueError, match="multiple of 8"):  # 18 cells: the kernel would run past the end
        probe.FusedHead.apply(torch.randn(2, 16, 3, 3), library, *params)
    with pytest.raises(ValueError, match="float32 CPU features"):
        probe.FusedHead.apply(torch.randn(2, 16, 4, 4, dtype=torch.float64), library, *params)
    with pytest.raises(ValueError, match="float32 CPU features"):
        probe.FusedHead.apply(torch.randn(2, 8, 4, 4), library, *params)


def test_probe_reports_the_fused_heads_differences_as_small(probe, tmp_path):
    library = probe._compile_fused_head(tmp_path)
    if isinstance(library, str):
        pytest.skip(library)
    *_, differences = probe._fused_head_steps(library)
    assert set(differences) == {"maps", "weight gradients", "input gradient"}
    assert all(0 <= value < 1e-4 for value in differences.values())


def test_tiled_head_equals_the_plain_head(probe):
    convs = _head()
    params = _params(convs, flat=True)
    torch.manual_seed(2)
    cells = torch.randn(50, 16, requires_grad=True)  # 50 cells in tiles of 16: the last tile is short
    upstream = torch.randn(50, 10)
    expected = F.linear(F.relu(F.linear(F.relu(F.linear(cells, *params[0:2])), *params[2:4])), *params[4:6])
    got = probe.TiledMLP.apply(cells, 16, *params)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    leaves = [cells, *_params(convs)]
    want = torch.autograd.grad((expected * upstream).sum(), leaves)
    for a, b in zip(torch.autograd.grad((got * upstream).sum(), leaves), want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
