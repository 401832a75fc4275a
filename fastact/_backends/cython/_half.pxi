# 16-bit storage (float16, bfloat16): the float32 kernels on the same static
# chunks per thread as _elementwise.pxi, fused (each element widened as loaded
# and rounded as stored; float16 by F16C, bfloat16 by AVX512_BF16 where the CPU
# has them: fa_half.h), so the 16-bit result is the float32 kernel's rounded once
# at every position.
# The arrays arrive as uint16 views (fastact/_half.py); ``fmt`` names the format.

from libc.math cimport fabs

cdef extern from "fa_half.h" nogil:
    void fa_half_widen(int fmt, const uint16_t *h, float *f, Py_ssize_t n)
    void fa_half_narrow(int fmt, const float *f, uint16_t *h, Py_ssize_t n)
    void fa_half_init()
    int fa_half_use_f16c(int level)
    int fa_half_f16_copy()
    int FA_HAVE_F16C
    int fa_f16c

# The fused 16-bit kernels (widen as loaded, round as stored: fa_kernels.h), by
# table (PLAIN, TRAIN): the copies fa_half.h chose for the CPU.
cdef extern from "fa_kernels.h" nogil:
    ctypedef void (*fa_unary_h16)(const uint16_t *, uint16_t *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_binary_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_rowb_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil

cdef extern from "fa_half.h" nogil:
    fa_unary_h16 *fa_f16_unary[2]
    fa_binary_h16 *fa_f16_binary[2]
    fa_unary_h16 *fa_bf16_unary[2]
    fa_binary_h16 *fa_bf16_binary[2]
    int fa_half_use_bf16v4(int on)
    int fa_bf16v4
    fa_rowb_h16 fa_half_rbwd(int fmt, int kid)

cdef extern from "fa_kernels.h" nogil:
    enum: FA_H16_CHUNK
    ctypedef void (*fa_bwdpg_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t, const double *, double *) noexcept nogil
    ctypedef void (*fa_bwdpgv_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t, const float *, double *) noexcept nogil
    ctypedef void (*fa_unaryv_h16)(const uint16_t *, uint16_t *, Py_ssize_t, const float *, uint64_t, int64_t) noexcept nogil

cdef extern from "fa_half.h" nogil:
    fa_bwdpg_h16 fa_half_bwdpg(int fmt, int kid)
    fa_bwdpgv_h16 fa_half_bwdpgv(int fmt, int kid)
    fa_unaryv_h16 fa_half_fwdv(int fmt, int kid)

fa_half_init()


cdef inline void _half_kernel(int fmt, int table, int kid, const uint16_t *a,
                              const uint16_t *b, uint16_t *out, Py_ssize_t n, const double *p,
                              uint64_t seed, int64_t off) noexcept nogil:
    if fmt == 2:
        if b == NULL:
            fa_bf16_unary[table][kid](a, out, n, p, seed, off)
        else:
            fa_bf16_binary[table][kid](a, b, out, n, p, seed, off)
    elif b == NULL:
        fa_f16_unary[table][kid](a, out, n, p, seed, off)
    else:
        fa_f16_binary[table][kid](a, b, out, n, p, seed, off)


cdef void _half_chunks(int fmt, int table, int kid, const uint16_t *a, const uint16_t *b,
                       uint16_t *out, Py_ssize_t n, const double *p, uint64_t seed,
                       int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, ln
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        _half_kernel(fmt, table, kid, a, b, out, n, p, seed, 0)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            ln = step if start + step <= n else n - start
            _half_kernel(fmt, table, kid, a + start, b + start if b != NULL else NULL,
                         out + start, ln, p, seed, start)


cdef inline int _check_half(cnp.ndarray a, str name) except -1:
    if cnp.PyArray_TYPE(a) != cnp.NPY_UINT16 or not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{name} must be a C-contiguous uint16 view")
    return 0


cdef object _half_elementwise(int fmt, int table, int kid, cnp.ndarray a, object b,
                              cnp.ndarray out, tuple params, uint64_t seed, int nthreads):
    cdef double p[MAX_PARAMS]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    cdef const uint16_t *bp = NULL
    if kid < 0 or kid >= FA_N_KERNELS:
        raise ValueError("kernel id out of range")
    if fmt != 1 and fmt != 2:
        raise ValueError("fmt must be 1 (float16) or 2 (bfloat16)")
    _check_half(a, "a")
    _check_half(out, "out")
    _fill_params(params, p)
    if not (_has_unary(0, table, kid) if b is None else _has_binary(0, table, kid)):
        raise ValueError("no such kernel")
    if b is not None:
        _check_half(<cnp.ndarray>b, "b")
        bp = <const uint16_t *>cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef const uint16_t *ap = <const uint16_t *>cnp.PyArray_DATA(a)
    cdef uint16_t *op = <uint16_t *>cnp.PyArray_DATA(out)
    with nogil:
        _half_chunks(fmt, table, kid, ap, bp, op, n, p, seed, nthreads)
    return out


def half_unary(int fmt, int kind, int kid, cnp.ndarray x, cnp.ndarray out, tuple params,
               uint64_t seed=0, int nthreads=1):
    """out = f(x) on 16-bit bits (uint16 views of format ``fmt``), computed in float32."""
    return _half_elementwise(fmt, PLAIN if kind == FORWARD else TRAIN, kid, x, None, out,
                             params, seed, nthreads)


def half_binary(int fmt, int kind, int kid, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out,
                tuple params, uint64_t seed=0, int nthreads=1):
    """out = f'(g, s) on 16-bit bits, as half_unary."""
    return _half_elementwise(fmt, PLAIN if kind == BACKWARD else TRAIN, kid, g, s, out,
                             params, seed, nthreads)


def half_convert(int fmt, cnp.ndarray src, cnp.ndarray dst, int nthreads=1):
    """Widen 16-bit bits ``src`` into float32 ``dst``, or round float32 ``src`` into
    16-bit bits ``dst`` (both C-contiguous, the same size)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(src), nch, step, c, start, ln
    cdef bint widen = cnp.PyArray_TYPE(src) == cnp.NPY_UINT16
    cdef int want_src = cnp.NPY_UINT16 if widen else cnp.NPY_FLOAT32
    cdef int want_dst = cnp.NPY_FLOAT32 if widen else cnp.NPY_UINT16
    if fmt != 1 and fmt != 2:
        raise ValueError("fmt must be 1 (float16) or 2 (bfloat16)")
    if (cnp.PyArray_TYPE(src) != want_src or cnp.PyArray_TYPE(dst) != want_dst
            or cnp.PyArray_SIZE(dst) != n or not cnp.PyArray_IS_C_CONTIGUOUS(src)
            or not cnp.PyArray_IS_C_CONTIGUOUS(dst)):
        raise ValueError("src and dst must be C-contiguous uint16 and float32 arrays of one size")
    cdef char *sp = <char *>cnp.PyArray_DATA(src)
    cdef char *dp = <char *>cnp.PyArray_DATA(dst)
    nch = _n_chunks(n, nthreads)
    step = _chunk_len(n, nch)
    with nogil:
        for c in prange(nch, schedule="static", num_threads=nch):
            start = c * step
            if start < n:
                ln = step if start + step <= n else n - start
                if widen:
                    fa_half_widen(fmt, <const uint16_t *>sp + start, <float *>dp + start, ln)
                else:
                    fa_half_narrow(fmt, <const float *>sp + start, <uint16_t *>dp + start, ln)
    return dst


# The fast path of 16-bit elementwise calls (_fast.pxi): a plain float16 or
# bfloat16 array runs fa_half.h's chunks from C, serial or on the OpenMP driver
# as float32's plan says for the same kernel (16-bit runs float32's kernels)
# where that plan runs Cython's kernels; anything else returns None for the
# general path.  The bits are those of the
# general path: every backend and thread count gives the float32 kernel's
# result rounded once.

# NumPy's type number of bfloat16 once fastact._half has seen the dtype (-1 before).
cdef int _bf16_typenum = -1


def half_set_bfloat16(int typenum):
    """Register bfloat16's NumPy type number for the fast path."""
    global _bf16_typenum
    _bf16_typenum = typenum


def half_has_f16c():
    """Whether float16 results are rounded by the F16C instruction here (else in C)."""
    return bool(FA_HAVE_F16C and fa_f16c)


def half_has_bf16v4():
    """Whether bfloat16 results are rounded by AVX512_BF16 here (else in C)."""
    return bool(fa_bf16v4)


def half_use_bf16v4(bint on):
    """Round bfloat16 by AVX512_BF16 where the CPU has it (True, the default) or in C
    (False: the same bits, for tests); returns whether it was used before."""
    return bool(fa_half_use_bf16v4(on))


def half_use_f16c(int level):
    """Convert float16 by the best F16C copy the CPU runs (4, the default), by the
    x86-64-v3 copies at most (3), or in C (0): the same bits, for tests; returns the
    level asked for before."""
    if level not in (0, 3, 4):
        raise ValueError(f"level must be 0, 3 or 4, not {level!r}")
    return fa_half_use_f16c(level)


def half_f16c_copy():
    """The float16 kernels' copy in use: 4 (x86-64-v4), 3 (x86-64-v3), 1 (F16C rounds
    whole arrays, the kernels convert in C) or 0 (C)."""
    return fa_half_f16_copy()


cdef inline int _fast_half_fmt(object x, int kid) noexcept:
    """For the fast path: 1 (float16) or 2 (bfloat16) for a plain ndarray of that
    dtype and a kernel id in range, the path on; else 0."""
    cdef int typenum
    if (not _may_run() or type(x) is not cnp.ndarray
            or kid < 0 or kid >= MAX_FAST_KERNELS or kid >= FA_N_KERNELS):
        return 0
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>x)
    if not _plain(x, typenum):
        return 0
    if typenum == cnp.NPY_FLOAT16:
        return 1
    return 2 if typenum == _bf16_typenum else 0


cdef object _fast_half(int pass_, int table, int kid, object a_, object b_, object out,
                       tuple params, uint64_t seed):
    cdef cnp.ndarray a, o
    cdef int typenum, fmt, nthreads
    cdef Py_ssize_t n
    cdef double p[MAX_PARAMS]
    cdef const uint16_t *bp = NULL
    fmt = _fast_half_fmt(a_, kid)
    if fmt == 0:
        return None
    a = <cnp.ndarray>a_
    typenum = cnp.PyArray_TYPE(a)
    n = cnp.PyArray_SIZE(a)
    nthreads = _decide(n, pass_, 0, kid, True)
    if nthreads == 0:
        return None
    cdef bint numba = _numba_runs(pass_, 0, kid, nthreads)
    if _fast_params(params, p) < 0:
        return None
    if pass_ == 0:
        if not _has_unary(0, table, kid):
            return None
    else:
        if not _plain(b_, typenum) or not _same_shape(a, <cnp.ndarray>b_):
            return None
        if not _has_binary(0, table, kid):
            return None
        bp = <const uint16_t *>cnp.PyArray_DATA(<cnp.ndarray>b_)
    res = _fast_out(a, out, n * 2, b_)
    if res is None:
        return None
    o = <cnp.ndarray>res
    cdef const uint16_t *ap = <const uint16_t *>cnp.PyArray_DATA(a)
    cdef uint16_t *op = <uint16_t *>cnp.PyArray_DATA(o)
    cdef bint parallel = nthreads > 1
    if numba:  # Numba's kernel for the format (not compiled yet: the general path)
        return _numba_elementwise(table, pass_, N_DTYPES + fmt - 1, kid, ap, bp, o, n, p, seed,
                                  nthreads)
    if parallel:
        nthreads = _par_begin(nthreads)
    if n < GIL_RELEASE_MIN:
        _half_chunks(fmt, table, kid, ap, bp, op, n, p, seed, nthreads)
    else:
        with nogil:
            _half_chunks(fmt, table, kid, ap, bp, op, n, p, seed, nthreads)
    if parallel:
        _par_end()
    return o


# Rowwise and per-channel entries on 16-bit arrays: each thread widens a few rows
# (softmax) or a unit (prelu: _unit) into float32 buffers of its own, runs the
# float32 kernel there and rounds the result into the output as it goes; the
# float32 kernels' bits on the widened array, rounded once, cut as float32's are
# (a row's sums in the row kernel's order, the weight gradient's partial sums by
# the same units and blocks), so the results do not depend on the thread count.

from cython.parallel cimport threadid

cdef Py_ssize_t _half_row_batch = 0  # fastact._half.ROW_BATCH, set at import


cdef inline Py_ssize_t _half_batch(Py_ssize_t rowlen) noexcept nogil:
    """Rows widened together: about fastact._half.ROW_BATCH elements, at least one row."""
    return _half_row_batch // rowlen if rowlen < _half_row_batch else 1


cdef void _half_row_forward(int fmt, int kid, const uint16_t *a, uint16_t *out, Py_ssize_t n,
                            float *fa, float *fo) noexcept nogil:
    """One forward row of ``n`` <= FA_ROW_SPLIT elements: widened into ``fa``, the float32
    kernel's stages over it (one segment: the row kernel's bits), then its map into ``fo``
    and the rounding into ``out`` a chunk at a time, so that the stores into ``out``
    overlap the map's arithmetic (rounding the whole row after its map took 1.2x as long
    at 10^7 elements, where the output lines come from memory)."""
    cdef int base = kid * 2 * FA_RSTAGES, st, op
    cdef double acc[FA_RSTAGES]
    cdef Py_ssize_t k0, m
    fa_half_widen(fmt, a, fa, n)
    for st in range(FA_RSTAGES):
        op = FA_ROP[base + st]
        if op == 0:
            break
        if op >= FA_ROP_LOG:
            acc[st] = c_log(acc[op - FA_ROP_LOG])
        else:
            acc[st] = FA_RSEG_F32[base + st](fa, fa, fo, n, acc)
    k0 = 0
    while k0 < n:
        m = FA_H16_CHUNK if n - k0 > FA_H16_CHUNK else n - k0
        FA_RMAP_F32[kid * 2](fa + k0, fa + k0, fo + k0, m, acc)
        fa_half_narrow(fmt, fo + k0, out + k0, m)
        k0 += m


cdef void _half_rows(int fmt, int kid, const uint16_t *a, const uint16_t *b, uint16_t *out,
                     Py_ssize_t rows, Py_ssize_t rowlen, float *buf, void *nb) noexcept nogil:
    """Rows 0:rows: a backward by the 16-bit row kernel (fa_half_rbwd: chunks widened
    and rounded inside the row loops, no buffers), a forward by the C kernel's stages
    row by row (:func:`_half_row_forward`), else through ``buf`` (3 *
    _half_batch(rowlen) * rowlen floats) by Numba's row kernel ``nb`` (rows are
    independent: the batches do not change their bits).  A large block prefetches
    into L2 the lines of the batch after the next one (inputs and output: a batch is
    about a page of each, where the hardware prefetcher starts over)."""
    cdef Py_ssize_t batch = _half_batch(rowlen), r, m, span = batch * rowlen
    cdef Py_ssize_t n = rows * rowlen, k
    cdef bint pf = fa_prefetching(n, sizeof(uint16_t))
    cdef fa_rowb_h16 fused = fa_half_rbwd(fmt, kid) if b != NULL and nb == NULL else NULL
    cdef float *fa
    cdef float *fb
    cdef float *fo
    if fused != NULL:  # buf may be NULL
        fused(a, b, out, rows, rowlen, NULL)
        return
    fa, fb, fo = buf, buf + span, buf + 2 * span
    if b == NULL and nb == NULL and rowlen <= FA_ROW_SPLIT:
        for r in range(rows):
            _half_row_forward(fmt, kid, a + r * rowlen, out + r * rowlen, rowlen, fa, fo)
        return
    r = 0
    while r < rows:
        m = batch if r + batch <= rows else rows - r
        if pf:
            k = (r + m) * rowlen + span
            fa_prefetch_l2(a, k, k + span, n, sizeof(uint16_t))
            if b != NULL:
                fa_prefetch_l2(b, k, k + span, n, sizeof(uint16_t))
            fa_prefetch_l2(out, k, k + span, n, sizeof(uint16_t))
        fa_half_widen(fmt, a + r * rowlen, fa, m * rowlen)
        if b != NULL:
            fa_half_widen(fmt, b + r * rowlen, fb, m * rowlen)
        if nb != NULL:
            _nb_rows(nb, fa, fb if b != NULL else NULL, fo, m, rowlen)
        else:
            _rows(kid, <const float *>fa,
                  <const float *>fb if b != NULL else <const float *>NULL, fo, m, rowlen)
        fa_half_narrow(fmt, fo, out + r * rowlen, m * rowlen)
        r += m


cdef int _half_rows_run(int fmt, int kid, const uint16_t *ap, const uint16_t *bp,
                        uint16_t *op, Py_ssize_t rows, Py_ssize_t rowlen, int nthreads,
                        void *nb) noexcept nogil:
    """Rows 0:rows, each thread a static block of whole rows with buffers of its own
    (``nb``: Numba's float32 row kernel; none for the 16-bit row kernels, which need
    none); -1 when the buffers cannot be had (nothing written)."""
    cdef Py_ssize_t nblk, step, c, r0, r1, per = 0
    cdef float *bufs = NULL
    if rows < 1 or rowlen < 1:
        return 0
    nblk = _n_chunks(rows * rowlen, nthreads)
    if nblk > rows:
        nblk = rows
    step = (rows + nblk - 1) // nblk
    if bp == NULL or nb != NULL or fa_half_rbwd(fmt, kid) == NULL:
        per = 3 * _half_batch(rowlen) * rowlen
        bufs = <float *>malloc(nblk * per * sizeof(float))
        if bufs == NULL:
            return -1
    if nblk == 1:
        _half_rows(fmt, kid, ap, bp, op, rows, rowlen, bufs, nb)
    else:
        for c in prange(nblk, schedule="static", num_threads=nblk):
            r0 = c * step
            r1 = r0 + step if r0 + step < rows else rows
            if r0 < r1:
                _half_rows(fmt, kid, ap + r0 * rowlen, bp + r0 * rowlen if bp != NULL else NULL,
                           op + r0 * rowlen, r1 - r0, rowlen, bufs + c * per, nb)
    free(bufs)
    return 0


def half_rowwise(int fmt, int kind, int kid, cnp.ndarray a, object b, cnp.ndarray out,
                 Py_ssize_t rows, Py_ssize_t rowlen, int nthreads=1):
    """A rowwise entry on 16-bit bits (uint16 views of format ``fmt``) in float32:
    forward out = f(a), backward out = f'(g=a, y=b); each thread takes a static block
    of whole rows."""
    cdef const uint16_t *bp = NULL
    cdef int rc
    if kid < 0 or kid >= FA_N_KERNELS or not _has_rowwise(kid):
        raise ValueError("not a rowwise kernel")
    if fmt != 1 and fmt != 2:
        raise ValueError("fmt must be 1 (float16) or 2 (bfloat16)")
    _check_half(a, "a")
    _check_half(out, "out")
    if kind != FORWARD:
        _check_half(<cnp.ndarray>b, "b")
        bp = <const uint16_t *>cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef const uint16_t *ap = <const uint16_t *>cnp.PyArray_DATA(a)
    cdef uint16_t *op = <uint16_t *>cnp.PyArray_DATA(out)
    with nogil:
        rc = _half_rows_run(fmt, kid, ap, bp, op, rows, rowlen, nthreads, NULL)
    if rc < 0:
        raise MemoryError("no room for the float32 buffers of a 16-bit rowwise call")
    return out


# The fast path of 16-bit rowwise calls: rows of at most _half_row_max elements
# (fastact._half.NATIVE_ROW_MAX, set at import: 0 until then, no call taken), as
# float32's call decides (its plan: where its serial calls run Numba's row kernel,
# the batches of widened rows run that kernel, as the Numba backend's 16-bit driver).

cdef Py_ssize_t _half_row_max = 0


def half_set_limits(Py_ssize_t row_max, Py_ssize_t row_batch):
    """The longest row the fast path runs through the 16-bit row buffers and the
    elements of the rows widened together (fastact._half.ROW_BATCH)."""
    global _half_row_max, _half_row_batch
    _half_row_max = row_max
    _half_row_batch = row_batch


cdef object _fast_half_rows(int kid, object a_, object b_, object axis, object out):
    cdef cnp.ndarray a, o
    cdef int nd, nthreads, rc, pass_ = 0 if b_ is None else 1
    cdef int fmt = _fast_half_fmt(a_, kid)
    cdef Py_ssize_t n, rowlen
    cdef const uint16_t *bp = NULL
    cdef void *nb = NULL
    if fmt == 0 or not _has_rowwise(kid):
        return None
    a = <cnp.ndarray>a_
    nd = cnp.PyArray_NDIM(a)
    if nd < 1 or not _last_axis(axis, nd):
        return None
    n = cnp.PyArray_SIZE(a)
    rowlen = cnp.PyArray_DIM(a, nd - 1)
    if n < 1 or rowlen > _half_row_max:
        return None
    nthreads = _decide(n, pass_, 0, kid, True)
    if nthreads == 0:
        return None
    cdef bint numba = _numba_runs(pass_, 0, kid, nthreads)
    # a backward with row kernels for the formats runs Numba's for this format
    cdef bint fused = numba and pass_ == 1 and fa_half_rbwd(fmt, kid) != NULL
    if numba and not fused:
        nb = _NB[NB_ROWS + pass_][0][kid]
        if nb == NULL:
            return None  # not compiled yet: the general path compiles it
    if b_ is not None:
        if not _plain(b_, cnp.PyArray_TYPE(a)) or not _same_shape(a, <cnp.ndarray>b_):
            return None
        bp = <const uint16_t *>cnp.PyArray_DATA(<cnp.ndarray>b_)
    res = _fast_out(a, out, n * 2, b_)
    if res is None:
        return None
    o = <cnp.ndarray>res
    cdef const uint16_t *ap = <const uint16_t *>cnp.PyArray_DATA(a)
    cdef uint16_t *op = <uint16_t *>cnp.PyArray_DATA(o)
    if fused:  # not compiled yet: the general path compiles it
        return _numba_rows(1, N_DTYPES + fmt - 1, kid, ap, bp, o, n // rowlen, rowlen, nthreads)
    if nthreads > 1:
        nthreads = _par_begin(nthreads)
        with nogil:
            rc = _half_rows_run(fmt, kid, ap, bp, op, n // rowlen, rowlen, nthreads, nb)
        _par_end()
    elif n < GIL_RELEASE_MIN:
        rc = _half_rows_run(fmt, kid, ap, bp, op, n // rowlen, rowlen, 1, nb)
    else:
        with nogil:
            rc = _half_rows_run(fmt, kid, ap, bp, op, n // rowlen, rowlen, 1, nb)
    return o if rc == 0 else None


cdef void _half_units_forward(int fmt, int kid, const uint16_t *x, uint16_t *out,
                              Py_ssize_t u0, Py_ssize_t u1, const Geometry *geo) noexcept nogil:
    """Units u0:u1 by the fused 16-bit kernels: one weight each, or a weight per element
    of a row (geo.vector)."""
    cdef Py_ssize_t u
    cdef Unit t
    cdef fa_unaryv_h16 fwdv = fa_half_fwdv(fmt, kid) if geo.vector else NULL
    cdef ColumnWalk cw
    if _column_walk(&cw, u0, u1, geo):
        while _column_next(&cw):
            u = cw.u * cw.rowlen + cw.c0
            fwdv(x + u, out + u, cw.m, geo.wf + cw.c0, 0, 0)
        return
    for u in range(u0, u1):
        t = _unit(u, geo)
        if geo.vector:
            fwdv(x + t.off, out + t.off, t.n, geo.wf + t.acc, 0, 0)
        else:
            _half_kernel(fmt, PLAIN, kid, x + t.off, NULL, out + t.off, t.n, t.p, 0, 0)


cdef void _half_units_backward(int fmt, int kid, const uint16_t *g, const uint16_t *s,
                               uint16_t *out, Py_ssize_t u0, Py_ssize_t u1,
                               const Geometry *geo, double *acc) noexcept nogil:
    """Grad-input of units u0:u1 by the fused 16-bit kernels, their parameter gradient
    summed into ``acc`` as _units_backward sums float32's (the same bits)."""
    cdef Py_ssize_t u
    cdef Unit t
    cdef fa_bwdpg_h16 k = fa_half_bwdpg(fmt, kid)
    cdef fa_bwdpgv_h16 kv = fa_half_bwdpgv(fmt, kid)
    for u in range(u0, u1):
        t = _unit(u, geo)
        if geo.vector:
            kv(g + t.off, s + t.off, out + t.off, t.n, geo.wf + t.acc, acc + t.acc)
        else:
            k(g + t.off, s + t.off, out + t.off, t.n, t.p, acc + t.acc)


cdef void _half_channel_fwd_run(int fmt, int kid, const uint16_t *xp, uint16_t *op,
                                const Geometry *geo, int nthreads) noexcept nogil:
    """All units of ``geo`` on up to ``nthreads`` threads."""
    cdef Py_ssize_t units = geo.rows * geo.segs, c, nch
    if nthreads < 1 or geo.rows * geo.rowlen < 2 * MIN_CHUNK:
        nthreads = 1
    nch = nthreads if nthreads < units else units
    if nch < 1:
        return
    if nch == 1:
        _half_units_forward(fmt, kid, xp, op, 0, units, geo)
    else:
        for c in prange(nch, schedule="static", num_threads=nch):
            _half_units_forward(fmt, kid, xp, op, c * units // nch, (c + 1) * units // nch, geo)


def half_channel_forward(int fmt, int kid, cnp.ndarray x, cnp.ndarray out,
                         cnp.ndarray weight, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                         int nthreads=1):
    """channel_forward on 16-bit bits (uint16 views of format ``fmt``), in float32."""
    cdef cnp.ndarray wf = _as_floats(weight)
    cdef Geometry geo = _geometry(outer, C, inner, <const double *>cnp.PyArray_DATA(weight),
                                  _float_data(wf))
    if fmt != 1 and fmt != 2:
        raise ValueError("fmt must be 1 (float16) or 2 (bfloat16)")
    _check_half(x, "x")
    _check_half(out, "out")
    cdef const uint16_t *xp = <const uint16_t *>cnp.PyArray_DATA(x)
    cdef uint16_t *op = <uint16_t *>cnp.PyArray_DATA(out)
    with nogil:
        _half_channel_fwd_run(fmt, kid, xp, op, &geo, nthreads)
    return out


def half_channel_backward(int fmt, int kid, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out,
                          cnp.ndarray weight, Py_ssize_t outer, Py_ssize_t C,
                          Py_ssize_t inner, int nthreads=1):
    """channel_backward on 16-bit bits, in float32: the parameter gradient (C doubles)
    from the partial sums of channel_backward's blocks, reduced in block order."""
    cdef cnp.ndarray wf = _as_floats(weight)
    cdef Geometry geo = _geometry(outer, C, inner, <const double *>cnp.PyArray_DATA(weight),
                                  _float_data(wf))
    cdef Py_ssize_t units = geo.rows * geo.segs, blk
    cdef Py_ssize_t nblocks = units if units < PGRAD_BLOCKS else PGRAD_BLOCKS
    if fmt != 1 and fmt != 2:
        raise ValueError("fmt must be 1 (float16) or 2 (bfloat16)")
    _check_half(g, "g")
    _check_half(s, "s")
    _check_half(out, "out")
    if nblocks < 1:
        return np.zeros(C)
    if nthreads < 1 or geo.rows * geo.rowlen < 2 * MIN_CHUNK:
        nthreads = 1
    if nthreads > nblocks:
        nthreads = <int>nblocks
    partial = np.zeros((nblocks, C))
    cdef double *pp = <double *>cnp.PyArray_DATA(partial)
    cdef const uint16_t *gp = <const uint16_t *>cnp.PyArray_DATA(g)
    cdef const uint16_t *sp = <const uint16_t *>cnp.PyArray_DATA(s)
    cdef uint16_t *op = <uint16_t *>cnp.PyArray_DATA(out)
    with nogil:
        if nthreads == 1:
            for blk in range(nblocks):
                _half_units_backward(fmt, kid, gp, sp, op, blk * units // nblocks,
                                     (blk + 1) * units // nblocks, &geo, pp + blk * geo.C)
        else:
            for blk in prange(nblocks, schedule="static", num_threads=nthreads):
                _half_units_backward(fmt, kid, gp, sp, op, blk * units // nblocks,
                                     (blk + 1) * units // nblocks, &geo, pp + blk * geo.C)
    return _reduced(partial)


# The fast path of 16-bit per-channel calls (prelu): as float32's (fast_channel_forward,
# fast_channel_backward in _channel.pxi) with float32's plan, through the units above;
# the weight gradient's float64 sums rounded once to the array's type.

cdef object _fast_half_channel_forward(int kid, object x, object weight, object out):
    cdef cnp.ndarray a, o
    cdef int fmt = _fast_half_fmt(x, kid), nthreads
    cdef bint above, tile, numba
    cdef Py_ssize_t n, C = 1, outer, inner, run
    cdef double stack[FAST_STACK_W]
    cdef float fstack[FAST_STACK_W]
    cdef double *w
    cdef const float *wf = NULL
    cdef float *wf_owned = NULL
    cdef const uint16_t *xp
    cdef uint16_t *op
    cdef NbChannel nb
    cdef const NbChannel *via = NULL
    if fmt == 0 or not _fast_channel_kernels(0, kid, False):
        return None
    a = <cnp.ndarray>x
    n = cnp.PyArray_SIZE(a)
    nthreads = _decide(n, 0, 0, kid, False)  # 1: below the serial limit
    above = nthreads != 1
    if above:
        nthreads = _decide(n, 0, 0, kid, True)
    if nthreads == 0:
        return None
    w = _fast_weight(weight, a, 0, stack, &C)
    if w == NULL:
        return None
    try:
        outer = cnp.PyArray_DIM(a, 0) if C > 1 else 1
        inner = n // (outer * C) if C > 1 else n
        tile = C > 1 and inner == 1 and outer > 1 and C < ROW_RUN
        run = _rows_per_run(outer, C)
        if nthreads > 1 and (n if not tile else (outer // run) * run * C) < 2 * MIN_CHUNK:
            nthreads = 1
        res = _fast_out(a, out, n * 2, None)
        if res is None:
            return None
        o = <cnp.ndarray>res
        wf = _fast_floats(weight, w, C, fstack, &wf_owned, o)
        if wf == NULL:
            return None
        numba = _numba_runs(0, 0, kid, nthreads)
        # Numba's kernels for the format, as its 16-bit driver runs them
        if numba:
            if not _nb_channel(0, N_DTYPES + fmt - 1, kid, o is a, inner == 1, &nb):
                return None
            via = &nb
        xp = <const uint16_t *>cnp.PyArray_DATA(a)
        op = <uint16_t *>cnp.PyArray_DATA(o)
        if nthreads > 1:
            nthreads = _par_begin(nthreads)
        if tile:
            with nogil:
                _fwd_tiled(kid, -fmt, via, <const char *>xp, <char *>op, outer, C, w, wf, 2,
                           nthreads)
        elif n < GIL_RELEASE_MIN and nthreads == 1:
            _fwd_units(kid, -fmt, via, xp, op, _geometry(outer, C, inner, w, wf), 1)
        else:
            with nogil:
                _fwd_units(kid, -fmt, via, xp, op, _geometry(outer, C, inner, w, wf), nthreads)
        if nthreads > 1:
            _par_end()
        return o
    finally:
        if w != stack:
            PyMem_Free(w)
        PyMem_Free(wf_owned)


cdef object _fast_half_channel_backward(int kid, object g, object s, object weight,
                                        object out):
    cdef cnp.ndarray ga, sa, o
    cdef int fmt = _fast_half_fmt(g, kid)
    cdef Py_ssize_t n, C = 1, outer, most
    cdef double stack[FAST_STACK_W]
    cdef float fstack[FAST_STACK_W]
    cdef double *w
    cdef const float *wf = NULL
    cdef float *wf_owned = NULL
    cdef double *buf = NULL
    cdef const uint16_t *gp
    cdef const uint16_t *sp
    cdef uint16_t *op
    cdef double *gwp
    cdef cnp.ndarray gw
    cdef Py_ssize_t c
    cdef int nthreads
    cdef bint big, numba
    cdef ChanVia via
    cdef NbChannel nb
    if fmt == 0 or not _fast_channel_kernels(0, kid, True):
        return None
    ga = <cnp.ndarray>g
    n = cnp.PyArray_SIZE(ga)
    nthreads = _channel_threads(n, 1, 0, kid)
    if nthreads == 0:
        return None
    numba = _numba_runs(1, 0, kid, nthreads)
    if not _plain(s, cnp.PyArray_TYPE(ga)) or not _same_shape(ga, <cnp.ndarray>s):
        return None
    sa = <cnp.ndarray>s
    w = _fast_weight(weight, ga, 0, stack, &C)
    if w == NULL:
        return None
    try:
        res = _fast_out(ga, out, n * 2, s)
        if res is None:
            return None
        o = <cnp.ndarray>res
        wf = _fast_floats(weight, w, C, fstack, &wf_owned, o)
        if wf == NULL:
            return None
        outer = cnp.PyArray_DIM(ga, 0) if C > 1 else 1
        # Numba's kernels for the format, as its 16-bit driver runs them
        if numba and not _nb_channel(1, N_DTYPES + fmt - 1, kid, o is ga, n // (outer * C) == 1,
                                     &nb):
            return None
        gw = np.empty(C)
        most = C if C > ROW_RUN else ROW_RUN
        buf = _channel_buffers(most, n, outer, C, nthreads, &via)
        if buf == NULL:
            return None
        gp = <const uint16_t *>cnp.PyArray_DATA(ga)
        sp = <const uint16_t *>cnp.PyArray_DATA(sa)
        op = <uint16_t *>cnp.PyArray_DATA(o)
        gwp = <double *>cnp.PyArray_DATA(gw)
        via.nb = &nb if numba else NULL
        via.fmt = fmt
        if nthreads > 1:
            via.nthreads = _par_begin(nthreads)
        with nogil:
            _fast_channel_bwd(kid, gp, sp, op, n, outer, C, w, wf, buf, gwp, <uint16_t *>NULL,
                              &via)
        if nthreads > 1:
            _par_end()
        big = False
        for c in range(C):  # beyond the format's largest finite value, or NaN
            if not fabs(gwp[c]) <= (65504.0 if fmt == 1 else 3.3895313892515355e38):
                big = True
        if big:  # fastact._half.round_to: overflow to inf without a warning
            with np.errstate(over="ignore"):
                gwa = gw.astype(ga.dtype)
        else:
            gwa = gw.astype(ga.dtype)
        return o, gwa.reshape(() if type(weight) is not cnp.ndarray else (<object>weight).shape)
    finally:
        if w != stack:
            PyMem_Free(w)
        PyMem_Free(wf_owned)
        PyMem_Free(buf)
