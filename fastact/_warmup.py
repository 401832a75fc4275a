"""``python -m fastact warmup``: compile (or load from the disk cache) every Numba kernel now."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from . import _backends

    try:
        numba = _backends.get("numba")
    except ImportError as exc:
        print(f"nothing to warm up: {exc}")
        return 0
    t0 = time.perf_counter()
    numba.warmup()
    print(f"numba kernels ready in {time.perf_counter() - t0:.1f} s: {numba.describe()}")
    return 0
