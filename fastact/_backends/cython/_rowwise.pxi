# Rowwise entries (softmax, log_softmax) over C-contiguous (rows, rowlen) buffers:
# each thread takes a static block of whole rows, or, when there are fewer long
# rows than threads, the segments of one row at a time.  A row's sums add their
# segments in order either way, so results do not depend on the thread count.

from libc.math cimport log as c_log
from libc.stdlib cimport free, malloc

cdef extern from "fa_kernels.h" nogil:
    ctypedef double (*fa_rseg_f32)(const float *, const float *, float *, Py_ssize_t, const double *) noexcept nogil
    ctypedef double (*fa_rseg_f64)(const double *, const double *, double *, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rmap_f32)(const float *, const float *, float *, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rmap_f64)(const double *, const double *, double *, Py_ssize_t, const double *) noexcept nogil
    const int *FA_ROP
    fa_rseg_f32 *FA_RSEG_F32
    fa_rseg_f64 *FA_RSEG_F64
    fa_rmap_f32 *FA_RMAP_F32
    fa_rmap_f64 *FA_RMAP_F64
    int FA_ROW_SPLIT
    enum: FA_RSTAGES
    int FA_ROP_MAX
    int FA_ROP_LOG


cdef inline double _row_stage(int idx, const real *a, const real *b, real *out, Py_ssize_t n,
                              const double *acc) noexcept nogil:
    if real is float:
        return FA_RSEG_F32[idx](a, b, out, n, acc)
    else:
        return FA_RSEG_F64[idx](a, b, out, n, acc)


cdef inline void _row_map(int idx, const real *a, const real *b, real *out, Py_ssize_t n,
                          const double *acc) noexcept nogil:
    if real is float:
        FA_RMAP_F32[idx](a, b, out, n, acc)
    else:
        FA_RMAP_F64[idx](a, b, out, n, acc)


cdef bint _long_row(int kid, const real *a, const real *b, real *out, Py_ssize_t n,
                    int nthreads) noexcept nogil:
    """One row, each stage's segments of FA_ROW_SPLIT elements on up to ``nthreads``
    threads: the row kernel's bits (maxima are exact; a sum adds its segments'
    totals in order).  False, with nothing written, when out of memory."""
    cdef int pass_ = 0 if b == NULL else 1
    cdef int base = (kid * 2 + pass_) * FA_RSTAGES, st, op
    cdef Py_ssize_t nseg = (n + FA_ROW_SPLIT - 1) // FA_ROW_SPLIT, j, k0
    cdef double v
    cdef double *acc = <double *>malloc((FA_RSTAGES + nseg) * sizeof(double))
    cdef double *part
    if acc == NULL:
        return False
    part = acc + FA_RSTAGES
    if b == NULL:
        b = a  # the forward's stages ignore it
    for st in range(FA_RSTAGES):
        op = FA_ROP[base + st]
        if op == 0:
            break
        if op >= FA_ROP_LOG:
            acc[st] = c_log(acc[op - FA_ROP_LOG])
            continue
        for j in prange(nseg, schedule="static", num_threads=nthreads):
            k0 = j * FA_ROW_SPLIT
            part[j] = _row_stage(base + st, a + k0, b + k0, out + k0,
                                 FA_ROW_SPLIT if k0 + FA_ROW_SPLIT <= n else n - k0, acc)
        v = part[0]
        for j in range(1, nseg):
            if op == FA_ROP_MAX:
                if not ((part[j] <= v) | (v != v)):
                    v = part[j]
            else:
                v = v + part[j]
        acc[st] = v
    for j in prange(nseg, schedule="static", num_threads=nthreads):
        k0 = j * FA_ROW_SPLIT
        _row_map(kid * 2 + pass_, a + k0, b + k0, out + k0,
                 FA_ROW_SPLIT if k0 + FA_ROW_SPLIT <= n else n - k0, acc)
    free(acc)
    return True


cdef void _row_blocks(int kid, const real *a, const real *b, real *out, Py_ssize_t rows,
                      Py_ssize_t rowlen, int nthreads) noexcept nogil:
    cdef Py_ssize_t nblk, c, r0, r1, step, r
    if nthreads > 1 and rows < nthreads and rowlen >= 2 * FA_ROW_SPLIT:
        # fewer long rows than threads: the threads share each row (a parallel
        # region per stage of each row; blocks of rows take one in all)
        for r in range(rows):
            if not _long_row(kid, a + r * rowlen, b + r * rowlen if b != NULL else NULL,
                             out + r * rowlen, rowlen, nthreads):
                _rows(kid, a + r * rowlen, b + r * rowlen if b != NULL else NULL,
                      out + r * rowlen, 1, rowlen)
        return
    nblk = _n_chunks(rows * rowlen, nthreads)
    if nblk > rows:
        nblk = rows
    if nblk < 1:
        return
    step = (rows + nblk - 1) // nblk
    for c in prange(nblk, schedule="static", num_threads=nblk):
        r0 = c * step
        r1 = r0 + step if r0 + step < rows else rows
        if r0 < r1:
            _rows(kid, a + r0 * rowlen, b + r0 * rowlen if b != NULL else NULL,
                  out + r0 * rowlen, r1 - r0, rowlen)


cdef inline void _run_rows(int di, int kid, const void *a, const void *b, void *out,
                           Py_ssize_t rows, Py_ssize_t rowlen, int nthreads) noexcept nogil:
    """Forward (``b`` NULL) or backward over the rows: in blocks of rows on up to
    ``nthreads`` threads, or with ``nthreads`` 0 in one call, outside any parallel region."""
    if di == 0:
        if nthreads == 0:
            _rows(kid, <const float *>a, <const float *>b, <float *>out, rows, rowlen)
        else:
            _row_blocks(kid, <const float *>a, <const float *>b, <float *>out, rows, rowlen,
                        nthreads)
    else:
        if nthreads == 0:
            _rows(kid, <const double *>a, <const double *>b, <double *>out, rows, rowlen)
        else:
            _row_blocks(kid, <const double *>a, <const double *>b, <double *>out, rows, rowlen,
                        nthreads)


def rowwise(int kind, int kid, cnp.ndarray a, object b, cnp.ndarray out,
            Py_ssize_t rows, Py_ssize_t rowlen, int nthreads=1):
    """A rowwise entry (softmax) over C-contiguous (rows, rowlen) buffers.

    kind FORWARD: out = f(a); kind BACKWARD: out = f'(g=a, y=b).  Each thread
    takes a static block of whole rows, or segments of long rows: results do
    not depend on threads.
    """
    cdef int di = _dtype_index(a)
    cdef const void *bp = NULL
    if kid < 0 or kid >= FA_N_KERNELS or not _has_rowwise(kid):
        raise ValueError("not a rowwise kernel")
    if di < 0:
        raise ValueError("no kernel for this dtype")
    if kind != FORWARD:
        bp = cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef const void *ap = cnp.PyArray_DATA(a)
    cdef void *op = cnp.PyArray_DATA(out)
    with nogil:
        _run_rows(di, kid, ap, bp, op, rows, rowlen, nthreads if nthreads > 0 else 1)
    return out


# The fast path: all rows in one serial call, along the last axis.

cdef inline bint _last_axis(object axis, int nd) noexcept:
    """``axis`` is a Python int naming the last axis of an array of ``nd >= 1`` dimensions."""
    if type(axis) is not int:
        return False
    return axis == -1 or axis == nd - 1


cdef object _fast_rows(int kid, object a_, object b_, object axis, object out):
    """Forward (``b_`` None) or backward of a rowwise entry: all rows in one serial
    call, or in blocks of rows on the OpenMP driver where the general path would
    run them so (the same kernels: the bits do not depend on the thread count)."""
    cdef cnp.ndarray a, b, o
    cdef int nd, nthreads, pass_ = 0 if b_ is None else 1
    cdef int di = _fast_dtype(a_, kid)
    cdef Py_ssize_t n, rowlen
    cdef const void *bp = NULL
    if di < 0:
        return _fast_half_rows(kid, a_, b_, axis, out)
    if not _has_rowwise(kid):
        return None
    a = <cnp.ndarray>a_
    nd = cnp.PyArray_NDIM(a)
    if nd < 1 or not _last_axis(axis, nd):
        return None
    nthreads = _fast_threads(a, pass_, di, kid)
    if nthreads == 0:
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
    if _numba_runs(pass_, di, kid, nthreads):
        return _numba_rows(pass_, di, kid, ap, bp, o, n // rowlen, rowlen, nthreads)
    cdef void *op = cnp.PyArray_DATA(o)
    if nthreads > 1:
        nthreads = _par_begin(nthreads)
        with nogil:
            _run_rows(di, kid, ap, bp, op, n // rowlen, rowlen, nthreads)
        _par_end()
    elif n < GIL_RELEASE_MIN:
        _run_rows(di, kid, ap, bp, op, n // rowlen, rowlen, 0)
    else:
        with nogil:
            _run_rows(di, kid, ap, bp, op, n // rowlen, rowlen, 0)
    return o


def fast_rowwise_forward(int kid, object x, object axis, object out):
    """Serial rowwise forward along the last axis; None when the general path must run."""
    return _fast_rows(kid, x, None, axis, out)


def fast_rowwise_backward(int kid, object g, object s, object axis, object out):
    """Serial rowwise backward along the last axis; None when the general path must run."""
    if s is None:
        return None
    return _fast_rows(kid, g, s, axis, out)
