"""The functions the generated Numba kernels call that are neither math nor NumPy.

The kernels of :mod:`fastact._codegen.numba_kernels` import them from here
(the float32 or float64 form, by the name the kernel text uses).  Each is
the Numba twin of a function of ``fastact/_backends/cython/fa_intrinsics.h``
and computes the same bits:

* rrelu's counter-based generator: :func:`mix64`, :func:`counter` and, per
  float type, the run of counters that share one key (``run_end``,
  ``run_key``), the Weyl state (``weyl``, ``step``) and the slope
  (``slope``);
* the bit-level functions ``fma``, ``pow2i``, ``exponent``, ``mantissa``, ``ldexpk``;
* the ``<8 x double>`` lanes of pgrad and of the row sums (:data:`Lanes`);
* :func:`call_kernel`, which calls a compiled kernel by its address.

Nothing here compiles at import: Numba compiles a function when a kernel
that calls it does.  uint64 arithmetic wraps around, as in C.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from ..._math import rng

_OPTS = {"nogil": True, "error_model": "numpy"}

# --- rrelu's counter-based generator (fa_intrinsics.h; constants: fastact._math.rng) ---

_GOLDEN = np.uint64(rng.GOLDEN)
_M1 = np.uint64(rng.M1)
_M2 = np.uint64(rng.M2)
_WEYL64 = np.uint64(rng.GOLDEN)
_WEYL32 = np.uint32(0x9E3779B9)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S29 = np.uint64(29)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_LO32 = np.uint64(0xFFFFFFFF)
_2M53 = np.float64(2.0**-53)
_2M24 = np.float32(2.0**-24)
_I32 = ir.IntType(32)


@njit(**_OPTS)
def mix64(z):
    """splitmix64's output function (:func:`fastact._math.rng.mix64`) in uint64."""
    z = np.uint64(z) + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(**_OPTS)
def counter(seed, off):
    """The counter of element ``off`` of ``seed``."""
    return mix64(np.uint64(seed)) + np.uint64(off)


@intrinsic
def _bits24(typingctx, w, kh):
    """The top 24 bits of ``slope_f32``'s hash of ``(w, kh)``, as an int32.

    LLVM IR on i32 (Numba would compute uint32 products in 64 bits), so that
    LLVM vectorizes it in 32-bit lanes.
    """
    if not all(isinstance(t, types.Integer) for t in (w, kh)):
        return None

    def codegen(context, builder, signature, args):
        def c(v):
            return ir.Constant(_I32, v)

        w, kh = (builder.trunc(a, _I32) if a.type.width > 32 else a for a in args)
        x = builder.xor(builder.xor(w, builder.lshr(w, c(16))), kh)
        x = builder.mul(x, c(0x7FEB352D))
        x = builder.xor(x, builder.lshr(x, c(15)))
        x = builder.mul(x, c(0x846CA68B))
        x = builder.xor(x, builder.lshr(x, c(16)))
        x = builder.mul(x, c(0x7FEB352D))
        return builder.lshr(x, c(8))

    return types.int32(w, kh), codegen


@njit(inline="always", **_OPTS)
def slope_f32(w, kh, lo, hi):
    return lo + ((hi - lo) * _2M24) * np.float32(_bits24(w, kh))


@njit(inline="always", **_OPTS)
def slope_f64(w, kh, lo, hi):
    z = w ^ (w >> _S32)
    z = z * _M1
    z = z ^ (z >> _S29)
    z = z * _M2
    return lo + ((hi - lo) * _2M53) * np.float64(np.int64(z >> _S11))


@njit(**_OPTS)
def run_end_f32(c0, k0, n):
    """The end of the run of elements from ``k0`` whose counters share one key."""
    room = np.int64(1 << 32) - np.int64(np.uint64(c0 + np.uint64(k0)) & _LO32)
    return n if n - k0 <= room else k0 + room


@njit(**_OPTS)
def run_end_f64(c0, k0, n):
    return n


@njit(**_OPTS)
def run_key_f32(c):
    return np.uint32(mix64(c >> _S32) >> _S32)


@njit(**_OPTS)
def run_key_f64(c):
    return np.uint32(0)


@njit(**_OPTS)
def weyl_f32(c):
    return np.uint32(np.uint32(c & _LO32) * _WEYL32)


@njit(**_OPTS)
def weyl_f64(c):
    return np.uint64(c) * _WEYL64


@njit(inline="always", **_OPTS)
def step_f32(w):
    return np.uint32(w + _WEYL32)


@njit(inline="always", **_OPTS)
def step_f64(w):
    return w + _WEYL64


# --- bit-level functions ----------------------------------------------------------
#
# pow2i(n) = 2**n by moving n's low mantissa bits into the exponent field,
# exponent(x) = floor(log2|x|) and mantissa(x) in [1, 2) for normal x.
# Reinterpreting a float's bits needs an LLVM bitcast (an intrinsic); integer
# arithmetic runs in uint64 and is truncated, which gives the low bits of C's
# uint32 arithmetic exactly.


@intrinsic
def _as_uint(typingctx, x):
    if not isinstance(x, types.Float):
        return None
    ut = types.uint32 if x.bitwidth == 32 else types.uint64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(ut))

    return ut(x), codegen


@intrinsic
def _as_float(typingctx, u):
    if not isinstance(u, types.Integer):
        return None
    ft = types.float32 if u.bitwidth == 32 else types.float64

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(ft))

    return ft(u), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    if not all(isinstance(v, types.Float) for v in (a, b, c)):
        return None
    ft = a

    def codegen(context, builder, signature, args):
        vals = [context.cast(builder, v, t, ft) for v, t in zip(args, signature.args)]
        return builder.fma(*vals)

    return ft(a, b, c), codegen


def _bit_functions(T, U, rounder: float, bias: int, exp_bias: int, mant_bits: int, one_bits: int):
    """``fma``, ``pow2i``, ``exponent``, ``mantissa``, ``ldexpk`` for float type ``T`` (uint type ``U``)."""
    rounder_t = T(rounder)  # 1.5 * 2**mant_bits: adding it rounds to an integer
    bias_u = np.uint64(bias)  # the bits of rounder
    exp_bias_u = np.uint64(exp_bias)
    mant_bits_u = np.uint64(mant_bits)
    exp_mask = np.uint64(2 * exp_bias + 1)
    mant_mask = np.uint64((1 << mant_bits) - 1)
    one_bits_u = np.uint64(one_bits)

    @njit(**_OPTS)
    def fma(a, b, c):
        return _fma(T(a), T(b), T(c))

    @njit(**_OPTS)
    def pow2i(n):
        a = np.uint64(_as_uint(T(n) + rounder_t))
        return _as_float(U((a - bias_u + exp_bias_u) << mant_bits_u))

    @njit(**_OPTS)
    def exponent(x):
        u = np.uint64(_as_uint(T(x)))
        return T(np.int64((u >> mant_bits_u) & exp_mask) - np.int64(exp_bias_u))

    @njit(**_OPTS)
    def mantissa(x):
        u = np.uint64(_as_uint(T(x)))
        return _as_float(U((u & mant_mask) | one_bits_u))

    @njit(**_OPTS)
    def ldexpk(v, k):
        n = np.uint64(_as_uint(T(k))) << mant_bits_u
        return _as_float(U(np.uint64(_as_uint(T(v))) + n))

    return fma, pow2i, exponent, mantissa, ldexpk


fma_f32, pow2i_f32, exponent_f32, mantissa_f32, ldexpk_f32 = _bit_functions(
    np.float32, np.uint32, 12582912.0, 0x4B400000, 127, 23, 0x3F800000
)
fma_f64, pow2i_f64, exponent_f64, mantissa_f64, ldexpk_f64 = _bit_functions(
    np.float64, np.uint64, 6755399441055744.0, 0x4338000000000000, 1023, 52, 0x3FF0000000000000
)


# --- the eight partial sums of pgrad and of the row sums -----------------------------
#
# One LLVM <8 x double> value (a Numba type of its own: Numba has no vector
# types, and it compiles without the SLP vectorizer that would pack eight
# scalar sums).  Lane j adds the buffer's element off + j; the total adds the
# lanes pairwise, as the C kernels do.  The buffer is an aligned stack array
# (a misaligned one costs 2x here).

NEG0 = -np.float64(0.0)  # the identity of +: a + -0.0 is a, bit for bit
_DOUBLE = ir.DoubleType()
_LANES = ir.VectorType(_DOUBLE, 8)


class Lanes(types.Type):
    """Eight float64 partial sums in one vector register."""

    def __init__(self) -> None:
        super().__init__(name="fastact_lanes8")


_lanes = Lanes()


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _LANES)


@intrinsic
def lanes_zero(typingctx):
    """Eight lanes of +0.0."""

    def codegen(context, builder, signature, args):
        return ir.Constant(_LANES, None)  # zeroinitializer: +0.0 in every lane

    return _lanes(), codegen


@intrinsic
def scratch(typingctx, n):
    """A 64-byte aligned stack buffer of ``n`` float64 (``n`` a literal)."""
    if not isinstance(n, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        p = cgutils.alloca_once(builder, _DOUBLE, size=n.literal_value)
        p.align = 64
        return p

    return types.CPointer(types.float64)(n), codegen


@intrinsic
def lanes_add(typingctx, v, buf, off):
    """``v`` plus the eight float64 ``buf[off:off + 8]``, lane by lane."""

    def codegen(context, builder, signature, args):
        p = builder.gep(args[1], [args[2]])
        p = builder.bitcast(p, _LANES.as_pointer())
        return builder.fadd(args[0], builder.load(p, align=8))

    return _lanes(v, buf, off), codegen


@intrinsic
def lanes_total(typingctx, v):
    """``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``."""

    def codegen(context, builder, signature, args):
        a = [builder.extract_element(args[0], ir.Constant(ir.IntType(32), j)) for j in range(8)]
        add = builder.fadd
        return add(add(add(a[0], a[1]), add(a[2], a[3])), add(add(a[4], a[5]), add(a[6], a[7])))

    return types.float64(v), codegen


# --- bfloat16 and float16 storage (fa_convert.h's conversions, bit for bit) ---------
#
# Widening is exact (bfloat16: the pattern in the high half); narrowing rounds a
# float32 once to nearest even, a NaN to a quiet NaN of its sign and leading
# payload.  float16 converts by LLVM's fpext and fptrunc of ``half``, which the
# host's F16C instructions carry out (vcvtph2ps, vcvtps2ph), as the C kernels'
# F16C copies do.  The arrays are sliced so that indices start at 0 (a negative
# index is checked for, which keeps a loop scalar).


@intrinsic
def _f16_to_f32(typingctx, h):
    """The float16 pattern h (uint16) as float32, exactly."""
    if not isinstance(h, types.Integer) or h.bitwidth != 16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(h), codegen


@intrinsic
def _f32_to_f16(typingctx, v):
    """The float32 v rounded once to nearest even to a float16 pattern (uint16), a NaN
    to a quiet NaN.  LLVM may fold the rounding of a value widened from float16 back
    into that value, a signalling NaN included, where widening in C quiets it: the
    quiet bit is set here."""
    if not isinstance(v, types.Float) or v.bitwidth != 32:
        return None

    def codegen(context, builder, signature, args):
        i16 = ir.IntType(16)
        h = builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), i16)
        nan = builder.icmp_unsigned(
            ">", builder.and_(h, ir.Constant(i16, 0x7FFF)), ir.Constant(i16, 0x7C00)
        )
        return builder.select(nan, builder.or_(h, ir.Constant(i16, 0x200)), h)

    return types.uint16(v), codegen


@intrinsic
def _bf16_to_f32(typingctx, h):
    """The bfloat16 pattern h (uint16) as float32, exactly: h in the high half."""
    if not isinstance(h, types.Integer) or h.bitwidth != 16:
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        u = builder.shl(builder.zext(args[0], i32), ir.Constant(i32, 16))
        return builder.bitcast(u, ir.FloatType())

    return types.float32(h), codegen


@njit(**_OPTS)
def f16_widen(h, k, m, a):
    """Elements k..k+m-1 of the float16 patterns h (uint16) as float32 into a[0..m)."""
    hs = h[k : k + m]
    for j in range(m):
        a[j] = _f16_to_f32(hs[j])


@njit(**_OPTS)
def f16_narrow(o, out, k, m):
    """The float32 o[0..m) rounded once into the float16 patterns out[k..k+m)."""
    os = out[k : k + m]
    for j in range(m):
        os[j] = _f32_to_f16(o[j])


@njit(**_OPTS)
def bf16_widen(h, k, m, a):
    """Elements k..k+m-1 of the bfloat16 patterns h (uint16) as float32 into a[0..m)."""
    hs = h[k : k + m]
    for j in range(m):
        a[j] = _bf16_to_f32(hs[j])


@intrinsic
def _f32_to_bf16(typingctx, v):
    """The float32 v rounded once to nearest even to a bfloat16 pattern (uint16), a NaN
    to the quiet NaN of its sign and leading payload.  In 32-bit integers throughout:
    Numba's typing of the same steps widens them to 64 bits, which halved the lanes
    of the vectorized loop."""
    if not isinstance(v, types.Float) or v.bitwidth != 32:
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)

        def c(x: int) -> ir.Constant:
            return ir.Constant(i32, x)

        u = builder.bitcast(args[0], i32)
        hi = builder.lshr(u, c(16))
        r = builder.lshr(builder.add(builder.add(u, c(0x7FFF)), builder.and_(hi, c(1))), c(16))
        q = builder.or_(hi, c(0x40))
        # one unordered compare where the integer test of the exponent and mantissa
        # takes two operations per vector (6% less time in a bfloat16 backward)
        nan = builder.fcmp_unordered("uno", args[0], args[0])
        return builder.trunc(builder.select(nan, q, r), ir.IntType(16))

    return types.uint16(v), codegen


@njit(**_OPTS)
def bf16_narrow(o, out, k, m):
    """The float32 o[0..m) rounded once into the bfloat16 patterns out[k..k+m)."""
    os = out[k : k + m]
    for j in range(m):
        os[j] = _f32_to_bf16(o[j])


# The conversions of the generated 16-bit kernels (numba_kernels.HALF_IMPORTS), by format.
widen_f16, narrow_f16 = _f16_to_f32, _f32_to_f16
widen_bf16, narrow_bf16 = _bf16_to_f32, _f32_to_bf16


# --- a row's maximum in vector lanes (softmax's forward) -----------------------------
#
# One LLVM vector of 64 bytes (16 float32 or 8 float64), carried in a register:
# lane j takes the maximum of elements i + j, a NaN once seen stays (the first of
# equal values stays too), and the lanes are folded in order.  Numba compiles
# without the SLP vectorizer, so eight scalar chains of selects stayed scalar
# (0.4 ns per float32 element, 8x the C kernels' lanes).


class MaxLanes(types.Type):
    """The running maxima of a row in one vector register."""

    def __init__(self, dtype) -> None:
        self.dtype = dtype
        super().__init__(name=f"fastact_max_lanes({dtype})")


def _vector(dtype) -> ir.VectorType:
    return ir.VectorType(
        ir.FloatType() if dtype == types.float32 else _DOUBLE, 64 // dtype.bitwidth * 8
    )


@register_model(MaxLanes)
class _MaxLanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _vector(fe_type.dtype))


def _data_pointer(context, builder, ty, value):
    """The data pointer of an array argument, or the pointer itself."""
    if isinstance(ty, types.Array):
        return context.make_array(ty)(context, builder, value).data
    return value


def _nan_max(builder, a, v):
    """v where v > a or v is NaN, else a (lane by lane, or scalars)."""
    take = builder.or_(builder.fcmp_ordered(">", v, a), builder.fcmp_unordered("uno", v, v))
    return builder.select(take, v, a)


@intrinsic
def max_lanes_init(typingctx, ptr):
    """Lanes of -inf, of ``ptr``'s float type (``ptr``: an array or a pointer)."""
    if not isinstance(ptr, (types.CPointer, types.Array)) or ptr.dtype not in (
        types.float32,
        types.float64,
    ):
        return None
    lanes = MaxLanes(ptr.dtype)

    def codegen(context, builder, signature, args):
        vec = _vector(ptr.dtype)
        return ir.Constant(vec, [ir.Constant(vec.element, float("-inf"))] * vec.count)

    return lanes(ptr), codegen


@intrinsic
def max_lanes_step(typingctx, acc, ptr, k):
    """``acc`` updated by the elements ``ptr[k:k + lanes]`` (loaded unaligned)."""
    if not isinstance(acc, MaxLanes) or not isinstance(k, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        base = _data_pointer(context, builder, signature.args[1], args[1])
        vec = _vector(acc.dtype)
        p = builder.bitcast(builder.gep(base, [args[2]]), vec.as_pointer())
        return _nan_max(builder, args[0], builder.load(p, align=acc.dtype.bitwidth // 8))

    return acc(acc, ptr, k), codegen


@intrinsic
def max_lanes_total(typingctx, acc):
    """The lanes folded in order: lane 0, then each next one as a further element."""
    if not isinstance(acc, MaxLanes):
        return None

    def codegen(context, builder, signature, args):
        vec = _vector(acc.dtype)
        lane = [
            builder.extract_element(args[0], ir.Constant(ir.IntType(32), j))
            for j in range(vec.count)
        ]
        m = lane[0]
        for v in lane[1:]:
            m = _nan_max(builder, m, v)
        return m

    return acc.dtype(acc), codegen


MAX_LANES_f32 = 16
MAX_LANES_f64 = 8


# --- blocks and software prefetch (fa_prefetching, fa_prefetch: fa_intrinsics.h) -----------
# A kernel's loop over a chunk of at least PREFETCH_MIN_BYTES runs in blocks of
# BLOCK_BYTES and prefetches the input AHEAD_BYTES past each block's start; a
# smaller chunk is one block.  The constants are those of fa_intrinsics.h.

BLOCK_BYTES = 2048
AHEAD_BYTES = 6144
PREFETCH_MIN_BYTES = 1 << 20
_LINE = 64


@intrinsic
def _prefetch_line(typingctx, ptr, k):
    """``__builtin_prefetch(ptr + k, 0, 3)``: llvm.prefetch (read, all cache levels).
    ``ptr`` is a pointer (the kernels' C ABI) or an array (a kernel called from Python)."""
    if not isinstance(ptr, (types.CPointer, types.Array)) or not isinstance(k, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        base = args[0]
        if isinstance(signature.args[0], types.Array):
            base = context.make_array(signature.args[0])(context, builder, base).data
        addr = builder.bitcast(builder.gep(base, [args[1]]), i8p)
        builder.call(fn, [addr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(ptr, k), codegen


def _prefetch_functions(size: int):
    """``block`` (the block length of a chunk of n elements of ``size`` bytes: n
    where it does not prefetch) and ``prefetch`` (the lines of elements [k0, k1)
    of ptr, clipped to its n elements)."""
    per_line, blk = _LINE // size, BLOCK_BYTES // size

    @njit(**_OPTS)
    def block(n):
        return blk if n * size >= PREFETCH_MIN_BYTES else max(n, 1)

    @njit(**_OPTS)
    def prefetch(ptr, k0, k1, n):
        for k in range(k0, min(k1, n), per_line):
            _prefetch_line(ptr, k)

    return block, prefetch


block_f32, prefetch_f32 = _prefetch_functions(4)
block_f64, prefetch_f64 = _prefetch_functions(8)
AHEAD_f32 = AHEAD_BYTES // 4
AHEAD_f64 = AHEAD_BYTES // 8


# --- calling a kernel by address ------------------------------------------------------


@intrinsic
def call_kernel(typingctx, addr, *args):
    """Call the C-ABI function at address ``addr`` (an integer) with ``args``.

    The drivers get each kernel as its cfunc address, so one driver serves
    every entry and a call costs no more than a C function-pointer call
    (Numba's first-class function objects cost tens of microseconds per call
    to unbox).  Arrays are passed as their data pointers, other arguments as
    they are: the C ABI of the kernels.
    """
    if not isinstance(addr, types.Integer):
        return None
    star = types.StarArgTuple.from_types(args)

    def codegen(context, builder, signature, llargs):
        vals = []
        for ty, v in zip(star.types, cgutils.unpack_tuple(builder, llargs[1])):
            if isinstance(ty, types.Array):
                v = context.make_array(ty)(context, builder, v).data
            vals.append(v)
        fnty = ir.FunctionType(ir.VoidType(), [v.type for v in vals])
        builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), vals)
        return context.get_dummy_value()

    return types.void(addr, star), codegen


@intrinsic
def shifted(typingctx, arr, k):
    """Pointer to element ``k`` of ``arr`` (``k`` may lie outside it: a kernel
    indexing from ``start`` then reads a buffer that holds elements start..stop)."""
    if not isinstance(arr, types.Array) or not isinstance(k, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.gep(data, [args[1]])

    return types.CPointer(arr.dtype)(arr, k), codegen
