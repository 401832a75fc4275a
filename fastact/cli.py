"""fastact's command line: ``python -m fastact COMMAND`` (or ``fastact COMMAND``).

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
        "time every activation against the streaming limit and the peers installed "
        "(NumPy, PyTorch, numexpr)",
    ),
    "tune": (
        "fastact._tune",
        "measure which backend and thread count pay off on this machine; keeps only "
        "what beats the shipped defaults (--show, --reset)",
    ),
    "warmup": ("fastact._warmup", "compile every Numba kernel now (or load it from the cache)"),
    "regions": ("fastact.regions.cli", "count and draw linear regions"),
}


DESCRIPTION = """\
fastact: fast activation functions for NumPy arrays, on the CPU.

Run a command as `python -m fastact COMMAND` or, where pip installed the
script, as `fastact COMMAND`; `COMMAND --help` describes each command."""


def _prog() -> str:
    return "python -m fastact" if sys.argv[0].endswith("__main__.py") else "fastact"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
