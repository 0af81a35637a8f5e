"""Command line: ``python -m wsol_utils <command> [options]``.

Each command lives in its own module, which exposes ``main(argv: list[str] | None) -> int``;
modules are imported only when their command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate": ("wsol_utils.ui.boxeval_cli", "score saved maps in wsoleval's layout (MaxBoxAcc, V2, PxAP)"),
    "train": ("wsol_utils.ui.train_cli", "train a CAM / ACoL / HCLNet run"),
    "eval": ("wsol_utils.ui.eval_cli", "evaluate a trained run directory"),
    "reproduce": ("wsol_utils.ui.reproduce", "run the notebook suite and regenerate figures/"),
    "data": ("wsol_utils.ui.data_cli", "generate / export the built-in synthetic data set"),
    "site": ("wsol_utils.ui.site", "build a static HTML site of the executed suite (after reproduce)"),
    "compare-figures": (
        "wsol_utils.studies.compare_figures",
        "does a fresh figures folder reproduce the committed one?",
    ),
}


def _usage() -> str:
    lines = ["usage: python -m wsol_utils <command> [options]", "", "commands:"]
    lines += [f"  {name:<16} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'python -m wsol_utils <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
