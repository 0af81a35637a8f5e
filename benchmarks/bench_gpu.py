"""GPU throughput of CAM / ACoL / HCLNet on VGG16 and ResNet50 at 224 px: fp32 vs AMP, channels_last.

One command on any CUDA machine::

    python benchmarks/bench_gpu.py                   # vgg16 + resnet50, cam/acol/hclnet, batch 32 and 64
    python benchmarks/bench_gpu.py --backbones resnet50 --methods acol --batch-sizes 64 --steps 50

For every (backbone, method, precision, batch size) it measures, on the same GPU in one process:

- **training images/s**: forward + backward + SGD step (the engine's model, optimizer groups and loss
  ``CE(A) [+ CE(B)]``; :func:`wsol_utils.engine.run.build_model`, ``build_optimizer``, ``branch_losses``) on
  batches cycled from a pool of synthetic images rendered at 224 px (``wsol_utils.data.load("synthetic",
  image_size=224)``) and already on the GPU: the model's speed, not the data loader's;
- **evaluation maps/s**: eval-mode forward with the GT labels, the class map of the paper's fusion
  (:func:`wsol_utils.nets.models.class_map`: ACoL max, HCLNet add, CAM branch A) and its bicubic upsampling to 224 px,
  all on the GPU (boxes and MaxBoxAcc are computed on the CPU afterwards and are not included);
- **peak memory** (``torch.cuda.max_memory_allocated``) of training and of evaluation;
- **projected wall time of the CUB recipe**: 60 epochs x 5,994 training images / training images/s (model
  time only: no data loading, no validation, no evaluation).

Precisions: ``fp32`` (PyTorch's defaults: cuDNN may use TF32 for convolutions on Ampere and newer; the title
records the setting) and ``amp`` = ``torch.autocast`` in bf16 where the GPU supports it, else fp16 with a
GradScaler (what ``wsol_utils.engine.train`` does on CUDA). Model and inputs are ``channels_last`` (as the engine
on CUDA; ``--no-channels-last`` to compare). ``cudnn.benchmark`` is on.

The backbones have **random weights** (``pretrained=False``): this is a throughput benchmark, the weights'
values do not change the speed, and no ImageNet file is needed. The feature map layout is ``--layout``
(default ``28x28``, the official ACoL one; ``14x14`` is wsoleval's default and about 4x cheaper in the heads).

Writes ``benchmarks/results/bench_gpu.csv`` and ``.md``. On a machine without CUDA it exits with status 2 and
a message (``--allow-cpu`` runs the same code on the CPU, for checking the script with tiny settings only).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parent / "results"
CUB_TRAIN_IMAGES = 5994
CUB_EPOCHS = 60


@dataclass
class Setting:
    backbone: str
    method: str
    precision: str  # "fp32" or "amp"
    batch_size: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from wsol_utils.nets.backbones import LAYOUTS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["vgg16", "resnet50"])
    parser.add_argument("--methods", nargs="+", default=["cam", "acol", "hclnet"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "amp"], default=["fp32", "amp"])
    parser.add_argument("--layout", default="28x28", choices=LAYOUTS)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=200, help="classifier size (CUB: 200)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (cuDNN autotuning)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per setting")
    parser.add_argument("--eval-batches", type=int, default=10, help="timed evaluation batches per setting")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N")
    parser.add_argument("--allow-cpu", action="store_true", help="run on the CPU (checking the script only)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for bench_gpu.csv / .md")
    parser.add_argument("--stem", default="bench_gpu")
    return parser.parse_args(argv)


def amp_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the GPU supports it, else fp16 (as the engine's ``autocast_context``)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype(device))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")


def image_pool(size: int, count: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` synthetic images rendered at ``size`` px (normalized) and their labels (mod ``num_classes``)."""
    from wsol_utils import data

    with tempfile.TemporaryDirectory() as cache:
        dataset = data.load(
            "synthetic",
            root=cache,
            split="train",
            image_size=size,
            num_train=count,
            num_val=1,
            num_test=1,
            use_cache=False,
        )
        batch = data.collate([dataset[i] for i in range(count)])
    return batch.images, batch.labels % num_classes


def batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches cycled from the pool (a different slice each step)."""
    starts = range(0, images.shape[0] - batch_size + 1, batch_size)
    for start in itertools.cycle(starts):
        yield images[start : start + batch_size], labels[start : start + batch_size]


def measure(
    setting: Setting,
    args: argparse.Namespace,
    device: torch.device,
    pool: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, object]:
    from wsol_utils.engine.config import RunConfig
    from wsol_utils.engine.optim import build_optimizer
    from wsol_utils.engine.run import build_model
    from wsol_utils.engine.train import branch_losses
    from wsol_utils.nets.models import class_map

    config = RunConfig(
        method=setting.method,
        backbone=setting.backbone,
        layout=args.layout,
        image_size=args.image_size,
        batch_size=setting.batch_size,
        lr=1e-4,
        device=str(device),
        model_kwargs={"pretrained": False},
    )
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    reset_peak(device)
    model = build_model(config, args.num_classes).to(device).to(memory_format=memory)
    optimizer = build_optimizer(model, config)
    scaler = torch.amp.GradScaler(
        device.type, enabled=setting.precision == "amp" and amp_dtype(device) == torch.float16
    )
    stream = batches(*pool, setting.batch_size)

    def train_step() -> None:
        images, labels = next(stream)
        images = images.contiguous(memory_format=memory)
        with autocast(device, setting.precision):
            output = model(images, labels)
        loss_a, loss_b = branch_losses(output, labels)
        loss = loss_a if loss_b is None else loss_a + loss_b
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    model.train()
    for _ in range(args.warmup):
        train_step()
    synchronize(device)
    tic = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    synchronize(device)
    train_seconds = time.perf_counter() - tic
    train_peak = peak_mib(device)
    train_rate = args.steps * setting.batch_size / train_seconds

    model.eval()
    optimizer.zero_grad(set_to_none=True)
    reset_peak(device)

    @torch.no_grad()
    def eval_step() -> torch.Tensor:
        images, labels = next(stream)
        with autocast(device, setting.precision):
            output = model(images.contiguous(memory_format=memory), labels)
        maps = class_map(output, labels, fusion=config.fusion or "max")  # (B, h, w) in [0, 1]
        size = (images.shape[-2], images.shape[-1])
        return F.interpolate(maps[:, None].float(), size=size, mode="bicubic", align_corners=False)[:, 0]

    for _ in range(max(1, args.warmup // 2)):
        eval_step()
    synchronize(device)
    tic = time.perf_counter()
    for _ in range(args.eval_batches):
        eval_step()
    synchronize(device)
    eval_rate = args.eval_batches * setting.batch_size / (time.perf_counter() - tic)
    cub_hours = CUB_EPOCHS * CUB_TRAIN_IMAGES / train_rate / 3600
    return {
        "backbone": setting.backbone,
        "method": setting.method,
        "precision": setting.precision if setting.precision == "fp32" else f"amp {str(amp_dtype(device))[6:]}",
        "batch": setting.batch_size,
        "train images/s": round(train_rate, 1),
        "eval maps/s": round(eval_rate, 1),
        "train peak MiB": round(train_peak, 1),
        "eval peak MiB": round(peak_mib(device), 1),
        "CUB 60 epochs (h)": round(cub_hours, 2),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print(
            f"bench_gpu.py: no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False). "
            "Run it on a machine with an NVIDIA GPU and a CUDA build of torch; --allow-cpu checks the script "
            "on the CPU with tiny settings only.",
            file=sys.stderr,
        )
        return 2
    device = torch.device("cpu" if not torch.cuda.is_available() else args.device)
    torch.backends.cudnn.benchmark = True
    largest = max(args.batch_sizes)
    print(f"rendering {2 * largest} synthetic images at {args.image_size} px ...", flush=True)
    images, labels = image_pool(args.image_size, 2 * largest, args.num_classes)
    pool = (images.to(device), labels.to(device))
    rows = []
    for backbone, method, precision, batch_size in itertools.product(
        args.backbones, args.methods, args.precisions, args.batch_sizes
    ):
        setting = Setting(backbone, method, precision, batch_size)
        try:
            row = measure(setting, args, device, pool)
        except torch.cuda.OutOfMemoryError:
            row = {
                "backbone": backbone,
                "method": method,
                "precision": precision,
                "batch": batch_size,
                "train images/s": float("nan"),
                "eval maps/s": float("nan"),
                "train peak MiB": float("nan"),
                "eval peak MiB": float("nan"),
                "CUB 60 epochs (h)": float("nan"),
                "note": "out of memory",
            }
            torch.cuda.empty_cache()
        print(row, flush=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    title = (
        f"GPU throughput at {args.image_size} px, layout {args.layout}, {name}, torch {torch.__version__}, "
        f"channels_last={args.channels_last}, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}"
    )
    note = (
        f"Random weights (a throughput benchmark). {args.steps} timed training steps after {args.warmup} "
        f"warm-up steps, {args.eval_batches} evaluation batches; batches cycled from synthetic images already on "
        f"the device (no data loading). CUB 60 epochs = {CUB_EPOCHS} x {CUB_TRAIN_IMAGES:,} images / train "
        "images/s (model time only). Evaluation = eval forward + fused class map + bicubic upsampling to the "
        "image size, on the device (box extraction on the CPU not included)."
    )
    from wsol_utils.studies.tables import to_markdown, write_table

    print(title)
    print(to_markdown(table, digits=1))
    paths = write_table(table, args.out, args.stem, title=title, note=note, digits=1)
    print(f"wrote {paths.csv} and {paths.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
