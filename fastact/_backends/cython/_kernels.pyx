# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Parallel drivers for the generated C kernels (fa_kernels.h).

The kernels themselves are plain C loops over one contiguous chunk, generated
from the activation table; this module splits an array into one static chunk
per thread (``prange(..., schedule='static')``), releases the GIL, and picks
the float or double table.  The Python layer (fastact._api) has already
validated the arrays: same dtype, contiguous in the same order, and ``out``
writeable; nothing here re-checks that.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memset
cimport openmp

import numpy as np

cnp.import_array()

cdef extern from "fa_kernels.h" nogil:
    ctypedef void (*fa_unary_f32)(const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_unary_f64)(const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_binary_f32)(const float *, const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_binary_f64)(const double *, const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_pgrad_f32)(const float *, const float *, Py_ssize_t, const double *, double *) noexcept nogil
    ctypedef void (*fa_pgrad_f64)(const double *, const double *, Py_ssize_t, const double *, double *) noexcept nogil
    fa_unary_f32 *FA_FWD_F32
    fa_unary_f32 *FA_TFWD_F32
    fa_unary_f32 *FA_FWDV_F32
    fa_unary_f64 *FA_FWD_F64
    fa_unary_f64 *FA_TFWD_F64
    fa_unary_f64 *FA_FWDV_F64
    fa_binary_f32 *FA_BWD_F32
    fa_binary_f32 *FA_TBWD_F32
    fa_binary_f32 *FA_BWDV_F32
    fa_binary_f64 *FA_BWD_F64
    fa_binary_f64 *FA_TBWD_F64
    fa_binary_f64 *FA_BWDV_F64
    fa_pgrad_f32 *FA_PGRAD_F32
    fa_pgrad_f32 *FA_PGRADV_F32
    fa_pgrad_f64 *FA_PGRAD_F64
    fa_pgrad_f64 *FA_PGRADV_F64
    ctypedef void (*fa_rowf_f32)(const float *, float *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rowf_f64)(const double *, double *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rowb_f32)(const float *, const float *, float *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rowb_f64)(const double *, const double *, double *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    fa_rowf_f32 *FA_RFWD_F32
    fa_rowf_f64 *FA_RFWD_F64
    fa_rowb_f32 *FA_RBWD_F32
    fa_rowb_f64 *FA_RBWD_F64
    int FA_N_KERNELS
    void fa_stream_unary_f32(const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    void fa_stream_unary_f64(const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    void fa_stream_binary_f32(const float *, const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    void fa_stream_binary_f64(const double *, const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil

# Kernel kinds, as in fastact/_codegen/c_kernels.py.
FORWARD = 0
BACKWARD = 1
TRAIN_FORWARD = 2
TRAIN_BACKWARD = 3

N_KERNELS = FA_N_KERNELS

# Smallest chunk handed to a thread, in elements (a multiple of 16 so that
# chunk boundaries fall on 64-byte lines for both float types).
DEF MIN_CHUNK = 4096
DEF MAX_PARAMS = 8
# Fixed number of partial sums for a parameter gradient: the reduction order
# then depends on the shape only, so any thread count gives the same bits.
DEF PGRAD_BLOCKS = 64


cdef inline int _fill_params(tuple params, double *p) except -1:
    cdef Py_ssize_t j, m = len(params)
    if m > MAX_PARAMS:
        raise ValueError("too many parameters")
    for j in range(m):
        p[j] = params[j]
    return 0


cdef inline Py_ssize_t _n_chunks(Py_ssize_t n, int nthreads) noexcept nogil:
    cdef Py_ssize_t most = (n + MIN_CHUNK - 1) // MIN_CHUNK
    if nthreads < 1:
        return 1
    return nthreads if nthreads < most else most


cdef inline Py_ssize_t _chunk_len(Py_ssize_t n, Py_ssize_t nchunks) noexcept nogil:
    cdef Py_ssize_t c = (n + nchunks - 1) // nchunks
    return (c + 15) & ~(<Py_ssize_t>15)


cdef void _unary_f32(fa_unary_f32 f, const float *x, float *out, Py_ssize_t n,
                     const double *p, uint64_t seed, int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, ln
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        f(x, out, n, p, seed, 0)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            ln = step if start + step <= n else n - start
            f(x + start, out + start, ln, p, seed, start)


cdef void _unary_f64(fa_unary_f64 f, const double *x, double *out, Py_ssize_t n,
                     const double *p, uint64_t seed, int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, ln
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        f(x, out, n, p, seed, 0)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            ln = step if start + step <= n else n - start
            f(x + start, out + start, ln, p, seed, start)


cdef void _binary_f32(fa_binary_f32 f, const float *g, const float *s, float *out, Py_ssize_t n,
                      const double *p, uint64_t seed, int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, ln
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        f(g, s, out, n, p, seed, 0)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            ln = step if start + step <= n else n - start
            f(g + start, s + start, out + start, ln, p, seed, start)


cdef void _binary_f64(fa_binary_f64 f, const double *g, const double *s, double *out, Py_ssize_t n,
                      const double *p, uint64_t seed, int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, ln
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        f(g, s, out, n, p, seed, 0)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            ln = step if start + step <= n else n - start
            f(g + start, s + start, out + start, ln, p, seed, start)


cdef inline bint _is_f32(cnp.ndarray a) noexcept:
    return cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32


def unary(int kind, int kid, cnp.ndarray x, cnp.ndarray out, tuple params,
          uint64_t seed=0, int nthreads=1):
    """out = f(x) elementwise over the flat buffers (kind FORWARD or TRAIN_FORWARD)."""
    cdef double p[MAX_PARAMS]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef fa_unary_f32 f32
    cdef fa_unary_f64 f64
    if kid < 0 or kid >= FA_N_KERNELS:
        raise ValueError("kernel id out of range")
    _fill_params(params, p)
    if _is_f32(x):
        f32 = FA_FWD_F32[kid] if kind == FORWARD else FA_TFWD_F32[kid]
        if f32 == NULL:
            raise ValueError("no such kernel")
        with nogil:
            _unary_f32(f32, <const float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(out),
                       n, p, seed, nthreads)
    else:
        f64 = FA_FWD_F64[kid] if kind == FORWARD else FA_TFWD_F64[kid]
        if f64 == NULL:
            raise ValueError("no such kernel")
        with nogil:
            _unary_f64(f64, <const double *>cnp.PyArray_DATA(x), <double *>cnp.PyArray_DATA(out),
                       n, p, seed, nthreads)
    return out


def binary(int kind, int kid, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out, tuple params,
           uint64_t seed=0, int nthreads=1):
    """out = f'(g, s) elementwise over the flat buffers (kind BACKWARD or TRAIN_BACKWARD)."""
    cdef double p[MAX_PARAMS]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(g)
    cdef fa_binary_f32 f32
    cdef fa_binary_f64 f64
    if kid < 0 or kid >= FA_N_KERNELS:
        raise ValueError("kernel id out of range")
    _fill_params(params, p)
    if _is_f32(g):
        f32 = FA_BWD_F32[kid] if kind == BACKWARD else FA_TBWD_F32[kid]
        if f32 == NULL:
            raise ValueError("no such kernel")
        with nogil:
            _binary_f32(f32, <const float *>cnp.PyArray_DATA(g), <const float *>cnp.PyArray_DATA(s),
                        <float *>cnp.PyArray_DATA(out), n, p, seed, nthreads)
    else:
        f64 = FA_BWD_F64[kid] if kind == BACKWARD else FA_TBWD_F64[kid]
        if f64 == NULL:
            raise ValueError("no such kernel")
        with nogil:
            _binary_f64(f64, <const double *>cnp.PyArray_DATA(g), <const double *>cnp.PyArray_DATA(s),
                        <double *>cnp.PyArray_DATA(out), n, p, seed, nthreads)
    return out


# Rows of a per-channel entry are cut into segments of at most SEGMENT
# elements, so that one long row (a single channel) still spreads over threads
# and the partial sums of a parameter gradient never depend on the thread count.
DEF SEGMENT = 16384


cdef struct Unit:
    Py_ssize_t off       # first element
    Py_ssize_t n         # length
    const double *p      # parameter pointer handed to the kernel
    Py_ssize_t acc       # accumulator slot (within a block's C partial sums)


cdef inline Unit _unit(Py_ssize_t u, Py_ssize_t segs, Py_ssize_t rowlen, Py_ssize_t C,
                       bint vector, const double *w) noexcept nogil:
    """Where unit ``u`` (segment ``u % segs`` of row ``u // segs``) lies."""
    cdef Unit t
    cdef Py_ssize_t r = u // segs, j = u % segs
    t.off = r * rowlen + j * SEGMENT
    t.n = SEGMENT if (j + 1) * SEGMENT <= rowlen else rowlen - j * SEGMENT
    if vector:
        t.p = w + j * SEGMENT
        t.acc = j * SEGMENT
    else:
        t.p = w + (r % C)
        t.acc = r % C
    return t


cdef inline void _channel_geometry(Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                                   Py_ssize_t *rows, Py_ssize_t *rowlen,
                                   Py_ssize_t *segs) noexcept nogil:
    if inner == 1:
        rows[0] = outer
        rowlen[0] = C
    else:
        rows[0] = outer * C
        rowlen[0] = inner
    segs[0] = (rowlen[0] + SEGMENT - 1) // SEGMENT
    if segs[0] < 1:
        segs[0] = 1


def channel_forward(int kid, cnp.ndarray x, cnp.ndarray out, cnp.ndarray weight,
                    Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, int nthreads=1):
    """Forward of an entry with a per-channel parameter (``weight``: C doubles)."""
    cdef bint f32 = _is_f32(x), vector = inner == 1
    cdef Py_ssize_t rows, rowlen, segs, u
    cdef Unit t
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x)
    cdef char *xp = <char *>cnp.PyArray_DATA(x)
    cdef char *op = <char *>cnp.PyArray_DATA(out)
    cdef const double *w = <const double *>cnp.PyArray_DATA(weight)
    _channel_geometry(outer, C, inner, &rows, &rowlen, &segs)
    if nthreads < 1 or rows * rowlen < 2 * MIN_CHUNK:
        nthreads = 1
    with nogil:
        for u in prange(rows * segs, schedule="static", num_threads=nthreads):
            t = _unit(u, segs, rowlen, C, vector, w)
            if f32:
                (FA_FWDV_F32 if vector else FA_FWD_F32)[kid](
                    <const float *>(xp + t.off * isz), <float *>(op + t.off * isz), t.n, t.p, 0, 0)
            else:
                (FA_FWDV_F64 if vector else FA_FWD_F64)[kid](
                    <const double *>(xp + t.off * isz), <double *>(op + t.off * isz), t.n, t.p, 0, 0)
    return out


def channel_backward(int kid, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out,
                     cnp.ndarray weight, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                     int nthreads=1):
    """Grad-input and the per-channel parameter gradient, in one pass.

    Returns the parameter gradient (C doubles).  The units of work are split
    into a fixed number of blocks with their own partial sums, reduced in
    block order: the same bits for any thread count.
    """
    cdef bint f32 = _is_f32(g), vector = inner == 1
    cdef Py_ssize_t rows, rowlen, segs, units, nblocks, b, u
    cdef Unit t
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(g)
    cdef char *gp = <char *>cnp.PyArray_DATA(g)
    cdef char *sp = <char *>cnp.PyArray_DATA(s)
    cdef char *op = <char *>cnp.PyArray_DATA(out)
    cdef const double *w = <const double *>cnp.PyArray_DATA(weight)
    cdef double *acc
    _channel_geometry(outer, C, inner, &rows, &rowlen, &segs)
    units = rows * segs
    nblocks = units if units < PGRAD_BLOCKS else PGRAD_BLOCKS
    if nblocks < 1:
        return np.zeros(C)
    partial = np.zeros((nblocks, C))
    cdef double *pp = <double *>cnp.PyArray_DATA(partial)
    if nthreads < 1 or rows * rowlen < 2 * MIN_CHUNK:
        nthreads = 1
    with nogil:
        for b in prange(nblocks, schedule="static", num_threads=nthreads):
            for u in range(b * units // nblocks, (b + 1) * units // nblocks):
                t = _unit(u, segs, rowlen, C, vector, w)
                acc = pp + b * C + t.acc
                # The parameter gradient first: out may be g itself.
                if f32:
                    (FA_PGRADV_F32 if vector else FA_PGRAD_F32)[kid](
                        <const float *>(gp + t.off * isz), <const float *>(sp + t.off * isz),
                        t.n, t.p, acc)
                    (FA_BWDV_F32 if vector else FA_BWD_F32)[kid](
                        <const float *>(gp + t.off * isz), <const float *>(sp + t.off * isz),
                        <float *>(op + t.off * isz), t.n, t.p, 0, 0)
                else:
                    (FA_PGRADV_F64 if vector else FA_PGRAD_F64)[kid](
                        <const double *>(gp + t.off * isz), <const double *>(sp + t.off * isz),
                        t.n, t.p, acc)
                    (FA_BWDV_F64 if vector else FA_BWD_F64)[kid](
                        <const double *>(gp + t.off * isz), <const double *>(sp + t.off * isz),
                        <double *>(op + t.off * isz), t.n, t.p, 0, 0)
    return partial.sum(axis=0)


def stream(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, int nthreads=1):
    """The streaming limit, for benchmarks: out = a * 1 (b is None) or out = a * b.

    Same traffic as a forward (read one array, write one) or a backward (read
    two, write one), with the same chunking and threads as the real kernels.
    """
    cdef double p[1]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    p[0] = 1.0
    if b is None:
        if _is_f32(a):
            with nogil:
                _unary_f32(fa_stream_unary_f32, <const float *>cnp.PyArray_DATA(a),
                           <float *>cnp.PyArray_DATA(out), n, p, 0, nthreads)
        else:
            with nogil:
                _unary_f64(fa_stream_unary_f64, <const double *>cnp.PyArray_DATA(a),
                           <double *>cnp.PyArray_DATA(out), n, p, 0, nthreads)
    elif _is_f32(a):
        with nogil:
            _binary_f32(fa_stream_binary_f32, <const float *>cnp.PyArray_DATA(a),
                        <const float *>cnp.PyArray_DATA(b), <float *>cnp.PyArray_DATA(out),
                        n, p, 0, nthreads)
    else:
        with nogil:
            _binary_f64(fa_stream_binary_f64, <const double *>cnp.PyArray_DATA(a),
                        <const double *>cnp.PyArray_DATA(b), <double *>cnp.PyArray_DATA(out),
                        n, p, 0, nthreads)
    return out


def rowwise(int kind, int kid, cnp.ndarray a, object b, cnp.ndarray out,
            Py_ssize_t rows, Py_ssize_t rowlen, int nthreads=1):
    """A rowwise entry (softmax) over C-contiguous (rows, rowlen) buffers.

    kind FORWARD: out = f(a); kind BACKWARD: out = f'(g=a, y=b).  Each thread
    takes a static block of whole rows, so results do not depend on threads.
    """
    cdef bint f32 = _is_f32(a)
    cdef Py_ssize_t nblk, c, r0, r1, step
    cdef char *ap = <char *>cnp.PyArray_DATA(a)
    cdef char *bp = NULL
    cdef char *op = <char *>cnp.PyArray_DATA(out)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(a)
    cdef fa_rowf_f32 ff32 = FA_RFWD_F32[kid]
    cdef fa_rowf_f64 ff64 = FA_RFWD_F64[kid]
    cdef fa_rowb_f32 fb32 = FA_RBWD_F32[kid]
    cdef fa_rowb_f64 fb64 = FA_RBWD_F64[kid]
    if ff32 == NULL:
        raise ValueError("not a rowwise kernel")
    cdef bint forward = kind == FORWARD
    if not forward:
        bp = <char *>cnp.PyArray_DATA(b)
    nblk = _n_chunks(rows * rowlen, nthreads)
    if nblk > rows:
        nblk = rows
    if nblk < 1:
        return out
    step = (rows + nblk - 1) // nblk
    with nogil:
        for c in prange(nblk, schedule="static", num_threads=nblk):
            r0 = c * step
            r1 = r0 + step if r0 + step < rows else rows
            if r0 < r1:
                if forward:
                    if f32:
                        ff32(<const float *>(ap + r0 * rowlen * isz), <float *>(op + r0 * rowlen * isz),
                             r1 - r0, rowlen, NULL)
                    else:
                        ff64(<const double *>(ap + r0 * rowlen * isz), <double *>(op + r0 * rowlen * isz),
                             r1 - r0, rowlen, NULL)
                elif f32:
                    fb32(<const float *>(ap + r0 * rowlen * isz), <const float *>(bp + r0 * rowlen * isz),
                         <float *>(op + r0 * rowlen * isz), r1 - r0, rowlen, NULL)
                else:
                    fb64(<const double *>(ap + r0 * rowlen * isz), <const double *>(bp + r0 * rowlen * isz),
                         <double *>(op + r0 * rowlen * isz), r1 - r0, rowlen, NULL)
    return out


# --- the small-array fast path --------------------------------------------
#
# A call on a small C-contiguous float array must cost no more than a NumPy
# ufunc call, so the common case is decided here in C: exact ndarrays, one
# dtype, C order, ``out`` None / the input / a disjoint array, float
# parameters.  Anything else returns None and the caller takes the general
# path (which validates, dispatches and raises the right errors).

DEF MAX_FAST_KERNELS = 256
DEF GIL_RELEASE_MIN = 4096

cdef bint _fast_enabled = True
# Below these sizes a call runs the serial Cython kernel: [pass][dtype][kid].
cdef Py_ssize_t _fast_limit[2][2][MAX_FAST_KERNELS]
_fast_limit[:] = [[[32768] * MAX_FAST_KERNELS] * 2] * 2


def set_fast_enabled(bint enabled):
    """Turn the fast path on or off (off while another backend is selected)."""
    global _fast_enabled
    _fast_enabled = enabled


def set_fast_limit(int pass_, int dtype_index, int kid, Py_ssize_t limit):
    """Calls below ``limit`` elements take the serial Cython fast path."""
    if not (0 <= pass_ < 2 and 0 <= dtype_index < 2 and 0 <= kid < MAX_FAST_KERNELS):
        raise IndexError("fast-path slot out of range")
    _fast_limit[pass_][dtype_index][kid] = limit


def get_fast_limit(int pass_, int dtype_index, int kid):
    return _fast_limit[pass_][dtype_index][kid]


cdef inline int _fast_params(tuple params, double *p) noexcept:
    cdef Py_ssize_t j, m = len(params)
    cdef object v
    if m > MAX_PARAMS:
        return -1
    for j in range(m):
        v = params[j]
        if not isinstance(v, float):
            return -1
        p[j] = <double>v
    return 0


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef int d, nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_NDIM(b) != nd:
        return False
    for d in range(nd):
        if cnp.PyArray_DIM(a, d) != cnp.PyArray_DIM(b, d):
            return False
    return True


cdef inline bint _disjoint(cnp.ndarray a, cnp.ndarray b, Py_ssize_t nbytes) noexcept:
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pa + nbytes <= pb or pb + nbytes <= pa


cdef inline bint _plain(object x, int typenum) noexcept:
    """An exact, C-contiguous, aligned ndarray of dtype ``typenum``."""
    if type(x) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISNOTSWAPPED(a))


cdef object _fast_out(cnp.ndarray a, object out, Py_ssize_t nbytes, object other):
    """The output array, or None when ``out`` is not a plain match."""
    cdef int typenum = cnp.PyArray_TYPE(a)
    cdef cnp.ndarray o
    if out is None:
        return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), typenum, 0)
    if not _plain(out, typenum):
        return None
    o = <cnp.ndarray>out
    if not cnp.PyArray_ISWRITEABLE(o) or not _same_shape(a, o):
        return None
    if out is not a and not _disjoint(a, o, nbytes):
        return None
    if other is not None and out is not other and not _disjoint(<cnp.ndarray>other, o, nbytes):
        return None
    return o


def fast_forward(int kid, object x, object out, tuple params):
    """Serial forward of a small plain array; None when the general path must run."""
    cdef cnp.ndarray a, o
    cdef int typenum, di
    cdef Py_ssize_t n
    cdef double p[MAX_PARAMS]
    cdef fa_unary_f32 f32
    cdef fa_unary_f64 f64
    if not _fast_enabled or type(x) is not cnp.ndarray or not 0 <= kid < MAX_FAST_KERNELS:
        return None
    a = <cnp.ndarray>x
    typenum = cnp.PyArray_TYPE(a)
    if typenum == cnp.NPY_FLOAT32:
        di = 0
    elif typenum == cnp.NPY_FLOAT64:
        di = 1
    else:
        return None
    n = cnp.PyArray_SIZE(a)
    if (n == 0 or n >= _fast_limit[0][di][kid] or not _plain(x, typenum)
            or _fast_params(params, p) < 0):
        return None
    res = _fast_out(a, out, n * cnp.PyArray_ITEMSIZE(a), None)
    if res is None:
        return None
    o = <cnp.ndarray>res
    if di == 0:
        f32 = FA_FWD_F32[kid]
        if f32 == NULL:
            return None
        if n < GIL_RELEASE_MIN:
            f32(<const float *>cnp.PyArray_DATA(a), <float *>cnp.PyArray_DATA(o), n, p, 0, 0)
        else:
            with nogil:
                f32(<const float *>cnp.PyArray_DATA(a), <float *>cnp.PyArray_DATA(o), n, p, 0, 0)
    else:
        f64 = FA_FWD_F64[kid]
        if f64 == NULL:
            return None
        if n < GIL_RELEASE_MIN:
            f64(<const double *>cnp.PyArray_DATA(a), <double *>cnp.PyArray_DATA(o), n, p, 0, 0)
        else:
            with nogil:
                f64(<const double *>cnp.PyArray_DATA(a), <double *>cnp.PyArray_DATA(o), n, p, 0, 0)
    return o


def fast_backward(int kid, object g, object s, object out, tuple params):
    """Serial backward of small plain arrays; None when the general path must run."""
    cdef cnp.ndarray ga, sa, o
    cdef int typenum, di
    cdef Py_ssize_t n
    cdef double p[MAX_PARAMS]
    cdef fa_binary_f32 f32
    cdef fa_binary_f64 f64
    if not _fast_enabled or type(g) is not cnp.ndarray or not 0 <= kid < MAX_FAST_KERNELS:
        return None
    ga = <cnp.ndarray>g
    typenum = cnp.PyArray_TYPE(ga)
    if typenum == cnp.NPY_FLOAT32:
        di = 0
    elif typenum == cnp.NPY_FLOAT64:
        di = 1
    else:
        return None
    n = cnp.PyArray_SIZE(ga)
    if (n == 0 or n >= _fast_limit[1][di][kid] or not _plain(g, typenum)
            or not _plain(s, typenum)):
        return None
    sa = <cnp.ndarray>s
    if not _same_shape(ga, sa) or _fast_params(params, p) < 0:
        return None
    res = _fast_out(ga, out, n * cnp.PyArray_ITEMSIZE(ga), s)
    if res is None:
        return None
    o = <cnp.ndarray>res
    if di == 0:
        f32 = FA_BWD_F32[kid]
        if f32 == NULL:
            return None
        if n < GIL_RELEASE_MIN:
            f32(<const float *>cnp.PyArray_DATA(ga), <const float *>cnp.PyArray_DATA(sa),
                <float *>cnp.PyArray_DATA(o), n, p, 0, 0)
        else:
            with nogil:
                f32(<const float *>cnp.PyArray_DATA(ga), <const float *>cnp.PyArray_DATA(sa),
                    <float *>cnp.PyArray_DATA(o), n, p, 0, 0)
    else:
        f64 = FA_BWD_F64[kid]
        if f64 == NULL:
            return None
        if n < GIL_RELEASE_MIN:
            f64(<const double *>cnp.PyArray_DATA(ga), <const double *>cnp.PyArray_DATA(sa),
                <double *>cnp.PyArray_DATA(o), n, p, 0, 0)
        else:
            with nogil:
                f64(<const double *>cnp.PyArray_DATA(ga), <const double *>cnp.PyArray_DATA(sa),
                    <double *>cnp.PyArray_DATA(o), n, p, 0, 0)
    return o


def max_threads():
    """omp_get_max_threads() of the calling thread (threadpoolctl lowers it)."""
    return openmp.omp_get_max_threads()
