"""Special values through every entry, forward and backward, on every backend.

Inputs and gradients come from {+-0, +-subnormal, +-tiny, +-1, the kinks and
their float neighbours, +-large, +-inf, NaN}; the compiled backends agree bit
for bit (any NaN equals any NaN), every backend agrees with the float64
reference within the documented tolerance, and a value gives the same bits at
every position: in the vector body, the tail and at a thread-chunk edge.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact import reference
from fastact._codegen.dialect import called_names, kernel_formula
from fastact.table import Activation, jump_points
from tests.conftest import (
    BACKENDS,
    COMPILED,
    PARALLEL_N,
    Call,
    assert_close,
    example_params,
    special_positions,
)

ROTATIONS = 4  # placements of the window of special values per array


def special_values(entry: Activation, params: dict, dtype) -> np.ndarray:
    """The special values of ``dtype``, with the kinks at ``params`` and their neighbours."""
    f = np.finfo(dtype)
    large = 1e30 if dtype == np.float32 else 1e300
    mags = [0.0, f.smallest_subnormal, 3 * f.smallest_subnormal, f.tiny, 1.0, large, f.max, np.inf]
    vals = [dtype(m) for m in mags] + [-dtype(m) for m in mags] + [dtype(np.nan)]
    for k in jump_points(entry, {k: v for k, v in params.items() if np.ndim(v) == 0}):
        k = dtype(k)
        vals += [k, np.nextafter(k, dtype(np.inf)), np.nextafter(k, dtype(-np.inf))]
    return np.array(vals, dtype)


def _bits(a: np.ndarray) -> np.ndarray:
    """The bits of ``a``, with every NaN the same."""
    a = np.where(np.isnan(a), np.nan, a).astype(a.dtype)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_same_bits(a, b, what: str) -> None:
    a, b = np.asarray(a), np.asarray(b)
    bad = _bits(a) != _bits(b)
    if bad.any():
        i = np.flatnonzero(bad.reshape(-1))[:5]
        raise AssertionError(f"{what}: {a.reshape(-1)[i]} != {b.reshape(-1)[i]} at {i}")


def _rounded(want: np.ndarray, dtype) -> np.ndarray:
    """The reference rounded to ``dtype`` (where float64 holds what overflows ``dtype``)."""
    with np.errstate(over="ignore"):
        return np.asarray(want, np.float64).astype(dtype).astype(np.float64)


def _param_sets(entry: Activation) -> list[tuple[dict, bool]]:
    sets = []
    for params in example_params(entry):
        if entry.channel_param and params.get(entry.channel_param) is None:
            params = {**params, entry.channel_param: np.array([0.25, -0.5, 1.5])}
        for training in (False, True) if entry.has_training_mode else (False,):
            sets.append((params, training))
    return sets


def _run(call: Call, backend: str, x: np.ndarray, g: np.ndarray, nthreads: int = 1):
    with fastact.config(backend=backend, num_threads=nthreads):
        y = call.forward(x)
        gx = call.backward(g, call.saved(x, y))
    return y, gx


def _check_reference(call: Call, x, g, y, gx, dtype, what: str) -> None:
    with np.errstate(all="ignore"):
        cond = call.condition(x)
        atol = call.underflow(x, dtype)
        assert_close(
            y,
            _rounded(call.ref_forward(x), dtype),
            dtype,
            what=what + " forward",
            cond=cond,
            scale=call.forward_scale(x),
            atol=atol,
        )
        s = call.saved(x, y)
        gatol = None if atol is None else atol * np.abs(np.asarray(g, np.float64))
        assert_close(
            gx,
            _rounded(call.ref_backward(g, s), dtype),
            dtype,
            what=what + " backward",
            scale=call.grad_scale(g),
            cond=cond,
            atol=gatol,
        )


def _cross(values: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (input, gradient) pair of ``values``, after ``shift`` ordinary elements."""
    n = len(values)
    pad = np.linspace(-2, 2, shift).astype(values.dtype)
    x = np.concatenate([pad, np.tile(values, n)])
    g = np.concatenate([pad, np.repeat(values, n)])
    return x, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_pair_of_special_values(elementwise_entry, dtype):
    """All pairs (x, grad_output) of special values: the compiled backends agree bit for bit,
    every backend agrees with the reference, and a pair gives the same bits in other lanes."""
    entry = elementwise_entry
    for params, training in _param_sets(entry):
        values = special_values(entry, params, dtype)
        m = len(values) ** 2
        first = {}
        for shift in (0, 5):  # the pairs land in other SIMD lanes, and in the tail
            x, g = _cross(values, shift)
            for backend in BACKENDS:
                call = Call(entry, params, training=training)
                if entry.has_training_mode and training:
                    # the random slopes follow the flat index: compare the pairs at shift 0 only
                    x, g = _cross(values, 0)
                y, gx = _run(call, backend, x, g)
                what = f"{entry.name} {params} training={training} {backend} shift={shift}"
                _check_reference(call, x, g, y, gx, dtype, what)
                got = (y[-m:], gx[-m:])
                if backend in COMPILED:
                    ref = first.setdefault("compiled", got)
                    assert_same_bits(got[0], ref[0], what + " forward")
                    assert_same_bits(got[1], ref[1], what + " backward")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_special_values_at_body_tail_and_chunk_edges(entry, dtype):
    """Windows of special values at the start, around the two-thread chunk edge and at the
    end of a parallel-sized array (rows of it for rowwise entries), on two threads."""
    rng = np.random.default_rng(11)
    for params, training in _param_sets(entry):
        values = special_values(entry, params, dtype)
        m = len(values)
        if entry.rowwise:
            rows, rowlen = -(-PARALLEL_N // 67), 67
            n = rows * rowlen
        else:
            n = PARALLEL_N
        edge = special_positions(n)[len(special_positions(n)) // 2]
        starts = (0, edge - m // 2, n - m)
        for r in range(ROTATIONS):
            x = rng.normal(0, 3, n).astype(dtype)
            g = rng.normal(0, 3, n).astype(dtype)
            for k, a in enumerate(starts):
                x[a : a + m] = np.roll(values, r * 5 + k)
                g[a : a + m] = np.roll(values, r * 3 + 2 * k + 1)
            if entry.rowwise:
                x, g = x.reshape(rows, rowlen), g.reshape(rows, rowlen)
            results = {}
            for backend in BACKENDS:
                call = Call(entry, params, training=training)
                y, gx = _run(call, backend, x, g, nthreads=2)
                what = f"{entry.name} {params} training={training} {backend} rotation {r}"
                _check_reference(call, x, g, y, gx, dtype, what)
                results[backend] = (y, gx)
            compiled = [results[b] for b in COMPILED]
            for other, b in zip(compiled[1:], COMPILED[1:]):
                assert_same_bits(other[0], compiled[0][0], f"{entry.name} {b} forward")
                assert_same_bits(other[1], compiled[0][1], f"{entry.name} {b} backward")


# --- the gradient at NaN and infinite grad_output ------------------------------


def _pieces(entry: Activation, params: dict) -> list[tuple[float, float]]:
    """The intervals between an entry's kinks (the whole line for a smooth one)."""
    edges = [-np.inf, *jump_points(entry, params), np.inf]
    return list(zip(edges[:-1], edges[1:]))


def _inside(lo: float, hi: float) -> list[float]:
    if np.isinf(lo) and np.isinf(hi):
        return [-2.5, -0.5, 0.75, 2.0]
    if np.isinf(lo):
        return [hi - 3.0, hi - 1.0, hi - 0.25]
    if np.isinf(hi):
        return [lo + 0.25, lo + 1.0, lo + 3.0]
    return list(np.linspace(lo, hi, 5)[1:-1])


def _flat(entry: Activation, params: dict, points: list[float]) -> bool:
    y = reference.forward(entry.name, np.array(points), **params)
    return bool(np.all(y == y[0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_nan_and_inf_grad_output_on_every_piece(elementwise_entry, backend, dtype):
    """Where the activation is constant (a flat piece, and a kink whose gradient is that
    piece's 0) the gradient is exactly 0 whatever grad_output is; elsewhere it is
    grad_output times the derivative: NaN stays NaN, +-inf gives +-inf."""
    entry = elementwise_entry
    params = dict(entry.example_params)
    call = Call(entry, params)
    points, flat = [], []
    pieces = _pieces(entry, params)
    for lo, hi in pieces:
        inside = _inside(lo, hi)
        is_flat = _flat(entry, params, inside)
        points += inside
        flat += [is_flat] * len(inside)
    for k in jump_points(entry, params):
        d = reference.backward(entry.name, np.ones(1), np.array([k]), **params)
        if entry.saves == "output":
            d = call.ref_backward(np.ones(1), call.ref_forward(np.array([k])))
        borders_flat = any(
            _flat(entry, params, _inside(lo, hi)) for lo, hi in pieces if k in (lo, hi)
        )
        points.append(k)
        flat.append(bool(d[0] == 0) and borders_flat)
    x = np.array(points, dtype)
    flat = np.array(flat)
    with fastact.config(backend=backend):
        saved = call.saved(x, call.forward(x))
        ones = call.backward(np.ones_like(x), saved).astype(np.float64)
        for gv in (np.nan, np.inf, -np.inf):
            gx = call.backward(np.full_like(x, gv), saved)
            what = f"{entry.name} {backend} grad_output={gv} at x={x}"
            np.testing.assert_array_equal(gx[flat], 0.0, err_msg=what)
            if np.isnan(gv):
                assert np.isnan(gx[~flat]).all(), what
            else:
                live = ~flat & (ones != 0)
                np.testing.assert_array_equal(gx[live], gv * np.sign(ones[live]), err_msg=what)
                assert np.isnan(gx[~flat & (ones == 0)]).all(), what


# --- underflow: 0 exactly where the result is below the normal range -------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_no_flush_to_zero_where_the_result_is_normal(elementwise_entry, backend, dtype):
    """A dense scan of both tails (steps of 1e-3 over [-120, 120] in float32, 5e-3 over
    [-760, 760] in float64: the whole range where an exp, a product x e**x or e**(-x**2/2)
    leaves the normal range) of every transcendental entry, forward and backward: no 0
    where the reference is a normal number.  A formula that calls the plain exp is
    exempt below 2**-125, where exp documents its flush."""
    entry = elementwise_entry
    fi = np.finfo(dtype)
    hi, n = (120.0, 240_001) if dtype == np.float32 else (760.0, 304_001)
    x = np.linspace(-hi, hi, n).astype(dtype)
    # the float64 reference loses relative accuracy where its own factors are subnormal
    normal = float(fi.tiny) * (1 + 1e-6)
    for params, training in _param_sets(entry):
        if training:
            continue
        call = Call(entry, params)
        with fastact.config(backend=backend):
            y = call.forward(x)
            gx = call.backward(np.ones_like(x), call.saved(x, y))
        with np.errstate(all="ignore"):
            ry = call.ref_forward(x)
            rg = call.ref_backward(np.ones(x.shape), call.saved(x, np.asarray(ry, dtype)))
        for pass_, kind, got, ref in (("forward", "fwd", y, ry), ("backward", "bwd", gx, rg)):
            if entry.cost_of(pass_) == "cheap":
                continue
            flushed = (got == 0) & (np.abs(ref) >= normal)
            if "exp" in called_names(kernel_formula(entry, kind)):
                with np.errstate(under="ignore", over="ignore"):
                    flushed &= np.exp(x.astype(np.float64)) >= 2.0 ** (fi.minexp + 1)
            what = f"{entry.name} {params} {backend} {np.dtype(dtype).name} {pass_}"
            assert not flushed.any(), (
                f"{what}: 0 at x = {x[flushed][[0, -1]]}, want {ref[flushed][[0, -1]]}"
            )


# --- the sign of zero results and the quietness of NaN results --------------------


def _signed_values(dtype) -> np.ndarray:
    """+-0, +-subnormal, +-inf and NaN: quiet of both signs, quiet with a payload, signalling."""
    f = np.finfo(dtype)
    if dtype == np.float32:
        nans = np.array([0x7FC00000, 0xFFC00000, 0x7FC00123, 0x7F800001], np.uint32)
    else:
        nans = np.array(
            [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000000123, 0x7FF0000000000001],
            np.uint64,
        )
    sub = [f.smallest_subnormal, 3 * f.smallest_subnormal]
    mags = np.array([0.0, *sub, np.inf], dtype)
    return np.concatenate([mags, -mags, nans.view(dtype)])


def _quiet(a: np.ndarray) -> np.ndarray:
    """Whether each element of ``a`` (NaN or not) has the quiet bit set."""
    bits = a.view(np.uint32 if a.dtype == np.float32 else np.uint64)
    return (bits >> (22 if a.dtype == np.float32 else 51)) & 1 == 1


def _at_every_position(values: np.ndarray) -> np.ndarray:
    """Rows of ``values``, each rotated one place further, flattened: every value lands on
    every position modulo the row length (vector body and tail of a 37-element row)."""
    row = np.resize(values, 37)
    return np.concatenate([np.roll(row, r) for r in range(len(row))])


def _signs_agree(got, want) -> np.ndarray:
    """False where both are zero with different signs."""
    with np.errstate(invalid="ignore"):  # a signalling NaN warns as it widens
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return ~((got == 0) & (want == 0) & (np.signbit(got) != np.signbit(want)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_sign_of_zero_and_quiet_nan(elementwise_entry, backend, dtype):
    """At +-0, +-subnormal, +-inf and NaN in every position, forward and backward: a zero
    result has the reference's sign (the reference rounded to ``dtype``), a NaN result of
    the backward is quiet, and so is the forward's, unless the input itself was a signalling
    NaN returned as it is (a select of x, as PyTorch does)."""
    entry = elementwise_entry
    x = _at_every_position(_signed_values(dtype))
    for params, training in _param_sets(entry):
        for gsign in (1.0, -1.0):
            call = Call(entry, params, training=training)
            g = np.full_like(x, gsign)
            with fastact.config(backend=backend):
                y = call.forward(x)
                gx = call.backward(g, call.saved(x, y))
            what = f"{entry.name} {params} training={training} {backend} g={gsign}"
            ry = _rounded(call.ref_forward(x), dtype)
            rg = _rounded(call.ref_backward(g, call.saved(x, y)), dtype)
            for pass_, got, want in (("forward", y, ry), ("backward", gx, rg)):
                bad = ~_signs_agree(got, want)
                assert not bad.any(), f"{what} {pass_}: {got[bad][:3]} at x = {x[bad][:3]}"
            if backend == "numpy":
                continue  # NumPy's own selects and arithmetic decide its NaN bits
            loud = np.isnan(y) & ~_quiet(y) & (_quiet(x) | ~np.isnan(x))
            assert not loud.any(), f"{what}: signalling NaN forward at x = {x[loud][:3]}"
            loud = np.isnan(gx) & ~_quiet(gx)
            assert not loud.any(), f"{what}: signalling NaN backward at x = {x[loud][:3]}"


def _torch_pass(entry: Activation, which: str, params: dict, **arrays) -> np.ndarray | None:
    """The entry's PyTorch form of ``which`` on ``arrays``, or None where it has none."""
    torch = pytest.importorskip("torch")
    form = entry.torch
    expr = None if form is None else getattr(form, which)
    if expr is None:
        return None
    t = {k: torch.from_numpy(a.copy()) for k, a in arrays.items()}
    out = torch.empty_like(t["x"])
    ns = {
        "torch": torch,
        "F": torch.nn.functional,
        "nn": torch._C._nn,
        "aten": torch.ops.aten,
        **params,
        **t,
        "out": out,
        "inplace": False,
    }
    if entry.channel_param:
        ns[entry.channel_param] = torch.full((1,), params[entry.channel_param], dtype=out.dtype)
    if which == "backward" and form.backward_setup:
        ns["buf"] = eval(form.backward_setup, ns)  # noqa: S307 - the table's own text
    eval(expr, ns)  # noqa: S307
    return out.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_zero_signs_differ_from_pytorch_only_where_documented(elementwise_entry, dtype):
    """Where PyTorch's zero has another sign than the reference's, the entry's doc says so."""
    entry = elementwise_entry
    params = dict(entry.example_params)
    x = _signed_values(dtype)
    call = Call(entry, params)
    y = _rounded(call.ref_forward(x), dtype).astype(dtype)
    g = np.ones_like(x)
    ty = _torch_pass(entry, "forward", params, x=x)
    tg = _torch_pass(entry, "backward", params, x=x, y=y, g=g)
    differ = []
    if ty is not None and not _signs_agree(ty, y).all():
        differ.append(f"forward at x = {x[~_signs_agree(ty, y)]}")
    if tg is not None:
        rg = _rounded(call.ref_backward(g, call.saved(x, y)), dtype)
        if not _signs_agree(tg, rg).all():
            differ.append(f"backward at x = {x[~_signs_agree(tg, rg)]}")
    if differ:
        assert "PyTorch" in entry.doc, f"{entry.name}: PyTorch's zero differs, {differ}"


def _negative_zero_at_every_position(name, params, x0, backend, dtype):
    """The x0 where the entry's derivative (rounded to dtype) is 0, at every position of a
    parallel-sized array on two threads (the vector body, the tail, both sides of the
    thread-chunk edge): each zero of the forward and the backward has the reference's
    sign, which is -0 at finite x and +0 at -inf."""
    fwd, bwd = getattr(fastact, name), getattr(fastact, f"{name}_backward")
    ref_fwd, ref_bwd = getattr(reference, name), getattr(reference, f"{name}_backward")
    x0 = np.array(x0, dtype)
    with np.errstate(all="ignore"):  # x**3 overflows in gelu's tanh form
        ref = _rounded(ref_bwd(np.ones_like(x0), x0, **params), dtype)
    x0 = x0[ref == 0]
    assert x0.size >= 6
    pos = np.array(special_positions(PARALLEL_N))
    for shift in range(len(x0)):
        x = np.full(PARALLEL_N, -1.0, dtype)
        x[pos] = np.resize(np.roll(x0, shift), pos.size)
        g = np.ones_like(x)
        with fastact.config(backend=backend, num_threads=2):
            got = bwd(g, x, **params)
            y = fwd(x, **params)
        xp = x[pos]
        with np.errstate(all="ignore"):
            ry = _rounded(ref_fwd(xp, **params), dtype)
            rg = _rounded(ref_bwd(np.ones_like(xp), xp, **params), dtype)
        for what, a, r in (("backward", got[pos], rg), ("forward", y[pos], ry)):
            zero = r == 0
            assert (np.signbit(r[zero]) == np.isfinite(xp[zero])).all(), f"reference {what}"
            ok = ~zero | ((a == 0) & (np.signbit(a) == np.signbit(r)))
            assert ok.all(), f"{what}: {a[~ok]} at x = {xp[~ok]}, positions {pos[~ok]}"


def _far_below(dtype, *near) -> list[float]:
    x0 = [*near, -30.0, -40.0, -200.0, -1e3, -1e30, -np.finfo(dtype).max, -np.inf]
    return x0 + ([-1e100, -1e151, -1e200, -1e300] if dtype == np.float64 else [])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_gelu_gradient_below_the_range_is_negative_zero(backend, dtype, approximate):
    """Below x = -0.75 gelu's derivative is negative (both forms): where it is below the
    normal range it is -0 (the reference's too), up to -max; +0 only in the limit at -inf."""
    lo = -10.0 if dtype == np.float32 else -21.2  # the tanh form's sigmoid is 0 below
    x0 = _far_below(dtype, lo, lo - 0.5)  # the exact form is still normal at these two
    _negative_zero_at_every_position("gelu", {"approximate": approximate}, x0, backend, dtype)


@pytest.mark.parametrize("name", ["silu", "mish"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_silu_and_mish_below_the_range_are_negative_zero(backend, dtype, name):
    """silu, mish and their derivatives are negative far below 0 (the derivatives below
    x = -1.28 and -1.19): -0 where they are below the normal range, up to -max (the
    reference's too); +0 only in the limit at -inf."""
    lo = -92.0 if dtype == np.float32 else -715.0  # just below silu_grad_lo
    _negative_zero_at_every_position(name, {}, _far_below(dtype, lo, -800.0), backend, dtype)


@pytest.mark.parametrize("beta", [2.0, 5.0, -3.0, 0.9, 0.5, 0.1, -0.5, 1e-3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_softplus_with_beta_is_zero_exactly_below_the_normal_range(backend, dtype, beta):
    """softplus(beta x) / beta: no subnormal result, 0 exactly where the reference is below
    the normal range (+0, or -0 for beta < 0), the reference's value where it is normal.
    The scan covers beta x from below ln(|beta| 2**-126) (where the result leaves the
    normal range) to above ln(2**-126) (where e**(beta x) does): with |beta| < 1 the
    result is normal between the two, with |beta| > 1 it is not."""
    if backend == "numpy":
        pytest.skip("the reference itself: float64, subnormal results included")
    tiny = float(np.finfo(dtype).tiny)
    b = float(np.asarray(beta, dtype))  # the kernels' beta: rounded to dtype
    zs = np.log(tiny) + np.array([0.0, np.log(abs(b))])  # beta x at the two edges
    z = np.linspace(zs.min() - 1, zs.max() + 1, 20001)
    x = (z / b).astype(dtype)
    with fastact.config(backend=backend):
        y = fastact.softplus(x, beta=beta)
    ref = reference.softplus(x, beta=b)
    assert not ((y != 0) & (np.abs(y) < tiny)).any(), "a subnormal result"
    below = np.abs(ref) < tiny * (1 - 1e-6)
    normal = np.abs(ref) >= tiny * (1 + 1e-6)
    assert normal.sum() > 1000 and below.sum() > 1000
    assert (y[below] == 0).all() and (np.signbit(y[below]) == (beta < 0)).all()
    zero = normal & (y == 0)
    assert not zero.any(), f"0 at x = {x[zero][[0, -1]]}, want {ref[zero][[0, -1]]}"
    # beta x is rounded: |beta x| ulp of condition
    cond = np.abs(x.astype(np.float64) * b)
    assert_close(y[normal], _rounded(ref[normal], dtype), dtype, cond=cond[normal])
