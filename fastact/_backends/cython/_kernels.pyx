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
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from . cimport fa_openmp as openmp
from .fa_build cimport FA_COMPILER, FA_SIMD_CLONES, FA_SOURCE_KEY

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

# What this build is (fastact._backends.cython.build_info).
HAS_OPENMP = bool(openmp.FA_HAS_OPENMP)
COMPILER = FA_COMPILER.decode().strip()
SIMD_CLONES = FA_SIMD_CLONES.decode()
SOURCE_KEY = FA_SOURCE_KEY.decode()

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
# parameters (string options already mapped to their index by the caller),
# rrelu's training mode with an explicit seed, prelu with a float or a plain
# float-array weight, softmax over the last axis.  Anything else returns None
# and the caller takes the general path (which validates, dispatches and
# raises the right errors): nothing here raises, and nothing is written before
# every check has passed.  Each case computes what the general path's serial
# Cython call computes, bit for bit (the same kernels, the same chunks, the
# same summation order).

DEF MAX_FAST_KERNELS = 256
DEF GIL_RELEASE_MIN = 4096
# Channel weights held on the stack; more go to PyMem_Malloc.
DEF FAST_STACK_W = 64
# fastact._api.ROW_RUN: (N, C) input runs ROW_RUN // C rows per kernel call.
DEF ROW_RUN = 4096

cdef bint _fast_enabled = True
# Below these sizes a call runs the serial Cython kernel: [pass][dtype][kid].
cdef Py_ssize_t _fast_limit[2][2][MAX_FAST_KERNELS]
_fast_limit[:] = [[[32768] * MAX_FAST_KERNELS] * 2] * 2


def set_fast_enabled(bint enabled):
    """Turn the fast path on or off (off while another backend is selected)."""
    global _fast_enabled
    _fast_enabled = enabled


# True while every call runs on one thread (set_num_threads(1)): elementwise calls
# whose small-size backend is Cython then take the fast path at any size.
cdef bint _serial_all = False


def set_serial_all(bint enabled):
    """Let plain elementwise calls take the fast path at any size (one thread in force)."""
    global _serial_all
    _serial_all = enabled


# Parallel calls: from _fast_par_from elements (the plan's serial_below, where its
# parallel backend is Cython; -1 elsewhere) a plain elementwise call runs the OpenMP
# driver from the fast path with _par_threads threads (0: never; set by fastact._config
# when no config() block, fork or other backend is in force), lowered by an OpenMP
# limit of the calling thread (threadpoolctl) below _omp_default, and shared with the
# other parallel calls running now (_par_active, changed only with the GIL held, also
# by the general path through par_enter/par_exit).
cdef Py_ssize_t _fast_par_from[2][2][MAX_FAST_KERNELS]
_fast_par_from[:] = [[[-1] * MAX_FAST_KERNELS] * 2] * 2
cdef int _par_threads = 0
cdef int _omp_default = 0
cdef int _par_active = 0
cdef bint _par_used = False


def set_fast_parallel(int nthreads, int omp_default):
    """Let plain elementwise calls above the serial size run ``nthreads`` threads from
    the fast path (0: never)."""
    global _par_threads, _omp_default
    _par_threads = nthreads
    _omp_default = omp_default


def set_fast_par_from(int pass_, int dtype_index, int kid, Py_ssize_t start):
    """Calls from ``start`` elements run in parallel from the fast path (-1: never)."""
    if not (0 <= pass_ < 2 and 0 <= dtype_index < 2 and 0 <= kid < MAX_FAST_KERNELS):
        raise IndexError("fast-path slot out of range")
    _fast_par_from[pass_][dtype_index][kid] = start


cdef inline int _par_begin(int nthreads) noexcept:
    """Threads for one parallel call among those running now (GIL held)."""
    global _par_active, _par_used
    _par_active += 1
    _par_used = True
    return nthreads // _par_active if nthreads >= _par_active else 1


cdef inline void _par_end() noexcept:
    global _par_active
    _par_active -= 1


def par_enter(int nthreads):
    """A parallel call of the general path starts: its share of ``nthreads``."""
    return _par_begin(nthreads)


def par_exit():
    """A parallel call of the general path ended."""
    _par_end()


def parallel_used():
    """Whether a parallel region ran in this process (fork safety)."""
    return _par_used


cdef inline int _fast_threads(cnp.ndarray a, int pass_, int di, int kid) noexcept:
    """1: a serial fast call, k > 1: a parallel one, 0: the general path."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    cdef Py_ssize_t limit = _fast_limit[pass_][di][kid]
    cdef Py_ssize_t start = _fast_par_from[pass_][di][kid]
    cdef int nthreads, most
    if n <= 0 or not _plain(a, cnp.PyArray_TYPE(a)):
        return 0
    if n < limit or (_serial_all and limit > 0):
        return 1
    if _par_threads <= 1 or start < 0 or n < start:
        return 0
    nthreads = _par_threads
    most = openmp.omp_get_max_threads()
    if most < _omp_default and most < nthreads:
        nthreads = most
    if nthreads <= 1:
        return 1 if limit > 0 else 0
    return nthreads


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


cdef inline int _fast_dtype(object x, int kid) noexcept:
    """0 (float32) or 1 (float64) for an exact ndarray, a kernel id and the path on; else -1."""
    cdef int typenum
    if (not _fast_enabled or type(x) is not cnp.ndarray or kid < 0 or kid >= MAX_FAST_KERNELS
            or kid >= FA_N_KERNELS):
        return -1
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>x)
    if typenum == cnp.NPY_FLOAT32:
        return 0
    if typenum == cnp.NPY_FLOAT64:
        return 1
    return -1


cdef inline bint _fast_size(cnp.ndarray a, int pass_, int di, int kid) noexcept:
    """A plain array of 1 to (serial limit - 1) elements."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    return 0 < n < _fast_limit[pass_][di][kid] and _plain(a, cnp.PyArray_TYPE(a))


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


# -- elementwise entries (also rrelu in training mode: off = 0, i = the C-order index)

cdef inline void _run_unary(fa_unary_f32 f32, fa_unary_f64 f64, const void *x, void *out,
                            Py_ssize_t n, const double *p, uint64_t seed,
                            int nthreads) noexcept nogil:
    """The kernel over the whole buffer: serial, or the OpenMP driver for nthreads > 1."""
    if f32 != NULL:
        _unary_f32(f32, <const float *>x, <float *>out, n, p, seed, nthreads)
    else:
        _unary_f64(f64, <const double *>x, <double *>out, n, p, seed, nthreads)


cdef inline void _run_binary(fa_binary_f32 f32, fa_binary_f64 f64, const void *g, const void *s,
                             void *out, Py_ssize_t n, const double *p, uint64_t seed,
                             int nthreads) noexcept nogil:
    if f32 != NULL:
        _binary_f32(f32, <const float *>g, <const float *>s, <float *>out, n, p, seed, nthreads)
    else:
        _binary_f64(f64, <const double *>g, <const double *>s, <double *>out, n, p, seed,
                    nthreads)


cdef object _fast_unary(bint train, int kid, object x, object out, tuple params, uint64_t seed):
    cdef cnp.ndarray a, o
    cdef int di = _fast_dtype(x, kid)
    cdef Py_ssize_t n
    cdef double p[MAX_PARAMS]
    cdef fa_unary_f32 f32 = NULL
    cdef fa_unary_f64 f64 = NULL
    cdef int nthreads
    if di < 0:
        return None
    a = <cnp.ndarray>x
    nthreads = _fast_threads(a, 0, di, kid)
    if nthreads == 0 or _fast_params(params, p) < 0:
        return None
    if di == 0:
        f32 = FA_TFWD_F32[kid] if train else FA_FWD_F32[kid]
        if f32 == NULL:
            return None
    else:
        f64 = FA_TFWD_F64[kid] if train else FA_FWD_F64[kid]
        if f64 == NULL:
            return None
    n = cnp.PyArray_SIZE(a)
    res = _fast_out(a, out, n * cnp.PyArray_ITEMSIZE(a), None)
    if res is None:
        return None
    o = <cnp.ndarray>res
    cdef const void *xp = cnp.PyArray_DATA(a)
    cdef void *op = cnp.PyArray_DATA(o)
    cdef bint parallel = nthreads > 1
    if parallel:
        nthreads = _par_begin(nthreads)
    if n < GIL_RELEASE_MIN:
        _run_unary(f32, f64, xp, op, n, p, seed, nthreads)
    else:
        with nogil:
            _run_unary(f32, f64, xp, op, n, p, seed, nthreads)
    if parallel:
        _par_end()
    return o


cdef object _fast_binary(bint train, int kid, object g, object s, object out, tuple params,
                         uint64_t seed):
    cdef cnp.ndarray ga, sa, o
    cdef int di = _fast_dtype(g, kid)
    cdef Py_ssize_t n
    cdef double p[MAX_PARAMS]
    cdef fa_binary_f32 f32 = NULL
    cdef fa_binary_f64 f64 = NULL
    cdef int nthreads
    if di < 0:
        return None
    ga = <cnp.ndarray>g
    nthreads = _fast_threads(ga, 1, di, kid)
    if nthreads == 0 or not _plain(s, cnp.PyArray_TYPE(ga)):
        return None
    sa = <cnp.ndarray>s
    if not _same_shape(ga, sa) or _fast_params(params, p) < 0:
        return None
    if di == 0:
        f32 = FA_TBWD_F32[kid] if train else FA_BWD_F32[kid]
        if f32 == NULL:
            return None
    else:
        f64 = FA_TBWD_F64[kid] if train else FA_BWD_F64[kid]
        if f64 == NULL:
            return None
    n = cnp.PyArray_SIZE(ga)
    res = _fast_out(ga, out, n * cnp.PyArray_ITEMSIZE(ga), s)
    if res is None:
        return None
    o = <cnp.ndarray>res
    cdef const void *gp = cnp.PyArray_DATA(ga)
    cdef const void *sp = cnp.PyArray_DATA(sa)
    cdef void *op = cnp.PyArray_DATA(o)
    cdef bint parallel = nthreads > 1
    if parallel:
        nthreads = _par_begin(nthreads)
    if n < GIL_RELEASE_MIN:
        _run_binary(f32, f64, gp, sp, op, n, p, seed, nthreads)
    else:
        with nogil:
            _run_binary(f32, f64, gp, sp, op, n, p, seed, nthreads)
    if parallel:
        _par_end()
    return o


def fast_forward(int kid, object x, object out, tuple params):
    """Serial forward of a small plain array; None when the general path must run."""
    return _fast_unary(False, kid, x, out, params, 0)


def fast_backward(int kid, object g, object s, object out, tuple params):
    """Serial backward of small plain arrays; None when the general path must run."""
    return _fast_binary(False, kid, g, s, out, params, 0)


def fast_train_forward(int kid, object x, object out, tuple params, uint64_t seed):
    """Serial training-mode forward (rrelu) keyed by ``seed``; None: the general path."""
    return _fast_unary(True, kid, x, out, params, seed)


def fast_train_backward(int kid, object g, object s, object out, tuple params, uint64_t seed):
    """Serial training-mode backward (rrelu) keyed by ``seed``; None: the general path."""
    return _fast_binary(True, kid, g, s, out, params, seed)


# -- rowwise entries (softmax, log_softmax) over the last axis

cdef inline bint _last_axis(object axis, int nd) noexcept:
    """``axis`` is a Python int naming the last axis of an array of ``nd >= 1`` dimensions."""
    if type(axis) is not int:
        return False
    return axis == -1 or axis == nd - 1


cdef inline void _run_rows(int kid, bint f32, const void *a, const void *b, void *out,
                           Py_ssize_t rows, Py_ssize_t rowlen) noexcept nogil:
    if b == NULL:
        if f32:
            FA_RFWD_F32[kid](<const float *>a, <float *>out, rows, rowlen, NULL)
        else:
            FA_RFWD_F64[kid](<const double *>a, <double *>out, rows, rowlen, NULL)
    elif f32:
        FA_RBWD_F32[kid](<const float *>a, <const float *>b, <float *>out, rows, rowlen, NULL)
    else:
        FA_RBWD_F64[kid](<const double *>a, <const double *>b, <double *>out, rows, rowlen, NULL)


cdef object _fast_rows(int kid, object a_, object b_, object axis, object out):
    """Forward (``b_`` None) or backward of a rowwise entry: all rows in one serial call."""
    cdef cnp.ndarray a, b, o
    cdef int nd, pass_ = 0 if b_ is None else 1
    cdef int di = _fast_dtype(a_, kid)
    cdef Py_ssize_t n, rowlen
    cdef const void *bp = NULL
    if di < 0 or FA_RFWD_F32[kid] == NULL:
        return None
    a = <cnp.ndarray>a_
    nd = cnp.PyArray_NDIM(a)
    if nd < 1 or not _fast_size(a, pass_, di, kid) or not _last_axis(axis, nd):
        return None
    if b_ is not None:
        if not _plain(b_, cnp.PyArray_TYPE(a)) or not _same_shape(a, <cnp.ndarray>b_):
            return None
        b = <cnp.ndarray>b_
        bp = cnp.PyArray_DATA(b)
    n = cnp.PyArray_SIZE(a)
    rowlen = cnp.PyArray_DIM(a, nd - 1)
    res = _fast_out(a, out, n * cnp.PyArray_ITEMSIZE(a), b_)
    if res is None:
        return None
    o = <cnp.ndarray>res
    cdef const void *ap = cnp.PyArray_DATA(a)
    cdef void *op = cnp.PyArray_DATA(o)
    if n < GIL_RELEASE_MIN:
        _run_rows(kid, di == 0, ap, bp, op, n // rowlen, rowlen)
    else:
        with nogil:
            _run_rows(kid, di == 0, ap, bp, op, n // rowlen, rowlen)
    return o


def fast_rowwise_forward(int kid, object x, object axis, object out):
    """Serial rowwise forward along the last axis; None when the general path must run."""
    return _fast_rows(kid, x, None, axis, out)


def fast_rowwise_backward(int kid, object g, object s, object axis, object out):
    """Serial rowwise backward along the last axis; None when the general path must run."""
    if s is None:
        return None
    return _fast_rows(kid, g, s, axis, out)


# -- per-channel entries (prelu)
#
# The general path (fastact._api.channel_forward/backward) hands the kernels
# the weight rounded to the input's type, as doubles, and cuts the array into
# units (_unit) grouped in blocks.  The forward is elementwise, so any
# cutting gives its bits; the weight gradient is replayed here unit by unit
# and block by block, with NumPy's reductions of the partial sums written
# out: ``partial.sum(axis=0)`` over blocks and the sum over the tiled copies
# of the weight are sequential when they have two or more columns, and a
# single column (one weight) is taken here only with at most two blocks.

cdef double *_fast_weight(object weight, cnp.ndarray a, bint f32, double *stack,
                          Py_ssize_t *C) noexcept:
    """The weight as doubles rounded to the input's type; NULL unless plain.

    Plain: a Python float, or a native, aligned, C-contiguous float32/float64
    array of at most one dimension holding 1 element or one per channel
    (axis 1 of ``a``).  The memory is ``stack`` or from PyMem_Malloc.
    """
    cdef cnp.ndarray wa
    cdef Py_ssize_t m, c
    cdef int wt
    cdef double *w
    cdef double v
    if type(weight) is float:
        v = <double>weight
        stack[0] = <double>(<float>v) if f32 else v
        C[0] = 1
        return stack
    if type(weight) is not cnp.ndarray:
        return NULL
    wa = <cnp.ndarray>weight
    wt = cnp.PyArray_TYPE(wa)
    if ((wt != cnp.NPY_FLOAT32 and wt != cnp.NPY_FLOAT64) or cnp.PyArray_NDIM(wa) > 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(wa) or not cnp.PyArray_ISALIGNED(wa)
            or not cnp.PyArray_ISNOTSWAPPED(wa)):
        return NULL
    m = cnp.PyArray_SIZE(wa)
    if m != 1 and (cnp.PyArray_NDIM(a) < 2 or cnp.PyArray_DIM(a, 1) != m):
        return NULL
    w = stack if m <= FAST_STACK_W else <double *>PyMem_Malloc(m * sizeof(double))
    if w == NULL:
        return NULL
    if wt == cnp.NPY_FLOAT32:
        for c in range(m):
            w[c] = <double>(<const float *>cnp.PyArray_DATA(wa))[c]
    elif f32:
        for c in range(m):
            w[c] = <double>(<float>(<const double *>cnp.PyArray_DATA(wa))[c])
    else:
        for c in range(m):
            w[c] = (<const double *>cnp.PyArray_DATA(wa))[c]
    C[0] = m
    return w


cdef void _fast_channel_fwd(int kid, bint f32, const char *xp, char *op, Py_ssize_t isz,
                            Py_ssize_t n, Py_ssize_t outer, Py_ssize_t C,
                            const double *w) noexcept nogil:
    cdef Py_ssize_t inner, r, off
    if C == 1:
        if f32:
            FA_FWD_F32[kid](<const float *>xp, <float *>op, n, w, 0, 0)
        else:
            FA_FWD_F64[kid](<const double *>xp, <double *>op, n, w, 0, 0)
        return
    inner = n // (outer * C)
    if inner == 1:
        for r in range(outer):
            off = r * C * isz
            if f32:
                FA_FWDV_F32[kid](<const float *>(xp + off), <float *>(op + off), C, w, 0, 0)
            else:
                FA_FWDV_F64[kid](<const double *>(xp + off), <double *>(op + off), C, w, 0, 0)
        return
    for r in range(outer * C):
        off = r * inner * isz
        if f32:
            FA_FWD_F32[kid](<const float *>(xp + off), <float *>(op + off), inner, w + r % C, 0, 0)
        else:
            FA_FWD_F64[kid](<const double *>(xp + off), <double *>(op + off), inner, w + r % C,
                            0, 0)


cdef void _fast_channel_part(int kid, bint f32, const char *gp, const char *sp, char *op,
                             Py_ssize_t isz, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                             const double *w, double *blk, double *psum) noexcept nogil:
    """channel_backward(..., outer, C, inner) on one thread: grad-input into ``op``
    and ``psum`` = its partial sums reduced over the blocks, in block order."""
    cdef bint vector = inner == 1
    cdef Py_ssize_t rows, rowlen, segs, units, nblocks, b, u, c, off
    cdef Unit t
    _channel_geometry(outer, C, inner, &rows, &rowlen, &segs)
    units = rows * segs
    nblocks = units if units < PGRAD_BLOCKS else PGRAD_BLOCKS
    memset(psum, 0, C * sizeof(double))
    for b in range(nblocks):
        memset(blk, 0, C * sizeof(double))
        for u in range(b * units // nblocks, (b + 1) * units // nblocks):
            t = _unit(u, segs, rowlen, C, vector, w)
            off = t.off * isz
            # the parameter gradient first: out may be g itself
            if f32:
                (FA_PGRADV_F32 if vector else FA_PGRAD_F32)[kid](
                    <const float *>(gp + off), <const float *>(sp + off), t.n, t.p, blk + t.acc)
                (FA_BWDV_F32 if vector else FA_BWD_F32)[kid](
                    <const float *>(gp + off), <const float *>(sp + off), <float *>(op + off),
                    t.n, t.p, 0, 0)
            else:
                (FA_PGRADV_F64 if vector else FA_PGRAD_F64)[kid](
                    <const double *>(gp + off), <const double *>(sp + off), t.n, t.p,
                    blk + t.acc)
                (FA_BWDV_F64 if vector else FA_BWD_F64)[kid](
                    <const double *>(gp + off), <const double *>(sp + off),
                    <double *>(op + off), t.n, t.p, 0, 0)
        for c in range(C):
            psum[c] += blk[c]


cdef void _fast_channel_bwd(int kid, bint f32, const char *gp, const char *sp, char *op,
                            Py_ssize_t isz, Py_ssize_t n, Py_ssize_t outer, Py_ssize_t C,
                            const double *w, double *buf, double *gw) noexcept nogil:
    """fastact._api.channel_backward's parts, serial.  ``buf``: 3 * max(C, ROW_RUN) doubles."""
    cdef Py_ssize_t inner, run, bulk, width, f, c, k
    cdef Py_ssize_t most = C if C > ROW_RUN else ROW_RUN
    cdef double *blk = buf
    cdef double *psum = buf + most
    cdef double *tiled = buf + 2 * most
    if C == 1:
        _fast_channel_part(kid, f32, gp, sp, op, isz, 1, 1, n, w, blk, psum)
        gw[0] = psum[0]
        return
    inner = n // (outer * C)
    if inner != 1 or outer < 2 or C >= ROW_RUN:
        _fast_channel_part(kid, f32, gp, sp, op, isz, outer, C, inner, w, blk, psum)
        for c in range(C):
            gw[c] = psum[c]
        return
    # (N, C): runs of ``run`` rows share a tiled weight; their sums are folded
    run = outer if outer < ROW_RUN // C else ROW_RUN // C
    bulk = (outer // run) * run
    width = run * C
    for k in range(width):
        tiled[k] = w[k % C]
    _fast_channel_part(kid, f32, gp, sp, op, isz, bulk // run, width, 1, tiled, blk, psum)
    for c in range(C):
        gw[c] = 0.0
    for f in range(run):
        for c in range(C):
            gw[c] += psum[f * C + c]
    if bulk < outer:
        k = bulk * C * isz
        _fast_channel_part(kid, f32, gp + k, sp + k, op + k, isz, outer - bulk, C, 1, w,
                           blk, psum)
        for c in range(C):
            gw[c] += psum[c]


cdef inline bint _fast_channel_kernels(int kid, bint backward) noexcept:
    if backward:
        return (FA_PGRAD_F32[kid] != NULL and FA_PGRADV_F32[kid] != NULL
                and FA_BWD_F32[kid] != NULL and FA_BWDV_F32[kid] != NULL)
    return FA_FWD_F32[kid] != NULL and FA_FWDV_F32[kid] != NULL


def fast_channel_forward(int kid, object x, object weight, object out):
    """Serial forward of a per-channel entry (prelu); None when the general path must run."""
    cdef cnp.ndarray a, o
    cdef int di = _fast_dtype(x, kid)
    cdef Py_ssize_t n, C = 1, outer
    cdef double stack[FAST_STACK_W]
    cdef double *w
    if di < 0 or not _fast_channel_kernels(kid, False):
        return None
    a = <cnp.ndarray>x
    if not _fast_size(a, 0, di, kid):
        return None
    w = _fast_weight(weight, a, di == 0, stack, &C)
    if w == NULL:
        return None
    try:
        n = cnp.PyArray_SIZE(a)
        res = _fast_out(a, out, n * cnp.PyArray_ITEMSIZE(a), None)
        if res is None:
            return None
        o = <cnp.ndarray>res
        outer = cnp.PyArray_DIM(a, 0) if C > 1 else 1
        with nogil:
            _fast_channel_fwd(kid, di == 0, <const char *>cnp.PyArray_DATA(a),
                              <char *>cnp.PyArray_DATA(o), cnp.PyArray_ITEMSIZE(a), n, outer,
                              C, w)
        return o
    finally:
        if w != stack:
            PyMem_Free(w)


def fast_channel_backward(int kid, object g, object s, object weight, object out):
    """Serial backward of a per-channel entry: ``(grad_input, grad_weight)``, or None."""
    cdef cnp.ndarray ga, sa, o, gwa
    cdef int di = _fast_dtype(g, kid)
    cdef Py_ssize_t n, C = 1, outer, c, most
    cdef double stack[FAST_STACK_W]
    cdef double *w
    cdef double *buf = NULL
    cdef double *gw
    cdef cnp.npy_intp wdim[1]
    if di < 0 or not _fast_channel_kernels(kid, True):
        return None
    ga = <cnp.ndarray>g
    if not _fast_size(ga, 1, di, kid) or not _plain(s, cnp.PyArray_TYPE(ga)):
        return None
    sa = <cnp.ndarray>s
    if not _same_shape(ga, sa):
        return None
    n = cnp.PyArray_SIZE(ga)
    w = _fast_weight(weight, ga, di == 0, stack, &C)
    if w == NULL:
        return None
    try:
        if C == 1 and n > 2 * SEGMENT:
            return None  # three or more blocks of one column: NumPy's pairwise sum
        res = _fast_out(ga, out, n * cnp.PyArray_ITEMSIZE(ga), s)
        if res is None:
            return None
        o = <cnp.ndarray>res
        if type(weight) is float:
            gwa = cnp.PyArray_EMPTY(0, wdim, cnp.PyArray_TYPE(ga), 0)
        else:
            gwa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(<cnp.ndarray>weight),
                                    cnp.PyArray_DIMS(<cnp.ndarray>weight),
                                    cnp.PyArray_TYPE(ga), 0)
        most = C if C > ROW_RUN else ROW_RUN
        buf = <double *>PyMem_Malloc((3 * most + C) * sizeof(double))
        if buf == NULL:
            return None
        gw = buf + 3 * most
        outer = cnp.PyArray_DIM(ga, 0) if C > 1 else 1
        with nogil:
            _fast_channel_bwd(kid, di == 0, <const char *>cnp.PyArray_DATA(ga),
                              <const char *>cnp.PyArray_DATA(sa), <char *>cnp.PyArray_DATA(o),
                              cnp.PyArray_ITEMSIZE(ga), n, outer, C, w, buf, gw)
        if di == 0:
            for c in range(C):
                (<float *>cnp.PyArray_DATA(gwa))[c] = <float>gw[c]
        else:
            for c in range(C):
                (<double *>cnp.PyArray_DATA(gwa))[c] = gw[c]
        return o, gwa
    finally:
        if w != stack:
            PyMem_Free(w)
        PyMem_Free(buf)


def max_threads():
    """omp_get_max_threads() of the calling thread (threadpoolctl lowers it)."""
    return openmp.omp_get_max_threads()
