# The generated C kernels (fa_kernels.h, written by fastact/_codegen/c_kernels.py
# from the table): per dtype, tables of function pointers indexed by kernel id.
# The drivers are written once over the fused type ``real``; the calls below are
# the only place where a dtype meets its tables.  A new dtype adds a type to
# ``real``, its tables to the lists below, and one branch to each _run_* driver.

cdef extern from "fa_kernels.h" nogil:
    ctypedef void (*fa_unary_f32)(const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_unary_f64)(const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_binary_f32)(const float *, const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_binary_f64)(const double *, const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    ctypedef void (*fa_rowf_f32)(const float *, float *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rowf_f64)(const double *, double *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rowb_f32)(const float *, const float *, float *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    ctypedef void (*fa_rowb_f64)(const double *, const double *, double *, Py_ssize_t, Py_ssize_t, const double *) noexcept nogil
    fa_unary_f32 *FA_FWD_F32
    fa_unary_f32 *FA_TFWD_F32
    fa_unary_f64 *FA_FWD_F64
    fa_unary_f64 *FA_TFWD_F64
    fa_binary_f32 *FA_BWD_F32
    fa_binary_f32 *FA_TBWD_F32
    fa_binary_f64 *FA_BWD_F64
    fa_binary_f64 *FA_TBWD_F64
    fa_rowf_f32 *FA_RFWD_F32
    fa_rowf_f64 *FA_RFWD_F64
    fa_rowb_f32 *FA_RBWD_F32
    fa_rowb_f64 *FA_RBWD_F64
    int FA_N_KERNELS
    void fa_stream_unary_f32(const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    void fa_stream_unary_f64(const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    void fa_stream_binary_f32(const float *, const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    void fa_stream_binary_f64(const double *, const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t) noexcept nogil
    void fa_nt_init()
    size_t fa_nt_min_bytes
    bint FA_HAVE_NT
    bint fa_nt_stores(const void *out, Py_ssize_t n, size_t size, int arrays)
    void fa_nt_copy(void *dst, const void *src, size_t size)
    void fa_nt_fence()
    bint fa_prefetching(Py_ssize_t n, size_t size)
    void fa_prefetch(const void *p, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t n, size_t size)
    void fa_prefetch_l2(const void *p, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t n, size_t size)
    enum:
        FA_AHEAD_BYTES

# Non-temporal stores for chunks too large to stay in cache (fa_intrinsics.h).
fa_nt_init()


def nt_min_bytes(value=None):
    """The bytes (inputs and output) from which a call's memory-bound kernels store
    its output non-temporally where the output's pages are mapped in; 0 where this
    build has no such stores.  ``value`` sets it (0: always, mapped or not; the
    tests compare both ways: the same bits) and the previous one is returned."""
    global fa_nt_min_bytes
    cdef size_t was = fa_nt_min_bytes
    if value is not None:
        fa_nt_min_bytes = value
    return was if FA_HAVE_NT else 0


ctypedef fused real:
    float
    double

# Dtype indices, in the order of fastact._dispatch.DTYPES.
DEF N_DTYPES = 2


cdef inline int _dtype_index(cnp.ndarray a) noexcept:
    """0 (float32) or 1 (float64); -1 for any other dtype."""
    cdef int typenum = cnp.PyArray_TYPE(a)
    if typenum == cnp.NPY_FLOAT32:
        return 0
    if typenum == cnp.NPY_FLOAT64:
        return 1
    return -1


# Elementwise tables, by what they compute: the plain kernels (FA_FWD/FA_BWD),
# training mode (rrelu: FA_TFWD/FA_TBWD), and the streaming copy of the benchmarks
# (kernel 0).  The forms with a weight per element take it in the arrays' type
# (_channel.pxi).
cdef enum:
    PLAIN = 0
    TRAIN = 1
    STREAM = 2

cdef fa_unary_f32 _STREAM_U32[1]
cdef fa_unary_f64 _STREAM_U64[1]
cdef fa_binary_f32 _STREAM_B32[1]
cdef fa_binary_f64 _STREAM_B64[1]
_STREAM_U32[0] = fa_stream_unary_f32
_STREAM_U64[0] = fa_stream_unary_f64
_STREAM_B32[0] = fa_stream_binary_f32
_STREAM_B64[0] = fa_stream_binary_f64

cdef fa_unary_f32 *_U32[3]
cdef fa_unary_f64 *_U64[3]
cdef fa_binary_f32 *_B32[3]
cdef fa_binary_f64 *_B64[3]
_U32[PLAIN] = FA_FWD_F32
_U32[TRAIN] = FA_TFWD_F32
_U32[STREAM] = _STREAM_U32
_U64[PLAIN] = FA_FWD_F64
_U64[TRAIN] = FA_TFWD_F64
_U64[STREAM] = _STREAM_U64
_B32[PLAIN] = FA_BWD_F32
_B32[TRAIN] = FA_TBWD_F32
_B32[STREAM] = _STREAM_B32
_B64[PLAIN] = FA_BWD_F64
_B64[TRAIN] = FA_TBWD_F64
_B64[STREAM] = _STREAM_B64


cdef inline bint _has_unary(int di, int table, int kid) noexcept nogil:
    if di == 0:
        return _U32[table][kid] != NULL
    return _U64[table][kid] != NULL


cdef inline bint _has_binary(int di, int table, int kid) noexcept nogil:
    if di == 0:
        return _B32[table][kid] != NULL
    return _B64[table][kid] != NULL


cdef inline bint _has_rowwise(int kid) noexcept nogil:
    return FA_RFWD_F32[kid] != NULL


cdef inline void _unary(int table, int kid, const real *x, real *out, Py_ssize_t n,
                        const double *p, uint64_t seed, int64_t off) noexcept nogil:
    if real is float:
        _U32[table][kid](x, out, n, p, seed, off)
    else:
        _U64[table][kid](x, out, n, p, seed, off)


cdef inline void _binary(int table, int kid, const real *g, const real *s, real *out,
                         Py_ssize_t n, const double *p, uint64_t seed, int64_t off) noexcept nogil:
    if real is float:
        _B32[table][kid](g, s, out, n, p, seed, off)
    else:
        _B64[table][kid](g, s, out, n, p, seed, off)


cdef inline void _rows(int kid, const real *a, const real *b, real *out, Py_ssize_t rows,
                       Py_ssize_t rowlen) noexcept nogil:
    """A rowwise kernel over ``rows`` whole rows: the forward when ``b`` is NULL."""
    if real is float:
        if b == NULL:
            FA_RFWD_F32[kid](a, out, rows, rowlen, NULL)
        else:
            FA_RBWD_F32[kid](a, b, out, rows, rowlen, NULL)
    else:
        if b == NULL:
            FA_RFWD_F64[kid](a, out, rows, rowlen, NULL)
        else:
            FA_RBWD_F64[kid](a, b, out, rows, rowlen, NULL)
