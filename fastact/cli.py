"""Command-line interface: ``python -m fastact info | ...``.

Each subcommand lives in its own module and registers itself through
:data:`COMMANDS` (name -> (module, help)); the module provides
``add_arguments(parser)`` and ``run(args) -> int``.  Heavy imports stay
inside the subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("fastact._info", "backends, threads and the activation table"),
    "bench": (
        "fastact.bench",
        "time every activation against the streaming limit, NumPy and PyTorch",
    ),
    "tune": ("fastact._tune", "measure the dispatch profile of this machine"),
    "warmup": ("fastact._warmup", "compile every Numba kernel now (or load it from the cache)"),
    "regions": ("fastact.regions.cli", "count and draw linear regions"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fastact", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        mod = importlib.import_module(module)
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("interrupted", file=sys.stderr)
        return 130
