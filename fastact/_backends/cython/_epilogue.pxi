# Bias epilogues of elementwise entries: act(x + bias) and, backward, the gradient
# with the bias gradient summed in the same pass.
#
# The flat C-order buffer is an (outer, C, inner) array and element k has the
# bias b[(k // inner) % C].  The forward runs each thread's range in tiles of
# TILE elements: z = x + b into a tile on its stack, then the entry's kernel
# from the tile (the tile stays in L1, so memory sees one read and one write
# per element).
#
# The backward runs the kernel on a tile (x + b first where the entry saves
# its input) and sums the tile's gradient while it is in L1, into the double
# partial sums of its block: a fixed number of blocks (chosen by
# fastact._api.epilogue from the size), then combined in block order
# (fa_bias_combine).  Short runs (inner < RUNS_FROM, the dense layer's
# inner == 1): blocks of rows of C * inner elements, the rows added in groups
# (fa_bias_rows), threads over (block, column tile) units.  Long runs: blocks of
# elements, each run of one channel added in lanes (fa_bias_runs).  The order
# of every addition is fixed by the shape: same bits for any thread count, and
# on the Numba backend (fastact/_backends/numba/drivers.py, whose constants
# these are).
#
# Where the forward's kernel is memory-bound (FA_NT_FWD), the arrays too large
# to stay in cache and the output none of the inputs (fa_nt_stores, asked
# outside the parallel region: of the whole call), each tile's result goes to
# a second tile on the stack and to memory by non-temporal stores: the output
# is written once, not read first.  The same bits either way.  The backward's
# memory-bound entries (FA_BWDS) sum each row as they store it, and on large
# calls store it by non-temporal stores from a tile; the others, and the long
# runs, store through the cache.

DEF TILE = 1024
# The backward's short-run order: columns of a row tile (a multiple of inner
# when inner > 1), and the most elements of whole rows one kernel call takes.
DEF COLS = 2048
DEF BATCH = 1024
# Rows of at least SUM_MIN columns sum as they store (FA_BWDS), a row per call,
# and (inner 1) add the bias in the forward's loop (FA_FWDB); large calls store
# them through tiles of NT_TILE elements by non-temporal stores (relu, float32,
# 10^7: tiles of 512 took 0.8-0.9x the time of 1024).
DEF SUM_MIN = 256
DEF NT_TILE = 512


cdef extern from "fa_epilogue.h" nogil:
    void fa_add_bias_f32(const float *, const float *, float *, Py_ssize_t, Py_ssize_t,
                         Py_ssize_t, Py_ssize_t) noexcept nogil
    void fa_add_bias_f64(const double *, const double *, double *, Py_ssize_t, Py_ssize_t,
                         Py_ssize_t, Py_ssize_t) noexcept nogil
    enum:
        FA_BIAS_GROUP
        FA_BIAS_LANES
        FA_BIAS_SEGMENT
        FA_BIAS_RUNS_FROM
    void fa_fill_bias_f32(const float *, float *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                          Py_ssize_t) noexcept nogil
    void fa_fill_bias_f64(const double *, double *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                          Py_ssize_t) noexcept nogil
    void fa_bias_flush_f32(const float *, Py_ssize_t, Py_ssize_t, double *) noexcept nogil
    void fa_bias_flush_f64(const double *, Py_ssize_t, Py_ssize_t, double *) noexcept nogil
    void fa_bias_rows_f32(const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, int,
                          Py_ssize_t, float *, double *) noexcept nogil
    void fa_bias_rows_f64(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, int,
                          Py_ssize_t, double *, double *) noexcept nogil
    void fa_bias_runs_f32(const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                          float *, double *, double *) noexcept nogil
    void fa_bias_runs_f64(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                          double *, double *, double *) noexcept nogil
    void fa_bias_close_f32(float *, double *, double *) noexcept nogil
    void fa_bias_close_f64(double *, double *, double *) noexcept nogil
    void fa_bias_combine(double *, Py_ssize_t, Py_ssize_t) noexcept nogil

# The backward at s + b of the entries that save their input (FA_BWDB of
# fa_kernels.h, NULL for the others): out = f'(g, s + b), b a tile of the bias
# of each element, the sum rounded as when stored first.  FA_BWDS (the
# memory-bound entries, NULL for the others): the backward (at s + b where the
# entry saves its input) that also adds each value it stores into f[k].
# FA_FWDB (the same entries): the forward at x + b, b read per element.
cdef extern from "fa_kernels.h" nogil:
    ctypedef void (*fa_bwdb_f32)(const float *, const float *, const float *, float *,
                                 Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_bwdb_f64)(const double *, const double *, const double *, double *,
                                 Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    fa_bwdb_f32 *FA_BWDB_F32
    fa_bwdb_f64 *FA_BWDB_F64
    ctypedef void (*fa_bwds_f32)(const float *, const float *, const float *, float *, float *,
                                 Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_bwds_f64)(const double *, const double *, const double *, double *,
                                 double *, Py_ssize_t, const double *, uint64_t,
                                 int64_t) noexcept nogil
    fa_bwds_f32 *FA_BWDS_F32
    fa_bwds_f64 *FA_BWDS_F64
    ctypedef void (*fa_fwdb_f32)(const float *, const float *, float *, Py_ssize_t,
                                 const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_fwdb_f64)(const double *, const double *, double *, Py_ssize_t,
                                 const double *, uint64_t, int64_t) noexcept nogil
    fa_fwdb_f32 *FA_FWDB_F32
    fa_fwdb_f64 *FA_FWDB_F64
    const unsigned char *FA_NT_FWD

# The backward's order of summation (fa_epilogue.h), for the check that the
# Numba drivers use the same: (GROUP, LANES, SEGMENT, RUNS_FROM).
BIAS_ORDER = (FA_BIAS_GROUP, FA_BIAS_LANES, FA_BIAS_SEGMENT, FA_BIAS_RUNS_FROM)


cdef inline void _add_bias(const real *x, const real *b, real *z, Py_ssize_t k0, Py_ssize_t n,
                           Py_ssize_t C, Py_ssize_t inner) noexcept nogil:
    """z[j] = x[j] + b[((k0 + j) // inner) % C] for j < n (x points at element k0)."""
    if real is float:
        fa_add_bias_f32(x, b, z, k0, n, C, inner)
    else:
        fa_add_bias_f64(x, b, z, k0, n, C, inner)


cdef void _bias_fwd_rows(int kid, const real *x, const real *b, real *out, Py_ssize_t k0,
                         Py_ssize_t k1, Py_ssize_t C, const double *p, uint64_t seed,
                         bint nt) noexcept nogil:
    """Elements k0..k1-1 of rows of C elements (inner 1): the forward at x + b in one
    loop (FA_FWDB) on pieces that end with their row, reading the bias in place;
    with ``nt`` through a tile by non-temporal stores."""
    cdef real w[NT_TILE]
    cdef real *o
    cdef Py_ssize_t t = k0, c, ln
    cdef Py_ssize_t most = NT_TILE if nt else TILE
    while t < k1:
        c = t % C
        ln = C - c
        if ln > most:
            ln = most
        if ln > k1 - t:
            ln = k1 - t
        o = &w[0] if nt else out + t
        if real is float:
            FA_FWDB_F32[kid](x + t, b + c, o, ln, p, seed, t)
        else:
            FA_FWDB_F64[kid](x + t, b + c, o, ln, p, seed, t)
        if nt:
            fa_nt_copy(out + t, w, <size_t>ln * sizeof(real))
        t += ln
    if nt:
        fa_nt_fence()


cdef void _bias_fwd_range(int table, int kid, const real *x, const real *b, real *out,
                          Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t C, Py_ssize_t inner,
                          const double *p, uint64_t seed, bint nt) noexcept nogil:
    if table == PLAIN and inner == 1 and C >= SUM_MIN and FA_FWDB_F32[kid] != NULL:
        _bias_fwd_rows(kid, x, b, out, k0, k1, C, p, seed, nt)
        return
    cdef real z[TILE]
    cdef real w[TILE]
    cdef Py_ssize_t t = k0, ln
    # x prefetched ahead in large chunks, as the plain kernels' drivers do
    cdef bint pf = fa_prefetching(k1 - k0, sizeof(real))
    cdef Py_ssize_t a = FA_AHEAD_BYTES // sizeof(real)
    while t < k1:
        ln = TILE if k1 - t > TILE else k1 - t
        if pf:
            fa_prefetch(x, t + a, t + ln + a, k1, sizeof(real))
        _add_bias(x + t, b, z, t, ln, C, inner)
        if nt:
            _unary(table, kid, z, w, ln, p, seed, t)
            fa_nt_copy(out + t, w, <size_t>ln * sizeof(real))
        else:
            _unary(table, kid, z, out + t, ln, p, seed, t)
        t += ln
    if nt:
        fa_nt_fence()


cdef void _bias_fwd(int table, int kid, const real *x, const real *b, real *out, Py_ssize_t n,
                    Py_ssize_t C, Py_ssize_t inner, const double *p, uint64_t seed,
                    int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, stop
    cdef Py_ssize_t step = _chunk_len(n, nch)
    cdef bint nt = (FA_NT_FWD[kid] and <const real *>out != x
                    and fa_nt_stores(out, n, sizeof(real), 2))
    if nch <= 1:
        _bias_fwd_range(table, kid, x, b, out, 0, n, C, inner, p, seed, nt)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            stop = start + step if start + step <= n else n
            _bias_fwd_range(table, kid, x, b, out, start, stop, C, inner, p, seed, nt)


cdef inline void _bwd_tile(int table, int kid, const real *g, const real *s, const real *b,
                           real *z, bint tiled, real *out, Py_ssize_t k, Py_ssize_t n,
                           Py_ssize_t C, Py_ssize_t inner, bint recompute, const double *p,
                           uint64_t seed) noexcept nogil:
    """out = f'(g, s + b) (``recompute``) or f'(g, s) for elements k..k+n-1.

    With ``tiled``, z holds the bias of those elements and the kernel at s + b
    reads it (FA_BWDB); otherwise s + b is first written into z.
    """
    if not recompute:
        _binary(table, kid, g + k, s + k, out + k, n, p, seed, k)
    elif tiled:
        if real is float:
            FA_BWDB_F32[kid](g + k, s + k, z, out + k, n, p, seed, k)
        else:
            FA_BWDB_F64[kid](g + k, s + k, z, out + k, n, p, seed, k)
    else:
        _add_bias(s + k, b, z, k, n, C, inner)
        _binary(table, kid, g + k, z, out + k, n, p, seed, k)


cdef inline void _fill_bias(const real *b, real *z, Py_ssize_t k0, Py_ssize_t n, Py_ssize_t C,
                            Py_ssize_t inner) noexcept nogil:
    if real is float:
        fa_fill_bias_f32(b, z, k0, n, C, inner)
    else:
        fa_fill_bias_f64(b, z, k0, n, C, inner)


cdef inline void _bwd_summed(int kid, const real *g, const real *s, const real *z, real *out,
                             real *f, Py_ssize_t k, Py_ssize_t w, const double *p,
                             uint64_t seed, bint nt, real *t) noexcept nogil:
    """out = f'(g, s [+ z]) for elements k..k+w-1 (one row's columns), each value also
    added into f[0..w); with ``nt`` through the tile t (NT_TILE) by non-temporal stores."""
    cdef Py_ssize_t j = 0, ln
    if not nt:
        if real is float:
            FA_BWDS_F32[kid](g + k, s + k, z, out + k, f, w, p, seed, k)
        else:
            FA_BWDS_F64[kid](g + k, s + k, z, out + k, f, w, p, seed, k)
        return
    while j < w:
        ln = NT_TILE if w - j > NT_TILE else w - j
        if real is float:
            FA_BWDS_F32[kid](g + k + j, s + k + j, z + j, t, f + j, ln, p, seed, k + j)
        else:
            FA_BWDS_F64[kid](g + k + j, s + k + j, z + j, t, f + j, ln, p, seed, k + j)
        fa_nt_copy(out + k + j, t, <size_t>ln * sizeof(real))
        j += ln


cdef void _bias_bwd_rows(int table, int kid, const real *g, const real *s, const real *b,
                         real *out, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t j0, Py_ssize_t w,
                         Py_ssize_t C, Py_ssize_t inner, bint recompute, const double *p,
                         uint64_t seed, double *acc, bint nt) noexcept nogil:
    """Rows r0..r1-1 (a block) of columns j0..j0+w-1 of the (outer, C * inner) array:
    the gradient, and its sums over the rows into acc (the channels of those columns).

    Where the entry has a kernel that sums as it stores (FA_BWDS) and the rows are
    long enough (SUM_MIN), each row is one such call (``nt``: through a tile, by
    non-temporal stores); otherwise the kernel runs on several rows at once and
    fa_bias_rows sums them from L1.  The same additions in the same order."""
    cdef real z[COLS]
    cdef real f[COLS]
    cdef real t[NT_TILE]
    cdef Py_ssize_t W = C * inner, r = r0, m, k, ln, j
    cdef Py_ssize_t batch = BATCH // W if w == W and W < BATCH else 1
    # every call starts at column j0 of a row: one tile of bias serves them all
    cdef bint tiled = recompute and table == PLAIN and FA_BWDB_F32[kid] != NULL
    if tiled:
        _fill_bias(b, z, j0, (batch - 1) * W + w, C, inner)
    for j in range(w // inner):
        acc[j] = 0
    if table == PLAIN and FA_BWDS_F32[kid] != NULL and w >= SUM_MIN:
        if recompute:
            _fill_bias(b, z, j0, w, C, inner)
        for r in range(r0, r1):
            if (r - r0) % FA_BIAS_GROUP == 0:
                for j in range(w):
                    f[j] = 0
            _bwd_summed(kid, g, s, z, out, f, r * W + j0, w, p, seed, nt, t)
            if (r - r0) % FA_BIAS_GROUP == FA_BIAS_GROUP - 1 or r == r1 - 1:
                if real is float:
                    fa_bias_flush_f32(f, w, inner, acc)
                else:
                    fa_bias_flush_f64(f, w, inner, acc)
        if nt:
            fa_nt_fence()
        return
    while r < r1:
        m = batch if r1 - r > batch else r1 - r
        k = r * W + j0
        ln = (m - 1) * W + w  # several rows only when they are whole (w == W)
        _bwd_tile(table, kid, g, s, b, z, tiled, out, k, ln, C, inner, recompute, p, seed)
        if real is float:
            fa_bias_rows_f32(out + k, m, w, W, r - r0, r + m == r1, inner, f, acc)
        else:
            fa_bias_rows_f64(out + k, m, w, W, r - r0, r + m == r1, inner, f, acc)
        r += m


cdef void _bias_bwd_runs(int table, int kid, const real *g, const real *s, const real *b,
                         real *out, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t C,
                         Py_ssize_t inner, bint recompute, const double *p, uint64_t seed,
                         double *acc) noexcept nogil:
    """Elements k0..k1-1 (a block): the gradient, and its sums by channel into acc."""
    cdef real z[TILE]
    cdef real fl[FA_BIAS_LANES]
    cdef double dl[FA_BIAS_LANES]
    cdef Py_ssize_t t = k0, ln, j
    cdef bint tiled = recompute and table == PLAIN and FA_BWDB_F32[kid] != NULL
    for j in range(C):
        acc[j] = 0
    for j in range(FA_BIAS_LANES):
        fl[j] = 0
        dl[j] = 0
    while t < k1:
        ln = TILE if k1 - t > TILE else k1 - t
        if tiled:
            _fill_bias(b, z, t, ln, C, inner)
        _bwd_tile(table, kid, g, s, b, z, tiled, out, t, ln, C, inner, recompute, p, seed)
        if real is float:
            fa_bias_runs_f32(out + t, t, ln, C, inner, fl, dl, acc)
        else:
            fa_bias_runs_f64(out + t, t, ln, C, inner, fl, dl, acc)
        t += ln
    if k1 % inner:  # the block ends inside a run: close its part
        if real is float:
            fa_bias_close_f32(fl, dl, acc + (k1 - 1) // inner % C)
        else:
            fa_bias_close_f64(fl, dl, acc + (k1 - 1) // inner % C)


cdef inline void _bias_bwd_unit(int table, int kid, const real *g, const real *s,
                                const real *b, real *out, Py_ssize_t n, Py_ssize_t C,
                                Py_ssize_t inner, bint recompute, const double *p,
                                uint64_t seed, double *partial, Py_ssize_t nblocks,
                                Py_ssize_t cw, Py_ssize_t nq, Py_ssize_t u,
                                bint nt) noexcept nogil:
    """Unit u: a block (long runs), or a block's column tile of cw channels (short runs)."""
    cdef Py_ssize_t blk, q, cn, outer
    if nq == 0:
        _bias_bwd_runs(table, kid, g, s, b, out, u * n // nblocks, (u + 1) * n // nblocks, C,
                       inner, recompute, p, seed, partial + u * C)
        return
    blk = u // nq
    q = u % nq
    cn = cw if C - q * cw > cw else C - q * cw
    outer = n // (C * inner)
    _bias_bwd_rows(table, kid, g, s, b, out, blk * outer // nblocks,
                   (blk + 1) * outer // nblocks, q * cw * inner, cn * inner, C, inner,
                   recompute, p, seed, partial + blk * C + q * cw, nt)


cdef void _bias_bwd(int table, int kid, const real *g, const real *s, const real *b, real *out,
                    Py_ssize_t n, Py_ssize_t C, Py_ssize_t inner, bint recompute,
                    const double *p, uint64_t seed, double *partial, Py_ssize_t nblocks,
                    int nthreads) noexcept nogil:
    cdef Py_ssize_t cw = 0, nq = 0, units = nblocks, u
    # of the whole call, asked outside the parallel region (as the forward's)
    cdef bint nt = (table == PLAIN and FA_BWDS_F32[kid] != NULL and <const real *>out != g
                    and <const real *>out != s and fa_nt_stores(out, n, sizeof(real), 3))
    if inner < FA_BIAS_RUNS_FROM:
        cw = COLS // inner if COLS // inner < C else C
        nq = (C + cw - 1) // cw
        units = nblocks * nq
    if nthreads <= 1 or units <= 1:
        for u in range(units):
            _bias_bwd_unit(table, kid, g, s, b, out, n, C, inner, recompute, p, seed, partial,
                           nblocks, cw, nq, u, nt)
    else:
        for u in prange(units, schedule="static", num_threads=nthreads):
            _bias_bwd_unit(table, kid, g, s, b, out, n, C, inner, recompute, p, seed, partial,
                           nblocks, cw, nq, u, nt)
    fa_bias_combine(partial, nblocks, C)


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
    """out = f'(g, s + bias) (``recompute``) or f'(g, s), and the bias gradient
    (float64) in the first row of ``partial`` (float64, nblocks x C; the other
    rows are the blocks' partial sums)."""
    cdef double p[MAX_PARAMS]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(g)
    cdef int di = _dtype_index(g)
    cdef int table = PLAIN if kind == BACKWARD else TRAIN
    cdef Py_ssize_t nblocks
    if kid < 0 or kid >= FA_N_KERNELS or di < 0 or not _has_binary(di, table, kid):
        raise ValueError("no such kernel")
    if (C < 1 or inner < 1 or n % (C * inner) or cnp.PyArray_SIZE(bias) != C
            or _dtype_index(bias) != di):
        raise ValueError("bias does not match")
    if (cnp.PyArray_TYPE(partial) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(partial)
            or cnp.PyArray_NDIM(partial) != 2 or cnp.PyArray_DIM(partial, 1) != C
            or not 1 <= cnp.PyArray_DIM(partial, 0) <= (n if n > 0 else 1)):
        raise ValueError("partial must be float64 (nblocks, C), 1 <= nblocks <= size")
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
                      <float *>op, n, C, inner, recompute, p, seed, pp, nblocks, nthreads)
        else:
            _bias_bwd(table, kid, <const double *>gp, <const double *>sp, <const double *>bp,
                      <double *>op, n, C, inner, recompute, p, seed, pp, nblocks, nthreads)
    return partial


# The fast path of bias calls (fastact._api.fast): the common case decided in C,
# as the plain calls' (_fast.pxi): exact float32/float64 C-contiguous arrays of
# one dtype, a plain 1-d bias of x.shape[bias_axis] elements that shares no
# memory with the output, bias_axis an int in range, float parameters, the
# serial Cython kernel or the OpenMP driver where a plain call of that size runs
# them.  Anything else returns None and the general path (fastact._api.epilogue)
# validates and raises; nothing is written before every check has passed.  The
# kernels, chunks, blocks and summation order are the general path's: same bits.

# The bias gradient's blocks (fastact._api.epilogue.blocks, whose constants
# these are, pushed by set_bias_blocks): 0 until pushed, the path then off.
cdef Py_ssize_t _blocks_most = 0
# Where the plan makes Numba the backend of a plain call (_numba_runs), a bias
# call runs the epilogue's Cython kernels (the same bits as Numba's drivers)
# unless Numba is the backend asked for by the calling context (_numba_asked:
# the backend set, or its config block's): then it takes the general path.

cdef Py_ssize_t _block_min = 1
cdef Py_ssize_t _per_channel = 1


def set_bias_blocks(Py_ssize_t most, Py_ssize_t block_min, Py_ssize_t per_channel):
    """The bias gradient's blocks: at most ``most`` of at least ``block_min`` elements
    and ``per_channel`` elements per channel (fastact._api.epilogue.blocks)."""
    global _blocks_most, _block_min, _per_channel
    if most < 1 or block_min < 1 or per_channel < 1:
        raise ValueError("the block sizes must be positive")
    _blocks_most, _block_min, _per_channel = most, block_min, per_channel


cdef inline Py_ssize_t _bias_blocks(Py_ssize_t n, Py_ssize_t C) noexcept:
    cdef Py_ssize_t k = _blocks_most
    if n // _block_min < k:
        k = n // _block_min
    if n // (_per_channel * C) < k:
        k = n // (_per_channel * C)
    return k if k > 1 else 1


cdef inline int _fast_bias_geometry(cnp.ndarray a, object bias, object bias_axis,
                                    Py_ssize_t *C, Py_ssize_t *inner) noexcept:
    """0 and (C, inner) for a plain bias along an int ``bias_axis`` of ``a``; else -1."""
    cdef int nd = cnp.PyArray_NDIM(a), d
    cdef long ax
    if type(bias_axis) is not int or nd < 1 or not _plain(bias, cnp.PyArray_TYPE(a)):
        return -1
    if cnp.PyArray_NDIM(<cnp.ndarray>bias) != 1 or not -nd <= bias_axis < nd:
        return -1
    ax = bias_axis  # in range, so it fits
    if ax < 0:
        ax += nd
    C[0] = cnp.PyArray_DIM(a, ax)
    if cnp.PyArray_DIM(<cnp.ndarray>bias, 0) != C[0] or C[0] < 1:
        return -1
    inner[0] = 1
    for d in range(ax + 1, nd):
        inner[0] *= cnp.PyArray_DIM(a, d)
    return 0


cdef void _run_bias_fwd(int di, int table, int kid, const void *xp, const void *bp, void *op,
                        Py_ssize_t n, Py_ssize_t C, Py_ssize_t inner, const double *p,
                        uint64_t seed, int nthreads) noexcept nogil:
    if di == 0:
        _bias_fwd(table, kid, <const float *>xp, <const float *>bp, <float *>op, n, C, inner,
                  p, seed, nthreads)
    else:
        _bias_fwd(table, kid, <const double *>xp, <const double *>bp, <double *>op, n, C,
                  inner, p, seed, nthreads)


cdef void _run_bias_bwd(int di, int table, int kid, const void *gp, const void *sp,
                        const void *bp, void *op, Py_ssize_t n, Py_ssize_t C, Py_ssize_t inner,
                        bint recompute, const double *p, uint64_t seed, double *pp,
                        Py_ssize_t nblocks, int nthreads, void *gbp) noexcept nogil:
    """The backward, and the bias gradient (the first row of the partial sums pp)
    rounded once to the array's type into gbp."""
    cdef Py_ssize_t c
    if di == 0:
        _bias_bwd(table, kid, <const float *>gp, <const float *>sp, <const float *>bp,
                  <float *>op, n, C, inner, recompute, p, seed, pp, nblocks, nthreads)
        for c in range(C):
            (<float *>gbp)[c] = <float>pp[c]
    else:
        _bias_bwd(table, kid, <const double *>gp, <const double *>sp, <const double *>bp,
                  <double *>op, n, C, inner, recompute, p, seed, pp, nblocks, nthreads)
        for c in range(C):
            (<double *>gbp)[c] = pp[c]


cdef object _fast_bias_fwd(int table, int kid, object x_, object bias, object bias_axis,
                           object out, tuple params, uint64_t seed):
    cdef int di = _fast_dtype(x_, kid)
    cdef cnp.ndarray a, o
    cdef Py_ssize_t n, C, inner
    cdef double p[MAX_PARAMS]
    cdef int nthreads
    if di < 0 or _blocks_most == 0:
        return None
    a = <cnp.ndarray>x_
    nthreads = _fast_threads(a, 0, di, kid)
    if nthreads == 0 or (_numba_runs(0, di, kid, nthreads) and _numba_asked()):
        return None
    if _fast_bias_geometry(a, bias, bias_axis, &C, &inner) < 0:
        return None
    if _fast_params(params, p) < 0 or not _has_unary(di, table, kid):
        return None
    n = cnp.PyArray_SIZE(a)
    res = _fast_out(a, out, n * cnp.PyArray_ITEMSIZE(a), None)
    if res is None:
        return None
    o = <cnp.ndarray>res
    if not _apart(<cnp.ndarray>bias, o):  # the bias shares no memory with out
        return None
    cdef const void *xp = cnp.PyArray_DATA(a)
    cdef const void *bp = cnp.PyArray_DATA(<cnp.ndarray>bias)
    cdef void *op = cnp.PyArray_DATA(o)
    cdef bint parallel = nthreads > 1
    if parallel:
        nthreads = _par_begin(nthreads)
    if n < GIL_RELEASE_MIN:
        _run_bias_fwd(di, table, kid, xp, bp, op, n, C, inner, p, seed, nthreads)
    else:
        with nogil:
            _run_bias_fwd(di, table, kid, xp, bp, op, n, C, inner, p, seed, nthreads)
    if parallel:
        _par_end()
    return o


cdef object _fast_bias_bwd(int table, int kid, bint recompute, object g_, object s_,
                           object bias, object bias_axis, object out, tuple params,
                           uint64_t seed):
    cdef int di = _fast_dtype(g_, kid)
    cdef cnp.ndarray g, o, partial, gb
    cdef Py_ssize_t n, C, inner, nblocks
    cdef double p[MAX_PARAMS]
    cdef cnp.npy_intp dims[2]
    cdef int nthreads
    if di < 0 or _blocks_most == 0:
        return None
    g = <cnp.ndarray>g_
    nthreads = _fast_threads(g, 1, di, kid)
    if nthreads == 0 or (_numba_runs(1, di, kid, nthreads) and _numba_asked()):
        return None
    if not _plain(s_, cnp.PyArray_TYPE(g)) or not _same_shape(g, <cnp.ndarray>s_):
        return None
    if _fast_bias_geometry(g, bias, bias_axis, &C, &inner) < 0:
        return None
    if _fast_params(params, p) < 0 or not _has_binary(di, table, kid):
        return None
    n = cnp.PyArray_SIZE(g)
    res = _fast_out(g, out, n * cnp.PyArray_ITEMSIZE(g), s_)
    if res is None:
        return None
    o = <cnp.ndarray>res
    if not _apart(<cnp.ndarray>bias, o):  # the bias shares no memory with out
        return None
    nblocks = _bias_blocks(n, C)
    dims[0] = nblocks
    dims[1] = C
    partial = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT64, 0)
    gb = cnp.PyArray_EMPTY(1, &dims[1], cnp.PyArray_TYPE(g), 0)
    cdef const void *gp = cnp.PyArray_DATA(g)
    cdef const void *sp = cnp.PyArray_DATA(<cnp.ndarray>s_)
    cdef const void *bp = cnp.PyArray_DATA(<cnp.ndarray>bias)
    cdef void *op = cnp.PyArray_DATA(o)
    cdef double *pp = <double *>cnp.PyArray_DATA(partial)
    cdef void *gbp = cnp.PyArray_DATA(gb)
    cdef bint parallel = nthreads > 1
    if parallel:
        nthreads = _par_begin(nthreads)
    if n < GIL_RELEASE_MIN:
        _run_bias_bwd(di, table, kid, gp, sp, bp, op, n, C, inner, recompute, p, seed, pp,
                      nblocks, nthreads, gbp)
    else:
        with nogil:
            _run_bias_bwd(di, table, kid, gp, sp, bp, op, n, C, inner, recompute, p, seed, pp,
                          nblocks, nthreads, gbp)
    if parallel:
        _par_end()
    return o, gb


def fast_bias_forward(int kid, object x, object bias, object bias_axis, object out,
                      tuple params):
    """f(x + bias) of a plain call (fastact._api.fast); None: the general path."""
    return _fast_bias_fwd(PLAIN, kid, x, bias, bias_axis, out, params, 0)


def fast_bias_backward(int kid, bint recompute, object g, object s, object bias,
                       object bias_axis, object out, tuple params):
    """(f'(g, s [+ bias]), the bias gradient) of a plain call; None: the general path.
    ``recompute``: the entry saves its input (s + bias is the kernel's argument)."""
    return _fast_bias_bwd(PLAIN, kid, recompute, g, s, bias, bias_axis, out, params, 0)


def fast_train_bias_forward(int kid, object x, object bias, object bias_axis, object out,
                            tuple params, uint64_t seed):
    """Training-mode f(x + bias) keyed by ``seed`` (rrelu); None: the general path."""
    return _fast_bias_fwd(TRAIN, kid, x, bias, bias_axis, out, params, seed)


def fast_train_bias_backward(int kid, bint recompute, object g, object s, object bias,
                             object bias_axis, object out, tuple params, uint64_t seed):
    """Training-mode backward with the bias gradient keyed by ``seed``; None: the general path."""
    return _fast_bias_bwd(TRAIN, kid, recompute, g, s, bias, bias_axis, out, params, seed)
