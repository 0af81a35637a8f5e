"""Tests for benchmarks/probe_train_step.py: its tiled head against the plain one, and its comparison of the engine's
fused kernels with PyTorch's layers (the probe's timings mean nothing if the ways compute something else; the kernels
themselves are tested in test_fused.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol_utils.nets.fused import fused_kernels_available

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


def test_probe_reports_the_fused_kernels_differences_as_small(probe):
    if not fused_kernels_available():
        pytest.skip("the fused kernels need an x86-64 CPU with AVX-512F and a C compiler")
    for steps, names in (
        (probe._fused_head_steps, {"maps", "weight gradients", "input gradient"}),
        (probe._fused_stem_steps, {"output", "weight gradient", "bias gradient"}),
    ):
        *_, differences = steps()
        assert set(differences) == names
        assert all(0 < value < 1e-4 for value in differences.values())  # float rounding: not zero, not more


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
