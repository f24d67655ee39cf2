"""Command line of the benchmark: ``python -m optuna_srp.benchmark <command> [options]``.

Every command lives in a module of this package with two functions,
``add_arguments(parser)`` and ``run(args) -> int``. ``cost`` and ``soak`` are registered only
when their modules exist.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import importlib
import importlib.util
import sys
from types import ModuleType


# (command, module, help)
COMMANDS = (
    ("replay", "optuna_srp.benchmark._replay", "replay studies on recorded learning curves"),
    ("anytime", "optuna_srp.benchmark._anytime", "regret for a fixed budget of training"),
    ("predict", "optuna_srp.benchmark._predict", "score final-value predictions"),
    ("report", "optuna_srp.benchmark._report", "render tables from results.jsonl files"),
    ("fetch", "optuna_srp.benchmark._sources", "download a public source as a corpus"),
    ("cost", "optuna_srp.benchmark._cost", "measure the pruner's cost"),
    ("soak", "optuna_srp.benchmark._soak", "long-running stability check"),
)
_OPTIONAL = {"cost", "soak"}


def _load(module_name: str, optional: bool) -> ModuleType | None:
    if optional:
        try:
            if importlib.util.find_spec(module_name) is None:
                return None
        except ModuleNotFoundError:
            return None
    return importlib.import_module(module_name)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per available command module."""
    parser = argparse.ArgumentParser(
        prog="optuna-srp-bench",
        description="Benchmark optuna-srp's SRPPruner against Optuna's pruners on recorded "
        "learning curves.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name, help_text in COMMANDS:
        optional = name in _OPTIONAL
        try:
            module = _load(module_name, optional)
        except Exception as e:  # a broken optional command must not break the others
            if not optional:
                raise
            broken = sub.add_parser(name, help=f"{help_text} (unavailable: {e})")
            broken.set_defaults(_error=f"{name} is unavailable: {type(e).__name__}: {e}")
            continue
        if module is None:
            continue
        # DESCRIPTION and EPILOG: plain text for --help (the module docstrings are reST).
        p = sub.add_parser(
            name,
            help=help_text,
            description=getattr(module, "DESCRIPTION", help_text),
            epilog=getattr(module, "EPILOG", None),
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``optuna-srp-bench``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    error = getattr(args, "_error", None)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return int(args._run(args))


if __name__ == "__main__":
    sys.exit(main())
