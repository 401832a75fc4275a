# Elementwise entries: one kernel call over the flat buffers, or one static chunk
# per thread.  Also rrelu in training mode (each element's slope is keyed by the
# seed and its C-order index: a chunk passes its offset) and the streaming copy.

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


cdef inline void _kernel(int table, int kid, const real *a, const real *b, real *out,
                         Py_ssize_t n, const double *p, uint64_t seed, int64_t off) noexcept nogil:
    """out = f(a) (``b`` NULL) or out = f'(g=a, b)."""
    if b == NULL:
        _unary(table, kid, a, out, n, p, seed, off)
    else:
        _binary(table, kid, a, b, out, n, p, seed, off)


cdef void _chunks(int table, int kid, const real *a, const real *b, real *out, Py_ssize_t n,
                  const double *p, uint64_t seed, int nthreads) noexcept nogil:
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, ln
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        _kernel(table, kid, a, b, out, n, p, seed, 0)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            ln = step if start + step <= n else n - start
            _kernel(table, kid, a + start, b + start if b != NULL else NULL, out + start, ln,
                    p, seed, start)


cdef inline void _run_elementwise(int di, int table, int kid, const void *a, const void *b,
                                  void *out, Py_ssize_t n, const double *p, uint64_t seed,
                                  int nthreads) noexcept nogil:
    """The kernel over the whole buffer: serial, or the OpenMP driver for nthreads > 1."""
    if di == 0:
        _chunks(table, kid, <const float *>a, <const float *>b, <float *>out, n, p, seed,
                nthreads)
    else:
        _chunks(table, kid, <const double *>a, <const double *>b, <double *>out, n, p, seed,
                nthreads)


cdef object _elementwise(int table, int kid, cnp.ndarray a, object b, cnp.ndarray out,
                         tuple params, uint64_t seed, int nthreads):
    cdef double p[MAX_PARAMS]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(a)
    cdef int di = _dtype_index(a)
    cdef const void *bp = NULL
    if kid < 0 or kid >= FA_N_KERNELS:
        raise ValueError("kernel id out of range")
    if di < 0:
        raise ValueError("no kernel for this dtype")
    _fill_params(params, p)
    if not (_has_unary(di, table, kid) if b is None else _has_binary(di, table, kid)):
        raise ValueError("no such kernel")
    if b is not None:
        bp = cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef const void *ap = cnp.PyArray_DATA(a)
    cdef void *op = cnp.PyArray_DATA(out)
    with nogil:
        _run_elementwise(di, table, kid, ap, bp, op, n, p, seed, nthreads)
    return out


def unary(int kind, int kid, cnp.ndarray x, cnp.ndarray out, tuple params,
          uint64_t seed=0, int nthreads=1):
    """out = f(x) elementwise over the flat buffers (kind FORWARD or TRAIN_FORWARD)."""
    return _elementwise(PLAIN if kind == FORWARD else TRAIN, kid, x, None, out, params, seed,
                        nthreads)


def binary(int kind, int kid, cnp.ndarray g, cnp.ndarray s, cnp.ndarray out, tuple params,
           uint64_t seed=0, int nthreads=1):
    """out = f'(g, s) elementwise over the flat buffers (kind BACKWARD or TRAIN_BACKWARD)."""
    return _elementwise(PLAIN if kind == BACKWARD else TRAIN, kid, g, s, out, params, seed,
                        nthreads)


def stream(cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, int nthreads=1):
    """The streaming limit, for benchmarks: out = a * 1 (b is None) or out = a * b.

    Same traffic as a forward (read one array, write one) or a backward (read
    two, write one), with the same chunking and threads as the real kernels.
    """
    return _elementwise(STREAM, 0, a, b, out, (1.0,), 0, nthreads)


# The fast path of elementwise calls: serial, or the OpenMP driver from C (Cython's
# kernels, or Numba's where the route gives the call to Numba).

cdef object _fast_elementwise(int pass_, int table, int kid, object a_, object b_, object out,
                              tuple params, uint64_t seed):
    cdef cnp.ndarray a, o
    cdef int di = _fast_dtype(a_, kid)
    cdef Py_ssize_t n
    cdef double p[MAX_PARAMS]
    cdef const void *bp = NULL
    cdef int nthreads
    if di < 0:
        return _fast_half(pass_, table, kid, a_, b_, out, params, seed)
    a = <cnp.ndarray>a_
    nthreads = _fast_threads(a, pass_, di, kid)
    if nthreads == 0:
        return None
    if pass_ == 0:
        if _fast_params(params, p) < 0 or not _has_unary(di, table, kid):
            return None
    else:
        if not _plain(b_, cnp.PyArray_TYPE(a)) or not _same_shape(a, <cnp.ndarray>b_):
            return None
        if _fast_params(params, p) < 0 or not _has_binary(di, table, kid):
            return None
        bp = cnp.PyArray_DATA(<cnp.ndarray>b_)
    n = cnp.PyArray_SIZE(a)
    res = _fast_out(a, out, n * cnp.PyArray_ITEMSIZE(a), b_)
    if res is None:
        return None
    o = <cnp.ndarray>res
    cdef const void *ap = cnp.PyArray_DATA(a)
    if _numba_runs(pass_, di, kid, nthreads):
        return _numba_elementwise(table, pass_, di, kid, ap, bp, o, n, p, seed, nthreads)
    cdef void *op = cnp.PyArray_DATA(o)
    cdef bint parallel = nthreads > 1
    if parallel:
        nthreads = _par_begin(nthreads)
    if n < GIL_RELEASE_MIN:
        _run_elementwise(di, table, kid, ap, bp, op, n, p, seed, nthreads)
    else:
        with nogil:
            _run_elementwise(di, table, kid, ap, bp, op, n, p, seed, nthreads)
    if parallel:
        _par_end()
    return o


def fast_forward(int kid, object x, object out, tuple params):
    """Forward of a plain array (serial, or the OpenMP driver above the plan's size);
    None when the general path must run."""
    return _fast_elementwise(0, PLAIN, kid, x, None, out, params, 0)


def fast_backward(int kid, object g, object s, object out, tuple params):
    """Backward of plain arrays, as fast_forward; None when the general path must run."""
    return _fast_elementwise(1, PLAIN, kid, g, s, out, params, 0)


def fast_train_forward(int kid, object x, object out, tuple params, uint64_t seed):
    """Training-mode forward (rrelu) keyed by ``seed``; None: the general path."""
    return _fast_elementwise(0, TRAIN, kid, x, None, out, params, seed)


def fast_train_backward(int kid, object g, object s, object out, tuple params, uint64_t seed):
    """Training-mode backward (rrelu) keyed by ``seed``; None: the general path."""
    return _fast_elementwise(1, TRAIN, kid, g, s, out, params, seed)
