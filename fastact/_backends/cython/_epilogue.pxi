# Bias epilogues of elementwise entries: act(x + bias) and, backward, the gradient
# with the bias gradient summed in the same pass.
#
# The flat C-order buffer is an (outer, C, inner) array and element k has the
# bias b[(k // inner) % C].  Each thread runs its range in tiles of TILE
# elements: z = x + b into a tile on its stack, then the entry's kernel from the
# tile (the loops of fa_epilogue.h; the tile stays in L1, so memory sees one read and one write per
# element).  The backward sums each tile's gradient into the partial sums of
# its block: a fixed number of element blocks (chosen by fastact._api.epilogue
# from the shape), C sums of `lanes` doubles each (element k into lane k % 8
# when inner > 1), added in increasing k; the caller combines them in a fixed
# order.  Same bits for any thread count, and on the Numba backend
# (fastact/_backends/numba/drivers.py, whose constants these are).

DEF TILE = 1024


cdef extern from "fa_epilogue.h" nogil:
    void fa_add_bias_f32(const float *, const float *, float *, Py_ssize_t, Py_ssize_t,
                         Py_ssize_t, Py_ssize_t) noexcept nogil
    void fa_add_bias_f64(const double *, const double *, double *, Py_ssize_t, Py_ssize_t,
                         Py_ssize_t, Py_ssize_t) noexcept nogil
    void fa_sum_bias_f32(const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                         double *) noexcept nogil
    void fa_sum_bias_f64(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                         double *) noexcept nogil


cdef inline void _add_bias(const real *x, const real *b, real *z, Py_ssize_t k0, Py_ssize_t n,
                           Py_ssize_t C, Py_ssize_t inner) noexcept nogil:
    """z[j] = x[j] + b[((k0 + j) // inner) % C] for j < n (x points at element k0)."""
    if real is float:
        fa_add_bias_f32(x, b, z, k0, n, C, inner)
    else:
        fa_add_bias_f64(x, b, z, k0, n, C, inner)


cdef inline void _sum_bias(const real *gi, Py_ssize_t k0, Py_ssize_t n, Py_ssize_t C,
                           Py_ssize_t inner, double *acc) noexcept nogil:
    """acc[c] += gi (inner == 1), or acc[8 * c + k % 8] += gi (inner > 1), in increasing k."""
    if real is float:
        fa_sum_bias_f32(gi, k0, n, C, inner, acc)
    else:
        fa_sum_bias_f64(gi, k0, n, C, inner, acc)


cdef void _bias_fwd_range(int table, int kid, const real *x, const real *b, real *out,
                          Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t C, Py_ssize_t inner,
                          const double *p, uint64_t seed) noexcept nogil:
    cdef real z[TILE]
    cdef Py_ssize_t t = k0, ln
    while t < k1:
        ln = TILE if k1 - t > TILE else k1 - t
        _add_bias(x + t, b, z, t, ln, C, inner)
        _unary(table, kid, z, out + t, ln, p, seed, t)
        t += ln


cdef void _bias_bwd_range(int table, int kid, const real *g, const real *s, const real *b,
                          real *out, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t C,
                          Py_ssize_t inner, bint recompute, const double *p, uint64_t seed,
                          double *acc) noexcept nogil:
    cdef real z[TILE]
    cdef Py_ssize_t t = k0, ln
    while t < k1:
        ln = TILE if k1 - t > TILE else k1 - t
        if recompute:
            _add_bias(s + t, b, z, t, ln, C, inner)
            _binary(table, kid, g + t, z, out + t, ln, p, seed, t)
        else:
            _binary(table, kid, g + t, s + t, out + t, ln, p, seed, t)
        _sum_bias(out + t, t, ln, C, inner, acc)
        t += ln


cdef void _bias_fwd(int table, int kid, const real *x, const real *b, real *out, Py_ssize_t n,
                    Py_ssize_t C, Py_ssize_t inner, const double *p, uint64_t seed,
                    int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, stop
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        _bias_fwd_range(table, kid, x, b, out, 0, n, C, inner, p, seed)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            stop = start + step if start + step <= n else n
            _bias_fwd_range(table, kid, x, b, out, start, stop, C, inner, p, seed)


cdef void _bias_bwd(int table, int kid, const real *g, const real *s, const real *b, real *out,
                    Py_ssize_t n, Py_ssize_t C, Py_ssize_t inner, bint recompute,
                    const double *p, uint64_t seed, double *partial, Py_ssize_t nblocks,
                    Py_ssize_t width, int nthreads) noexcept nogil:
    cdef Py_ssize_t blk
    if nthreads <= 1 or nblocks <= 1:
        for blk in range(nblocks):
            _bias_bwd_range(table, kid, g, s, b, out, blk * n // nblocks,
                            (blk + 1) * n // nblocks, C, inner, recompute, p, seed,
                            partial + blk * width)
        return
    for blk in prange(nblocks, schedule="static", num_threads=nthreads):
        _bias_bwd_range(table, kid, g, s, b, out, blk * n // nblocks, (blk + 1) * n // nblocks,
                        C, inner, recompute, p, seed, partial + blk * width)


def bias_forward(int kind, int kid, cnp.ndarray x, cnp.ndarray bias, cnp.ndarray out,
                 Py_ssize_t C, Py_ssize_t inner, tuple params, uint64_t seed=0,
                 int nthreads=1):
    """out = f(x + bias) over C-contiguous buffers, ``bias`` (C elements) along
    an (outer, C, inner) view (kind FORWARD or TRAIN_FORWARD)."""
    cdef double p[MAX_PARAMS]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef int di = _dtype_index(x)
    cdef int table = PLAIN if kind == FORWARD else TRAIN
    if kid < 0 or kid >= FA_N_KERNELS or di < 0 or not _has_unary(di, table, kid):
        raise ValueError("no such kernel")
    if C < 1 or inner < 1 or cnp.PyArray_SIZE(bias) != C or _dtype_index(bias) != di:
        raise ValueError("bias does not match")
    _fill_params(params, p)
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef const void *bp = cnp.PyArray_DATA(bias)
    cdef void *op = cnp.PyArray_DATA(out)
    with nogil:
        if di == 0:
            _bias_fwd(table, kid, <const float *>xp, <const float *>bp, <float *>op, n, C,
                      inner, p, seed, nthreads)
        else:
            _bias_fwd(table, kid, <const double *>xp, <const double *>bp, <double *>op, n, C,
                      inner, p, seed, nthreads)
    return out


def bias_backward(int kind, int kid, cnp.ndarray g, cnp.ndarray s, cnp.ndarray bias,
                  cnp.ndarray out, Py_ssize_t C, Py_ssize_t inner, bint recompute,
                  tuple params, cnp.ndarray partial, uint64_t seed=0, int nthreads=1):
    """out = f'(g, s + bias) (``recompute``) or f'(g, s), and the bias gradient's
    partial sums added into ``partial`` (float64, nblocks x C x lanes, zeroed)."""
    cdef double p[MAX_PARAMS]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(g)
    cdef int di = _dtype_index(g)
    cdef int table = PLAIN if kind == BACKWARD else TRAIN
    cdef Py_ssize_t lanes = 8 if inner > 1 else 1
    cdef Py_ssize_t nblocks, width = C * lanes
    if kid < 0 or kid >= FA_N_KERNELS or di < 0 or not _has_binary(di, table, kid):
        raise ValueError("no such kernel")
    if C < 1 or inner < 1 or cnp.PyArray_SIZE(bias) != C or _dtype_index(bias) != di:
        raise ValueError("bias does not match")
    if (cnp.PyArray_TYPE(partial) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(partial)
            or cnp.PyArray_NDIM(partial) != 3 or cnp.PyArray_DIM(partial, 1) != C
            or cnp.PyArray_DIM(partial, 2) != lanes):
        raise ValueError("partial must be float64 (nblocks, C, lanes)")
    nblocks = cnp.PyArray_DIM(partial, 0)
    _fill_params(params, p)
    cdef const void *gp = cnp.PyArray_DATA(g)
    cdef const void *sp = cnp.PyArray_DATA(s)
    cdef const void *bp = cnp.PyArray_DATA(bias)
    cdef void *op = cnp.PyArray_DATA(out)
    cdef double *pp = <double *>cnp.PyArray_DATA(partial)
    with nogil:
        if di == 0:
            _bias_bwd(table, kid, <const float *>gp, <const float *>sp, <const float *>bp,
                      <float *>op, n, C, inner, recompute, p, seed, pp, nblocks, width,
                      nthreads)
        else:
            _bias_bwd(table, kid, <const double *>gp, <const double *>sp, <const double *>bp,
                      <double *>op, n, C, inner, recompute, p, seed, pp, nblocks, width,
                      nthreads)
    return partial
