"""Three ideas for a faster CPU training step, measured (issue 19): two did not pay and are kept so they are not tried
again blind; the third, a hand-written fused kernel, is the lead:

1. **A tiled head.** A branch at the 8 px instrument is a per-cell MLP (1x1 convolutions ``16 -> 32 -> 32 -> C``
   with ReLUs) over ``B x 32 x 32`` cells: memory-bound on this CPU (one thread fills memory at about 7 GB/s, see
   the bandwidth line). The probe runs it as one autograd function over tiles of cells that stay in the L2 cache:
   the forward keeps only the class maps, the backward recomputes each tile's activations (``addmm`` on
   ``(cells, channels)`` views of the channels_last tensors). Against PyTorch's oneDNN convolutions (the engine's
   :class:`wsol_utils.nets.models.Branch`): forward + backward of the branch and its cross-entropy on the mean.
2. **Cache-sized micro-batches at 8 px**: :func:`wsol_utils.engine.train.backward_batch` over chunks of 32, 16, 8
   images instead of the engine's whole batch of 64 (a full training step with the engine's model and optimizer).
3. **A fused C kernel for the head** (``probe_fused_head.c``, AVX-512; compiled here with ``cc -O3 -march=native``,
   skipped without a compiler or AVX-512): the same head and loss as 1, forward and backward in C. Not the engine:
   it shows how far a hand-written kernel is from oneDNN on this CPU, the lead for issue 19's x1.6.
4. **That kernel in a full training step**: the engine's ACoL and HCLNet models at the 8 px instrument, their two
   branches' ``forward`` replaced (on the probe's copy only) by the kernel as an autograd function; a whole step
   (forward, loss, backward, SGD) against the unchanged model from the same weights.

The ways of each are interleaved in every round (one process, one thread, the engine's glibc settings); the
table gives per-round medians and the ratio of medians. Writes ``results/probe_train_step.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probe_train_step.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_train_throughput import cpu_description

from wsol_utils.base.allocator import reuse_freed_memory
from wsol_utils.engine import INSTRUMENT, RunConfig, build_model
from wsol_utils.engine.optim import build_optimizer
from wsol_utils.engine.train import backward_batch
from wsol_utils.nets.models import WSOLModel

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


def _compile_fused_head(folder: Path) -> ctypes.CDLL | str:
    """``probe_fused_head.c`` compiled into ``folder`` and loaded, or why not."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler"
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return f"the CPU lacks AVX-512 (torch capability {torch.backends.cpu.get_cpu_capability()})"
    library = folder / "probe_fused_head.so"
    source = Path(__file__).resolve().parent / "probe_fused_head.c"
    command = [compiler, "-O3", "-march=native", "-shared", "-fPIC", "-o", str(library), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        return f"{' '.join(command)} failed: {done.stderr.strip()[:200]}"
    return ctypes.CDLL(str(library))


def _pointer(tensor: torch.Tensor) -> ctypes.c_void_p:
    """The address of ``tensor``'s data for C (the tensor must stay alive while C uses it)."""
    return ctypes.c_void_p(tensor.data_ptr())


def _fused_head_steps(library: ctypes.CDLL) -> tuple[Callable[[], None], Callable[[], None], dict[str, float]]:
    """(oneDNN branch step, the same step through :class:`FusedHead`, largest relative differences of maps and
    gradients): the head and loss of :func:`_head_steps`, the kernel on a copy of the same weights and features."""
    features, labels, convs = _head_problem()
    twin_features = features.detach().clone().requires_grad_()
    twins = copy.deepcopy(convs)
    params = [t for conv in twins for t in (conv.weight, conv.bias)]
    outputs: dict[str, dict[str, torch.Tensor]] = {"onednn": {}, "fused": {}}
    onednn = _head_step(convs, _onednn_maps(convs, features), labels, outputs["onednn"])
    fused = _head_step(twins, lambda: FusedHead.apply(twin_features, library, *params), labels, outputs["fused"])
    onednn()
    fused()
    differences = {
        "maps": _relative(outputs["fused"]["maps"], outputs["onednn"]["maps"]),
        "weight gradients": max(_relative(twin.weight.grad, conv.weight.grad) for twin, conv in zip(twins, convs)),
        "input gradient": _relative(twin_features.grad, features.grad),
    }
    return onednn, fused, differences


class FusedHead(torch.autograd.Function):
    """A conv-form branch (``1x1 16->32, ReLU, 1x1 32->32, ReLU, 1x1 32->10``) by ``probe_fused_head.c``:
    ``features (B, 16, h, w)`` float32 on the CPU -> class maps ``(B, 10, h, w)`` (channels_last memory),
    ``B * h * w`` a multiple of 8 (the kernel's block of cells; checked here, the C code does not check)."""

    SHAPES = ((32, 16, 1, 1), (32, 32, 1, 1), (10, 32, 1, 1))

    @staticmethod
    def forward(ctx, features, library, w1, b1, w2, b2, w3, b3):
        batch, channels, height, width = features.shape
        shapes = tuple(tuple(w.shape) for w in (w1, w2, w3))
        kind = (features.dtype, features.device.type, channels)
        if kind != (torch.float32, "cpu", 16) or shapes != FusedHead.SHAPES:
            raise ValueError(
                f"FusedHead: float32 CPU features (B, 16, h, w) and weights {FusedHead.SHAPES}; got "
                f"{features.dtype} {features.device.type} {tuple(features.shape)} and {shapes}"
            )
        if (batch * height * width) % 8:
            raise ValueError(f"FusedHead: B * h * w must be a multiple of 8; got {batch} * {height} * {width}")
        cells = features.permute(0, 2, 3, 1).contiguous().view(-1, channels)
        weights = [w.detach().reshape(w.shape[0], -1).contiguous() for w in (w1, w2, w3)]
        transposed = [w.t().contiguous() for w in weights]
        biases = [b.detach().contiguous() for b in (b1, b2, b3)]
        maps = features.new_empty(cells.shape[0], weights[2].shape[0])
        forward_weights = [t for pair in zip(transposed, biases, strict=True) for t in pair]
        library.head_forward(
            _pointer(cells), ctypes.c_long(cells.shape[0]), *map(_pointer, forward_weights), _pointer(maps)
        )
        ctx.library, ctx.shape = library, (batch, height, width)
        ctx.save_for_backward(cells, *forward_weights[:4], *weights, *biases)
        return maps.view(batch, height, width, -1).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad_maps):
        cells, t1, b1, t2, b2, w1, w2, w3, *biases = ctx.saved_tensors
        batch, height, width = ctx.shape
        grad_cells = torch.empty_like(cells)
        grad_flat = grad_maps.permute(0, 2, 3, 1).contiguous().view(cells.shape[0], -1)
        grads = [torch.zeros(t.shape) for t in (t1, b1, t2, b2, w3.t(), biases[2])]  # contiguous, as C writes them
        ctx.library.head_backward(
            _pointer(cells),
            ctypes.c_long(cells.shape[0]),
            *map(_pointer, (t1, b1, t2, b2, w1, w2, w3)),
            _pointer(grad_flat),
            _pointer(grad_cells),
            *map(_pointer, grads),
        )
        grad_features = grad_cells.view(batch, height, width, -1).permute(0, 3, 1, 2)
        shaped = [g.t()[:, :, None, None] if g.dim() == 2 else g for g in grads]  # (in, out) -> (out, in, 1, 1)
        return (grad_features, None, *shaped)


def _use_fused_heads(model: WSOLModel, library: ctypes.CDLL) -> None:
    """Replace the forward of ``model``'s two conv-form branches by :class:`FusedHead` (this instance only)."""
    for branch in (model.branch_a, model.branch_b):
        assert branch is not None
        first, _, second, _ = branch.body
        classifier = branch.classifier

        def forward(features, first=first, second=second, classifier=classifier):
            maps = FusedHead.apply(
                features,
                library,
                first.weight,
                first.bias,
                second.weight,
                second.bias,
                classifier.weight,
                classifier.bias,
            )
            return maps.mean(dim=(2, 3)), maps

        branch.forward = forward  # type: ignore[method-assign]


def _fused_step_pairs(library: ctypes.CDLL) -> dict[str, tuple[Callable[[], None], Callable[[], None], float]]:
    """Per method (ACoL, HCLNet): (engine step, step with fused heads, largest relative gradient difference after
    one step from the same weights)."""
    pairs: dict[str, tuple[Callable[[], None], Callable[[], None], float]] = {}
    for method in ("acol", "hclnet"):
        config = RunConfig(method=method, **INSTRUMENT)
        torch.manual_seed(0)
        models = [build_model(config, NUM_CLASSES)]
        models.append(copy.deepcopy(models[0]))
        _use_fused_heads(models[1], library)
        batch = (torch.randn(BATCH, 3, 64, 64), torch.randint(0, NUM_CLASSES, (BATCH,)))
        steps, gradients = [], []
        for model in models:
            model.train()
            optimizer = build_optimizer(model, config)

            def step(model: WSOLModel = model, optimizer: torch.optim.Optimizer = optimizer) -> None:
                optimizer.zero_grad(set_to_none=True)
                backward_batch(model, *batch, [slice(0, BATCH)])  # noqa: B023 (batch is the same for both models)
                optimizer.step()

            model.zero_grad(set_to_none=True)
            backward_batch(model, *batch, [slice(0, BATCH)])
            gradients.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
            steps.append(step)
        difference = max(_relative(fused, engine) for engine, fused in zip(*gradients, strict=True))
        pairs[method] = (steps[0], steps[1], difference)
    return pairs


def _engine_steps(method: str, sizes: list[int]) -> list[Callable[[], None]]:
    """One full training step of the engine's model per chunk size (images per backward)."""
    config = RunConfig(method=method, **INSTRUMENT)
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
    scratch = tempfile.TemporaryDirectory()
    library = _compile_fused_head(Path(scratch.name))
    fused = _fused_head_steps(library) if isinstance(library, ctypes.CDLL) else None
    fused_steps = _fused_step_pairs(library) if isinstance(library, ctypes.CDLL) else {}
    times: dict[str, list[float]] = {}
    for round_index in range(args.rounds):
        for tile, (onednn, tiled, _) in heads.items():
            times.setdefault(f"head oneDNN {tile}", []).append(_ms(onednn, args.repeats))
            times.setdefault(f"head tiled {tile}", []).append(_ms(tiled, args.repeats))
        for method, steps in engines.items():
            for size, step in zip(chunk_sizes, steps, strict=True):
                times.setdefault(f"{method} {size}", []).append(_ms(step, args.repeats))
        if fused is not None:
            times.setdefault("fused oneDNN", []).append(_ms(fused[0], args.repeats))
            times.setdefault("fused C", []).append(_ms(fused[1], args.repeats))
        for method, (engine_step, fused_step, _) in fused_steps.items():
            times.setdefault(f"step oneDNN {method}", []).append(_ms(engine_step, args.repeats))
            times.setdefault(f"step fused {method}", []).append(_ms(fused_step, args.repeats))
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)
    title = (
        f"# Three measured ideas for a faster CPU training step (issue 19): {cpu_description()}, "
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
        "## 3. The same head and loss as 1 as a fused C kernel (`probe_fused_head.c`, AVX-512): forward + backward",
        "",
    ]
    if fused is None:
        lines.append(f"Not measured: {library}.")
    else:
        lines += [
            "speed_up = oneDNN / fused C (above 1: the kernel is faster). Largest relative differences from oneDNN: "
            + ", ".join(f"{name} {value:.1e}" for name, value in fused[2].items())
            + " (float rounding: not bit-identical).",
            "",
            "| head | oneDNN ms | fused C ms | speed_up | per-round range |",
            "|:---|---:|---:|---:|:---|",
            _row("16 -> 32 -> 32 -> 10, 64 x 32 x 32 cells", times["fused oneDNN"], times["fused C"]),
        ]
    lines += [
        "",
        "## 4. A full training step at the 8 px instrument with both branches' heads in the fused C kernel",
        "",
    ]
    if not fused_steps:
        lines.append(f"Not measured: {library}.")
    else:
        lines += [
            (
                "speed_up = engine step / step with the fused heads (forward, loss, backward, SGD; batch 64, one "
                "backward). max_rel_grad_diff: every parameter's gradient after one step from the same weights."
            ),
            "",
            "| method | engine ms | fused heads ms | speed_up | per-round range | max_rel_grad_diff |",
            "|:---|---:|---:|---:|:---|---:|",
        ]
        for method, (_, _, difference) in fused_steps.items():
            row = _row(method, times[f"step oneDNN {method}"], times[f"step fused {method}"])
            lines.append(f"{row} {difference:.1e} |")
    scratch.cleanup()
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
