"""Ideas for a faster CPU training step, measured (issue 19): two did not pay and are kept so they are not tried
again blind; the fused C kernels that did are the engine's now (``RunConfig.kernels``, :mod:`wsol_utils.nets.fused`):

1. **A tiled head.** A branch at the 8 px instrument is a per-cell MLP (1x1 convolutions ``16 -> 32 -> 32 -> C``
   with ReLUs) over ``B x 32 x 32`` cells. The probe runs it as one autograd function over tiles of cells that stay
   in the L2 cache: the forward keeps only the class maps, the backward recomputes each tile's activations
   (``addmm`` on ``(cells, channels)`` views of the channels_last tensors). Against PyTorch's oneDNN convolutions
   (:class:`wsol_utils.nets.models.Branch`): forward + backward of the branch and its cross-entropy on the mean.
2. **Cache-sized micro-batches at 8 px**: :func:`wsol_utils.engine.train.backward_batch` over chunks of 32, 16, 8
   images instead of the whole batch of 64 (a full training step with PyTorch's layers, ``kernels="torch"``).
3. **The fused C kernels alone** (``wsol_utils/nets/_fused_small.c``, AVX-512; skipped where they do not run): the
   head and loss of 1 by the conv-form head kernel, and the backbone's first stage (conv 3x3, max pool, ReLU) by the
   stem kernel, each against PyTorch's layers.
4. **A full training step** of the engine's CAM, ACoL and HCLNet models at the 8 px instrument with
   ``fused_kernels`` off and on (forward, loss, backward, SGD), from the same weights.
5. **Where a step with PyTorch's layers goes**: each module's forward and backward, timed by hooks.

The ways of each are interleaved in every round (one process, one thread, the engine's glibc settings); the
table gives per-round medians and the ratio of medians. Writes ``results/probe_train_step.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probe_train_step.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from bench_train_throughput import cpu_description

from wsol_utils.base.allocator import reuse_freed_memory
from wsol_utils.engine import INSTRUMENT, RunConfig, build_model
from wsol_utils.engine.optim import build_optimizer
from wsol_utils.engine.train import backward_batch
from wsol_utils.nets.fused import fused_branch, fused_kernels_available, fused_stem
from wsol_utils.nets.models import Branch, WSOLModel

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, CELLS, NUM_CLASSES = 64, 32, 10


class TiledMLP(torch.autograd.Function):
    """``relu(...relu(x W0^T + b0)...) W_n^T + b_n`` over ``x (P, K)``, ``tile`` rows at a time, recomputing the
    hidden activations in the backward (only ``x`` and the output are kept)."""

    @staticmethod
    def forward(ctx, x, tile, *params):
        weights, biases = params[0::2], params[1::2]
        out = x.new_empty(x.shape[0], weights[-1].shape[0])
        for start in range(0, x.shape[0], tile):
            hidden = x[start : start + tile]
            for w, b in zip(weights[:-1], biases[:-1], strict=True):
                hidden = torch.addmm(b, hidden, w.t()).clamp_min_(0)
            torch.addmm(biases[-1], hidden, weights[-1].t(), out=out[start : start + tile])
        ctx.tile = tile
        ctx.save_for_backward(x, *params)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, *params = ctx.saved_tensors
        weights, biases = params[0::2], params[1::2]
        grad_out = grad_out.contiguous()
        grad_w = [torch.zeros_like(w) for w in weights]
        grad_b = [torch.zeros_like(b) for b in biases]
        grad_x = torch.empty_like(x)
        for start in range(0, x.shape[0], ctx.tile):
            inputs = [x[start : start + ctx.tile]]
            for w, b in zip(weights[:-1], biases[:-1], strict=True):
                inputs.append(torch.addmm(b, inputs[-1], w.t()).clamp_min_(0))
            grad = grad_out[start : start + ctx.tile]
            for i in range(len(weights) - 1, -1, -1):
                grad_w[i].addmm_(grad.t(), inputs[i])
                grad_b[i].add_(grad.sum(0))
                if i:
                    grad = (grad @ weights[i]).mul_(inputs[i] > 0)
                else:
                    torch.mm(grad, weights[0], out=grad_x[start : start + ctx.tile])
        flat = [g for pair in zip(grad_w, grad_b, strict=True) for g in pair]
        return (grad_x, None, *flat)


def _relative(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    """Largest ``|a - b|`` relative to the largest ``|b|``."""
    assert a is not None and b is not None
    return float((a.detach() - b.detach()).abs().max() / b.detach().abs().max())


def _head_problem() -> tuple[torch.Tensor, torch.Tensor, list[torch.nn.Conv2d]]:
    """The probe's branch head and its input: ``features (64, 16, 32, 32)`` channels_last, ``labels (64,)`` and the
    three 1x1 convolutions 16 -> 32 -> 32 -> 10 (seed 0)."""
    torch.manual_seed(0)
    features = torch.randn(BATCH, 16, CELLS, CELLS).to(memory_format=torch.channels_last).requires_grad_()
    labels = torch.randint(0, NUM_CLASSES, (BATCH,))
    convs = [torch.nn.Conv2d(16, 32, 1), torch.nn.Conv2d(32, 32, 1), torch.nn.Conv2d(32, NUM_CLASSES, 1)]
    return features, labels, convs


def _head_step(
    convs: list[torch.nn.Conv2d], maps_of: Callable[[], torch.Tensor], labels: torch.Tensor, outputs: dict
) -> Callable[[], None]:
    """One step of a head: zero ``convs``' gradients, ``maps_of()``, cross-entropy on the maps' mean, backward; the
    maps are kept in ``outputs["maps"]``."""

    def step() -> None:
        for conv in convs:
            conv.zero_grad()
        outputs["maps"] = maps_of()
        F.cross_entropy(outputs["maps"].mean((2, 3)), labels).backward()

    return step


def _onednn_maps(convs: list[torch.nn.Conv2d], features: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The engine's way: PyTorch's (oneDNN) convolutions with in-place ReLUs."""
    return lambda: convs[2](F.relu(convs[1](F.relu(convs[0](features), inplace=True)), inplace=True))


def _head_steps(tile: int) -> tuple[Callable[[], None], Callable[[], None], float]:
    """(oneDNN branch step, tiled step, largest relative weight-gradient difference between them)."""
    features, labels, convs = _head_problem()
    params = [t for conv in convs for t in (conv.weight.view(conv.out_channels, -1), conv.bias)]

    def tiled_maps() -> torch.Tensor:
        cells = features.permute(0, 2, 3, 1).reshape(-1, 16)
        return TiledMLP.apply(cells, tile, *params).view(BATCH, CELLS, CELLS, NUM_CLASSES).permute(0, 3, 1, 2)

    grads = []
    for maps_of in (_onednn_maps(convs, features), tiled_maps):
        _head_step(convs, maps_of, labels, {})()
        grads.append([torch.clone(conv.weight.grad) for conv in convs if conv.weight.grad is not None])
    diff = max(_relative(a, b) for a, b in zip(grads[1], grads[0], strict=True))
    onednn = _head_step(convs, _onednn_maps(convs, features), labels, {})
    return onednn, _head_step(convs, tiled_maps, labels, {}), diff


def _fused_head_steps() -> tuple[Callable[[], None], Callable[[], None], dict[str, float]]:
    """(oneDNN branch step, the same step by the engine's fused kernel, largest relative differences of maps and
    gradients): the head and loss of :func:`_head_steps` as a :class:`~wsol_utils.nets.models.Branch` (conv form),
    the kernel (:func:`wsol_utils.nets.fused.fused_branch`) on a copy of the same weights and features."""
    features, labels, convs = _head_problem()
    branch = Branch(16, 32, NUM_CLASSES, kernel_size=1)
    layers = [cast(torch.nn.Conv2d, layer) for layer in (branch.body[0], branch.body[2], branch.classifier)]
    for layer, conv in zip(layers, convs, strict=True):
        layer.load_state_dict(conv.state_dict())
    twin_features = features.detach().clone().requires_grad_()

    def fused_maps() -> torch.Tensor:
        output = fused_branch(branch.body, branch.classifier, twin_features)
        assert output is not None  # the probe runs this only where the kernels do
        return output[1]

    outputs: dict[str, dict[str, torch.Tensor]] = {"onednn": {}, "fused": {}}
    onednn = _head_step(convs, _onednn_maps(convs, features), labels, outputs["onednn"])
    fused = _head_step(layers, fused_maps, labels, outputs["fused"])
    onednn()
    fused()
    differences = {
        "maps": _relative(outputs["fused"]["maps"], outputs["onednn"]["maps"]),
        "weight gradients": max(_relative(a.weight.grad, b.weight.grad) for a, b in zip(layers, convs, strict=True)),
        "input gradient": _relative(twin_features.grad, features.grad),
    }
    return onednn, fused, differences


def _fused_stem_steps() -> tuple[Callable[[], None], Callable[[], None], dict[str, float]]:
    """(the engine's first stage, the same by the fused kernel, largest relative differences of output and
    gradients): forward + backward of ``sum(stage(images) * upstream)`` on 64 images of 64 px, the same weights."""
    torch.manual_seed(0)
    conv, twin_conv = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(3, 8, 3, padding=1)
    twin_conv.load_state_dict(conv.state_dict())
    stage, twin = (torch.nn.Sequential(c, torch.nn.MaxPool2d(2), torch.nn.ReLU(True)) for c in (conv, twin_conv))
    images, upstream = torch.randn(BATCH, 3, 64, 64), torch.randn(BATCH, 8, CELLS, CELLS)
    outputs: dict[str, torch.Tensor] = {}

    def engine() -> None:  # the engine's way: channels_last images
        stage.zero_grad()
        outputs["engine"] = stage(images.contiguous(memory_format=torch.channels_last))
        (outputs["engine"] * upstream).sum().backward()

    def fused() -> None:
        twin.zero_grad()
        output = fused_stem(twin, images)
        assert output is not None  # the probe runs this only where the kernels do
        outputs["fused"] = output
        (output * upstream).sum().backward()

    engine()
    fused()
    parameters = zip(("weight", "bias"), twin_conv.parameters(), conv.parameters(), strict=True)
    differences = {"output": _relative(outputs["fused"], outputs["engine"])}
    differences |= {f"{name} gradient": _relative(twin.grad, one.grad) for name, twin, one in parameters}
    return engine, fused, differences


def _step_breakdown(method: str, steps: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """(ms per engine training step, ``{module: (forward ms, backward ms)}`` per step) for the engine's model at the
    8 px instrument, timed with ``perf_counter`` in module hooks and autograd node hooks, not torch.profiler (which
    inflated the 8 MB tensors' operations several-fold on this VM)."""
    config = RunConfig(method=method, kernels="torch", **INSTRUMENT)
    torch.manual_seed(0)
    model = build_model(config, NUM_CLASSES)
    optimizer = build_optimizer(model, config)
    model.train()
    batch = (torch.randn(BATCH, 3, 64, 64), torch.randint(0, NUM_CLASSES, (BATCH,)))
    seconds: dict[str, list[float]] = {}
    started: dict[str, float] = {}

    def before(name: str) -> None:
        started[name] = time.perf_counter()

    def after(name: str, output: torch.Tensor) -> None:
        seconds.setdefault(name, [0.0, 0.0])[0] += time.perf_counter() - started[name]
        node = output.grad_fn
        if node is not None:
            node.register_prehook(lambda _grads: before(name + " backward"))
            node.register_hook(
                lambda *_: seconds[name].__setitem__(
                    1, seconds[name][1] + time.perf_counter() - started[name + " backward"]
                )
            )

    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.ReLU, torch.nn.Linear)):
            module.register_forward_pre_hook(lambda _m, _i, name=name: before(name))
            module.register_forward_hook(lambda _m, _i, output, name=name: after(name, output))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        backward_batch(model, *batch, [slice(0, BATCH)])
        optimizer.step()

    step()
    seconds.clear()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    total = (time.perf_counter() - start) / steps * 1000
    return total, {name: (pair[0] / steps * 1000, pair[1] / steps * 1000) for name, pair in seconds.items()}


StepVariants = dict[str, tuple[Callable[[], None], float]]


def _fused_step_variants() -> dict[str, StepVariants]:
    """Per method: ``{way: (training step, largest relative gradient difference from PyTorch's after one step from
    the same weights and batch)}`` for the engine's model with ``fused_kernels`` off (``"torch"``) and on
    (``"fused"``: stem and heads, :mod:`wsol_utils.nets.fused`)."""
    variants: dict[str, StepVariants] = {}
    for method in ("cam", "acol", "hclnet"):
        config = RunConfig(method=method, kernels="torch", **INSTRUMENT)
        torch.manual_seed(0)
        models = {"torch": build_model(config, NUM_CLASSES)}
        models["fused"] = copy.deepcopy(models["torch"])
        models["fused"].fused_kernels = True
        batch = (torch.randn(BATCH, 3, 64, 64), torch.randint(0, NUM_CLASSES, (BATCH,)))
        steps, gradients = {}, {}
        for way, model in models.items():
            model.train()
            optimizer = build_optimizer(model, config)

            def step(model: WSOLModel = model, optimizer: torch.optim.Optimizer = optimizer) -> None:
                optimizer.zero_grad(set_to_none=True)
                backward_batch(model, *batch, [slice(0, BATCH)])  # noqa: B023 (batch is the same for both ways)
                optimizer.step()

            model.zero_grad(set_to_none=True)
            backward_batch(model, *batch, [slice(0, BATCH)])
            gradients[way] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
            steps[way] = step
        variants[method] = {
            way: (step, max(map(_relative, gradients[way], gradients["torch"]))) for way, step in steps.items()
        }
    return variants


def _engine_steps(method: str, sizes: list[int]) -> list[Callable[[], None]]:
    """One full training step of the engine's model per chunk size (images per backward)."""
    config = RunConfig(method=method, kernels="torch", **INSTRUMENT)
    model = build_model(config, NUM_CLASSES)
    optimizer = build_optimizer(model, config)
    model.train()
    torch.manual_seed(0)
    images, labels = torch.randn(BATCH, 3, 64, 64), torch.randint(0, NUM_CLASSES, (BATCH,))

    def step_of(size: int) -> Callable[[], None]:
        chunks = [slice(start, start + size) for start in range(0, BATCH, size)]

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            backward_batch(model, images, labels, chunks)
            optimizer.step()

        return step

    return [step_of(size) for size in sizes]


def _ms(step: Callable[[], None], repeats: int) -> float:
    """CPU milliseconds per call, after one untimed call."""
    step()
    start = time.process_time()
    for _ in range(repeats):
        step()
    return (time.process_time() - start) / repeats * 1000


def _bandwidth() -> str:
    """One thread filling and copying 8 MB tensors (32 of them in turn, so not from cache), GB/s."""
    buffers = [torch.ones(2 << 20) for _ in range(32)]
    targets = [torch.empty(2 << 20).fill_(0) for _ in range(32)]  # touched: no page faults in the timing
    start = time.perf_counter()
    for buffer in buffers:
        buffer.fill_(0.5)
    fill = 32 * 8 / 1024 / (time.perf_counter() - start)
    start = time.perf_counter()
    for source, target in zip(buffers, targets, strict=True):
        target.copy_(source)
    copied = 2 * 32 * 8 / 1024 / (time.perf_counter() - start)
    return f"one thread fills memory at {fill:.1f} GB/s and copies at {copied:.1f} GB/s (read + write, 8 MB tensors)"


def _row(name: str, base: list[float], new: list[float]) -> str:
    ratios = [b / n for b, n in zip(base, new, strict=True)]
    return (
        f"| {name} | {statistics.median(base):.1f} | {statistics.median(new):.1f} | "
        f"{statistics.median(base) / statistics.median(new):.2f} | {min(ratios):.2f}-{max(ratios):.2f} |"
    )


def _breakdown_note() -> str:
    return (
        "Wall ms per step, medians over the rounds, each module's forward (its forward hooks) and backward (its "
        "autograd node's hooks; an in-place ReLU's backward is ReLU's threshold_backward). `rest`: the step minus "
        "the modules (losses, the mean, erasing, the optimizer, autograd's own work, the hooks). Not torch.profiler: "
        "with `record_shapes` it inflated the operations on the 8 MB tensors several-fold on this VM (a one-off check)."
    )


def _breakdown_table(breakdowns: dict[str, list[tuple[float, dict[str, tuple[float, float]]]]]) -> list[str]:
    lines = ["", "| method | module | forward ms | backward ms |", "|:---|:---|---:|---:|"]
    for method, rounds in breakdowns.items():
        step = statistics.median(total for total, _ in rounds)
        names = rounds[0][1]
        summed = 0.0
        for name in names:
            forward = statistics.median(parts[name][0] for _, parts in rounds)
            backward = statistics.median(parts[name][1] for _, parts in rounds)
            summed += forward + backward
            lines.append(f"| {method} | {name} | {forward:.2f} | {backward:.2f} |")
        lines.append(f"| {method} | rest | {step - summed:.2f} (of the step's {step:.1f}) | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10, help="calls timed per way and round")
    parser.add_argument("--out", default=str(RESULTS / "probe_train_step.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    reuse_freed_memory()
    tiles, chunk_sizes = [1024, 4096, 16384], [64, 32, 16, 8]
    heads = {tile: _head_steps(tile) for tile in tiles}
    engines = {method: _engine_steps(method, chunk_sizes) for method in ("cam", "acol", "hclnet")}
    runs_here = fused_kernels_available()
    alone = {"head": _fused_head_steps(), "stem": _fused_stem_steps()} if runs_here else {}
    fused_steps = _fused_step_variants() if runs_here else {}
    times: dict[str, list[float]] = {}
    breakdowns: dict[str, list[tuple[float, dict[str, tuple[float, float]]]]] = {}
    for round_index in range(args.rounds):
        for tile, (onednn, tiled, _) in heads.items():
            times.setdefault(f"head oneDNN {tile}", []).append(_ms(onednn, args.repeats))
            times.setdefault(f"head tiled {tile}", []).append(_ms(tiled, args.repeats))
        for method, steps in engines.items():
            for size, step in zip(chunk_sizes, steps, strict=True):
                times.setdefault(f"{method} {size}", []).append(_ms(step, args.repeats))
        for name, (engine_way, fused_way, _) in alone.items():
            times.setdefault(f"{name} engine", []).append(_ms(engine_way, args.repeats))
            times.setdefault(f"{name} fused", []).append(_ms(fused_way, args.repeats))
        for method, ways in fused_steps.items():
            for way, (step, _) in ways.items():
                times.setdefault(f"step {method} {way}", []).append(_ms(step, args.repeats))
        for method in engines:
            breakdowns.setdefault(method, []).append(_step_breakdown(method, args.repeats))
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)
    title = (
        f"# Measured ideas for a faster CPU training step (issue 19): {cpu_description()}, "
        f"one thread, {args.rounds} interleaved rounds x {args.repeats} calls, CPU ms per call"
    )
    head_note = (
        "speed_up = oneDNN / tiled (above 1: the tiled head is faster). max_rel_grad_diff: the weight gradients "
        "differ by float rounding only (the tiles sum in another order: not bit-identical)."
    )
    lines = [
        title,
        "",
        f"Made by `benchmarks/probe_train_step.py` (its docstring says what each way is). {_bandwidth()}.",
        "",
        "## 1. The ACoL/HCLNet branch head (16 -> 32 -> 32 -> 10 per cell, 64 x 32 x 32 cells): forward + backward",
        "",
        head_note,
        "",
        "| tile (cells) | oneDNN ms | tiled ms | speed_up | per-round range | max_rel_grad_diff |",
        "|---:|---:|---:|---:|:---|---:|",
    ]
    for tile, (_, _, diff) in heads.items():
        row = _row(str(tile), times[f"head oneDNN {tile}"], times[f"head tiled {tile}"])
        lines.append(f"{row} {diff:.1e} |")
    lines += [
        "",
        "## 2. A full engine training step at the 8 px instrument, backward in chunks of N images (batch 64)",
        "",
        "speed_up = whole batch (the engine's choice at 8 px) / chunks of N (above 1: the chunks are faster).",
        "",
        "| method, N | whole batch ms | chunks ms | speed_up | per-round range |",
        "|:---|---:|---:|---:|:---|",
    ]
    for method in engines:
        for size in chunk_sizes[1:]:
            lines.append(_row(f"{method}, {size}", times[f"{method} 64"], times[f"{method} {size}"]))
    lines += [
        "",
        "## 3. The engine's fused C kernels alone (`wsol_utils/nets/_fused_small.c`, AVX-512): forward + backward",
        "",
        (
            "- head: the head and loss of 1 by the conv-form head kernel (8 cells at a time in registers, only the "
            "class maps written, the backward recomputing the hidden activations);"
        ),
        (
            "- stem: the small backbone's first stage on 64 images of 64 px (conv 3x3 3 -> 8, 2x2 max pool, ReLU; the "
            "loss `sum(output * upstream)`) by the stem kernel (the full-resolution conv output never written, a "
            "byte per pooled value for the backward, which computes only the weight and bias gradients)."
        ),
        "",
        (
            "speed_up = engine (oneDNN) / fused C (above 1: the kernel is faster). Largest relative differences are "
            "float rounding (summed in another order: not bit-identical)."
        ),
        "",
        "| kernel | engine ms | fused C ms | speed_up | per-round range | largest relative differences |",
        "|:---|---:|---:|---:|:---|:---|",
    ]
    if not runs_here:
        lines.append("Not measured: the fused kernels do not run here (no AVX-512F CPU or no compiled extension).")
    for name in alone:
        differences = ", ".join(f"{key} {value:.1e}" for key, value in alone[name][2].items())
        lines.append(f"{_row(name, times[f'{name} engine'], times[f'{name} fused'])} {differences} |")
    lines += [
        "",
        '## 4. A full training step at the 8 px instrument: `kernels="torch"` against `kernels="fused"`',
        "",
        (
            "speed_up = step with PyTorch's layers / step with the fused kernels (the engine's model with "
            "`fused_kernels` off and on: the stem, both branches' heads of ACoL / HCLNet, CAM's fc-form head without "
            "its training-time class maps, which no loss reads; forward, loss, backward, SGD; batch 64). "
            "max_rel_grad_diff: every parameter's gradient after one step from the same weights and batch."
        ),
        "",
        "| method | torch ms | fused ms | speed_up | per-round range | max_rel_grad_diff |",
        "|:---|---:|---:|---:|:---|---:|",
    ]
    for method, ways in fused_steps.items():
        row = _row(method, times[f"step {method} torch"], times[f"step {method} fused"])
        lines.append(f"{row} {ways['fused'][1]:.1e} |")
    lines += [
        "",
        "## 5. Where a training step with PyTorch's layers goes (8 px instrument, batch 64)",
        "",
        _breakdown_note(),
    ]
    lines += _breakdown_table(breakdowns)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
