"""``python -m wsol_utils data ...``: generate, export or time the built-in synthetic data set (docs/methods.md §3).

Commands:

- ``generate [--image-size 64] [--split all] [--cache-dir DIR]``: generate and cache the splits (``.npz``).
- ``export --out DIR [--split test] [--image-size 64]``: write a split in wsoleval's layout (PNG images,
  the four metadata files, masks for PxAP); see :func:`wsol_utils.data.synthetic.export_wsoleval`.
- ``speed [--image-size 64] [--num-images 5000]``: time generation (no cache) and print images/s.
- ``samples --out figures/synthetic_samples.png [--num-images 16]``: a grid of test samples with their GT
  boxes (white), heads (cyan) and bodies (yellow) outlined.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from wsol_utils.data.synthetic import SPLITS, SyntheticConfig, export_wsoleval, generate, synthetic_arrays


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wsol_utils data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("generate", "generate and cache the synthetic splits"),
        ("export", "write a synthetic split in wsoleval's layout"),
        ("speed", "time the generator (images/s)"),
        ("samples", "save a grid of samples with boxes and parts"),
    ):
        sub = commands.add_parser(name, help=help_)
        sub.add_argument("--image-size", type=int, default=64, help="image side in pixels (64-224)")
        sub.add_argument("--num-classes", type=int, default=10)
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--clutter", type=float, default=1.0, help="background clutter strength (0-4)")
        sub.add_argument("--cache-dir", default=None, help="cache folder (default $DATA_ROOT or ~/.cache/wsol_repro)")
        sub.add_argument("--quiet", action="store_true", help="no progress bars")
        sub.add_argument(
            "--num-images",
            type=int,
            default=5000 if name == "speed" else None,
            help="images in the chosen split (default: the generator's split size)",
        )
        if name in ("export", "samples"):
            sub.add_argument("--out", required=True, help="output folder (export) or PNG file (samples)")
        if name == "export":
            sub.add_argument("--split", default="test", choices=SPLITS)
        elif name == "generate":
            sub.add_argument("--split", default="all", choices=(*SPLITS, "all"))
    return parser


def _split_sizes(args: argparse.Namespace) -> dict[str, Any]:
    """``{"num_<split>": --num-images}`` for the split(s) the command touches (speed times ``train``)."""
    if args.num_images is None:
        return {}
    split = getattr(args, "split", "train")
    splits = SPLITS if split == "all" else (split,)
    return {f"num_{name}": args.num_images for name in splits}


def save_samples(config: SyntheticConfig, out: str | Path, count: int = 16) -> str:
    """A grid of ``count`` test samples of ``config`` with their GT boxes and parts, saved as a PNG at ``out``
    (``figures/synthetic_samples.png``; ``make reproduce`` writes it)."""
    from wsol_utils.ui.viz import save_figure, show_samples

    arrays = generate(dataclasses.replace(config, num_test=count), "test")
    names = [f"{k}" for k in range(config.num_classes)]
    figure = show_samples(
        arrays.images,
        [box[None] for box in arrays.boxes],
        labels=arrays.labels.tolist(),
        class_names=names,
        parts=arrays.parts,
        ncols=min(8, count),
    )
    return str(save_figure(figure, out))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    progress = not args.quiet and sys.stderr.isatty()
    try:
        config = SyntheticConfig(
            image_size=args.image_size,
            num_classes=args.num_classes,
            seed=args.seed,
            clutter=args.clutter,
            **_split_sizes(args),
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "samples":
        print(f"wrote {save_samples(config, args.out, args.num_images or 16)}")
    elif args.command == "export":
        folder = export_wsoleval(config, args.split, args.out, args.cache_dir, progress)
        print(f"wrote {config.num_images(args.split)} images of split {args.split!r}; metadata in {folder}")
    elif args.command == "generate":
        for split in SPLITS if args.split == "all" else (args.split,):
            arrays = synthetic_arrays(config, split, args.cache_dir, progress=progress)
            print(f"{split}: {len(arrays)} images of {config.image_size} px (key {config.key(split)})")
    else:
        start = time.perf_counter()
        generate(config, "train", progress)
        seconds = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "image_size": config.image_size,
                    "num_images": config.num_train,
                    "seconds": round(seconds, 3),
                    "images_per_second": round(config.num_train / seconds, 1),
                }
            )
        )
    return 0
