"""``python -m wsol_utils eval RUN_DIR``: evaluate a trained run and print the summary table.

Examples::

    python -m wsol_utils eval runs/acol-1a2b3c4d5e
    python -m wsol_utils eval runs/hclnet-0f9e8d7c6b --fusion l1 --delta 0.7 --tau 0.3 --json
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from wsol_utils.engine.evaluate import (
    CacheWriteWarning,
    EvalResult,
    UnfinishedRunWarning,
    evaluate,
    summary_json,
)
from wsol_utils.nets.fusion import FUSION_METHODS
from wsol_utils.scoring.protocol import ERASE_WITH, PAPERS

TABLE_COLUMNS: tuple[str, ...] = (
    "cls_err_top1",
    "cls_err_top5",
    "loc_err_top1",
    "loc_err_top5",
    "gt_known_loc_err",
    "maxboxacc",
    "maxboxacc_v2",
    "pxap",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wsol_utils eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="a run directory written by 'python -m wsol_utils train'")
    parser.add_argument("--split", default="test", help="train, val or test (default: test)")
    parser.add_argument("--fusion", choices=tuple(FUSION_METHODS), help="test-time fusion (default: the run's)")
    parser.add_argument("--delta", type=float, help="test-time erasing threshold in (0, 1) (default: the run's)")
    parser.add_argument(
        "--tau", type=float, default=PAPERS.tau, help=f"box threshold, fraction of max (default: {PAPERS.tau:g})"
    )
    parser.add_argument(
        "--erase-with",
        choices=ERASE_WITH,
        default=PAPERS.erase_with,
        help=f"class whose map drives branch B's erasing: pred (label-free) or gt (label-informed); "
        f"default: {PAPERS.erase_with}",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--no-wsoleval", action="store_true", help="skip MaxBoxAcc/MaxBoxAccV2/PxAP")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    parser.add_argument("--records", help="also write the per-image records to this CSV file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def format_summary(result: EvalResult) -> str:
    """A text table: one row per branch (a, b, fused), the papers' and wsoleval's metrics in %."""
    table = result.table()
    columns = [c for c in TABLE_COLUMNS if c in table.columns]
    s = result.summary
    head = (
        f"{s['method']} on {s['split']} ({s['num_images']} images), fusion={s['fusion']}, "
        f"delta={s['delta']:g}, tau={s['tau']:g}, erase_with={s['erase_with']}"
        + (" (GT-erased: label-informed)" if s["erase_with"] == "gt" else "")
    )
    return head + "\n" + table[columns].to_string(float_format=lambda v: f"{v:6.2f}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0, 1 when ``--records`` cannot be written (after printing the summary), or 2 for bad
    input (message on stderr). An unfinished run and a map cache that cannot be written are one ``warning:`` line
    each on stderr; the summary is printed all the same."""
    args = build_parser().parse_args(argv)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnfinishedRunWarning)
            warnings.simplefilter("always", CacheWriteWarning)
            result = _evaluate(args)
    except (ValueError, FileNotFoundError) as err:
        _report(caught)
        print(f"error: {err}", file=sys.stderr)
        return 2
    _report(caught)
    print(summary_json(result.summary) if args.json else format_summary(result))
    if args.records:
        from wsol_utils.base.atomic import write_text_atomic

        try:
            write_text_atomic(Path(args.records), result.records.to_csv(index=False))
        except OSError as err:
            print(f"error: could not write the records to {args.records} ({err})", file=sys.stderr)
            return 1
    return 0


def _report(caught: list[warnings.WarningMessage]) -> None:
    """Our warnings as one ``warning:`` line each on stderr; any other warning as Python shows it."""
    for item in caught:
        if issubclass(item.category, (UnfinishedRunWarning, CacheWriteWarning)):
            print(f"warning: {item.message}", file=sys.stderr)
        else:
            warnings.showwarning(item.message, item.category, item.filename, item.lineno)


def _evaluate(args: argparse.Namespace) -> EvalResult:
    """:func:`wsol_utils.engine.evaluate` with the command line's options."""
    return evaluate(
        Path(args.run_dir),
        args.split,
        fusion=args.fusion,
        delta=args.delta,
        tau=args.tau,
        wsoleval=not args.no_wsoleval,
        limit=args.limit,
        progress=False if args.quiet else None,
        erase_with=args.erase_with,
        device=args.device,
    )
