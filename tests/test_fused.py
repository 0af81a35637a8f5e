"""Tests for wsol_utils.nets.fused: the fused CPU kernels compute PyTorch's layers (forward and every gradient, under
an upstream gradient that differs per cell), deterministically, take only what they fit, and leave evaluation to
PyTorch's layers."""

from __future__ import annotations

import copy
import platform
import shutil
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol_utils.engine.precision import cpu_flags
from wsol_utils.nets import fused
from wsol_utils.nets.models import Branch, create_model

needs_kernels = pytest.mark.skipif(
    not fused.fused_kernels_available(), reason="the fused kernels need an x86-64 CPU with AVX-512F and a C compiler"
)


def test_fused_kernels_are_built_where_they_can_run() -> None:
    """Where a C compiler, Python's headers and an AVX-512F CPU are, `make install` must have compiled the kernels
    (else training silently falls back to PyTorch's layers, ~1.7x slower, and every kernel test skips)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    has_headers = (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()
    if compiler is None or not has_headers or "avx512f" not in cpu_flags() or platform.machine() != "x86_64":
        pytest.skip("no C compiler, no Python.h or no AVX-512F x86-64 CPU: PyTorch's layers are the only path here")
    assert fused.fused_kernels_available(), "wsol_utils/nets/_fused_small.c was not compiled: run `make install`"


INSTRUMENT_MODEL: dict[str, Any] = {"downsamples": 1, "depth": 2, "head_kernel": 1}


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float = 1e-4) -> None:
    torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * float(want.detach().abs().max()))


def _stage(seed: int = 0) -> tuple[nn.Sequential, nn.Conv2d]:
    """The small backbone's first stage and its convolution."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    return nn.Sequential(conv, nn.MaxPool2d(2, 2), nn.ReLU(inplace=True)), conv


def _stem(stage: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    output = fused.fused_stem(stage, images)
    assert output is not None
    return output


def _branch_by_kernels(branch: Branch, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    output = fused.fused_branch(branch.body, branch.classifier, features)
    assert output is not None
    return output


def _gradients(output: torch.Tensor, upstream: torch.Tensor, leaves: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad((output * upstream).sum(), leaves))


@needs_kernels
def test_fused_stem_equals_conv_pool_relu_forward_and_backward() -> None:
    stage, conv = _stage()
    torch.manual_seed(1)
    images = torch.randn(3, 3, 6, 32)  # not square, several 16-pixel runs per row
    upstream = torch.randn(3, 8, 3, 16)
    leaves = list(conv.parameters())  # weight, bias
    want = stage(images)
    got = _stem(stage, images)
    assert got.shape == want.shape
    _close(got, want, 1e-5)
    for a, b in zip(_gradients(got, upstream, leaves), _gradients(want, upstream, leaves), strict=True):
        _close(a, b)


@needs_kernels
def test_fused_stem_breaks_ties_as_max_pool_does_and_masks_the_relu() -> None:
    """Equal values in a window: the first (row-major) takes the gradient, as in PyTorch; a maximum <= 0 none."""
    stage, conv = _stage()
    with torch.no_grad():
        conv.weight.zero_()  # every conv output equals its channel's bias: four-way ties everywhere
        leaves = list(conv.parameters())  # weight, bias
        leaves[1].copy_(torch.tensor([0.5, -0.5, 0.0, 1.0, 2.0, -1.0, 0.25, 3.0]))
    images = torch.randn(2, 3, 4, 16)
    upstream = torch.randn(2, 8, 2, 8)
    leaves = list(conv.parameters())  # weight, bias
    want = _gradients(stage(images), upstream, leaves)
    got = _gradients(_stem(stage, images), upstream, leaves)
    assert torch.equal(got[1][[1, 2, 5]], torch.zeros(3))  # ReLU: no gradient where the maximum is <= 0
    for a, b in zip(got, want, strict=True):
        _close(a, b)


@needs_kernels
def test_fused_stem_applies_only_where_it_fits() -> None:
    images, stage = torch.randn(2, 3, 8, 16), _stage()[0]
    assert fused.fused_stem(stage, torch.randn(2, 3, 8, 24)) is None  # width not a multiple of 16
    assert fused.fused_stem(stage, torch.randn(2, 3, 7, 16)) is None  # odd height
    assert fused.fused_stem(stage, images.double()) is None
    assert fused.fused_stem(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AvgPool2d(2), nn.ReLU()), images) is None
    assert fused.fused_stem(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()), images) is None
    assert fused.fused_stem(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), images) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fused.fused_stem(stage, images) is None


def _branch(classifier: str, classes: int = 10, seed: int = 0) -> Branch:
    torch.manual_seed(seed)
    return Branch(16, 32, classes, kernel_size=1, classifier=classifier)


@needs_kernels
@pytest.mark.parametrize("classes", [10, 3, 16])
def test_fused_conv_head_equals_the_branch_forward_and_backward(classes: int) -> None:
    branch = _branch("conv", classes)
    torch.manual_seed(2)
    features = torch.randn(2, 16, 4, 6).to(memory_format=torch.channels_last).requires_grad_()
    upstream = torch.randn(2, classes, 4, 6)
    leaves = [features, *branch.parameters()]
    want_logits, want_maps = branch(features)
    got = _branch_by_kernels(branch, features)
    _close(got[1], want_maps, 1e-5)
    _close(got[0], want_logits, 1e-5)
    for a, b in zip(_gradients(got[1], upstream, leaves), _gradients(want_maps, upstream, leaves), strict=True):
        assert a.shape == b.shape
        _close(a, b)


@needs_kernels
def test_fused_cam_head_equals_the_branch_logits_and_gradients() -> None:
    branch = _branch("fc")
    torch.manual_seed(3)
    features = torch.randn(3, 16, 2, 4).requires_grad_()  # 8 cells an image
    upstream = torch.randn(3, 10)
    leaves = [features, *branch.parameters()]
    want_logits, _ = branch(features)
    got = _branch_by_kernels(branch, features)
    assert got[1].numel() == 0  # no class maps in training
    _close(got[0], want_logits, 1e-5)
    for a, b in zip(_gradients(got[0], upstream, leaves), _gradients(want_logits, upstream, leaves), strict=True):
        _close(a, b)


@needs_kernels
def test_fused_heads_apply_only_where_they_fit() -> None:
    def fits(branch: Branch, features: torch.Tensor) -> bool:
        return fused.fused_branch(branch.body, branch.classifier, features) is not None

    features = torch.randn(2, 16, 4, 4)
    assert fits(_branch("conv"), features) and fits(_branch("fc"), features)
    assert not fits(_branch("conv"), torch.randn(1, 16, 3, 3))  # 9 cells: not a block of 8
    assert not fits(_branch("fc"), torch.randn(2, 16, 2, 2))  # 4 cells an image
    assert not fits(_branch("conv", 17), features)  # more classes than a register holds
    assert not fits(Branch(16, 32, 10, kernel_size=3), features)
    assert not fits(Branch(32, 32, 10, kernel_size=1), torch.randn(2, 32, 4, 4))
    assert not fits(_branch("conv"), features.double())


@needs_kernels
def test_fused_kernels_are_deterministic() -> None:
    branch, stage = _branch("conv"), _stage()[0]
    images, upstream = torch.randn(4, 3, 16, 16), torch.randn(4, 10, 8, 8)
    runs = []
    for _ in range(2):
        features = F.conv2d(_stem(stage, images), torch.ones(16, 8, 1, 1) / 8)
        _, maps = _branch_by_kernels(branch, features)
        runs.append(_gradients(maps, upstream, [*stage.parameters(), *branch.parameters()]))
        _ = [torch.randn(1 << 16) for _ in range(4)]  # reuse freed memory between the runs
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)


@needs_kernels
@pytest.mark.parametrize("method", ["cam", "acol", "hclnet"])
def test_model_trains_with_the_kernels_and_evaluates_with_pytorch(method: str) -> None:
    torch.manual_seed(0)
    plain = create_model(method, num_classes=10, backbone="small", **INSTRUMENT_MODEL)
    kernels = copy.deepcopy(plain)
    kernels.fused_kernels = True
    images, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    gradients = []
    for model in (plain, kernels):
        model.train()
        output = model(images, labels)
        loss = F.cross_entropy(output.logits_a, labels)
        if output.logits_b is not None:
            loss = loss + F.cross_entropy(output.logits_b, labels)
        gradients.append(torch.autograd.grad(loss, list(model.parameters())))
    for got, want in zip(gradients[1], gradients[0], strict=True):
        _close(got, want, 1e-3)  # through ACoL's erasing threshold, rounding may move a cell: a looser bound
    for model in (plain, kernels):
        model.eval()
    with torch.no_grad():
        evaluated = [model(images) for model in (plain, kernels)]
    assert torch.equal(evaluated[0].maps_a, evaluated[1].maps_a)  # evaluation: PyTorch's layers, bit for bit
    assert torch.equal(evaluated[0].logits_a, evaluated[1].logits_a)


@needs_kernels
def test_fused_kernels_give_the_same_numbers_on_any_thread_count() -> None:
    """19 images: two whole chunks of 8 and a short one, run on one thread and on several."""
    stage, conv = _stage()
    heads = [_branch("conv"), _branch("fc")]
    torch.manual_seed(4)
    images = torch.randn(19, 3, 16, 16)
    features = torch.randn(19, 16, 4, 4).requires_grad_()
    upstreams = [torch.randn(19, 8, 8, 8), torch.randn(19, 10, 4, 4), torch.randn(19, 10)]
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 3):
            torch.set_num_threads(count)
            outputs = [_stem(stage, images), _branch_by_kernels(heads[0], features)[1]]
            outputs.append(_branch_by_kernels(heads[1], features)[0])
            leaves = [*conv.parameters(), features, *heads[0].parameters(), *heads[1].parameters()]
            loss = torch.stack([(output * upstream).sum() for output, upstream in zip(outputs, upstreams, strict=True)])
            loss = loss.sum()
            results.append([output.detach() for output in outputs] + list(torch.autograd.grad(loss, leaves)))
    finally:
        torch.set_num_threads(threads)
    for one, several in zip(*results, strict=True):
        assert torch.equal(one, several)
    want = [stage(images), heads[0](features)[1], heads[1](features)[0]]
    leaves = [*conv.parameters(), features, *heads[0].parameters(), *heads[1].parameters()]
    loss = torch.stack([(output * upstream).sum() for output, upstream in zip(want, upstreams, strict=True)]).sum()
    want += list(torch.autograd.grad(loss, leaves))
    for got, expected in zip(results[0], want, strict=True):  # every chunk's gradient counted once
        _close(got.detach(), expected.detach(), 1e-4)
