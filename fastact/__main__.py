"""``python -m fastact``: the command-line interface (see fastact/cli.py)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
