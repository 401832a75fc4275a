# 16-bit storage (float16, bfloat16): the float32 kernels on the same static
# chunks per thread as _elementwise.pxi, fused (each element widened as loaded
# and rounded as stored; float16 by F16C, bfloat16 by AVX512_BF16 where the CPU
# has them: fa_half.h), so the 16-bit result is the float32 kernel's rounded once
# at every position.
# The arrays arrive as uint16 views (fastact/_half.py); ``fmt`` names the format.

cdef extern from "fa_half.h" nogil:
    void fa_half_widen(int fmt, const uint16_t *h, float *f, Py_ssize_t n)
    void fa_half_narrow(int fmt, const float *f, uint16_t *h, Py_ssize_t n)
    void fa_half_init()
    int fa_half_use_f16c(int on)
    int FA_HAVE_F16C
    int fa_f16c

# The fused 16-bit kernels (widen as loaded, round as stored: fa_kernels.h), by
# table (PLAIN, TRAIN): the copies fa_half.h chose for the CPU.
cdef extern from "fa_kernels.h" nogil:
    ctypedef void (*fa_unary_h16)(const uint16_t *, uint16_t *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_binary_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil

cdef extern from "fa_half.h" nogil:
    fa_unary_h16 *fa_f16_unary[2]
    fa_binary_h16 *fa_f16_binary[2]
    fa_unary_h16 *fa_bf16_unary[2]
    fa_binary_h16 *fa_bf16_binary[2]
    int fa_half_use_bf16v4(int on)
    int fa_bf16v4

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


def half_use_f16c(bint on):
    """Round float16 by F16C where the CPU has it (True, the default) or in C (False:
    the same bits, for tests); returns whether it was used before."""
    return bool(fa_half_use_f16c(on))


cdef object _fast_half(int pass_, int table, int kid, object a_, object b_, object out,
                       tuple params, uint64_t seed):
    cdef cnp.ndarray a, o
    cdef int typenum, fmt, nthreads
    cdef Py_ssize_t n
    cdef double p[MAX_PARAMS]
    cdef const uint16_t *bp = NULL
    if (not _policy.enabled or type(a_) is not cnp.ndarray or kid < 0
            or kid >= MAX_FAST_KERNELS or kid >= FA_N_KERNELS):
        return None
    a = <cnp.ndarray>a_
    typenum = cnp.PyArray_TYPE(a)
    if typenum == cnp.NPY_FLOAT16:
        fmt = 1
    elif typenum == _bf16_typenum:
        fmt = 2
    else:
        return None
    if not _plain(a, typenum):
        return None
    n = cnp.PyArray_SIZE(a)
    nthreads = _decide(n, pass_, 0, kid, True)
    if nthreads == 0 or (nthreads == 1 and _numba_serial(pass_, 0, kid)):
        return None  # the general path (where Numba's serial kernels run 16-bit blocks)
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
