"""Property-based fuzz of the public API.

Random entries, dtypes (good and bad), shapes, strides (negative too),
parameters of every type, ``out`` (fresh, the input itself, strided, wrong):
every call either gives the reference's result, within its tolerance, or
raises a TypeError/ValueError naming the argument, with ``out`` untouched.
No input is modified unless it is passed as ``out``.

The default run is short; FASTACT_FUZZ_EXAMPLES=5000 runs it longer (with a
fresh random seed instead of the fixed one).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import fastact
from fastact.table import TABLE, Activation
from tests.conftest import Call, assert_close

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("FASTACT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 40,
    deadline=None,
    derandomize=not EXAMPLES,
    suppress_health_check=list(HealthCheck),
    database=None,
)

GOOD_DTYPES = [np.float32, np.float64, np.int32, np.dtype(">f8")]
BAD_DTYPES = [np.bool_, np.complex128, object]
SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-40, -1e-310]


def _values(size: int, span: tuple[float, float] = (-8.0, 8.0)):
    ordinary = st.floats(*span, allow_nan=False, width=64)
    return st.lists(
        st.one_of(ordinary, ordinary, ordinary, st.sampled_from(SPECIAL)),
        min_size=size,
        max_size=size,
    )


@st.composite
def arrays(draw, shape: tuple[int, ...], dtype, specials: bool = True, span=(-8.0, 8.0)):
    """An array of ``shape`` and ``dtype``, as a view with random steps (negative too)."""
    steps = [draw(st.sampled_from([1, 1, -1, 2, -2])) for _ in shape]
    base_shape = tuple(n * abs(s) for n, s in zip(shape, steps))
    n = int(np.prod(base_shape))
    if specials:
        vals = draw(_values(n, span))
    else:
        vals = draw(st.lists(st.floats(-8, 8, width=64), min_size=n, max_size=n))
    dt = np.dtype(dtype)
    with np.errstate(all="ignore"):
        if dt.kind in "iu":
            base = np.nan_to_num(np.array(vals)).clip(-100, 100).astype(dt)
        elif dt.kind == "b":
            base = np.array(vals) > 0
        else:
            base = np.array(vals).astype(dt)
    base = base.reshape(base_shape)
    view = base[(*(slice(None, None, s) for s in steps), Ellipsis)]
    if view.ndim == 0 and dt.kind != "O" and draw(st.booleans()):
        return view[()]  # a NumPy scalar
    if view.ndim >= 2 and draw(st.booleans()):
        view = view.swapaxes(0, -1)
        view = np.ascontiguousarray(view).swapaxes(0, -1)  # same shape, Fortran-ordered
    return view


def _param_value(draw, entry: Activation, prm):
    """A value of any type: mostly the default, example or test values (halved, doubled or
    negated, as a Python or NumPy number), sometimes one of the wrong type."""
    if prm.choices:
        return draw(st.sampled_from([*prm.choices, *prm.choices, "bogus", 1, None]))
    good = [prm.default if prm.default is not None else prm.example]
    good += [tp[prm.name] for tp in entry.extra.get("test_params", ()) if prm.name in tp]
    v = draw(st.sampled_from(good)) * draw(st.sampled_from([1, 1, 1, 0.5, 2, -1]))
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from([True, "0.5", None, [0.5], 1 + 2j, float("nan"), 10**400]))
    kinds = [float, np.float32, np.float64] + ([int, np.int64] if float(v).is_integer() else [])
    return draw(st.sampled_from(kinds))(v)


@st.composite
def calls(draw):
    """(entry, keyword arguments of the forward, x)."""
    entry: Activation = draw(st.sampled_from(TABLE))
    bad_dtype = draw(st.integers(0, 15)) == 0
    dtype = draw(st.sampled_from(BAD_DTYPES if bad_dtype else GOOD_DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=4)))
    x = draw(arrays(shape, dtype, span=entry.sample_range))
    kw = {}
    for prm in entry.parameters:
        if prm.name == entry.channel_param:
            channels = shape[1] if len(shape) >= 2 else 1
            size = draw(st.sampled_from([1, channels, channels, channels + 1]))
            kw[prm.name] = draw(
                st.one_of(
                    st.floats(-1, 1),
                    arrays((size,), draw(st.sampled_from([np.float64, np.float32])), False),
                )
            )
        elif draw(st.integers(0, 3)) > 0:
            kw[prm.name] = _param_value(draw, entry, prm)
    if entry.has_training_mode:
        kw["training"] = draw(st.booleans())
        kw["seed"] = draw(st.sampled_from([None, 0, 7, 2**64 - 1, -1, 1.5, 2**64]))
    if entry.rowwise:
        kw["axis"] = draw(st.one_of(st.integers(-len(shape) - 1, len(shape)), st.just(1.0)))
    return entry, kw, x


def _names(entry: Activation) -> set[str]:
    names = {"x", "grad_output", "saved", "out", "axis", "seed", "training"}
    return names | {p.name for p in entry.parameters}


def assert_names_an_argument(exc: Exception, entry: Activation) -> None:
    msg = str(exc)
    named = [n for n in _names(entry) if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", msg)]
    assert named, f"{type(exc).__name__} names no argument: {msg!r}"


def _out_for(draw, x: np.ndarray):
    """None, a fresh out, x itself, a strided out, or a wrong one."""
    shape = np.shape(x)
    dt = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    kind = draw(st.sampled_from(["none", "none", "fresh", "inplace", "strided", "wrong"]))
    if kind == "fresh":
        return np.full(shape, -7.0, dt)
    if kind == "inplace":
        return x
    if kind == "strided":
        return np.full(shape + (2,), -7.0, dt)[..., 0]
    if kind == "wrong":
        return draw(
            st.sampled_from(
                [
                    np.full(shape + (1,), -7.0, dt),
                    np.full(shape, -7.0, np.float32 if dt == np.float64 else np.float64),
                    [0.0],
                ]
            )
        )
    return None


def _reference_params(entry: Activation, kw: dict, x: np.ndarray) -> dict:
    """The parameters as the kernels see them: numbers rounded to x's dtype."""
    params = dict(entry.example_params)
    for k, v in kw.items():
        if k in params:
            if k == entry.channel_param and np.ndim(v):
                params[k] = np.asarray(v, np.float64).astype(x.dtype).astype(np.float64)
            elif isinstance(v, str):
                params[k] = v
            else:
                params[k] = float(x.dtype.type(v))
    return params


def _assert_unchanged(a, b) -> None:
    if np.asarray(a).dtype.kind == "O":
        assert repr(np.asarray(a).tolist()) == repr(np.asarray(b).tolist())
    else:
        np.testing.assert_array_equal(a, b)


def _check_call(fn, args: tuple, kw: dict, out, entry: Activation, inputs: list[np.ndarray]):
    """Call; on error check the message and that nothing was written. Returns the result
    or None when the call was refused."""
    before = [a.copy() for a in inputs]
    out_before = out.copy() if isinstance(out, np.ndarray) else None
    try:
        with np.errstate(all="ignore"):
            return fn(*args, **kw, out=out)
    except (TypeError, ValueError) as exc:
        hypothesis.event(f"refused: {type(exc).__name__}")
        assert_names_an_argument(exc, entry)
        if out_before is not None:
            _assert_unchanged(out, out_before)
        for a, b in zip(inputs, before):
            _assert_unchanged(a, b)
        return None
    finally:
        for a, b in zip(inputs, before):
            if a is not out and not (isinstance(out, np.ndarray) and np.shares_memory(a, out)):
                _assert_unchanged(a, b)


def _tolerances(call: Call, x: np.ndarray, dtype):
    with np.errstate(all="ignore"):
        return call.condition(x), call.underflow(x, dtype)


@FUZZ
@given(data=st.data())
def test_public_api_fuzz(data):
    entry, kw, x = data.draw(calls())
    fwd = getattr(fastact, entry.name)
    bwd = getattr(fastact, f"{entry.name}_backward")
    cp = entry.channel_param
    weight = kw.pop(cp) if cp else None
    args = (x, weight) if cp else (x,)
    out = _out_for(data.draw, x)
    x_orig = x.copy()
    y = _check_call(fwd, args, kw, out, entry, [x])
    if y is None:
        return
    if out is not None:
        np.testing.assert_array_equal(out, y)
        assert y is out
    y = np.array(y, copy=True)
    dtype = np.dtype(np.float64) if x.dtype.kind in "iu" else x.dtype.newbyteorder("=")
    assert y.dtype.newbyteorder("=") == dtype and y.shape == x.shape
    if y.size == 0:
        return
    params = _reference_params(entry, {**kw, cp: weight} if cp else kw, x_orig.astype(dtype))
    call = Call(entry, params, training=kw.get("training", False), seed=kw.get("seed"))
    x64 = x_orig.astype(np.float64)
    axis = kw.get("axis", -1)
    if entry.has_training_mode and kw["training"] and kw["seed"] is None:
        return  # a fresh seed: nothing to compare with
    if entry.rowwise:
        from fastact import reference

        want = reference.forward(entry.name, x64, axis=axis)
        if x.ndim == 0:
            want = reference.forward(entry.name, x64.reshape(1)).reshape(())
    else:
        want = call.ref_forward(x_orig.astype(dtype))
    cond, atol = (None, None) if entry.rowwise else _tolerances(call, x_orig.astype(dtype), dtype)
    scale = np.float64(x.shape[axis] if x.ndim else 1) if entry.rowwise else None
    with np.errstate(over="ignore"):
        want = np.asarray(want, np.float64).astype(dtype).astype(np.float64)
    assert_close(
        y, want, dtype, what=f"{entry.name} {kw} forward", cond=cond, atol=atol, scale=scale
    )

    # backward, from what the entry saves, with a gradient of its own layout
    g = data.draw(arrays(x.shape, data.draw(st.sampled_from(GOOD_DTYPES)), specials=False))
    saved = x_orig.astype(dtype) if entry.saves == "input" else y
    g_orig = np.array(g, copy=True)
    gout = _out_for(data.draw, np.asarray(g))
    bargs = (g, saved, args[1]) if cp else (g, saved)
    gx = _check_call(bwd, bargs, kw, gout, entry, [g, saved])
    if gx is None:
        return
    if cp:
        gx = gx[0]
    gdt = np.dtype(np.float64) if g.dtype.kind in "iu" else g.dtype.newbyteorder("=")
    assert np.asarray(gx).dtype.newbyteorder("=") == gdt and np.shape(gx) == x.shape
    g64 = np.asarray(g_orig, np.float64)
    s_g = np.asarray(saved).astype(gdt)  # the saved array in the gradient's dtype
    if entry.rowwise:
        from fastact import reference

        s64 = s_g.astype(np.float64)
        if x.ndim == 0:
            want = reference.backward(entry.name, g64.reshape(1), s64.reshape(1)).reshape(())
            scale = np.abs(g64)
        else:
            want = reference.backward(entry.name, g64, s64, axis=axis)
            scale = np.abs(g64).sum(axis=axis, keepdims=True)
        cond = atol = None
    else:
        if gdt != dtype:
            pk = {**kw, cp: weight} if cp else kw
            call = Call(entry, _reference_params(entry, pk, s_g), call.training, call.seed)
        want = call.ref_backward(g64.astype(gdt), s_g)  # rrelu's slopes follow the dtype
        cond, atol = _tolerances(call, s_g, gdt)
        atol = None if atol is None else atol * np.abs(g64)
        scale = call.grad_scale(g64)
    with np.errstate(over="ignore"):
        want = np.asarray(want, np.float64).astype(gdt).astype(np.float64)
    assert_close(
        gx, want, gdt, what=f"{entry.name} {kw} backward", cond=cond, atol=atol, scale=scale
    )
