"""Fused CPU training kernels for the small backbone's first stage and branch heads (docs/methods.md §4.5; issue 19).

A training step of the small models at the 8 px instrument is some twenty PyTorch operations of 0.3-4 ms each
(benchmarks/results/probe_train_step.md), most of them writing a ``(64, C, 32, 32)`` float tensor that the next
layer, a ReLU or the backward reads again. The compiled kernels (``_fused_small.c``, x86-64 with AVX-512F) compute
several layers at once with the data in registers and cache:

- :func:`fused_stem`: the backbone's ``conv 3x3 (3 -> 8, pad 1) -> 2x2 max pool -> ReLU`` (:func:`stem_fits`);
  only the weight and bias gradients (the input is the image).
- :func:`fused_branch`: a branch's ``1x1 16 -> 32, ReLU, 1x1 32 -> 32, ReLU`` then either its 1x1 class
  convolution (ACoL / HCLNet, the class maps) or, for CAM's fc form, the global average pool (the Linear stays
  in PyTorch; no class maps are made, a training step never reads them) (:func:`branch_fits`).

Same equations, other float rounding (fixed summation order, deterministic on one machine; not bit-identical to
oneDNN's, as two CPUs are not). The model uses them only while training with gradients on a float32 CPU batch
whose shapes fit (:meth:`wsol_utils.nets.models.WSOLModel.forward`); evaluation and maps always run PyTorch's
layers, so a checkpoint scores the same wherever it was trained. ``RunConfig.kernels`` chooses
(:mod:`wsol_utils.engine.precision`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import torch
from torch import Tensor, nn

try:
    from wsol_utils.nets import _fused_small
except ImportError:  # pragma: no cover (no C compiler at install: PyTorch's layers are used)
    _fused_small = None  # type: ignore[assignment]

__all__ = ["branch_fits", "fused_branch", "fused_kernels_available", "fused_stem", "stem_fits"]

#: The most classes a head kernel takes (one AVX-512 register of class scores).
MAX_CLASSES = 16
#: Cells per kernel block (``_fused_small.c``'s ``R``): an image's cell count ``h w`` must be a multiple.
BLOCK = 8
#: Images per kernel call. A batch runs in chunks of this many images, spread over torch's CPU threads (the kernels
#: release the GIL), and the chunks' gradient sums are added in chunk order: the numbers do not depend on the
#: number of threads.
CHUNK = 8


def fused_kernels_available() -> bool:
    """Whether the compiled kernels are installed and this CPU runs them (x86-64 with AVX-512F)."""
    return _fused_small is not None and bool(_fused_small.available())


def _call(name: str, sizes: tuple[int, ...], tensors: tuple[Tensor, ...]) -> None:
    """``_fused_small.<name>(sizes, addresses)``; every tensor is contiguous and alive for the call."""
    assert _fused_small is not None and all(t.is_contiguous() for t in tensors)
    getattr(_fused_small, name)(sizes, tuple(t.data_ptr() for t in tensors))


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """The threads that run kernel calls side by side (one pool per thread count, made on first use)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="wsol-fused")


Job = tuple[tuple[int, ...], tuple[Tensor, ...]]


def _in_chunks(name: str, batch: int, job: Callable[[slice], Job]) -> None:
    """Run kernel ``name`` once per chunk of :data:`CHUNK` images of a ``batch`` (``job(images)``: its sizes and
    tensors), on up to ``torch.get_num_threads()`` threads."""
    jobs = [job(slice(start, min(start + CHUNK, batch))) for start in range(0, batch, CHUNK)]
    workers = min(torch.get_num_threads(), len(jobs))
    if workers <= 1:
        for sizes, tensors in jobs:
            _call(name, sizes, tensors)
        return
    for done in [_pool(workers).submit(_call, name, *each) for each in jobs]:
        done.result()


def _chunk_sums(batch: int, shapes: tuple[tuple[int, ...], ...]) -> list[list[Tensor]]:
    """Zeroed gradient buffers of ``shapes``, one set per chunk of ``batch`` images."""
    return [[torch.zeros(shape) for shape in shapes] for _ in range(0, batch, CHUNK)]


def _added(parts: list[list[Tensor]]) -> list[Tensor]:
    """The chunks' gradient sums added in chunk order (so the result does not depend on the thread count)."""
    totals = [tensor.clone() for tensor in parts[0]]
    for part in parts[1:]:
        for total, tensor in zip(totals, part, strict=True):
            total += tensor
    return totals


def _rows(images: slice, per_image: int) -> slice:
    """The cell rows of the ``images`` of a ``(B h w, ...)`` tensor, ``per_image`` rows an image."""
    return slice(images.start * per_image, images.stop * per_image)


def _conv(module: nn.Module, out_channels: int, in_channels: int, kernel: int) -> bool:
    """``module`` is exactly an ``nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)`` with a bias."""
    return (
        isinstance(module, nn.Conv2d)
        and module.weight.shape == (out_channels, in_channels, kernel, kernel)
        and module.bias is not None
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding == (kernel // 2, kernel // 2)
        and module.padding_mode == "zeros"
    )


# --------------------------------------------------------------------------------------------------------------
# The stem


def stem_fits(features: nn.Module) -> bool:
    """Whether ``features`` is an ``nn.Sequential`` starting with ``Conv2d(3, 8, 3, padding=1)``,
    ``MaxPool2d(2, 2)``, ``ReLU`` (the small backbone with max pooling and one convolution in its first stage)."""
    if not isinstance(features, nn.Sequential) or len(features) < 3:
        return False
    pool, relu = features[1], features[2]
    return (
        _conv(features[0], 8, 3, 3)
        and isinstance(pool, nn.MaxPool2d)
        and pool.kernel_size in (2, (2, 2))
        and pool.stride in (2, (2, 2))
        and pool.padding in (0, (0, 0))
        and pool.dilation in (1, (1, 1))
        and not pool.ceil_mode
        and isinstance(relu, nn.ReLU)
    )


class _Stem(torch.autograd.Function):
    """``images (B, 3, H, W)`` -> ``relu(maxpool2(conv3x3(images)))`` ``(B, 8, H/2, W/2)`` (channels_last memory);
    gradients for the weight and bias only."""

    @staticmethod
    def forward(ctx: Any, images: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        batch, _, height, width = images.shape
        pixels = images.detach().contiguous()
        pooled = pixels.new_empty(batch, height // 2, width // 2, 8)
        codes = torch.empty(batch, 8, height // 2, width // 2, dtype=torch.uint8)
        kernel, shift = weight.detach().reshape(8, 27).contiguous(), bias.detach().contiguous()

        def job(images: slice) -> Job:
            size = images.stop - images.start
            return (size, height, width), (pixels[images], kernel, shift, pooled[images], codes[images])

        _in_chunks("stem_forward", batch, job)
        ctx.save_for_backward(pixels, codes)
        return pooled.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, Tensor]:
        pixels, codes = ctx.saved_tensors
        batch, _, height, width = pixels.shape
        upstream = grad.contiguous()  # NCHW: the kernel reads one channel's row of cells at a time
        sums = _chunk_sums(batch, ((8, 27), (8,)))

        def job(images: slice) -> Job:
            size, mine = images.stop - images.start, sums[images.start // CHUNK]
            return (size, height, width), (pixels[images], codes[images], upstream[images], *mine)

        _in_chunks("stem_backward", batch, job)
        grad_weight, grad_bias = _added(sums)
        return None, grad_weight.view(8, 3, 3, 3), grad_bias


def fused_stem(features: nn.Module, images: Tensor) -> Tensor | None:
    """``features(images)`` with its first three layers by the kernel, or ``None`` where the kernel does not apply
    (see :func:`stem_fits`; float32 CPU ``images (B, 3, H, W)``, ``H`` even, ``W`` a multiple of 16)."""
    _, channels, height, width = images.shape
    if not (_cpu_float(images) and stem_fits(features) and channels == 3 and height % 2 == 0 and width % 16 == 0):
        return None
    layers = cast(nn.Sequential, features)
    conv = cast(nn.Conv2d, layers[0])
    return layers[3:](_Stem.apply(images, conv.weight, conv.bias))


# --------------------------------------------------------------------------------------------------------------
# The branch heads


def branch_fits(body: nn.Module, classifier: nn.Module) -> bool:
    """Whether a branch's ``body`` and ``classifier`` (:class:`wsol_utils.nets.models.Branch`) are the kernels'
    head: 1x1 convolutions ``16 -> 32 -> 32`` with ReLUs, then a 1x1 class convolution or a Linear ``32 -> C``,
    ``C`` at most :data:`MAX_CLASSES`."""
    if not isinstance(body, nn.Sequential) or len(body) != 4:
        return False
    hidden = _conv(body[0], 32, 16, 1) and _conv(body[2], 32, 32, 1)
    relus = isinstance(body[1], nn.ReLU) and isinstance(body[3], nn.ReLU)
    if isinstance(classifier, nn.Linear):
        head = classifier.in_features == 32 and classifier.bias is not None
        classes = classifier.out_features
    else:
        classes = int(classifier.weight.shape[0]) if isinstance(classifier, nn.Conv2d) else 0
        head = _conv(classifier, classes, 32, 1)
    return hidden and relus and head and classes <= MAX_CLASSES


def _cells(features: Tensor) -> Tensor:
    """``(B, 16, h, w)`` -> ``(B h w, 16)`` cell rows (a view of a channels_last tensor, else a copy)."""
    return features.permute(0, 2, 3, 1).contiguous().view(-1, features.shape[1])


def _transposed(weight: Tensor) -> Tensor:
    """A 1x1 convolution's or Linear's weight ``(out, in[, 1, 1])`` as ``(in, out)`` for the kernels' forward."""
    return weight.detach().reshape(weight.shape[0], -1).t().contiguous()


def _as_matrix(weight: Tensor) -> Tensor:
    return weight.detach().reshape(weight.shape[0], -1).contiguous()


def _from_transposed(grad: Tensor, shape: torch.Size) -> Tensor:
    """A kernel's ``(in, out)`` weight gradient in the weight's ``shape`` (``(out, in[, 1, 1])``)."""
    return grad.t().reshape(shape)


class _Head(torch.autograd.Function):
    """Conv-form branch: ``features (B, 16, h, w)`` -> class maps ``(B, C, h, w)`` (channels_last memory)."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor, b3: Tensor):
        cells = _cells(features)
        classes = w3.shape[0]
        forward = (_transposed(w1), b1.detach().contiguous(), _transposed(w2), b2.detach().contiguous())
        maps = cells.new_empty(cells.shape[0], classes)
        per_image, classifier = features.shape[2] * features.shape[3], (_transposed(w3), b3.detach().contiguous())

        def job(images: slice) -> Job:
            rows = _rows(images, per_image)
            return (rows.stop - rows.start, classes), (cells[rows], *forward, *classifier, maps[rows])

        _in_chunks("head_forward", features.shape[0], job)
        ctx.shape, ctx.weight_shapes = (features.shape[0], *features.shape[2:]), (w1.shape, w2.shape, w3.shape)
        ctx.save_for_backward(cells, *forward, _as_matrix(w1), _as_matrix(w2), _as_matrix(w3))
        return maps.view(*ctx.shape, classes).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Any, grad_maps: Tensor):
        cells, t1, b1, t2, b2, m1, m2, m3 = ctx.saved_tensors
        classes = m3.shape[0]
        upstream = grad_maps.permute(0, 2, 3, 1).contiguous().view(cells.shape[0], classes)
        grad_cells = torch.empty_like(cells)
        batch, per_image = ctx.shape[0], ctx.shape[1] * ctx.shape[2]
        sums = _chunk_sums(batch, ((16, 32), (32,), (32, 32), (32,), (32, classes), (classes,)))

        def job(images: slice) -> Job:
            rows, mine = _rows(images, per_image), sums[images.start // CHUNK]
            weights = (t1, b1, t2, b2, m1, m2, m3)
            return (rows.stop - rows.start, classes), (cells[rows], *weights, upstream[rows], grad_cells[rows], *mine)

        _in_chunks("head_backward", batch, job)
        gw1, gb1, gw2, gb2, gw3, gb3 = _added(sums)
        grad_features = grad_cells.view(*ctx.shape, 16).permute(0, 3, 1, 2)
        gw1, gw2, gw3 = (
            _from_transposed(g, shape) for g, shape in zip((gw1, gw2, gw3), ctx.weight_shapes, strict=True)
        )
        return grad_features, gw1, gb1, gw2, gb2, gw3, gb3


class _CamHead(torch.autograd.Function):
    """CAM's fc-form branch up to its pool: ``features (B, 16, h, w)`` -> ``mean_hw relu(...relu(...))`` ``(B, 32)``."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        cells = _cells(features)
        per_image = features.shape[2] * features.shape[3]
        forward = (_transposed(w1), b1.detach().contiguous(), _transposed(w2), b2.detach().contiguous())
        sums = cells.new_empty(features.shape[0], 32)

        def job(images: slice) -> Job:
            rows = _rows(images, per_image)
            return (rows.stop - rows.start, per_image), (cells[rows], *forward, sums[images])

        _in_chunks("cam_head_forward", features.shape[0], job)
        ctx.shape, ctx.weight_shapes = (features.shape[0], *features.shape[2:]), (w1.shape, w2.shape)
        ctx.save_for_backward(cells, *forward, _as_matrix(w1), _as_matrix(w2))
        return sums / per_image

    @staticmethod
    def backward(ctx: Any, grad_pooled: Tensor):
        cells, t1, b1, t2, b2, m1, m2 = ctx.saved_tensors
        per_image = ctx.shape[1] * ctx.shape[2]
        upstream = (grad_pooled / per_image).contiguous()
        grad_cells = torch.empty_like(cells)
        batch = ctx.shape[0]
        sums = _chunk_sums(batch, ((16, 32), (32,), (32, 32), (32,)))

        def job(images: slice) -> Job:
            rows, mine = _rows(images, per_image), sums[images.start // CHUNK]
            tensors = (cells[rows], t1, b1, t2, b2, m1, m2, upstream[images], grad_cells[rows], *mine)
            return (rows.stop - rows.start, per_image), tensors

        _in_chunks("cam_head_backward", batch, job)
        gw1, gb1, gw2, gb2 = _added(sums)
        grad_features = grad_cells.view(*ctx.shape, 16).permute(0, 3, 1, 2)
        shapes = ctx.weight_shapes
        return grad_features, _from_transposed(gw1, shapes[0]), gb1, _from_transposed(gw2, shapes[1]), gb2


def fused_branch(body: nn.Module, classifier: nn.Module, features: Tensor) -> tuple[Tensor, Tensor] | None:
    """A branch's ``(logits (B, C), maps)`` from its ``body`` and ``classifier`` by the kernels, or ``None`` where
    they do not apply (see :func:`branch_fits`; float32 CPU ``features (B, 16, h, w)`` with ``h w`` a multiple of
    :data:`BLOCK`). Conv form: ``maps (B, C, h, w)``, logits their spatial mean. CAM's fc form:
    ``maps`` is an empty tensor (a training step never reads CAM's maps)."""
    batch, _, height, width = features.shape
    linear = isinstance(classifier, nn.Linear)
    if not (_cpu_float(features) and branch_fits(body, classifier) and (height * width) % BLOCK == 0 and batch > 0):
        return None
    layers = cast(nn.Sequential, body)
    first, second = cast(nn.Conv2d, layers[0]), cast(nn.Conv2d, layers[2])
    hidden = (first.weight, first.bias, second.weight, second.bias)
    if linear:
        return classifier(_CamHead.apply(features, *hidden)), features.new_empty(0)
    conv = cast(nn.Conv2d, classifier)
    maps = _Head.apply(features, *hidden, conv.weight, conv.bias)
    return maps.mean(dim=(2, 3)), maps


def _cpu_float(tensor: Tensor) -> bool:
    """A float32 CPU tensor outside autocast, with the kernels available."""
    return (
        tensor.device.type == "cpu"
        and tensor.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and fused_kernels_available()
    )
