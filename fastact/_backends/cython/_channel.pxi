# Per-channel entries (prelu) over (outer, C, inner) views, the weight as C doubles
# and, for the C kernels of float32 and 16-bit arrays, as C floats: a weight per
# element reaches the kernels in the type they compute in (fastact/_codegen/c_kernels.py,
# param_type), one weight in the parameters' doubles.
#
# Rows of a per-channel entry are cut into segments of at most SEGMENT elements,
# so that one long row (a single channel) still spreads over threads and the
# partial sums of a parameter gradient never depend on the thread count
# (CHANNEL_SEGMENT of fastact/_codegen/dialect.py).
# (N, C) input runs ROW_RUN // C rows per kernel call (CHANNEL_ROW_RUN, ibid.).
cdef extern from "fa_kernels.h":
    enum:
        SEGMENT "FA_CHANNEL_SEGMENT"
        ROW_RUN "FA_CHANNEL_ROW_RUN"
# Channel weights held on the stack by the fast path; more go to PyMem_Malloc.
DEF FAST_STACK_W = 64
# The rows a forward's column blocks run over at a time (ColumnWalk): 16 rows of 4096
# float32 elements took 122 us per 10^6 elements, all of a thread's rows 144, row by row 178.
DEF BLOCK_ROWS = 16


cdef extern from "fa_kernels.h" nogil:
    ctypedef void (*fa_bwdpg_f32)(const float *, const float *, float *, Py_ssize_t, const double *, double *) noexcept nogil
    ctypedef void (*fa_bwdpg_f64)(const double *, const double *, double *, Py_ssize_t, const double *, double *) noexcept nogil
    ctypedef void (*fa_bwdpgv_f32)(const float *, const float *, float *, Py_ssize_t, const float *, double *) noexcept nogil
    ctypedef void (*fa_bwdpgv_f64)(const double *, const double *, double *, Py_ssize_t, const double *, double *) noexcept nogil
    ctypedef void (*fa_unaryv_f32)(const float *, float *, Py_ssize_t, const float *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_unaryv_f64)(const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    fa_bwdpg_f32 *FA_BWDPG_F32
    fa_bwdpgv_f32 *FA_BWDPGV_F32
    fa_bwdpg_f64 *FA_BWDPG_F64
    fa_bwdpgv_f64 *FA_BWDPGV_F64
    fa_unaryv_f32 *FA_FWDV_F32
    fa_unaryv_f64 *FA_FWDV_F64


cdef struct Unit:
    Py_ssize_t off       # first element
    Py_ssize_t n         # length
    const double *p      # one weight: the parameter pointer handed to the kernel
    Py_ssize_t acc       # accumulator slot (within a block's C partial sums); with a
                         # weight per element, also the unit's first column


cdef struct Geometry:
    Py_ssize_t rows, rowlen, segs, C
    bint vector          # inner == 1: one weight per element of a row (FWDV, BWDPGV)
    const double *w      # the weights (Numba's kernels, and one weight per unit)
    const float *wf      # the same as floats: the C kernels' weight per element for
                         # float32 and 16-bit arrays (NULL for float64)


cdef inline Geometry _geometry(Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                               const double *w, const float *wf) noexcept nogil:
    cdef Geometry geo
    geo.vector = inner == 1
    if inner == 1:
        geo.rows = outer
        geo.rowlen = C
    else:
        geo.rows = outer * C
        geo.rowlen = inner
    geo.segs = (geo.rowlen + SEGMENT - 1) // SEGMENT
    if geo.segs < 1:
        geo.segs = 1
    geo.C = C
    geo.w = w
    geo.wf = wf
    return geo


cdef inline Unit _unit(Py_ssize_t u, const Geometry *geo) noexcept nogil:
    """Where unit ``u`` (segment ``u % segs`` of row ``u // segs``) lies."""
    cdef Unit t
    cdef Py_ssize_t r = u // geo.segs, j = u % geo.segs
    t.off = r * geo.rowlen + j * SEGMENT
    t.n = SEGMENT if (j + 1) * SEGMENT <= geo.rowlen else geo.rowlen - j * SEGMENT
    if geo.vector:
        t.p = geo.w + j * SEGMENT
        t.acc = j * SEGMENT
    else:
        t.p = geo.w + (r % geo.C)
        t.acc = r % geo.C
    return t


cdef inline void _fwdv(int kid, const real *x, real *out, Py_ssize_t n, const Geometry *geo,
                       Py_ssize_t c0) noexcept nogil:
    """The forward of ``n`` elements with a weight per element, from column ``c0`` of the
    row's weights (in the arrays' type)."""
    if real is float:
        FA_FWDV_F32[kid](x, out, n, geo.wf + c0, 0, 0)
    else:
        FA_FWDV_F64[kid](x, out, n, geo.w + c0, 0, 0)


cdef inline void _pgrad_bwd(int kid, const real *g, const real *s, real *out,
                            const Geometry *geo, const Unit *t, double *acc) noexcept nogil:
    """The parameter gradient (summed into ``acc``) and grad-input of unit ``t``, in one
    pass: the bits of the parameter-gradient kernel then the backward's."""
    if real is float:
        if geo.vector:
            FA_BWDPGV_F32[kid](g, s, out, t.n, geo.wf + t.acc, acc)
        else:
            FA_BWDPG_F32[kid](g, s, out, t.n, t.p, acc)
    else:
        if geo.vector:
            FA_BWDPGV_F64[kid](g, s, out, t.n, geo.w + t.acc, acc)
        else:
            FA_BWDPG_F64[kid](g, s, out, t.n, t.p, acc)


# Per-channel entries (prelu) on Numba's kernels: the units of _channel.pxi, each a
# call of the whole arrays over its element range, as the Numba backend's drivers
# (drivers.channel_forward, channel_backward) make it: the weight at p + poff (poff:
# the unit's channel, or the first element of its segment of a row for a weight per
# element), the seed 0 (unused); the weight gradient's terms into acc at the same
# offset.

cdef struct NbChannel:
    void *fwd    # forward, one weight (or its in-place twin)
    void *fwdv   # forward, a weight per element of a row
    void *bwd    # grad-input, one weight; bwdv a weight per element
    void *bwdv
    void *pgrad  # the weight gradient's terms; pgradv per element
    void *pgradv


cdef bint _nb_channel(int pass_, int di, int kid, bint in_place, bint vector,
                      NbChannel *k) noexcept:
    """Numba's per-channel kernels of this call (``di``: a dtype index of _nb_entry, the
    16-bit formats' included; ``vector``: a weight per element of a row; in-place twins
    where ``out`` is ``x``, or ``g``); False when one it needs is not compiled yet (the
    general path, which compiles the same ones)."""
    cdef int ip = 2 if in_place else 0
    if pass_ == 0:
        k.fwd = _nb_kernel(4 if in_place else 0, di, kid)
        k.fwdv = _nb_kernel(NB_CHANNEL + ip, di, kid)
        return (k.fwdv if vector else k.fwd) != NULL
    k.bwd = _nb_kernel(5 if in_place else 1, di, kid)
    k.bwdv = _nb_kernel(NB_CHANNEL + 1 + ip, di, kid)
    k.pgrad = _nb_kernel(NB_PGRAD, di, kid)
    k.pgradv = _nb_kernel(NB_PGRAD + 1, di, kid)
    if vector:
        return k.bwdv != NULL and k.pgradv != NULL
    return k.bwd != NULL and k.pgrad != NULL


cdef void _nb_units_forward(const NbChannel *k, const void *x, void *out, Py_ssize_t u0,
                            Py_ssize_t u1, const Geometry *geo) noexcept nogil:
    cdef Py_ssize_t u
    cdef Unit t
    cdef ColumnWalk cw
    if _column_walk(&cw, u0, u1, geo):
        while _column_next(&cw):
            u = cw.u * cw.rowlen + cw.c0
            (<nb_unary>k.fwdv)(x, out, geo.w, cw.c0, 0, u, u + cw.m)
        return
    for u in range(u0, u1):
        t = _unit(u, geo)
        (<nb_unary>(k.fwdv if geo.vector else k.fwd))(x, out, geo.w, t.acc, 0, t.off,
                                                      t.off + t.n)


cdef void _nb_channel_fwd(const NbChannel *k, const void *x, void *out, Geometry geo,
                          int nthreads) noexcept nogil:
    """Numba's per-channel forward over every unit, the units shared as _channel_fwd
    shares them (a unit's result does not depend on the thread that runs it)."""
    cdef Py_ssize_t units = geo.rows * geo.segs, c
    cdef Py_ssize_t nch = nthreads if nthreads < units else units
    for c in prange(nch, schedule="static", num_threads=nch):
        _nb_units_forward(k, x, out, c * units // nch, (c + 1) * units // nch, &geo)


cdef void _nb_units_backward(const NbChannel *k, const void *g, const void *s, void *out,
                             Py_ssize_t u0, Py_ssize_t u1, const Geometry *geo,
                             double *acc) noexcept nogil:
    """As _units_backward: the weight gradient's terms first (``out`` may be ``g``)."""
    cdef Py_ssize_t u
    cdef Unit t
    for u in range(u0, u1):
        t = _unit(u, geo)
        (<nb_pgrad>(k.pgradv if geo.vector else k.pgrad))(g, s, geo.w, t.acc, acc, t.acc,
                                                          t.off, t.off + t.n)
        (<nb_binary>(k.bwdv if geo.vector else k.bwd))(g, s, out, geo.w, t.acc, 0, t.off,
                                                       t.off + t.n)


# A walk over whole rows longer than ROW_RUN with a weight per element, for the forward:
# blocks of ROW_RUN columns over BLOCK_ROWS rows at a time, so that a block's weights stay
# in L1 while the rows stream (rows of 4096 float32 elements: 1.5x).  Groups of rows in
# order, each group's column blocks in order, each block over the group's rows in order.
cdef struct ColumnWalk:
    Py_ssize_t u       # the block's row
    Py_ssize_t c0, m   # its first column and length
    Py_ssize_t r0, r1, u1, rowlen


cdef inline bint _column_walk(ColumnWalk *cw, Py_ssize_t u0, Py_ssize_t u1,
                              const Geometry *geo) noexcept nogil:
    """Start a walk over units u0:u1 (whole rows); False where the forward runs unit by
    unit instead."""
    if not (geo.vector and geo.segs == 1 and geo.rowlen > ROW_RUN) or u0 >= u1:
        return False
    cw.u1, cw.rowlen, cw.r0, cw.c0 = u1, geo.rowlen, u0, 0
    cw.r1 = u0 + BLOCK_ROWS if u0 + BLOCK_ROWS < u1 else u1
    cw.u = u0 - 1
    return True


cdef inline bint _column_next(ColumnWalk *cw) noexcept nogil:
    """The walk's next block (``u``, ``c0``, ``m``); False past the last."""
    cw.u += 1
    if cw.u == cw.r1:  # the group's next column block, or the next group
        cw.u = cw.r0
        cw.c0 += ROW_RUN
        if cw.c0 >= cw.rowlen:
            cw.c0 = 0
            cw.r0 = cw.u = cw.r1
            if cw.r0 >= cw.u1:
                return False
            cw.r1 = cw.r0 + BLOCK_ROWS if cw.r0 + BLOCK_ROWS < cw.u1 else cw.u1
    cw.m = ROW_RUN if cw.c0 + ROW_RUN <= cw.rowlen else cw.rowlen - cw.c0
    return True


cdef inline void _units_forward(int kid, const real *x, real *out, Py_ssize_t u0, Py_ssize_t u1,
                                const Geometry *geo) noexcept nogil:
    cdef Py_ssize_t u
    cdef Unit t
    cdef ColumnWalk cw
    if _column_walk(&cw, u0, u1, geo):
        while _column_next(&cw):
            u = cw.u * cw.rowlen + cw.c0
            _fwdv(kid, x + u, out + u, cw.m, geo, cw.c0)
        return
    for u in range(u0, u1):
        t = _unit(u, geo)
        if geo.vector:
            _fwdv(kid, x + t.off, out + t.off, t.n, geo, t.acc)
        else:
            _unary(PLAIN, kid, x + t.off, out + t.off, t.n, t.p, 0, 0)


cdef inline void _units_backward(int kid, const real *g, const real *s, real *out,
                                 Py_ssize_t u0, Py_ssize_t u1, const Geometry *geo,
                                 double *acc) noexcept nogil:
    """Grad-input of units u0:u1, their parameter gradient summed into ``acc``."""
    cdef Py_ssize_t u
    cdef Unit t
    for u in range(u0, u1):
        t = _unit(u, geo)
        _pgrad_bwd(kid, g + t.off, s + t.off, out + t.off, geo, &t, acc + t.acc)


cdef void _channel_fwd(int kid, const real *x, real *out, Geometry geo,
                       int nthreads) noexcept nogil:
    """Every unit of ``geo``, each thread a contiguous range of them."""
    cdef Py_ssize_t units = geo.rows * geo.segs, c
    cdef Py_ssize_t nch = nthreads if nthreads < units else units
    for c in prange(nch, schedule="static", num_threads=nch):
        _units_forward(kid, x, out, c * units // nch, (c + 1) * units // nch, &geo)


cdef void _channel_bwd(int kid, const real *g, const real *s, real *out, Geometry geo,
                       Py_ssize_t nblocks, double *partial, int nthreads) noexcept nogil:
    cdef Py_ssize_t units = geo.rows * geo.segs, b
    for b in prange(nblocks, schedule="static", num_threads=nthreads):
        _units_backward(kid, g, s, out, b * units // nblocks, (b + 1) * units // nblocks, &geo,
                        partial + b * geo.C)


cdef void _reduce_blocks(const double *partial, Py_ssize_t nblocks, Py_ssize_t C,
                         double *total) noexcept nogil:
    """``total`` = the blocks' partial sums (``nblocks`` rows of ``C``) added in block order,
    from 0: the order of every backend and path (fastact._backends.numba's reduction)."""
    cdef Py_ssize_t b, c
    memset(total, 0, C * sizeof(double))
    for b in range(nblocks):
        for c in range(C):
            total[c] += partial[b * C + c]


cdef object _reduced(cnp.ndarray partial):
    """_reduce_blocks of an (nblocks, C) array of doubles, as a new array."""
    cdef Py_ssize_t C = cnp.PyArray_DIM(partial, 1)
    total = np.empty(C)
    _reduce_blocks(<const double *>cnp.PyArray_DATA(partial), cnp.PyArray_DIM(partial, 0), C,
                   <double *>cnp.PyArray_DATA(total))
    return total


cdef inline cnp.ndarray _as_floats(cnp.ndarray weight):
    """The weights (doubles rounded to float32 by the caller) as float32, exactly."""
    return np.ascontiguousarray(weight, dtype=np.float32)


cdef inline const float *_float_data(cnp.ndarray wf) noexcept:
    if wf is None:
        return NULL
    return <const float *>cnp.PyArray_DATA(wf)


def channel_forward(int kid, cnp.ndarray x, cnp.ndarray out, cnp.ndarray weight,
                    Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, int nthreads=1):
    """Forward of an entry with a per-channel parameter (``weight``: C doubles)."""
    cdef int di = _dtype_index(x)
    cdef cnp.ndarray wf = _as_floats(weight) if di == 0 else None
    cdef Geometry geo = _geometry(outer, C, inner, <const double *>cnp.PyArray_DATA(weight),
                                  _float_data(wf))
    cdef const void *xp = cnp.PyArray_DATA(x)
    cdef void *op = cnp.PyArray_DATA(out)
    if di < 0:
        raise ValueError("no kernel for this dtype")
    if nthreads < 1 or geo.rows * geo.rowlen < 2 * MIN_CHUNK:
        nthreads = 1
    with nogil:
        if di == 0:
            _channel_fwd(kid, <const float *>xp, <float *>op, geo, nthreads)
        else:
            _channel_fwd(kid, <const double *>xp, <double *>op, geo, nthreads)
    return out


def channel_backward(int kid, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out,
                     cnp.ndarray weight, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                     int nthreads=1):
    """Grad-input and the per-channel parameter gradient, in one pass.

    Returns the parameter gradient (C doubles).  The units of work are split
    into a fixed number of blocks with their own partial sums, reduced in
    block order: the same bits for any thread count.
    """
    cdef int di = _dtype_index(g)
    cdef cnp.ndarray wf = _as_floats(weight) if di == 0 else None
    cdef Geometry geo = _geometry(outer, C, inner, <const double *>cnp.PyArray_DATA(weight),
                                  _float_data(wf))
    cdef Py_ssize_t units = geo.rows * geo.segs
    cdef Py_ssize_t nblocks = units if units < PGRAD_BLOCKS else PGRAD_BLOCKS
    cdef const void *gp = cnp.PyArray_DATA(g)
    cdef const void *sp = cnp.PyArray_DATA(s)
    cdef void *op = cnp.PyArray_DATA(out)
    if di < 0:
        raise ValueError("no kernel for this dtype")
    if nblocks < 1:
        return np.zeros(C)
    partial = np.zeros((nblocks, C))
    cdef double *pp = <double *>cnp.PyArray_DATA(partial)
    if nthreads < 1 or geo.rows * geo.rowlen < 2 * MIN_CHUNK:
        nthreads = 1
    with nogil:
        if di == 0:
            _channel_bwd(kid, <const float *>gp, <const float *>sp, <float *>op, geo, nblocks,
                         pp, nthreads)
        else:
            _channel_bwd(kid, <const double *>gp, <const double *>sp, <double *>op, geo,
                         nblocks, pp, nthreads)
    return _reduced(partial)


# The fast path, serial.
#
# The general path (fastact._api.channel_forward/backward) hands the kernels
# the weight rounded to the input's type, as doubles, and cuts the array into
# units (_unit) grouped in blocks.  The forward is elementwise, so any
# cutting gives its bits; the weight gradient is replayed here unit by unit
# and block by block, with NumPy's reductions of the partial sums written
# out: ``partial.sum(axis=0)`` over blocks and the sum over the tiled copies
# of the weight are sequential when they have two or more columns, and a
# single column (one weight) is taken here only with at most two blocks.

cdef inline double _rounded(int di, double v) noexcept nogil:
    """``v`` rounded to the dtype of index ``di``."""
    return <double>(<float>v) if di == 0 else v


cdef double *_fast_weight(object weight, cnp.ndarray a, int di, double *stack,
                          Py_ssize_t *C) noexcept:
    """The weight as doubles rounded to the input's type; NULL unless plain.

    Plain: a Python float or a NumPy float16/float32/float64/bfloat16 scalar, or a
    native, aligned, C-contiguous float32/float64 (or float16/bfloat16, widened
    exactly) array of at most one dimension holding 1 element or one per channel
    (axis 1 of ``a``).  The memory is ``stack`` or from PyMem_Malloc.
    """
    cdef cnp.ndarray wa
    cdef Py_ssize_t m, c
    cdef int wt, wfmt = 0
    cdef double *w
    cdef float f
    if type(weight) is not cnp.ndarray:  # a scalar (an array weight skips these tests)
        if not (type(weight) is float or type(weight) is np.float32
                or type(weight) is np.float64 or type(weight) is np.float16
                or (_bf16_typenum >= 0 and isinstance(weight, np.generic)
                    and (<object>weight).dtype.num == _bf16_typenum)):
            return NULL
        stack[0] = _rounded(di, <double>weight)
        C[0] = 1
        return stack
    wa = <cnp.ndarray>weight
    wt = cnp.PyArray_TYPE(wa)
    if wt == cnp.NPY_FLOAT16:
        wfmt = 1
    elif wt == _bf16_typenum:
        wfmt = 2
    if ((wt != cnp.NPY_FLOAT32 and wt != cnp.NPY_FLOAT64 and wfmt == 0)
            or cnp.PyArray_NDIM(wa) > 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(wa) or not cnp.PyArray_ISALIGNED(wa)
            or not cnp.PyArray_ISNOTSWAPPED(wa)):
        return NULL
    m = cnp.PyArray_SIZE(wa)
    if m != 1 and (cnp.PyArray_NDIM(a) < 2 or cnp.PyArray_DIM(a, 1) != m):
        return NULL
    w = stack if m <= FAST_STACK_W else <double *>PyMem_Malloc(m * sizeof(double))
    if w == NULL:
        return NULL
    if wfmt != 0:
        for c in range(m):
            fa_half_widen(wfmt, (<const uint16_t *>cnp.PyArray_DATA(wa)) + c, &f, 1)
            w[c] = <double>f
    elif wt == cnp.NPY_FLOAT32:
        for c in range(m):
            w[c] = <double>(<const float *>cnp.PyArray_DATA(wa))[c]
    else:
        for c in range(m):
            w[c] = _rounded(di, (<const double *>cnp.PyArray_DATA(wa))[c])
    C[0] = m
    return w


cdef const float *_fast_floats(object weight, const double *w, Py_ssize_t C, float *stack,
                               float **owned, cnp.ndarray out) noexcept:
    """The weights as floats: a float32 weight array's own data (plain, as _fast_weight
    checked) where it shares no memory with ``out``, else ``w`` (rounded to float32)
    copied into ``stack`` (FAST_STACK_W) or into memory from PyMem_Malloc, which
    ``owned`` receives (NULL otherwise); NULL when out of memory."""
    cdef float *wf
    cdef Py_ssize_t c
    owned[0] = NULL
    if (type(weight) is cnp.ndarray and cnp.PyArray_TYPE(<cnp.ndarray>weight) == cnp.NPY_FLOAT32
            and _apart(<cnp.ndarray>weight, out)):
        return <const float *>cnp.PyArray_DATA(<cnp.ndarray>weight)
    if C <= FAST_STACK_W:
        wf = stack
    else:
        wf = owned[0] = <float *>PyMem_Malloc(C * sizeof(float))
    if wf != NULL:
        for c in range(C):
            wf[c] = <float>w[c]
    return wf


cdef void _fast_channel_fwd(int kid, const real *x, real *out, Py_ssize_t n, Py_ssize_t outer,
                            Py_ssize_t C, const double *w, const float *wf) noexcept nogil:
    cdef Py_ssize_t inner, r
    cdef Geometry geo
    if C == 1:
        _unary(PLAIN, kid, x, out, n, w, 0, 0)
        return
    inner = n // (outer * C)
    if inner == 1:
        geo = _geometry(outer, C, 1, w, wf)
        _units_forward(kid, x, out, 0, geo.rows * geo.segs, &geo)
        return
    for r in range(outer * C):
        _unary(PLAIN, kid, x + r * inner, out + r * inner, inner, w + r % C, 0, 0)


# The element types of the serial fast backward: float32, float64, and 16-bit bits
# (uint16_t: by the 16-bit kernels, _half_units_backward).
ctypedef fused chan_t:
    float
    double
    uint16_t


# How the fast backward runs its units: Cython's kernels, Numba's (``nb`` not NULL), or
# 16-bit arrays of format ``fmt`` as half_channel_backward; on ``nthreads`` with the
# blocks' partial sums in ``partial`` (PGRAD_BLOCKS rows of the widest part's C doubles:
# _channel_buffers), or serial (``partial`` NULL).
cdef struct ChanVia:
    const NbChannel *nb
    int fmt
    int nthreads
    double *partial


cdef void _block_backward(int kid, const chan_t *g, const chan_t *s, chan_t *out, Py_ssize_t b,
                          Py_ssize_t nblocks, const Geometry *geo, double *blk,
                          const ChanVia *via) noexcept nogil:
    """Block ``b`` of ``nblocks``: grad-input of its units, their partial sums in ``blk``."""
    cdef Py_ssize_t units = geo.rows * geo.segs
    cdef Py_ssize_t u0 = b * units // nblocks, u1 = (b + 1) * units // nblocks
    memset(blk, 0, geo.C * sizeof(double))
    if via.nb != NULL:  # Numba's kernels for the dtype (a 16-bit format's included)
        _nb_units_backward(via.nb, g, s, out, u0, u1, geo, blk)
    elif chan_t is uint16_t:
        _half_units_backward(via.fmt, kid, g, s, out, u0, u1, geo, blk)
    else:
        _units_backward(kid, g, s, out, u0, u1, geo, blk)


cdef void _fast_channel_part(int kid, const chan_t *g, const chan_t *s, chan_t *out,
                             Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                             const double *w, const float *wf, double *blk, double *psum,
                             const ChanVia *via) noexcept nogil:
    """channel_backward(..., outer, C, inner): grad-input into ``out`` and ``psum`` = its
    blocks' partial sums added in block order (as _reduce_blocks), the blocks on
    ``via.nthreads`` threads where ``via.partial`` holds their sums."""
    cdef Geometry geo = _geometry(outer, C, inner, w, wf)
    cdef Py_ssize_t units = geo.rows * geo.segs, nblocks, b, c
    nblocks = units if units < PGRAD_BLOCKS else PGRAD_BLOCKS
    if via.partial != NULL and geo.rows * geo.rowlen >= 2 * MIN_CHUNK:
        for b in prange(nblocks, schedule="static", num_threads=via.nthreads):
            _block_backward(kid, g, s, out, b, nblocks, &geo, via.partial + b * C, via)
        _reduce_blocks(via.partial, nblocks, C, psum)
        return
    memset(psum, 0, C * sizeof(double))
    for b in range(nblocks):
        _block_backward(kid, g, s, out, b, nblocks, &geo, blk, via)
        for c in range(C):
            psum[c] += blk[c]


cdef void _fast_channel_bwd(int kid, const chan_t *g, const chan_t *s, chan_t *out,
                            Py_ssize_t n, Py_ssize_t outer, Py_ssize_t C, const double *w,
                            const float *wf, double *buf, double *gw, chan_t *gw_out,
                            const ChanVia *via) noexcept nogil:
    """fastact._api.channel_backward's parts, serial; the weight gradient in ``gw`` and,
    rounded, in ``gw_out`` (float types; NULL for 16-bit arrays, whose caller rounds
    ``gw``).  ``buf``: 3 * max(C, ROW_RUN) doubles."""
    cdef Py_ssize_t inner, run, bulk, width, f, c, k
    cdef Py_ssize_t most = C if C > ROW_RUN else ROW_RUN
    cdef double *blk = buf
    cdef double *psum = buf + most
    cdef double *tiled = buf + 2 * most
    cdef float tiledf[ROW_RUN]
    cdef const double *tw
    cdef const float *twf
    if C == 1:
        _fast_channel_part(kid, g, s, out, 1, 1, n, w, wf, blk, psum, via)
        gw[0] = psum[0]
    else:
        inner = n // (outer * C)
        if inner != 1 or outer < 2 or C >= ROW_RUN:
            _fast_channel_part(kid, g, s, out, outer, C, inner, w, wf, blk, psum, via)
            for c in range(C):
                gw[c] = psum[c]
        else:
            # (N, C): runs of ``run`` rows share a tiled weight; their sums are folded
            run = _tile_rows(w, wf, outer, C, tiled, tiledf, &tw, &twf)
            bulk = (outer // run) * run
            width = run * C
            _fast_channel_part(kid, g, s, out, bulk // run, width, 1, tw, twf, blk, psum, via)
            for c in range(C):
                gw[c] = 0.0
            for f in range(run):
                for c in range(C):
                    gw[c] += psum[f * C + c]
            if bulk < outer:
                k = bulk * C
                _fast_channel_part(kid, g + k, s + k, out + k, outer - bulk, C, 1, w, wf, blk,
                                   psum, via)
                for c in range(C):
                    gw[c] += psum[c]
    if chan_t is not uint16_t:
        for c in range(C):
            gw_out[c] = <chan_t>gw[c]


cdef inline bint _fast_channel_kernels(int di, int kid, bint backward) noexcept:
    if backward:
        return FA_BWDPG_F32[kid] != NULL and FA_BWDPGV_F32[kid] != NULL
    return _has_unary(di, PLAIN, kid) and (FA_FWDV_F32[kid] if di == 0 else FA_FWDV_F64[kid]) != NULL


FAST_ROW_RUN = ROW_RUN  # for fastact._dispatch.explain


cdef void _fwd_units(int kid, int di, const NbChannel *nb, const void *xp, void *op,
                     Geometry geo, int nthreads) noexcept nogil:
    """Every unit of ``geo`` by Numba's kernels (``nb`` not NULL) or Cython's (dtype index
    ``di``; -1 or -2: the 16-bit format 1 or 2), on the OpenMP driver (``nthreads`` > 1)
    or serial."""
    cdef Py_ssize_t units = geo.rows * geo.segs
    if nb != NULL:
        if nthreads > 1:
            _nb_channel_fwd(nb, xp, op, geo, nthreads)
        else:
            _nb_units_forward(nb, xp, op, 0, units, &geo)
    elif di < 0:
        _half_channel_fwd_run(-di, kid, <const uint16_t *>xp, <uint16_t *>op, &geo, nthreads)
    elif di == 0:
        if nthreads > 1:
            _channel_fwd(kid, <const float *>xp, <float *>op, geo, nthreads)
        else:
            _units_forward(kid, <const float *>xp, <float *>op, 0, units, &geo)
    elif nthreads > 1:
        _channel_fwd(kid, <const double *>xp, <double *>op, geo, nthreads)
    else:
        _units_forward(kid, <const double *>xp, <double *>op, 0, units, &geo)


cdef inline Py_ssize_t _rows_per_run(Py_ssize_t outer, Py_ssize_t C) noexcept nogil:
    """(N, C) input, a weight per element of rows shorter than ROW_RUN: the rows of a run
    that share a tiled weight (as the general path's parts)."""
    return outer if outer < ROW_RUN // C else ROW_RUN // C


cdef Py_ssize_t _tile_rows(const double *w, const float *wf, Py_ssize_t outer, Py_ssize_t C,
                           double *tiled, float *tiledf, const double **tw,
                           const float **twf) noexcept nogil:
    """_rows_per_run, and the run's weights in ``tw`` and ``twf``: ``w`` and ``wf``
    themselves for a run of one row, else copied row by row into ``tiled`` and ``tiledf``
    (``twf`` NULL where ``wf`` is)."""
    cdef Py_ssize_t run = _rows_per_run(outer, C), r
    tw[0] = w
    twf[0] = wf
    if run > 1:
        for r in range(run):
            memcpy(tiled + r * C, w, C * sizeof(double))
        tw[0] = tiled
        if wf != NULL:
            for r in range(run):
                memcpy(tiledf + r * C, wf, C * sizeof(float))
            twf[0] = tiledf
    return run


cdef void _fwd_tiled(int kid, int di, const NbChannel *nb, const char *xp, char *op,
                     Py_ssize_t outer, Py_ssize_t C, const double *w, const float *wf,
                     Py_ssize_t itemsize, int nthreads) noexcept nogil:
    """(N, C) forward in runs of rows sharing a tiled weight (on ``nthreads``), then the
    rows left (serial)."""
    cdef double tiled[ROW_RUN]
    cdef float tiledf[ROW_RUN]
    cdef const double *tw
    cdef const float *twf
    cdef Py_ssize_t run = _tile_rows(w, wf, outer, C, tiled, tiledf, &tw, &twf)
    cdef Py_ssize_t bulk = (outer // run) * run
    _fwd_units(kid, di, nb, xp, op, _geometry(bulk // run, run * C, 1, tw, twf), nthreads)
    if bulk < outer:
        _fwd_units(kid, di, nb, xp + bulk * C * itemsize, op + bulk * C * itemsize,
                   _geometry(outer - bulk, C, 1, w, wf), 1)


def fast_channel_forward(int kid, object x, object weight, object out):
    """Forward of a per-channel entry (prelu); None when the general path must run.

    Below the serial limit, serial; above it, serial or on the OpenMP driver (the
    forward reduces nothing: any split gives the same bits).  A weight per element of
    rows shorter than ROW_RUN runs in runs of rows sharing a tiled weight, as the
    general path does."""
    cdef cnp.ndarray a, o
    cdef int di = _fast_dtype(x, kid), nthreads
    cdef bint above, numba, tile
    cdef Py_ssize_t n, C = 1, outer, inner, run
    cdef double stack[FAST_STACK_W]
    cdef float fstack[FAST_STACK_W]
    cdef double *w
    cdef const float *wf = NULL
    cdef float *wf_owned = NULL
    cdef const void *xp
    cdef void *op
    cdef NbChannel nb
    cdef const NbChannel *via = NULL
    if di < 0:
        return _fast_half_channel_forward(kid, x, weight, out)
    if not _fast_channel_kernels(di, kid, False):
        return None
    if not _plain(x, cnp.PyArray_TYPE(<cnp.ndarray>x)):
        return None
    a = <cnp.ndarray>x
    n = cnp.PyArray_SIZE(a)
    nthreads = _decide(n, 0, di, kid, False)  # 1: below the serial limit
    above = nthreads != 1
    if above:
        nthreads = _decide(n, 0, di, kid, True)
        if nthreads == 0:
            return None
    w = _fast_weight(weight, a, di, stack, &C)
    if w == NULL:
        return None
    try:
        outer = cnp.PyArray_DIM(a, 0) if C > 1 else 1
        inner = n // (outer * C) if C > 1 else n
        tile = C > 1 and inner == 1 and outer > 1 and C < ROW_RUN
        # the elements the driver shares: the tiled runs' (the rows left run serial)
        run = _rows_per_run(outer, C)
        if nthreads > 1 and (n if not tile else (outer // run) * run * C) < 2 * MIN_CHUNK:
            nthreads = 1
        res = _fast_out(a, out, n * cnp.PyArray_ITEMSIZE(a), None)
        if res is None:
            return None
        o = <cnp.ndarray>res
        if di == 0:
            wf = _fast_floats(weight, w, C, fstack, &wf_owned, o)
            if wf == NULL:
                return None
        xp = cnp.PyArray_DATA(a)
        op = cnp.PyArray_DATA(o)
        numba = _numba_runs(0, di, kid, nthreads)
        if numba:
            if not _nb_channel(0, di, kid, o is a, inner == 1, &nb):
                return None
            via = &nb
        if nthreads > 1:
            nthreads = _par_begin(nthreads)
        if tile and n < GIL_RELEASE_MIN and nthreads == 1:
            _fwd_tiled(kid, di, via, <const char *>xp, <char *>op, outer, C, w, wf,
                       cnp.PyArray_ITEMSIZE(a), 1)
        elif tile:
            with nogil:
                _fwd_tiled(kid, di, via, <const char *>xp, <char *>op, outer, C, w, wf,
                           cnp.PyArray_ITEMSIZE(a), nthreads)
        elif nthreads > 1 or numba:
            with nogil:
                _fwd_units(kid, di, via, xp, op, _geometry(outer, C, inner, w, wf), nthreads)
        if nthreads > 1:
            _par_end()
        if tile or nthreads > 1 or numba:
            return o
        with nogil:
            if di == 0:
                _fast_channel_fwd(kid, <const float *>xp, <float *>op, n, outer, C, w, wf)
            else:
                _fast_channel_fwd(kid, <const double *>xp, <double *>op, n, outer, C, w, wf)
        return o
    finally:
        if w != stack:
            PyMem_Free(w)
        PyMem_Free(wf_owned)


def fast_channel_backward(int kid, object g, object s, object weight, object out):
    """Backward of a per-channel entry: ``(grad_input, grad_weight)``, or None when the
    general path must run.  Below the serial limit, serial; above it, its blocks on the
    OpenMP driver (the partial sums added in block order, as the general path adds them:
    the same bits at any thread count)."""
    cdef cnp.ndarray ga, sa, o, gwa
    cdef int di = _fast_dtype(g, kid), nthreads
    cdef Py_ssize_t n, C = 1, outer, most
    cdef double stack[FAST_STACK_W]
    cdef float fstack[FAST_STACK_W]
    cdef double *w
    cdef const float *wf = NULL
    cdef float *wf_owned = NULL
    cdef double *buf = NULL
    cdef cnp.npy_intp wdim[1]
    cdef const void *gp
    cdef const void *sp
    cdef void *op
    cdef void *gwp
    cdef NbChannel nb
    cdef ChanVia via
    if di < 0:
        return _fast_half_channel_backward(kid, g, s, weight, out)
    if not _fast_channel_kernels(di, kid, True):
        return None
    ga = <cnp.ndarray>g
    if not _plain(ga, cnp.PyArray_TYPE(ga)) or not _plain(s, cnp.PyArray_TYPE(ga)):
        return None
    sa = <cnp.ndarray>s
    if not _same_shape(ga, sa):
        return None
    n = cnp.PyArray_SIZE(ga)
    nthreads = _channel_threads(n, 1, di, kid)
    if nthreads == 0:
        return None
    w = _fast_weight(weight, ga, di, stack, &C)
    if w == NULL:
        return None
    try:
        res = _fast_out(ga, out, n * cnp.PyArray_ITEMSIZE(ga), s)
        if res is None:
            return None
        o = <cnp.ndarray>res
        if di == 0:
            wf = _fast_floats(weight, w, C, fstack, &wf_owned, o)
            if wf == NULL:
                return None
        outer = cnp.PyArray_DIM(ga, 0) if C > 1 else 1
        via.nb = NULL
        if _numba_runs(1, di, kid, nthreads):
            if not _nb_channel(1, di, kid, o is ga, n // (outer * C) == 1, &nb):
                return None
            via.nb = &nb
        if type(weight) is not cnp.ndarray:  # a scalar: a 0-d gradient
            gwa = cnp.PyArray_EMPTY(0, wdim, cnp.PyArray_TYPE(ga), 0)
        else:
            gwa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(<cnp.ndarray>weight),
                                    cnp.PyArray_DIMS(<cnp.ndarray>weight),
                                    cnp.PyArray_TYPE(ga), 0)
        most = C if C > ROW_RUN else ROW_RUN
        buf = _channel_buffers(most, n, outer, C, nthreads, &via)
        if buf == NULL:
            return None
        gp = cnp.PyArray_DATA(ga)
        sp = cnp.PyArray_DATA(sa)
        op = cnp.PyArray_DATA(o)
        gwp = cnp.PyArray_DATA(gwa)
        if nthreads > 1:
            via.nthreads = _par_begin(nthreads)
        with nogil:
            if di == 0:
                _fast_channel_bwd(kid, <const float *>gp, <const float *>sp, <float *>op, n,
                                  outer, C, w, wf, buf, buf + 3 * most, <float *>gwp, &via)
            else:
                _fast_channel_bwd(kid, <const double *>gp, <const double *>sp, <double *>op, n,
                                  outer, C, w, wf, buf, buf + 3 * most, <double *>gwp, &via)
        if nthreads > 1:
            _par_end()
        return o, gwa
    finally:
        if w != stack:
            PyMem_Free(w)
        PyMem_Free(wf_owned)
        PyMem_Free(buf)


cdef inline int _channel_threads(Py_ssize_t n, int pass_, int di, int kid) noexcept:
    """Threads of a per-channel call of ``n`` elements: 1 serial (below the serial limit,
    or one thread in force), k > 1 the OpenMP driver, 0 the general path."""
    if _decide(n, pass_, di, kid, False) == 1:  # below the serial limit
        return 1
    return _decide(n, pass_, di, kid, True)


cdef double *_channel_buffers(Py_ssize_t most, Py_ssize_t n, Py_ssize_t outer, Py_ssize_t C,
                              int nthreads, ChanVia *via) noexcept:
    """The fast backward's doubles (3 * most + C; with threads, the blocks' partial sums
    of its widest part after them, ``via.partial``), or NULL."""
    cdef Py_ssize_t widest = C, extra
    if C > 1 and n == outer * C and outer > 1 and C < ROW_RUN:  # runs of rows: tiled
        widest = _rows_per_run(outer, C) * C
    extra = PGRAD_BLOCKS * widest if nthreads > 1 else 0
    cdef double *buf = <double *>PyMem_Malloc((3 * most + C + extra) * sizeof(double))
    via.nthreads = nthreads
    via.partial = buf + 3 * most + C if buf != NULL and extra > 0 else NULL
    return buf
