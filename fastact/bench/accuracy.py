"""The accuracy of the 16-bit rows: the largest error of fastact's result in units
of the 16-bit type's last place, against the float64 reference of the same
(widened) inputs, forward and backward, printed beside the timings."""

from __future__ import annotations

import numpy as np

import fastact
from fastact import _half, reference

from .cases import PRELU_WEIGHT, SEED, Case, make_input
from .peers import Fastact

SIZE = 10**5  # elements per case: N(0, 1) inputs, as the timings'


def _reference(case: Case, x32: np.ndarray, g32=None, s32=None) -> np.ndarray:
    e = case.entry
    kw = dict(case.params)
    if e.has_training_mode:  # a 16-bit array's slopes are float32's
        kw.update(training=case.training, seed=12345, dtype=np.dtype(np.float32))
    if e.channel_param:
        kw[e.channel_param] = PRELU_WEIGHT
    if e.rowwise:
        kw["axis"] = -1
    if g32 is None:
        return reference.forward(e.name, x32, **kw)
    r = reference.backward(e.name, g32, s32, **kw)
    return r[0] if e.channel_param else r


def measure(cases: list[Case], dtypes: list[str], backend: str) -> list[dict]:
    """One row per (case, 16-bit dtype): max ulp of the forward and the backward."""
    rows = []
    impl = Fastact(backend)
    for dtype in dtypes:
        if dtype not in _half.NAMES:
            continue
        for case in cases:
            x = make_input(case, SIZE, dtype)
            g = make_input(case, SIZE, dtype, seed=SEED + 1)
            y, gx = np.empty_like(x), np.empty_like(x)
            with fastact.config(backend=backend):
                impl.forward(case, x, y)()
                impl.backward(case, g, x, y, gx)()
            s = x if case.entry.saves == "input" else y
            x32, g32, s32 = (a.astype(np.float32) for a in (x, g, s))
            with np.errstate(all="ignore"):
                fwd = _half.ulp_error(y, _reference(case, x32), x.dtype)
                bwd = _half.ulp_error(gx, _reference(case, x32, g32, s32), x.dtype)
            rows.append({"case": case.label, "dtype": dtype, "fwd_ulp": fwd, "bwd_ulp": bwd})
    return rows


def format_accuracy(rows: list[dict]) -> str:
    if not rows:
        return ""
    lines = [
        "16-bit accuracy: the largest error in units of the 16-bit type's last place against "
        f"the float64 reference ({SIZE} N(0, 1) inputs; backward at the same inputs)",
        f"{'case':13}{'dtype':10}{'fwd ulp':>8}{'bwd ulp':>9}",
    ]
    for r in rows:
        lines.append(f"{r['case']:13}{r['dtype']:10}{r['fwd_ulp']:8.2f}{r['bwd_ulp']:9.2f}")
    return "\n".join(lines)
