"""What the benchmark times: the cases (table entries and their variants), their
inputs and the speed targets that follow from each entry's cost class."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastact import _half
from fastact.table import TABLE, Activation, Cost

PASSES = ("fwd", "fwd_inplace", "bwd")
DTYPE_CHOICES = ("float32", "float64", *_half.NAMES)
DEFAULT_SIZES = (10**3, 10**4, 10**5, 10**6, 10**7)
QUICK_SIZES = (10**3, 10**6)
ROW = 1000  # row length of the rowwise entries (softmax), elements
SEED = 20240601
PRELU_WEIGHT = 0.25  # the channel parameter's value in every measurement


@dataclass(frozen=True)
class Case:
    """One activation with fixed parameters (a table entry or a variant of one)."""

    label: str
    entry: Activation
    params: dict = field(default_factory=dict)
    training: bool = False
    cost: Cost = "transcendental"

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def rowwise(self) -> bool:
        return self.entry.rowwise


def cases_of(entry: Activation) -> list[Case]:
    """The entry at its example parameters, its variants, and its training mode."""
    params = {k: v for k, v in entry.example_params.items() if k != entry.channel_param}
    cases = [Case(entry.name, entry, params, cost=entry.cost)]
    for v in entry.variants:
        cases.append(
            Case(
                f"{entry.name}[{v.label}]", entry, {**params, **v.params}, cost=v.cost or entry.cost
            )
        )
    if entry.has_training_mode:
        cases.append(Case(f"{entry.name}[train]", entry, params, training=True, cost=entry.cost))
    return cases


def all_cases(table: tuple[Activation, ...] = TABLE) -> list[Case]:
    """Every case of every entry of ``table``."""
    return [c for e in table for c in cases_of(e)]


# Ratio to the streaming limit at 10^6-10^7 elements (float32, float64) that a
# cost class should reach; piecewise-linear entries: PIECEWISE_TARGET.
COST_TARGETS: dict[str, tuple[float, float]] = {
    "cheap": (1.25, 2.0),
    "transcendental": (1.25, 2.0),
    "compound": (1.6, 3.2),
    "special": (2.5, 5.0),
}
PIECEWISE_TARGET = 1.10
# 16-bit arrays, against their own (2-byte) streaming limit, which moves half
# float32's bytes (HALF_LIMIT_SCALE: a float32 time is twice a 2-byte limit):
# piecewise-linear entries at 0.6x a float32 call at the 4-byte limit, the
# others at 1.1x their float32 target.
HALF_LIMIT_SCALE = 2.0
HALF_PIECEWISE_TARGET = 0.6 * HALF_LIMIT_SCALE
HALF_TARGET_VS_FLOAT32 = 1.1
COST_WORDS = {
    "cheap": "a few flops",
    "transcendental": "one transcendental",
    "compound": "two transcendentals",
    "special": "a special function",
}


def target(case: Case, dtype: str, pass_: str) -> float | None:
    """The ratio to the streaming limit this case should reach (None: no target)."""
    e = case.entry
    if e.rowwise:
        return None
    if e.piecewise_linear:
        if e.channel_param and pass_ == "bwd":
            return None  # its backward also reduces the weight gradient: see the pairs
        return HALF_PIECEWISE_TARGET if dtype in _half.NAMES else PIECEWISE_TARGET
    if dtype in _half.NAMES:
        return HALF_TARGET_VS_FLOAT32 * HALF_LIMIT_SCALE * COST_TARGETS[case.cost][0]
    return COST_TARGETS[case.cost][0 if dtype == "float32" else 1]


def target_kind(case: Case) -> str:
    """Words for the class of a case's target ("piecewise-linear", "one transcendental")."""
    if case.entry.piecewise_linear:
        return "piecewise-linear"
    return COST_WORDS[case.cost]


def shape_for(case: Case, n: int) -> tuple[int, ...]:
    if case.rowwise:
        row = min(n, ROW)
        return (max(1, n // row), row)
    return (n,)


def make_input(case: Case, n: int, dtype, kind: str = "normal", seed: int = SEED) -> np.ndarray:
    """N(0, 1) inputs, or ``kind="denormal"``: uniform in [-100, -80] (exp underflows)."""
    rng = np.random.default_rng(seed)
    shape = shape_for(case, n)
    if kind == "denormal":
        x = rng.uniform(-100.0, -80.0, shape)
    else:
        x = rng.standard_normal(shape)
    return _half.round_to(x, _half.dtype_named(dtype)) if dtype in _half.NAMES else x.astype(dtype)
