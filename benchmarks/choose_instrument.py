"""Choose the default instrument (small backbone x synthetic data) by the papers' conditions, on the *val* split.

The papers' setting has three properties a CPU stand-in should share (docs/methods.md §3.2):

1. CAM classifies well: val top-1 accuracy >= 90%;
2. CAM's map concentrates on the small class-telling part: its mass share on the head is far above the
   head's share of the image area (the "head ratio", mass share / area share);
3. features about as local as the parts: the receptive field is near the part size.

This script trains CAM once per candidate backbone on the synthetic set (30 classes, so that top-5 says
something) and measures, on the **val** split only, the classification accuracy, CAM's head mass share, the
head's area share and their ratio. Localization is *not* looked at: the instrument is chosen by the
conditions, and then the methods are reported on test, whatever they do. The selection rule: the candidate
with the largest head ratio among those with val accuracy >= 90%.

    python benchmarks/choose_instrument.py            # writes benchmarks/results/instrument.{csv,md}
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from wsol_utils.analysis import RECEPTIVE_FIELDS, head_area_share
from wsol_utils.engine import RunConfig, evaluate, read_history, train
from wsol_utils.models import create_model, feature_stride, receptive_field
from wsol_utils.tables import write_table

RESULTS = Path(__file__).resolve().parent / "results"
#: Candidate backbones: the regime map's receptive fields (px -> ``model_kwargs`` of the small backbone).
CANDIDATES: dict[str, dict[str, object]] = {f"rf{field}": kwargs for field, kwargs in RECEPTIVE_FIELDS.items()}
MIN_VAL_ACCURACY = 90.0


def measure(name: str, model_kwargs: dict[str, object], base: RunConfig, runs_dir: Path) -> dict[str, object]:
    config = base.replace(model_kwargs=dict(model_kwargs))
    model = create_model("cam", num_classes=2, **model_kwargs)  # type: ignore[arg-type]
    start = time.perf_counter()
    run = train(config, runs_dir=runs_dir, progress=False)
    seconds = time.perf_counter() - start
    history = read_history(run)
    result = evaluate(run, split="val", wsoleval=False, progress=False, cache_maps=False)
    mass = 100.0 * float(result.records["a_mass_head"].mean())
    area = head_area_share(config)
    return {
        "candidate": name,
        "model_kwargs": str(model_kwargs),
        "receptive field (px)": receptive_field(model),
        "stride (px)": feature_stride(model),
        "val acc top-1 (%)": 100.0 - result.summary["cls_err_top1"],
        "val acc top-5 (%)": 100.0 - result.summary["cls_err_top5"],
        "CAM head mass (%)": mass,
        "head area (%)": area,
        "head ratio": mass / area,
        "train s": sum(float(row["seconds"]) for row in history),
        "wall s": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="run cache (default: runs)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    args = parser.parse_args(argv)
    base = RunConfig(method="cam", epochs=args.epochs, device="cpu", dataset_kwargs={"num_classes": args.num_classes})
    rows = []
    for name, kwargs in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        rows.append(measure(name, kwargs, base, Path(args.runs_dir)))
        print(rows[-1], file=sys.stderr)
    table = pd.DataFrame(rows)
    eligible = table[table["val acc top-1 (%)"] >= MIN_VAL_ACCURACY]
    chosen = eligible.loc[eligible["head ratio"].idxmax(), "candidate"] if len(eligible) else None
    write_table(
        table.round(2),
        RESULTS,
        "instrument",
        title=f"Default instrument candidates (CAM, {args.num_classes} classes, {args.epochs} epochs, val split)",
        note=f"Rule: largest head ratio among val top-1 >= {MIN_VAL_ACCURACY:.0f}%. Chosen: {chosen}. "
        "Localization was not measured for the choice.",
    )
    print(table.round(2).to_string(), f"\nchosen: {chosen}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
