"""``python -m wsol_utils train``: train (or resume, or find cached) a run from a JSON config and/or flags.

Examples::

    python -m wsol_utils train --method acol --delta 0.6 --epochs 8
    python -m wsol_utils train --config runs/acol-1a2b3c4d5e/config.json --restart
    python -m wsol_utils train --method cam --fp32      # float32 even on a CPU with native bf16
    torchrun --nproc_per_node 4 -m wsol_utils train --config x.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from wsol_utils.engine.checkpoint import CheckpointError, RunDirError
from wsol_utils.engine.config import RunConfig
from wsol_utils.engine.train import TrainingDivergedError, train


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parse_json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _parse_optional_str(text: str) -> str | None:
    return None if text.lower() in {"none", "null", ""} else text


def _field_parser(annotation: Any) -> Any:
    """argparse ``type=`` for a RunConfig field annotation (the dataclass uses string annotations)."""
    hints = {
        "int": int,
        "float": float,
        "bool": _parse_bool,
        "str": str,
        "str | None": _parse_optional_str,
        "dict[str, Any]": _parse_json_dict,
    }
    return hints.get(str(annotation), str)


def build_parser() -> argparse.ArgumentParser:
    """Flags: ``--config`` plus one ``--<field>`` per :class:`RunConfig` field (underscores or dashes)."""
    parser = argparse.ArgumentParser(
        prog="python -m wsol_utils train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="JSON file of RunConfig fields; flags given here override it")
    parser.add_argument("--runs-dir", default="runs", help="parent of run directories (default: runs)")
    parser.add_argument("--run-dir", help="explicit run directory instead of RUNS_DIR/<method>-<key>")
    parser.add_argument("--restart", action="store_true", help="discard the checkpoint and train from scratch")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download ImageNet weights (sets WSOL_OFFLINE=1): a missing file is an error",
    )
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="train in float32 (precision=fp32), whatever --precision, the config file or WSOL_PRECISION say",
    )
    fields = parser.add_argument_group("run config (RunConfig fields)")
    defaults = RunConfig()
    for f in dataclasses.fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        # bool fields may be given bare: `--allow-random-init` = true
        bare: dict[str, Any] = {"nargs": "?", "const": True} if str(f.type) == "bool" else {}
        fields.add_argument(
            flag,
            dest=f.name,
            type=_field_parser(f.type),
            default=None,
            metavar=f.name.upper(),
            help=f"default: {json.dumps(getattr(defaults, f.name))}",
            **bare,
        )
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Merge ``--config`` (if any) with the flags that were given; ``--fp32`` last (``precision="fp32"``)."""
    base: dict[str, Any] = RunConfig.from_json(args.config).to_dict() if args.config else {}
    overrides = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if getattr(args, f.name) is not None
    }
    if getattr(args, "fp32", False):
        overrides["precision"] = "fp32"
    if "method" in overrides and "fusion" not in overrides:
        base.pop("fusion", None)  # the new method's default fusion
    return RunConfig.from_dict({**base, **overrides})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, 1 for a diverged run, 130 for Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.offline:
        os.environ["WSOL_OFFLINE"] = "1"  # read by wsol_utils.nets.backbones: no weights download in this process
    try:
        config = config_from_args(args)
        run_dir = train(
            config,
            runs_dir=args.runs_dir,
            progress=False if args.quiet else None,
            run_dir=args.run_dir,
            restart=args.restart,
        )
    except (ValueError, FileNotFoundError) as err:
        kind = (
            "checkpoint error"
            if isinstance(err, CheckpointError)
            else ("run directory error" if isinstance(err, RunDirError) else "error")
        )
        print(f"{kind}: {err}", file=sys.stderr)
        return 2
    except TrainingDivergedError as err:
        print(f"training diverged: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(run_dir)
    return 0
