"""Generate the Numba kernels of the Numba backend from the activation table.

The same formulas that become C for the Cython backend (:mod:`.c_kernels`)
become Python source here, through :func:`.dialect.expr_to_python` and
:func:`.dialect.function_to_python` (every literal typed as ``T(...)``, ``T``
bound to ``np.float32`` or ``np.float64``, so float32 math stays float32).
The backend (:mod:`fastact._backends.numba`) writes each generated module to
its cache directory, imports it, and compiles the kernels one by one on first
use, as C-ABI ``cfunc`` functions.

One module per (entry, float type) holds:

* the fastact intrinsics that are not in :mod:`math` (rrelu's counter-based
  generator, the same bits as ``fa_intrinsics.h``);
* the math helpers of :mod:`fastact._math.functions` the entry uses, each
  wrapped in ``njit`` (Numba compiles a helper as part of its caller);
* one plain Python function per kernel kind (``_fa_fwd``, ``_fa_bwd``...),
  each a serial loop over ``range(start, stop)`` of flat buffers;
* for a per-channel or rowwise entry, the ``<8 x double>`` partial sums of
  ``pgrad`` and of the row sums (``LANES_SOURCE``).

One module per float type holds the drivers: ``_fa_par_*`` (``njit(parallel=
True)``, one chunk per thread with ``prange``) and ``_fa_ser_*`` (serial), which
get a kernel as its address and call it per chunk through an intrinsic
(``_fa_callN``), exactly as the OpenMP driver of the Cython backend calls the
generated C loops through function pointers.

Kernel signatures, C ABI (T: float or double; every index int64):

* unary   ``k(T *x, T *out, double *p, poff, uint64 seed, start, stop)``
* binary  ``k(T *g, T *s, T *out, double *p, poff, uint64 seed, start, stop)``
* pgrad   ``k(T *g, T *s, double *p, poff, double *acc, aoff, start, stop)``
* rowwise ``k(T *x, T *out, double *p, rowlen, r0, r1)`` and
  ``k(T *g, T *s, T *out, double *p, rowlen, r0, r1)`` (rows ``r0..r1-1``)

The in-place twins (``fwd_ip``, ``bwd_ip``... see ``INPLACE``) have the
signature of their kind, ignore ``out`` and write ``x`` (unary) or ``g``
(binary): the backend calls them when ``out`` is that very buffer, so that
the loop has one pointer and vectorizes.

Parameter ``j`` (table order) is ``p[poff + j]``; in the "vector" forms of a
per-channel entry (prelu on ``(N, C)``) the channel parameter of element
``k`` is ``p[poff + k - start]``.  ``k`` is the flat index of rrelu's
counter-based slopes (``uniform_slope(seed, i, ...)`` with ``i = k``).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import inspect
from collections.abc import Callable, Iterable

from ..table import Activation
from .dialect import INTRINSICS, expr_to_python, free_names, function_to_python

DTYPES = {"f32": "np.float32", "f64": "np.float64"}

UNARY = ("fwd", "tfwd", "fwdv")
BINARY = ("bwd", "tbwd", "bwdv")
PGRAD = ("pgrad", "pgradv")
ROWWISE = ("rfwd", "rbwd")
# In-place twins of the elementwise kinds (``<kind>_ip``): same signature, but
# they read and write one buffer (x for the unary kinds, g for the binary
# ones) and never touch ``out``, which the caller passes equal to it.  With
# two equal pointers LLVM's runtime alias check fails and the loop runs
# scalar; with one pointer it vectorizes.
INPLACE = {kind: f"{kind}_ip" for kind in UNARY + BINARY}
KINDS = UNARY + BINARY + PGRAD + ROWWISE + tuple(INPLACE.values())
PGRAD_LANES = 8  # pgrad's partial sums (the C generator's _pgrad: the same order)
PGRAD_BLOCK = 128  # terms per block of pgrad's and row sums' stack buffer (a multiple of 8)

# Same constants as the Cython driver (_kernels.pyx).
MIN_CHUNK = 4096
SEGMENT = 16384
PGRAD_BLOCKS = 64

# Emitted Python that Numba would compile with other semantics than C:
# Numba's math.floor returns an int64 (garbage for inf/NaN/huge values).
_ALIASES = {"math.floor(": "np.floor("}

# The intrinsics of the dialect that are neither math/np functions nor Python
# builtins: their Numba source.  Bit for bit the functions of fa_intrinsics.h:
# rrelu's counter-based slopes.  A kernel that calls ``uniform_slope`` steps
# the generator's state per element (``_fa_w``; ``_fa_kh`` per run of
# counters, see :func:`elementwise_kernel`) with the functions below, whose
# float32 or float64 forms the module picks by ``T`` when it is imported.
# uint64 arithmetic wraps around; the float32 hash is LLVM IR on i32 (an
# intrinsic), so that LLVM vectorizes it in 32-bit lanes.
INTRINSICS_SOURCE = """\
from llvmlite import ir as _fa_rng_ir
from numba import types as _fa_rng_types
from numba.extending import intrinsic as _fa_rng_intrinsic

_FA_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FA_M1 = np.uint64(0xBF58476D1CE4E5B9)
_FA_M2 = np.uint64(0x94D049BB133111EB)
_FA_WEYL64 = np.uint64(0x9E3779B97F4A7C15)
_FA_WEYL32 = np.uint32(0x9E3779B9)
_FA_S11 = np.uint64(11)
_FA_S27 = np.uint64(27)
_FA_S29 = np.uint64(29)
_FA_S30 = np.uint64(30)
_FA_S31 = np.uint64(31)
_FA_S32 = np.uint64(32)
_FA_LO32 = np.uint64(0xFFFFFFFF)
_FA_2M53 = np.float64(1.1102230246251565e-16)  # 2**-53
_FA_2M24 = T(5.960464477539063e-08)  # 2**-24 (used in float32 modules)
_FA_I32 = _fa_rng_ir.IntType(32)


@njit(nogil=True, error_model="numpy")
def fa_mix64(z):
    z = np.uint64(z) + _FA_GOLDEN
    z = (z ^ (z >> _FA_S30)) * _FA_M1
    z = (z ^ (z >> _FA_S27)) * _FA_M2
    return z ^ (z >> _FA_S31)


@njit(nogil=True, error_model="numpy")
def fa_counter(seed, off):
    return fa_mix64(np.uint64(seed)) + np.uint64(off)


@_fa_rng_intrinsic
def _fa_bits24(typingctx, w, kh):
    # the top 24 bits of fa_slope_f32's hash of (w, kh), as an int32
    if not all(isinstance(t, _fa_rng_types.Integer) for t in (w, kh)):
        return None

    def codegen(context, builder, signature, args):
        def c(v):
            return _fa_rng_ir.Constant(_FA_I32, v)

        w, kh = (builder.trunc(a, _FA_I32) if a.type.width > 32 else a for a in args)
        x = builder.xor(builder.xor(w, builder.lshr(w, c(16))), kh)
        x = builder.mul(x, c(0x7FEB352D))
        x = builder.xor(x, builder.lshr(x, c(15)))
        x = builder.mul(x, c(0x846CA68B))
        x = builder.xor(x, builder.lshr(x, c(16)))
        x = builder.mul(x, c(0x7FEB352D))
        return builder.lshr(x, c(8))

    return _fa_rng_types.int32(w, kh), codegen


@njit(nogil=True, error_model="numpy", inline="always")
def _fa_slope_f32(w, kh, lo, hi):
    return lo + ((hi - lo) * _FA_2M24) * np.float32(_fa_bits24(w, kh))


@njit(nogil=True, error_model="numpy", inline="always")
def _fa_slope_f64(w, kh, lo, hi):
    z = w ^ (w >> _FA_S32)
    z = z * _FA_M1
    z = z ^ (z >> _FA_S29)
    z = z * _FA_M2
    return lo + ((hi - lo) * _FA_2M53) * np.float64(np.int64(z >> _FA_S11))


@njit(nogil=True, error_model="numpy")
def _fa_run_end_f32(c0, k0, n):
    room = np.int64(1 << 32) - np.int64(np.uint64(c0 + np.uint64(k0)) & _FA_LO32)
    return n if n - k0 <= room else k0 + room


@njit(nogil=True, error_model="numpy")
def _fa_run_end_f64(c0, k0, n):
    return n


@njit(nogil=True, error_model="numpy")
def _fa_run_key_f32(c):
    return np.uint32(fa_mix64(c >> _FA_S32) >> _FA_S32)


@njit(nogil=True, error_model="numpy")
def _fa_run_key_f64(c):
    return np.uint32(0)


@njit(nogil=True, error_model="numpy")
def _fa_weyl_f32(c):
    return np.uint32(np.uint32(c & _FA_LO32) * _FA_WEYL32)


@njit(nogil=True, error_model="numpy")
def _fa_weyl_f64(c):
    return np.uint64(c) * _FA_WEYL64


@njit(nogil=True, error_model="numpy", inline="always")
def _fa_step_f32(w):
    return np.uint32(w + _FA_WEYL32)


@njit(nogil=True, error_model="numpy", inline="always")
def _fa_step_f64(w):
    return w + _FA_WEYL64


if T(16777217.0) == T(16777216.0):  # float32
    uniform_slope, fa_run_end, fa_run_key = _fa_slope_f32, _fa_run_end_f32, _fa_run_key_f32
    fa_weyl, fa_step = _fa_weyl_f32, _fa_step_f32
else:
    uniform_slope, fa_run_end, fa_run_key = _fa_slope_f64, _fa_run_end_f64, _fa_run_key_f64
    fa_weyl, fa_step = _fa_weyl_f64, _fa_step_f64
"""

# Bit-level intrinsics (fa_intrinsics.h): pow2i(n) = 2**n by moving n's low
# mantissa bits into the exponent field, exponent(x) = floor(log2|x|) and
# mantissa(x) in [1, 2) for normal x.  Reinterpreting a float's bits needs an
# LLVM bitcast (a Numba intrinsic); integer arithmetic runs in uint64 and is
# truncated, which gives the low bits of C's uint32 arithmetic exactly.
BITS_SOURCE = """\
from numba import types as _fa_types
from numba.extending import intrinsic as _fa_intrinsic


@_fa_intrinsic
def _fa_as_uint(typingctx, x):
    if not isinstance(x, _fa_types.Float):
        return None
    ut = _fa_types.uint32 if x.bitwidth == 32 else _fa_types.uint64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(ut))

    return ut(x), codegen


@_fa_intrinsic
def _fa_as_float(typingctx, u):
    if not isinstance(u, _fa_types.Integer):
        return None
    ft = _fa_types.float32 if u.bitwidth == 32 else _fa_types.float64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(ft))

    return ft(u), codegen


@_fa_intrinsic
def _fa_fma(typingctx, a, b, c):
    if not all(isinstance(v, _fa_types.Float) for v in (a, b, c)):
        return None
    ft = a

    def codegen(context, builder, signature, args):
        vals = [context.cast(builder, v, t, ft) for v, t in zip(args, signature.args)]
        return builder.fma(*vals)

    return ft(a, b, c), codegen


_FA_UINT = {uint}
_FA_ROUNDER = T({rounder})
_FA_BIAS = np.uint64({bias})
_FA_EXP_BIAS = np.uint64({exp_bias})
_FA_MANT_BITS = np.uint64({mant_bits})
_FA_EXP_MASK = np.uint64({exp_mask})
_FA_MANT_MASK = np.uint64({mant_mask})
_FA_ONE_BITS = np.uint64({one_bits})


@njit(nogil=True, error_model="numpy")
def fma(a, b, c):
    return _fa_fma(T(a), T(b), T(c))


@njit(nogil=True, error_model="numpy")
def pow2i(n):
    a = np.uint64(_fa_as_uint(T(n) + _FA_ROUNDER))
    return _fa_as_float(_FA_UINT((a - _FA_BIAS + _FA_EXP_BIAS) << _FA_MANT_BITS))


@njit(nogil=True, error_model="numpy")
def exponent(x):
    u = np.uint64(_fa_as_uint(T(x)))
    return T(np.int64((u >> _FA_MANT_BITS) & _FA_EXP_MASK) - np.int64(_FA_EXP_BIAS))


@njit(nogil=True, error_model="numpy")
def mantissa(x):
    u = np.uint64(_fa_as_uint(T(x)))
    return _fa_as_float(_FA_UINT((u & _FA_MANT_MASK) | _FA_ONE_BITS))
"""

_BITS = {
    "f32": {
        "uint": "np.uint32",
        "rounder": "12582912.0",  # 1.5 * 2**23
        "bias": "0x4B400000",
        "exp_bias": "127",
        "mant_bits": "23",
        "exp_mask": "0xFF",
        "mant_mask": "0x007FFFFF",
        "one_bits": "0x3F800000",
    },
    "f64": {
        "uint": "np.uint64",
        "rounder": "6755399441055744.0",  # 1.5 * 2**52
        "bias": "0x4338000000000000",
        "exp_bias": "1023",
        "mant_bits": "52",
        "exp_mask": "0x7FF",
        "mant_mask": "0x000FFFFFFFFFFFFF",
        "one_bits": "0x3FF0000000000000",
    },
}

# The eight partial sums of pgrad and of the row sums (softmax) as one LLVM
# <8 x double> value (a Numba type of its own: Numba has no vector types, and
# it compiles without the SLP vectorizer that would pack eight scalar sums).
# Lane j adds the buffer's element off + j; the total adds the lanes
# pairwise, as the C kernels do.
# The buffer is an aligned stack array (a misaligned one costs 2x here).
LANES_SOURCE = """\
from llvmlite import ir as _fa_ir
from numba import types as _fa_nbtypes
from numba.core import cgutils as _fa_cgutils
from numba.extending import intrinsic as _fa_lanes_intrinsic
from numba.extending import models as _fa_models
from numba.extending import register_model as _fa_register_model

_FA_PBLOCK = {block}
_FA_NEG0 = -np.float64(0.0)  # the identity of +: a + -0.0 is a, bit for bit
_FA_DOUBLE = _fa_ir.DoubleType()
_FA_LANES = _fa_ir.VectorType(_FA_DOUBLE, 8)


class _FaLanesType(_fa_nbtypes.Type):
    def __init__(self):
        super().__init__(name="fastact_lanes8")


_fa_lanes_type = _FaLanesType()


@_fa_register_model(_FaLanesType)
class _FaLanesModel(_fa_models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _FA_LANES)


@_fa_lanes_intrinsic
def _fa_lanes_zero(typingctx):
    def codegen(context, builder, signature, args):
        return _fa_ir.Constant(_FA_LANES, None)  # zeroinitializer: +0.0 in every lane

    return _fa_lanes_type(), codegen


@_fa_lanes_intrinsic
def _fa_scratch(typingctx, n):
    if not isinstance(n, _fa_nbtypes.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        p = _fa_cgutils.alloca_once(builder, _FA_DOUBLE, size=n.literal_value)
        p.align = 64
        return p

    return _fa_nbtypes.CPointer(_fa_nbtypes.float64)(n), codegen


@_fa_lanes_intrinsic
def _fa_lanes_add(typingctx, v, buf, off):
    def codegen(context, builder, signature, args):
        p = builder.gep(args[1], [args[2]])
        p = builder.bitcast(p, _FA_LANES.as_pointer())
        return builder.fadd(args[0], builder.load(p, align=8))

    return _fa_lanes_type(v, buf, off), codegen


@_fa_lanes_intrinsic
def _fa_lanes_total(typingctx, v):
    def codegen(context, builder, signature, args):
        a = [builder.extract_element(args[0], _fa_ir.Constant(_fa_ir.IntType(32), j))
             for j in range(8)]
        add = builder.fadd
        return add(add(add(a[0], a[1]), add(a[2], a[3])), add(add(a[4], a[5]), add(a[6], a[7])))

    return _fa_nbtypes.float64(v), codegen
"""

_PROVIDED = {
    "uniform_slope",
    "fa_counter",
    "fa_run_end",
    "fa_run_key",
    "fa_weyl",
    "fa_step",
    "pow2i",
    "exponent",
    "mantissa",
    "fma",
}

HEADER = """\
# Generated by fastact/_codegen/numba_kernels.py from fastact/table.py. Do not edit.
# {what}
import math  # noqa: F401

import numpy as np
from numba import njit, prange  # noqa: F401

T = {dtype}
"""


# --- helpers ----------------------------------------------------------------


def _calls(tree: ast.AST) -> set[str]:
    return {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def _helper_calls(fn: Callable) -> set[str]:
    return _calls(ast.parse(inspect.getsource(fn)))


def helpers_used(formulas: Iterable[str], helpers: tuple) -> list[Callable]:
    """The helpers the formulas call, directly or through other helpers, in order."""
    by_name = {h.__name__: h for h in helpers}
    todo = set()
    for src in formulas:
        todo |= _calls(ast.parse(src, mode="eval")) & by_name.keys()
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo |= (_helper_calls(by_name[name]) & by_name.keys()) - seen
    return [h for h in helpers if h.__name__ in seen]


def _py(src: str, helpers: Iterable[str], where: str) -> str:
    text = expr_to_python(src, helpers, where)
    for a, b in _ALIASES.items():
        text = text.replace(a, b)
    return text


def _check_intrinsics(text: str, where: str) -> None:
    """Every bare name the emitted code calls must exist in the generated module."""
    for name in _calls(ast.parse(text)):
        if name in ("T", "njit", "prange", "range", "min", "max") or name.startswith("_fa_"):
            continue
        if name in _PROVIDED or hasattr(builtins, name):
            continue
        spelled = [v[2] for v in INTRINSICS.values()]
        if name in spelled:
            raise NotImplementedError(
                f"{where}: intrinsic {name!r} has no Numba implementation; add it to "
                "INTRINSICS_SOURCE in fastact/_codegen/numba_kernels.py"
            )


# --- formulas per kernel kind ---------------------------------------------


def is_rowwise(entry: Activation) -> bool:
    return bool(getattr(entry, "row_forward", None)) or bool(entry.extra.get("rowwise"))


def formula(entry: Activation, kind: str) -> str | None:
    """The dialect formula of kernel ``kind`` of ``entry``, or None if it has none."""
    if kind in ROWWISE:
        if not is_rowwise(entry):
            return None
        return entry.forward if kind == "rfwd" else entry.backward
    if is_rowwise(entry):
        return None
    if kind.endswith("_ip"):
        base = kind[: -len("_ip")]
        if INPLACE.get(base) != kind:
            raise ValueError(f"unknown kernel kind {kind!r}")
        return formula(entry, base)
    if kind in ("fwd", "fwdv"):
        return entry.forward if (kind == "fwd" or entry.channel_param) else None
    if kind in ("bwd", "bwdv"):
        return entry.backward if (kind == "bwd" or entry.channel_param) else None
    if kind == "tfwd":
        return entry.train_forward
    if kind == "tbwd":
        return entry.train_backward
    if kind in PGRAD:
        return entry.param_grad if entry.channel_param else None
    raise ValueError(f"unknown kernel kind {kind!r}")


def kinds_of(entry: Activation) -> list[str]:
    """The kernel kinds ``entry`` has."""
    return [k for k in KINDS if formula(entry, k) is not None]


def _reductions(entry: Activation, kind: str) -> tuple:
    return tuple(getattr(entry, "row_forward" if kind == "rfwd" else "row_backward", None) or ())


def _all_formulas(entry: Activation) -> list[str]:
    out = []
    for kind in kinds_of(entry):
        out.append(formula(entry, kind))
        out += [expr for _, _, expr in _reductions(entry, kind)]
    return out


# --- kernel text ----------------------------------------------------------------


def _param_lines(entry: Activation, vector: bool, indent: str) -> list[str]:
    lines = []
    for j, prm in enumerate(entry.parameters):
        if vector and prm.name == entry.channel_param:
            continue
        lines.append(f"{indent}{prm.name} = T(_fa_p[_fa_poff + {j}])")
    return lines


def _saved_name(entry: Activation) -> str:
    return "x" if entry.saves == "input" else "y"


def _check_vector(entry: Activation, kind: str) -> None:
    if kind.endswith("v") and len(entry.parameters) != 1:
        # The per-channel drivers hand the kernel a pointer into the channel
        # parameter array (as the C drivers do); other parameters would need
        # their own array.
        raise NotImplementedError(
            f"{entry.name}: a per-channel entry may have no parameter but {entry.channel_param!r}"
        )


def elementwise_kernel(entry: Activation, kind: str, body: str, uses: set[str]) -> str:
    """Source of kernel ``_fa_<kind>`` computing the Python expression ``body``.

    ``uses`` are the dialect variables the body reads (``x``, ``y``, ``g``,
    ``i``, ``seed``...), so that only those are loaded.  An in-place kind
    (``fwd_ip``, ``bwd_ip``...) has its base kind's signature but stores into
    the buffer it reads (``x``, or ``g`` for the binary kinds), not ``out``.
    """
    inplace = kind.endswith("_ip")
    base = kind[: -len("_ip")] if inplace else kind
    vector = base.endswith("v")
    _check_vector(entry, base)
    cp = entry.channel_param
    per_elem = [f"        {cp} = T(_fa_p[_fa_poff + _fa_k - _fa_start])"] if vector else []
    if "i" in uses:
        per_elem.append("        i = _fa_k")
    head: list[str] = []
    if "seed" in uses:
        head.append("    seed = _fa_seed")
    if base in UNARY:
        args = "_fa_x, _fa_out, _fa_p, _fa_poff, _fa_seed, _fa_start, _fa_stop"
        loads = ["        x = _fa_x[_fa_k]"]
        target = "_fa_x" if inplace else "_fa_out"
    elif base in BINARY or base in PGRAD:
        saved = _saved_name(entry)
        loads = ["        g = _fa_g[_fa_k]", f"        {saved} = _fa_s[_fa_k]"]
        target = "_fa_g" if inplace else "_fa_out"
        if base in BINARY:
            args = "_fa_g, _fa_s, _fa_out, _fa_p, _fa_poff, _fa_seed, _fa_start, _fa_stop"
        else:
            args = "_fa_g, _fa_s, _fa_p, _fa_poff, _fa_acc, _fa_aoff, _fa_start, _fa_stop"
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(kind)
    lines = [f"def _fa_{kind}({args}):", *head, *_param_lines(entry, vector, "    ")]
    if base == "pgrad":
        return "\n".join(lines + _pgrad_lines(loads + per_elem, body))
    if "uniform_slope(" in body:
        if base not in UNARY + BINARY:
            raise NotImplementedError(f"{entry.name}.{kind}: uniform_slope in a {base} kernel")
        # rrelu's generator (INTRINSICS_SOURCE): the state _fa_w of element
        # _fa_k is stepped per element; in float32 the chunk is split into the
        # runs of counters that share one key _fa_kh (fa_run_end), as in C.
        lines += [
            "    _fa_c0 = fa_counter(_fa_seed, _fa_start)",
            "    _fa_n = _fa_stop - _fa_start",
            "    _fa_r0 = 0",
            "    while _fa_r0 < _fa_n:",
            "        _fa_r1 = fa_run_end(_fa_c0, _fa_r0, _fa_n)",
            "        _fa_kh = fa_run_key(_fa_c0 + np.uint64(_fa_r0))",
            "        _fa_w = fa_weyl(_fa_c0 + np.uint64(_fa_r0))",
            "        for _fa_k in range(_fa_start + _fa_r0, _fa_start + _fa_r1):",
            *["    " + ln for ln in loads + per_elem],
            f"            {target}[_fa_k] = {body}",
            "            _fa_w = fa_step(_fa_w)",
            "        _fa_r0 = _fa_r1",
        ]
        return "\n".join(lines)
    lines.append("    for _fa_k in range(_fa_start, _fa_stop):")
    lines += loads + per_elem
    if base == "pgradv":
        lines.append(f"        _fa_acc[_fa_aoff + _fa_k - _fa_start] += np.float64({body})")
    else:
        lines.append(f"        {target}[_fa_k] = {body}")
    return "\n".join(lines)


def _pgrad_lines(loads: list[str], body: str) -> list[str]:
    """The loops of ``pgrad``: eight float64 partial sums, combined pairwise at the end.

    Element ``k`` adds ``float64(term)`` to partial sum ``(k - start) % 8`` in
    increasing ``k``; the total is ``((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6
    + a7))``: the order of the C generator's ``_pgrad``, so both backends give
    the same bits.  Numba compiles without LLVM's SLP vectorizer, so eight
    scalar accumulators stay scalar; instead, per block of PGRAD_BLOCK
    elements, a plain loop (vectorized) writes the terms to a stack buffer,
    and the eight sums are one ``<8 x double>`` register (LANES_SOURCE) that
    adds the buffer eight terms at a time: the same IEEE additions per lane.
    The last block is padded with -0.0 to a multiple of eight (``a + -0.0``
    is ``a``, bit for bit).
    """
    lanes = PGRAD_LANES
    inner = ["    " + ld for ld in loads]
    return [
        "    _fa_buf = _fa_scratch(_FA_PBLOCK)",
        "    _fa_sums = _fa_lanes_zero()",
        "    for _fa_b in range(_fa_start, _fa_stop, _FA_PBLOCK):",
        "        _fa_n = min(_FA_PBLOCK, _fa_stop - _fa_b)",
        "        for _fa_j in range(_fa_n):",
        "            _fa_k = _fa_b + _fa_j",
        *inner,
        f"            _fa_buf[_fa_j] = np.float64({body})",
        f"        for _fa_j in range(_fa_n, (_fa_n + {lanes - 1}) // {lanes} * {lanes}):",
        "            _fa_buf[_fa_j] = _FA_NEG0",
        f"        for _fa_j in range(0, _fa_n, {lanes}):",
        "            _fa_sums = _fa_lanes_add(_fa_sums, _fa_buf, _fa_j)",
        "    _fa_acc[_fa_aoff] += _fa_lanes_total(_fa_sums)",
    ]


def _row_sum_lines(acc: str, loads: list[str], value: str) -> list[str]:
    """A row sum into float64 ``acc``: the lanes of ``pgrad`` over the row ``_fa_a.._fa_b-1``.

    Element ``k`` of the row adds ``float64(value)`` to lane ``(k - _fa_a) % 8``
    in increasing ``k``, and ``acc`` is ``((l0 + l1) + (l2 + l3)) + ((l4 + l5)
    + (l6 + l7))``: the C generator's ``_lane_sum``, bit for bit.  As in
    :func:`_pgrad_lines`, a plain loop (vectorized) writes each block's values
    to the stack buffer ``_fa_buf`` (its length is a multiple of 8, so every
    block starts in lane 0), the ``<8 x double>`` lanes add it eight at a
    time, and the last block is padded with -0.0.
    """
    lanes = PGRAD_LANES
    return [
        "        _fa_sums = _fa_lanes_zero()",
        "        for _fa_c in range(_fa_a, _fa_b, _FA_PBLOCK):",
        "            _fa_n = min(_FA_PBLOCK, _fa_b - _fa_c)",
        "            for _fa_j in range(_fa_n):",
        "                _fa_k = _fa_c + _fa_j",
        *["                " + ld for ld in loads],
        f"                _fa_buf[_fa_j] = np.float64({value})",
        f"            for _fa_j in range(_fa_n, (_fa_n + {lanes - 1}) // {lanes} * {lanes}):",
        "                _fa_buf[_fa_j] = _FA_NEG0",
        f"            for _fa_j in range(0, _fa_n, {lanes}):",
        "                _fa_sums = _fa_lanes_add(_fa_sums, _fa_buf, _fa_j)",
        f"        {acc} = _fa_lanes_total(_fa_sums)",
    ]


def _max_update(acc: str, v: str) -> str:
    """NaN-propagating maximum without a branch: once NaN, it stays NaN."""
    return f"{acc} = {acc} if (({v} <= {acc}) | ({acc} != {acc})) else {v}"


def _row_max_lines(acc: str, loads: list[str], value: str) -> list[str]:
    """A row's maximum into ``acc`` in eight independent chains, folded in order.

    Element ``k`` of each whole group of eight goes to chain ``k % 8``, the
    rest to chain 0.  The branch-free selects of independent chains overlap
    (one chain of them, or a branchy loop, bounded the pass); the maximum is
    exact, so the value is the sequential loop's and the C kernels' (which
    NaN or which signed zero aside).
    """
    chains = [f"{acc}_{c}" for c in range(8)]
    lines = [f"        {chains[0]} = T(-np.inf)"]
    lines += [f"        {c} = {chains[0]}" for c in chains[1:]]
    lines += ["        _fa_i = _fa_a", "        while _fa_i + 8 <= _fa_b:"]
    for c, ch in enumerate(chains):
        lines.append(f"            _fa_k = _fa_i + {c}")
        lines += ["            " + ld for ld in loads]
        lines += [f"            _fa_v = {value}", "            " + _max_update(ch, "_fa_v")]
    lines += ["            _fa_i += 8", "        for _fa_k in range(_fa_i, _fa_b):"]
    lines += ["            " + ld for ld in loads]
    lines += [f"            _fa_v = {value}", "            " + _max_update(chains[0], "_fa_v")]
    lines += ["        " + _max_update(chains[0], c) for c in chains[1:]]
    lines.append(f"        {acc} = {chains[0]}")
    return lines


def rowwise_kernel(entry: Activation, kind: str, helpers: list[str]) -> str:
    """Source of a row kernel: the row reductions in order, then the elementwise map.

    The same arithmetic as the C generator's rows: ``max`` propagates NaN
    (once NaN, it stays NaN), ``sum`` accumulates in float64 also for float32
    rows, in eight lanes combined pairwise (:func:`_row_sum_lines`), and is
    rounded to T once, ``log`` takes the log of an earlier sum in float64
    before rounding.
    """
    where = f"{entry.name}.{kind}"
    if kind == "rfwd":
        args = "_fa_x, _fa_out, _fa_p, _fa_rowlen, _fa_r0, _fa_r1"
        loads = ["x = _fa_x[_fa_k]"]
    else:
        args = "_fa_g, _fa_s, _fa_out, _fa_p, _fa_rowlen, _fa_r0, _fa_r1"
        loads = ["g = _fa_g[_fa_k]", f"{_saved_name(entry)} = _fa_s[_fa_k]"]
    lines = [f"def _fa_{kind}({args}):", "    _fa_poff = 0"]
    lines += _param_lines(entry, False, "    ")
    if any(op == "sum" for _, op, _ in _reductions(entry, kind)):
        lines.append("    _fa_buf = _fa_scratch(_FA_PBLOCK)")
    lines += [
        "    for _fa_r in range(_fa_r0, _fa_r1):",
        "        _fa_a = _fa_r * _fa_rowlen",
        "        _fa_b = _fa_a + _fa_rowlen",
    ]
    for var, op, expr in _reductions(entry, kind):
        acc = f"_fa_acc_{var}"
        if op == "log":
            lines.append(f"        {var} = T(math.log(_fa_acc_{expr}))")
            continue
        value = _py(expr, helpers, f"{where}.{var}")
        if op == "max":
            lines += _row_max_lines(acc, loads, f"T({value})")
        elif op == "sum":
            lines += _row_sum_lines(acc, loads, f"T({value})")
        else:
            raise NotImplementedError(f"{where}: unknown row reduction {op!r}")
        lines.append(f"        {var} = T({acc})")
    body = _py(formula(entry, kind), helpers, where)
    lines.append("        for _fa_k in range(_fa_a, _fa_b):")
    lines += ["            " + ld for ld in loads]
    lines.append(f"            _fa_out[_fa_k] = {body}")
    return "\n".join(lines)


def kernel_source(entry: Activation, kind: str, helpers: list[str]) -> str:
    """Source of one kernel of a table entry (formulas in the dialect)."""
    if kind in ROWWISE:
        return rowwise_kernel(entry, kind, helpers)
    src = formula(entry, kind)
    where = f"{entry.name}.{kind}"
    body = _py(src, helpers, where)
    return elementwise_kernel(entry, kind, body, free_names(src))


def entry_module(entry: Activation, sfx: str, helpers: tuple) -> str:
    """The whole module of ``entry``'s kernels for float type ``sfx`` ("f32"/"f64")."""
    used = helpers_used(_all_formulas(entry), helpers)
    names = [h.__name__ for h in helpers]
    parts = [HEADER.format(what=f"{entry.name}, {DTYPES[sfx]}", dtype=DTYPES[sfx])]
    parts.append(INTRINSICS_SOURCE)
    parts.append(BITS_SOURCE.format(**_BITS[sfx]))
    for h in used:
        src = function_to_python(h, names)
        for a, b in _ALIASES.items():
            src = src.replace(a, b)
        _check_intrinsics(src, f"helper {h.__name__}")
        # inline="always": the math helpers (exp, tanh, erfc...) are too large for
        # LLVM's inliner, and a loop that still calls one is not vectorized.
        parts.append(
            f"{src}\n\n\n{h.__name__} = "
            f"njit(nogil=True, error_model='numpy', inline='always')({h.__name__})"
        )
    if "pgrad" in kinds_of(entry) or is_rowwise(entry):
        parts.append(LANES_SOURCE.format(block=PGRAD_BLOCK))
    for kind in kinds_of(entry):
        src = kernel_source(entry, kind, names)
        _check_intrinsics(src, f"{entry.name}.{kind}")
        parts.append(src)
    return "\n\n\n".join(parts) + "\n"


USER_KINDS = ("fwd", "bwd", "fwd_ip", "bwd_ip")


def user_module(entry: Activation, sfx: str) -> str:
    """Kernels of a user-registered entry: they call ``_fa_user_forward``/``_fa_user_backward``.

    The caller binds those two names to the njit-compiled user functions.
    """
    params = ", ".join(p.name for p in entry.parameters)
    sep = ", " if params else ""
    saved = _saved_name(entry)
    parts = [HEADER.format(what=f"user activation {entry.name}, {DTYPES[sfx]}", dtype=DTYPES[sfx])]
    fwd = f"T(_fa_user_forward(x{sep}{params}))"
    bwd = f"T(_fa_user_backward(g, {saved}{sep}{params}))"
    for kind in USER_KINDS:
        base = kind.removesuffix("_ip")
        body, uses = (fwd, {"x"}) if base == "fwd" else (bwd, {"g", saved})
        parts.append(elementwise_kernel(entry, kind, body, uses))
    return "\n\n\n".join(parts) + "\n"


# --- drivers -------------------------------------------------------------------

# Calls a compiled kernel by address: the drivers get each kernel as a plain
# integer (its cfunc address), so one driver serves every entry and a call
# costs no more than a C function-pointer call (Numba's first-class function
# objects cost tens of microseconds per call to unbox).  Arrays are passed as
# their data pointers, other arguments as they are: the C ABI of the kernels.
CALLER = """\
@intrinsic
def _fa_call{n}(typingctx, addr, {args}):
    sig = types.void(addr, {args})

    def codegen(context, builder, signature, llargs):
        vals = []
        for ty, v in zip(signature.args[1:], llargs[1:]):
            if isinstance(ty, types.Array):
                v = context.make_array(ty)(context, builder, v).data
            vals.append(v)
        fnty = ir.FunctionType(ir.VoidType(), [v.type for v in vals])
        builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), vals)
        return context.get_dummy_value()

    return sig, codegen
"""

DRIVERS_HEADER = """\
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_FA_SEGMENT = {segment}
_FA_SEED0 = np.uint64(0)
"""

DRIVERS = """\
def _fa_{mode}_unary(_fa_f, x, out, p, seed, nch):
    n = x.size
    step = (n + nch - 1) // nch
    step = (step + 15) // 16 * 16
    for c in {loop}(nch):
        start = c * step
        if start < n:
            _fa_call7(_fa_f, x, out, p, 0, seed, start, min(start + step, n))


def _fa_{mode}_binary(_fa_f, g, s, out, p, seed, nch):
    n = g.size
    step = (n + nch - 1) // nch
    step = (step + 15) // 16 * 16
    for c in {loop}(nch):
        start = c * step
        if start < n:
            _fa_call8(_fa_f, g, s, out, p, 0, seed, start, min(start + step, n))


def _fa_{mode}_channel_forward(_fa_f, x, out, w, rows, rowlen, segs, C, vector):
    for u in {loop}(rows * segs):
        r = u // segs
        j = u % segs
        off = r * rowlen + j * _FA_SEGMENT
        ln = _FA_SEGMENT if (j + 1) * _FA_SEGMENT <= rowlen else rowlen - j * _FA_SEGMENT
        poff = j * _FA_SEGMENT if vector else r % C
        _fa_call7(_fa_f, x, out, w, poff, _FA_SEED0, off, off + ln)


def _fa_{mode}_channel_backward(
    _fa_b, _fa_pg, g, s, out, w, partial, rows, rowlen, segs, C, vector, nblocks
):
    units = rows * segs
    for b in {loop}(nblocks):
        for u in range(b * units // nblocks, (b + 1) * units // nblocks):
            r = u // segs
            j = u % segs
            off = r * rowlen + j * _FA_SEGMENT
            ln = _FA_SEGMENT if (j + 1) * _FA_SEGMENT <= rowlen else rowlen - j * _FA_SEGMENT
            poff = j * _FA_SEGMENT if vector else r % C
            # The parameter gradient first: out may be g itself.
            _fa_call8(_fa_pg, g, s, w, poff, partial, b * C + poff, off, off + ln)
            _fa_call8(_fa_b, g, s, out, w, poff, _FA_SEED0, off, off + ln)


def _fa_{mode}_rowwise_forward(_fa_f, x, out, p, rowlen, rows, nch):
    step = (rows + nch - 1) // nch
    for c in {loop}(nch):
        r0 = c * step
        if r0 < rows:
            _fa_call6(_fa_f, x, out, p, rowlen, r0, min(r0 + step, rows))


def _fa_{mode}_rowwise_backward(_fa_f, g, s, out, p, rowlen, rows, nch):
    step = (rows + nch - 1) // nch
    for c in {loop}(nch):
        r0 = c * step
        if r0 < rows:
            _fa_call7(_fa_f, g, s, out, p, rowlen, r0, min(r0 + step, rows))
"""

DRIVER_NAMES = (
    "unary",
    "binary",
    "channel_forward",
    "channel_backward",
    "rowwise_forward",
    "rowwise_backward",
)


def drivers_module(sfx: str) -> str:
    """The drivers for float type ``sfx``: ``_fa_par_*`` (prange) and ``_fa_ser_*`` (range).

    Two differently named copies, because Numba's disk cache does not tell
    apart one function compiled with and without ``parallel=True``.
    """
    parts = [HEADER.format(what=f"drivers, {DTYPES[sfx]}", dtype=DTYPES[sfx])]
    parts.append(DRIVERS_HEADER.format(segment=SEGMENT))
    for n in (6, 7, 8):
        args = ", ".join(f"a{j}" for j in range(1, n + 1))
        parts.append(CALLER.format(n=n, args=args))
    for mode, loop in (("par", "prange"), ("ser", "range")):
        parts.append(DRIVERS.format(mode=mode, loop=loop))
    return "\n\n".join(parts)


def digest(text: str) -> str:
    """Short content hash: generated files are named by it, so a change makes a new file."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]
