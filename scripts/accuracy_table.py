"""Print the accuracy table of fastact's math helpers: a dense measurement.

The largest error in ulp of the result (per unit of the condition number for
the exact gelu and its derivative) of each helper in ``fastact/_math/functions.py``,
compiled by gcc as setup.py compiles the kernels, against the references and
with the metric of ``tests/math/test_accuracy.py``, over every binade plus
dense uniform points where the functions change most.  (The two backends
agree bit for bit: ``test_backends_agree_bitwise``.)

    python scripts/accuracy_table.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

# this checkout's fastact, also where another one is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "math"))
import test_accuracy as t  # noqa: E402


def points(name: str, dtype) -> np.ndarray:
    lo, hi = t.CASES[name][1]
    rng = np.random.default_rng(7)
    slow = name in t.SLOW
    parts = [t.binade_sweep(dtype, lo, hi, (8 if dtype == np.float32 else 2) if slow else 64)]
    if name.startswith("gelu"):
        a = 14 if dtype == np.float32 else 38
        parts += [rng.uniform(-a, a, 1 << 16), rng.uniform(-2, 2, 1 << 14)]
        parts.append(np.linspace(-a + 0.5, -a + 1, 2001))  # the flush threshold
    elif slow:
        parts += [rng.uniform(-6, 6, 1 << 14), rng.uniform(max(lo, -30), min(hi, 30), 1 << 14)]
    else:
        parts += [rng.uniform(-20, 20, 1 << 18), rng.uniform(-100, 90, 1 << 18)]
    x = np.concatenate(parts).astype(dtype)
    return x[(x >= lo) & (x <= hi)]


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        run = t.compile_c(Path(d))
        rows = []
        for name in t.CASES:
            cells = []
            for dtype in (np.float32, np.float64):
                x = points(name, dtype)
                cells.append(t.check(name, dtype, x, run(name, x), enforce=False))
            rows.append((name, *cells))
    print(f"{'function':14s} {'float32':>8s} {'float64':>8s}")
    for name, a, b in rows:
        star = " (*)" if len(t.CASES[name]) > 5 else ""
        print(f"{name:14s} {a:8.2f} {b:8.2f}{star}")
    print("(*) per unit of the condition number |x f'(x) / f(x)| (at least 1)")


if __name__ == "__main__":
    main()
