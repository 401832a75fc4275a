"""16-bit storage: float16 and bfloat16 arrays, computed in float32.

The one owner of the 16-bit formats: which dtypes they are, how an element
is widened to float32 (exactly) and rounded back (once, to nearest even;
overflow to +-inf, NaN to a quiet NaN), and how a backend's float32 kernels
run on such arrays (:class:`HalfBackend`).  NumPy's ``float16`` needs
nothing; ``bfloat16`` is ``ml_dtypes.bfloat16`` (the ``fastact[bfloat16]``
extra), whose arrays have kind ``'V'`` and no buffer protocol: kernels see
their zero-copy ``uint16`` views, and the dtype is recognised by equality,
never by kind.

The Cython backend runs the float32 kernel of an elementwise entry inside
each thread's chunk, fused: on chunks of 128 elements widened as loaded and
rounded as stored (``fa_convert.h``; float16 by the F16C instructions where
the CPU has them, ``fa_half.h`` choosing at load); plain C-contiguous calls
take the compiled fast path, as float32 ones do.  The Numba backend's elementwise
kernels for each format widen each element as loaded and round it as stored, in one
vectorized loop.  Rowwise and per-channel entries on Numba, and registered
activations, run the float32 drivers on blocks widened into float32 buffers.  The
NumPy backend widens to float64 and rounds its reference once.  The
conversions below are those of ``fa_convert.h``, bit for bit: integer and
float32 operations that the compiler vectorizes (float16's rounding by the
F16C instruction where the CPU has it: the same bits), not the AVX512_BF16
instructions (which flush subnormal results), so subnormal 16-bit values
convert exactly both ways.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
# 16-bit dtype name -> format code of fa_half.h
FORMATS = {"float16": 1, "bfloat16": 2}
# Names of the 16-bit dtypes, in the order benchmarks and tuning list them.
NAMES = tuple(FORMATS)
# Elements per block of the blockwise drivers: float32 buffers that stay in L2.
BLOCK = 1 << 16
# Longest row a backend's own 16-bit rowwise kernels take (float32 buffers per thread);
# longer rows go through the blockwise drivers, which spread one row over threads.
NATIVE_ROW_MAX = 1 << 16
# Elements of the rows widened together into float32 buffers by the row drivers (three
# buffers, 24 KiB in all: L1), at least one row; any count gives the same bits.
ROW_BATCH = 2048


_bfloat16: list[np.dtype | None] = []


def _bfloat16_loaded() -> np.dtype | None:
    """bfloat16 once ml_dtypes is imported (a bfloat16 array implies it), without importing it:
    ml_dtypes takes long to import, and ``import fastact`` does not pay for it."""
    if not _bfloat16:
        m = sys.modules.get("ml_dtypes")
        if m is None:
            return None
        _bfloat16.append(np.dtype(m.bfloat16))
        kernels = sys.modules.get("fastact._backends.cython._kernels")
        if hasattr(kernels, "half_set_bfloat16"):  # its fast path takes bfloat16 from now on
            kernels.half_set_bfloat16(_bfloat16[0].num)
    return _bfloat16[0]


def _bfloat16_import() -> np.dtype | None:
    """bfloat16, importing ml_dtypes; None where it is not installed."""
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:  # the bfloat16 extra is not installed
        return None
    return _bfloat16_loaded()


def __getattr__(name: str) -> Any:
    if name == "BFLOAT16":  # the dtype, or None without ml_dtypes
        return _bfloat16_import()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dtypes() -> tuple[np.dtype, ...]:
    """The 16-bit dtypes available here (bfloat16 needs ml_dtypes)."""
    bf = _bfloat16_import()
    return (FLOAT16,) if bf is None else (FLOAT16, bf)


def dtype_named(name: str) -> np.dtype:
    """The dtype of a name (``"bfloat16"`` included); ImportError without ml_dtypes."""
    if name == "bfloat16":
        bf = _bfloat16_import()
        if bf is None:
            raise ImportError('bfloat16 needs ml_dtypes: pip install "fastact[bfloat16]"')
        return bf
    return np.dtype(name)


def fmt(dtype: Any) -> int:
    """The format code of a 16-bit dtype, 0 for any other."""
    if dtype == FLOAT16:
        return 1
    bf = _bfloat16_loaded()
    if bf is not None and dtype == bf:
        return 2
    return 0


def is_half(dtype: Any) -> bool:
    return fmt(dtype) != 0


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """float32 for a 16-bit dtype (what it is computed in), else ``dtype``."""
    return FLOAT32 if is_half(dtype) else dtype


def bits(a: np.ndarray) -> np.ndarray:
    """The zero-copy flat uint16 view of a contiguous 16-bit array (in memory order)."""
    flat = a.view(np.uint16).ravel(order="K")
    if flat.size > 1 and not np.shares_memory(flat, a):  # pragma: no cover - API guarantees
        raise ValueError("a 16-bit buffer must be contiguous")
    return flat


def _cython():
    from . import _dispatch

    return _dispatch._cython()


def _widen_bits(code: int, h: np.ndarray, out: np.ndarray, nthreads: int) -> np.ndarray:
    cy = _cython()
    if cy is not None:
        return cy.half_convert(code, h, out, nthreads)
    u = h.astype(np.uint32)
    if code == 2:
        out.view(np.uint32)[...] = u << 16
        return out
    mag = ((u & 0x7FFF) << 13).view(np.float32) * np.float32(2.0**112)
    r = mag.view(np.uint32) | np.where((u & 0x7C00) == 0x7C00, np.uint32(0x7F800000), 0)
    out.view(np.uint32)[...] = r | ((u & 0x8000) << 16)
    return out


def _narrow_bits(code: int, f: np.ndarray, out: np.ndarray, nthreads: int) -> np.ndarray:
    """float32 ``f`` rounded once into 16-bit bits ``out`` (fa_half.h's rounding)."""
    cy = _cython()
    if cy is not None:
        return cy.half_convert(code, f, out, nthreads)
    u = f.view(np.uint32).astype(np.uint32)
    a = u & 0x7FFFFFFF
    nan = a > 0x7F800000
    if code == 2:
        r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        out[...] = np.where(nan, (u >> 16) | 0x40, r & 0xFFFF)
        return out
    sign = (u >> 16) & 0x8000
    big = np.where(nan, 0x7E00 | ((a >> 13) & 0x3FF), 0x7C00)
    with np.errstate(over="ignore", invalid="ignore"):
        small = (a.view(np.float32) + np.float32(0.5)).view(np.uint32) - np.uint32(0x3F000000)
    normal = ((a + np.uint32(0xC8000FFF) + ((a >> 13) & 1)) & 0xFFFFFFFF) >> 13
    m = np.where(a >= 0x47800000, big, np.where(a < 0x38800000, small, normal))
    out[...] = (m | sign) & 0xFFFF
    return out


def to_float32(a: np.ndarray, nthreads: int = 1) -> np.ndarray:
    """A 16-bit array widened to a new float32 array of its shape (exact)."""
    h = np.ascontiguousarray(a).view(np.uint16).reshape(-1)
    out = np.empty(a.shape, np.float32)
    _widen_bits(fmt(a.dtype), h, out.reshape(-1), nthreads)
    return out


def round_to(value: Any, dtype: np.dtype) -> np.ndarray:
    """float64 values rounded once to ``dtype`` (a 16-bit one: directly, not via float32)."""
    with np.errstate(over="ignore"):
        return np.asarray(value, np.float64).astype(dtype)


# significand bits and smallest normal exponent of each format
_PRECISION = {"float16": (11, -14), "bfloat16": (8, -126)}


def ulp_error(got: np.ndarray, want: np.ndarray, dtype: np.dtype) -> float:
    """The largest ``|got - want|`` in units of the last place of the 16-bit ``dtype`` at
    ``want`` (float64), over the elements where ``want`` is finite and within the type's
    range (NaN where the two disagree about NaN)."""
    got = np.asarray(got).astype(np.float64).reshape(-1)
    want = np.asarray(want, np.float64).reshape(-1)
    if (np.isnan(got) != np.isnan(want)).any():
        return float("nan")
    p, emin = _PRECISION[np.dtype(dtype).name]
    fin = np.isfinite(want) & np.isfinite(round_to(want, dtype).astype(np.float64))
    w, g = want[fin], got[fin]
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.abs(w)))
    e = np.maximum(np.where(np.isfinite(e), e, emin), emin)
    return float((np.abs(g - w) / np.exp2(e - p + 1)).max(initial=0.0))


def _channel_blocks(channels: int, inner: int):
    """The unit a per-channel entry's blocks are cut at, and the (outer, C, inner)
    geometry of a block of n elements: one weight makes any block (1, 1, n)."""
    if channels == 1:
        return 1, lambda n: (1, 1, n)
    unit = channels * inner
    return unit, lambda n: (n // unit, channels, inner)


class HalfBackend:
    """A backend's float32 kernels on 16-bit arrays, as the Backend protocol.

    The arrays it receives are validated by the API as for the other dtypes
    (one 16-bit dtype, contiguous in one order).  The elementwise kernels of a
    backend that converts a format itself (``half_formats``: both, on the Cython
    and the Numba backends) run fused (widen, float32 kernel, round, element by
    element or per block of each thread's chunk); everything else runs the float32
    driver on blocks of
    :data:`BLOCK` elements (whole rows, whole ``outer`` slices of prelu),
    widened into float32 buffers and rounded back: the same bits, the blocks
    cut by the shape only.  The NumPy backend computes its float64 reference
    on the widened array and rounds once.
    """

    def __init__(self, backend) -> None:
        self.inner = backend
        self.name = backend.name
        self.reference = backend.name == "numpy"

    # -- blocks -----------------------------------------------------------

    def _blocks(self, n: int, unit: int, whole: bool):
        """Start and stop of the blocks over ``n`` elements, cut at multiples of ``unit``."""
        step = n if whole else max(unit, (BLOCK // unit) * unit)
        for lo in range(0, n, step):
            yield lo, min(n, lo + step)

    def _map(self, arrays, out, unit, whole, nthreads, run):
        """``run(inputs32, out32, lo, hi)`` over blocks; results rounded into ``out``."""
        code = fmt(out.dtype)
        flat = [bits(a) for a in arrays]
        fo = bits(out)
        wide = np.float64 if self.reference else np.float32
        res = []
        for lo, hi in self._blocks(fo.size, unit, whole):
            ins = [
                _widen_bits(code, f[lo:hi], np.empty(hi - lo, np.float32), nthreads) for f in flat
            ]
            o = np.empty(hi - lo, wide)
            res.append(run(ins, o, lo, hi))
            if self.reference:
                fo[lo:hi] = round_to(o, out.dtype).view(np.uint16)
            else:
                _narrow_bits(code, o, fo[lo:hi], nthreads)
        return res

    # -- the protocol -----------------------------------------------------

    def _native(self, dtype) -> bool:
        """Whether the backend's kernels read and write this format themselves."""
        return fmt(dtype) in getattr(self.inner, "half_formats", ())

    def forward(self, entry, x, out, params, training, seed, nthreads):
        if self._native(x.dtype):
            return self.inner.half_forward(
                fmt(x.dtype), entry, bits(x), bits(out), params, training, seed, nthreads
            )
        self._map(
            [x],
            out,
            1,
            training,
            nthreads,
            lambda i, o, lo, hi: self.inner.forward(
                entry, i[0], o, params, training, seed, nthreads
            ),
        )

    def backward(self, entry, g, s, out, params, training, seed, nthreads):
        if self._native(g.dtype):
            return self.inner.half_backward(
                fmt(g.dtype), entry, bits(g), bits(s), bits(out), params, training, seed, nthreads
            )
        self._map(
            [g, s],
            out,
            1,
            training,
            nthreads,
            lambda i, o, lo, hi: self.inner.backward(
                entry, i[0], i[1], o, params, training, seed, nthreads
            ),
        )

    def _wide(self, a: np.ndarray, nthreads: int) -> np.ndarray:
        """A 16-bit array widened exactly, flat: float32 (float64 for the reference)."""
        w = _widen_bits(fmt(a.dtype), bits(a), np.empty(a.size, np.float32), nthreads)
        return w.astype(np.float64) if self.reference else w

    def _round_into(self, o: np.ndarray, out: np.ndarray, nthreads: int) -> None:
        if self.reference:
            bits(out)[:] = round_to(o, out.dtype).view(np.uint16)
        else:
            _narrow_bits(fmt(out.dtype), o, bits(out), nthreads)

    def bias_forward(self, entry, x, bias, out, call):
        """The float32 (reference: float64) epilogue on widened copies, rounded once."""
        o = np.empty(x.size, np.float64 if self.reference else np.float32)
        wide = self._wide(x, call.nthreads), self._wide(bias, 1)
        self.inner.bias_forward(entry, *wide, o, call)
        self._round_into(o, out, call.nthreads)

    def bias_backward(self, entry, g, s, bias, out, partial, call):
        """As :meth:`bias_forward`; the bias gradient's partial sums stay float64."""
        o = np.empty(g.size, np.float64 if self.reference else np.float32)
        wide = self._wide(g, call.nthreads), self._wide(s, call.nthreads), self._wide(bias, 1)
        self.inner.bias_backward(entry, *wide, o, partial, call)
        self._round_into(o, out, call.nthreads)

    def _native_rows(self, dtype, rowlen: int) -> bool:
        """Whether the backend runs rows of this format itself (through float32 buffers
        of its own: rows up to :data:`NATIVE_ROW_MAX` elements)."""
        return (
            self._native(dtype) and hasattr(self.inner, "half_rowwise") and rowlen <= NATIVE_ROW_MAX
        )

    def rowwise_forward(self, entry, x, out, rows, rowlen, nthreads):
        if self._native_rows(x.dtype, rowlen):
            return self.inner.half_rowwise(
                fmt(x.dtype), entry, bits(x), None, bits(out), rows, rowlen, nthreads
            )
        self._map(
            [x],
            out,
            rowlen,
            False,
            nthreads,
            lambda i, o, lo, hi: self.inner.rowwise_forward(
                entry, i[0], o, (hi - lo) // rowlen, rowlen, nthreads
            ),
        )

    def rowwise_backward(self, entry, g, s, out, rows, rowlen, nthreads):
        if self._native_rows(g.dtype, rowlen):
            return self.inner.half_rowwise(
                fmt(g.dtype), entry, bits(g), bits(s), bits(out), rows, rowlen, nthreads
            )
        self._map(
            [g, s],
            out,
            rowlen,
            False,
            nthreads,
            lambda i, o, lo, hi: self.inner.rowwise_backward(
                entry, i[0], i[1], o, (hi - lo) // rowlen, rowlen, nthreads
            ),
        )

    def _native_channels(self, dtype) -> bool:
        return self._native(dtype) and hasattr(self.inner, "half_channel_forward")

    def channel_forward(self, entry, x, out, weight, outer, channels, inner, nthreads):
        if self._native_channels(x.dtype):
            return self.inner.half_channel_forward(
                fmt(x.dtype), entry, bits(x), bits(out), weight, outer, channels, inner, nthreads
            )
        unit, shape = _channel_blocks(channels, inner)
        self._map(
            [x],
            out,
            unit,
            False,
            nthreads,
            lambda i, o, lo, hi: self.inner.channel_forward(
                entry, i[0], o, weight, *shape(hi - lo), nthreads
            ),
        )

    def channel_backward(self, entry, g, s, out, weight, outer, channels, inner, nthreads):
        """The weight's gradient summed in float64 over the blocks, in block order."""
        if self._native_channels(g.dtype):
            return self.inner.half_channel_backward(
                fmt(g.dtype), entry, bits(g), bits(s), bits(out), weight, outer, channels,
                inner, nthreads,
            )  # fmt: skip
        unit, shape = _channel_blocks(channels, inner)
        parts = self._map(
            [g, s],
            out,
            unit,
            False,
            nthreads,
            lambda i, o, lo, hi: self.inner.channel_backward(
                entry, i[0], i[1], o, weight, *shape(hi - lo), nthreads
            ),
        )
        gw = np.zeros(channels)
        for part in parts:
            gw += np.asarray(part, np.float64)
        return gw
