# The fast path's state and checks, shared by its calls of every kind.
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

# The fast path's decision, pushed by fastact._dispatch.push (see FastPolicy
# there): one Route per backend the fast path runs, the plans' decisions for
# that backend.  Below serial_below[pass][dtype][kid] elements a plain call runs
# the serial kernel (0: never); from par_from[...] (-1: never) a plain
# elementwise call runs the OpenMP driver with par_threads threads (0: never),
# lowered by an OpenMP limit of the calling thread (threadpoolctl) below
# omp_default, and shared with the other parallel calls running now
# (_par_active, changed only with the GIL held, also by the general path through
# par_enter/par_exit); numba[...]: bits NB_SERIAL (the serial calls) and NB_PARALLEL
# (the OpenMP driver's calls: elementwise, rowwise, per-channel forwards) run Numba's
# compiled kernel (_numba.pxi), not Cython's.  A call runs on the route of its context's
# config block when blocks choose backends (backend_blocks: it reads its own
# from the context variable _override, fastact._config.OVERRIDE), else on
# plain, the route of the backend set (enabled: one the fast path runs).
# serial_all: one thread in force, elementwise calls whose serial backend is
# compiled are serial at every size.  block_threads: while config blocks choose
# thread counts, the count of a context without one (0: such calls take the
# general path); a context inside one reads its own count from _override.
cdef struct Route:
    Py_ssize_t serial_below[2][N_DTYPES][MAX_FAST_KERNELS]
    Py_ssize_t par_from[2][N_DTYPES][MAX_FAST_KERNELS]
    unsigned char numba[2][N_DTYPES][MAX_FAST_KERNELS]
    bint numba_asked  # the route of the Numba backend (not auto's choice of Numba)

DEF MAX_FAST_BACKENDS = 4

cdef struct Policy:
    bint enabled
    bint backend_blocks
    bint serial_all
    int par_threads
    int block_threads
    int omp_default
    Route plain
    Route block[MAX_FAST_BACKENDS]

cdef Policy _policy
_policy.enabled = False
_policy.backend_blocks = False
_policy.block_threads = 0
cdef object _override = None
cdef dict _block_route = {}  # a config block's backend -> its index in _policy.block

from cpython.ref cimport PyObject, Py_XDECREF

cdef extern from "Python.h":
    ctypedef struct PyThreadState:
        pass
    int PyContextVar_Get(object var, PyObject *default_value, PyObject **value) except -1
    PyThreadState *PyThreadState_Get()


cdef object _context_block() noexcept:
    """The calling context's config block: (backend or None, threads or None), or
    None outside blocks (or when it cannot be read)."""
    cdef PyObject *value = NULL
    cdef object o
    if _override is None:
        return None
    try:
        PyContextVar_Get(_override, NULL, &value)
    except BaseException:
        return None
    if value == NULL:
        return None
    o = <object>value
    Py_XDECREF(value)
    if type(o) is not tuple or len(<tuple>o) != 2:
        return None
    return o


cdef int _context_threads() noexcept:
    """The thread count of the calling context's config block, else block_threads
    (0 when it cannot be read: the general path decides)."""
    cdef object o = _context_block()
    cdef object n
    if o is None:
        return _policy.block_threads
    n = (<tuple>o)[1]
    if n is None:
        return _policy.block_threads
    if type(n) is not int:
        return 0
    return <int>n


cdef Route *_decided = NULL  # the route of the last _decide, and the thread it ran on
cdef PyThreadState *_decided_by = NULL


cdef Route *_route() noexcept:
    """The route of the calling context (NULL: the general path)."""
    cdef object o, b, i
    if _policy.backend_blocks:
        o = _context_block()
        b = (<tuple>o)[0] if o is not None else None
        if b is not None:
            i = _block_route.get(b)
            return &_policy.block[<int>i] if i is not None else NULL
    return &_policy.plain if _policy.enabled else NULL


cdef inline Route *_decided_route() noexcept:
    """The route _decide chose for the call now running (this thread ran the last
    _decide), without reading the context again; else the context's."""
    return _decided if _decided_by == PyThreadState_Get() else _route()


cdef inline bint _may_run() noexcept:
    """Some context's calls can take the fast path (the backend set is one it runs, or
    config blocks choose backends)."""
    return _policy.enabled or _policy.backend_blocks


cdef void _set_route(Route *r, const cnp.int64_t *lim, const cnp.uint8_t *nb) noexcept:
    """``r`` from limits (2, 2, N_DTYPES, N_KERNELS) and numba (2, N_DTYPES,
    N_KERNELS) laid out as set_policy takes them."""
    cdef Py_ssize_t p, d, k
    for p in range(2):
        for d in range(N_DTYPES):
            for k in range(FA_N_KERNELS):
                r.serial_below[p][d][k] = lim[((0 * 2 + p) * N_DTYPES + d) * FA_N_KERNELS + k]
                r.par_from[p][d][k] = lim[((1 * 2 + p) * N_DTYPES + d) * FA_N_KERNELS + k]
                r.numba[p][d][k] = nb[(p * N_DTYPES + d) * FA_N_KERNELS + k]


cdef int _check_route(cnp.ndarray limits, cnp.ndarray numba, int lead) except -1:
    """ValueError unless the arrays have set_policy's layout (``lead`` leading axes of
    one backend each: 0 or 1)."""
    cdef int j = lead
    if (cnp.PyArray_TYPE(numba) != cnp.NPY_UINT8
            or not cnp.PyArray_IS_C_CONTIGUOUS(numba)
            or cnp.PyArray_NDIM(numba) != 3 + lead
            or cnp.PyArray_DIM(numba, j) != 2
            or cnp.PyArray_DIM(numba, j + 1) != N_DTYPES
            or cnp.PyArray_DIM(numba, j + 2) != FA_N_KERNELS):
        raise ValueError("numba must be a C-contiguous uint8 array (2, N_DTYPES, N_KERNELS)")
    if (cnp.PyArray_TYPE(limits) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(limits)
            or cnp.PyArray_NDIM(limits) != 4 + lead or cnp.PyArray_DIM(limits, j) != 2
            or cnp.PyArray_DIM(limits, j + 1) != 2 or cnp.PyArray_DIM(limits, j + 2) != N_DTYPES
            or cnp.PyArray_DIM(limits, j + 3) != FA_N_KERNELS or FA_N_KERNELS > MAX_FAST_KERNELS):
        raise ValueError("limits must be a C-contiguous int64 array (2, 2, N_DTYPES, N_KERNELS)")
    if lead and (cnp.PyArray_DIM(limits, 0) != cnp.PyArray_DIM(numba, 0)
                 or cnp.PyArray_DIM(limits, 0) > MAX_FAST_BACKENDS):
        raise ValueError("one route of limits and numba per block backend")
    return 0


cdef int _par_active = 0
cdef bint _par_used = False


def set_policy(bint enabled, bint serial_all, int par_threads, int omp_default,
               cnp.ndarray limits, cnp.ndarray numba, int block_threads=0,
               object override=None, tuple block_backends=(), cnp.ndarray block_limits=None,
               cnp.ndarray block_numba=None, tuple numba_asked=(False,)):
    """Install the fast path's decision (see Policy): the flags, ``block_threads`` and
    the context variable ``override`` of config blocks; the route of the calls outside
    backend blocks, ``limits``, an int64 array (2, 2, N_DTYPES, N_KERNELS) of
    [serial_below, par_from][pass][dtype][kernel id], and ``numba``, a uint8
    array (2, N_DTYPES, N_KERNELS): bit NUMBA_SERIAL where the serial calls run
    Numba's kernel, NUMBA_PARALLEL where the OpenMP driver's calls do;
    ``block_backends``: while config blocks choose backends, the backends whose
    blocks the fast path runs, route j of ``block_limits`` and ``block_numba`` (one
    more leading axis) for a block of ``block_backends[j]``; ``numba_asked``: whether
    each route (the plain one, then the blocks') is the Numba backend's."""
    cdef Py_ssize_t j, nb = len(block_backends)
    _check_route(limits, numba, 0)
    if nb:
        if block_limits is None or block_numba is None:
            raise ValueError("block_backends needs block_limits and block_numba")
        _check_route(block_limits, block_numba, 1)
        if cnp.PyArray_DIM(block_limits, 0) != nb:
            raise ValueError("one route of block_limits and block_numba per block backend")
    if len(numba_asked) != nb + 1:
        raise ValueError("numba_asked: one flag for the plain route and each block's")
    _policy.enabled = False  # no call reads a half-written table
    _policy.backend_blocks = False
    _set_route(&_policy.plain, <const cnp.int64_t *>cnp.PyArray_DATA(limits),
               <const cnp.uint8_t *>cnp.PyArray_DATA(numba))
    _policy.plain.numba_asked = numba_asked[0]
    for j in range(nb):
        _policy.block[j].numba_asked = numba_asked[j + 1]
        _set_route(&_policy.block[j],
                   <const cnp.int64_t *>cnp.PyArray_DATA(block_limits) + j * 4 * N_DTYPES * FA_N_KERNELS,
                   <const cnp.uint8_t *>cnp.PyArray_DATA(block_numba) + j * 2 * N_DTYPES * FA_N_KERNELS)
    global _block_route, _override
    _block_route = {b: j for j, b in enumerate(block_backends)}
    _policy.serial_all = serial_all
    _policy.par_threads = par_threads
    _policy.block_threads = block_threads if override is not None else 0
    _policy.omp_default = omp_default
    _override = override
    _policy.backend_blocks = nb > 0 and override is not None
    _policy.enabled = enabled


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


cdef inline int _decide(Py_ssize_t n, int pass_, int di, int kid, bint elementwise) noexcept:
    """Threads of a plain call of ``n`` elements: 1 serial, k > 1 the OpenMP driver,
    0 the general path (the path on, ``kid`` and ``di`` in range).  ``elementwise``:
    a kernel the fast path runs at every size (elementwise and rowwise ones); the
    others (per-channel) only below the serial limit."""
    cdef Route *r = _route()
    cdef Py_ssize_t limit, start
    cdef int nthreads, most
    global _decided, _decided_by
    _decided, _decided_by = r, PyThreadState_Get()
    if n <= 0 or r == NULL:
        return 0
    limit = r.serial_below[pass_][di][kid]
    if n < limit:
        return 1
    if not elementwise:
        return 0
    if _policy.serial_all and limit > 0:
        return 1
    nthreads = _policy.par_threads
    if nthreads == 0 and _policy.block_threads > 0:
        nthreads = _context_threads()
        if nthreads == 1:  # as serial_all, for the calling context
            return 1 if limit > 0 else 0
    start = r.par_from[pass_][di][kid]
    if nthreads <= 1 or start < 0 or n < start:
        return 0
    most = openmp.omp_get_max_threads()
    if most < _policy.omp_default and most < nthreads:
        nthreads = most
    if nthreads <= 1:
        return 1 if limit > 0 else 0
    return nthreads


def fast_threads(int kind, int pass_, int dtype_index, int kid, Py_ssize_t n):
    """What the fast path decides for a plain call of ``n`` elements of kernel ``kid``
    (``kind`` 0: elementwise, 1: rowwise, 2: per-channel): 0 the general path,
    1 serial, k > 1 the OpenMP driver with k threads before sharing."""
    if (not _may_run() or not 0 <= pass_ < 2
            or not 0 <= dtype_index < N_DTYPES
            or not 0 <= kid < FA_N_KERNELS):
        return 0
    return _decide(n, pass_, dtype_index, kid, kind <= 1)


cdef inline int _fast_threads(cnp.ndarray a, int pass_, int di, int kid) noexcept:
    """1: a serial fast call, k > 1: a parallel one, 0: the general path."""
    if not _plain(a, cnp.PyArray_TYPE(a)):
        return 0
    return _decide(cnp.PyArray_SIZE(a), pass_, di, kid, True)


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


cdef inline bint _apart(cnp.ndarray a, cnp.ndarray b) noexcept:
    """The bytes of ``a`` and of ``b`` (contiguous) do not overlap."""
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef inline bint _plain(object x, int typenum) noexcept:
    """An exact, C-contiguous, aligned ndarray of dtype ``typenum``."""
    if type(x) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_IS_C_CONTIGUOUS(a)
            and cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISNOTSWAPPED(a))


cdef inline int _fast_dtype(object x, int kid) noexcept:
    """The dtype index of an exact ndarray, for a kernel id and the path on; else -1."""
    if (not _may_run() or type(x) is not cnp.ndarray
            or kid < 0 or kid >= MAX_FAST_KERNELS or kid >= FA_N_KERNELS):
        return -1
    return _dtype_index(<cnp.ndarray>x)


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
