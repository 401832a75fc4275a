# Numba's compiled kernels, called by the fast path through their addresses.
#
# The Numba backend compiles each kernel as a C-ABI function (a ``cfunc``) and
# hands its address here (set_numba_kernel) the first time it compiles or
# loads it, for the table's entries.  A plain serial call that the policy
# gives to Numba (Route.numba, bit NB_SERIAL) then runs that machine code from C,
# with the arguments the Numba backend's serial driver passes (the whole
# buffer as one chunk, parameter offset 0): Numba's bits, without a Python
# frame.  A parallel elementwise or rowwise call, or a per-channel forward, it
# gives to Numba (bit NB_PARALLEL) runs the kernels on the OpenMP driver's chunks
# (_nb_chunks), blocks of whole rows (_nb_row_blocks) or units (_nb_channel_fwd):
# an element's or a row's result does not depend on the cut, so these are
# Numba's drivers' bits too.  A kernel not
# compiled yet sends the call down the general path, which compiles it.  The
# signatures (fastact/_codegen/numba_kernels.py) take T* as the float type's
# pointer: void* here, one table for every dtype.

ctypedef void (*nb_unary)(const void *, void *, const double *, int64_t, uint64_t, int64_t,
                          int64_t) noexcept nogil
ctypedef void (*nb_binary)(const void *, const void *, void *, const double *, int64_t,
                           uint64_t, int64_t, int64_t) noexcept nogil
ctypedef void (*nb_rowf)(const void *, void *, const double *, int64_t, int64_t,
                         int64_t) noexcept nogil
ctypedef void (*nb_rowb)(const void *, const void *, void *, const double *, int64_t, int64_t,
                         int64_t) noexcept nogil
ctypedef void (*nb_pgrad)(const void *, const void *, const double *, int64_t, double *, int64_t,
                          int64_t, int64_t) noexcept nogil

# The kernel kinds with a slot, by the Numba backend's names: an elementwise
# slot is (TRAIN table) * 2 + pass + 4 * (in place), then the rowwise ones, then
# the per-channel ones (prelu: a weight per element of a row, "v", at pass + 2 *
# (in place) from NB_CHANNEL, and the weight gradient's, plain and "v"), then the
# rowwise in-place twins.
NUMBA_KINDS = ("fwd", "bwd", "tfwd", "tbwd", "fwd_ip", "bwd_ip", "tfwd_ip", "tbwd_ip",
               "rfwd", "rbwd", "fwdv", "bwdv", "fwdv_ip", "bwdv_ip", "pgrad", "pgradv",
               "rfwd_ip", "rbwd_ip")
DEF NB_SLOTS = 18
DEF NB_ROWS = 8
DEF NB_CHANNEL = 10
DEF NB_PGRAD = 14
DEF NB_ROWS_IP = 16

# The 16-bit formats' kernels (float16, bfloat16: dtype indices N_DTYPES and
# N_DTYPES + 1), which widen and round each element themselves: the elementwise kinds,
# prelu's per-channel kinds and the row backwards (fastact/_codegen/numba_kernels.py,
# kinds_of).
cdef void *_NB[NB_SLOTS][N_DTYPES][MAX_FAST_KERNELS]
cdef void *_NB_HALF[NB_SLOTS][2][MAX_FAST_KERNELS]
cdef double _NB_NOPARAMS[MAX_PARAMS]
memset(_NB, 0, sizeof(_NB))
memset(_NB_HALF, 0, sizeof(_NB_HALF))
memset(_NB_NOPARAMS, 0, sizeof(_NB_NOPARAMS))


cdef void **_nb_entry(int slot, int dtype_index, int kid) except NULL:
    if 0 <= kid < FA_N_KERNELS and kid < MAX_FAST_KERNELS:
        if 0 <= slot < NB_SLOTS and 0 <= dtype_index < N_DTYPES:
            return &_NB[slot][dtype_index][kid]
        if 0 <= slot < NB_SLOTS and N_DTYPES <= dtype_index < N_DTYPES + 2:
            return &_NB_HALF[slot][dtype_index - N_DTYPES][kid]
    raise ValueError("numba kernel slot out of range")


cdef inline void *_nb_kernel(int slot, int dtype_index, int kid) noexcept:
    """The kernel _nb_entry records (a slot, dtype index and kernel id in range)."""
    if dtype_index < N_DTYPES:
        return _NB[slot][dtype_index][kid]
    return _NB_HALF[slot][dtype_index - N_DTYPES][kid]


def set_numba_kernel(int slot, int dtype_index, int kid, size_t address):
    """Record the address of Numba's kernel ``NUMBA_KINDS[slot]`` of kernel ``kid``
    for dtype ``dtype_index`` (float32, float64, then the 16-bit formats float16 and
    bfloat16; 0: forget it)."""
    _nb_entry(slot, dtype_index, kid)[0] = <void *>address


def numba_kernel(int slot, int dtype_index, int kid):
    """The address recorded by set_numba_kernel (0: none)."""
    return <size_t>_nb_entry(slot, dtype_index, kid)[0]


# The bits of Route.numba (fastact._dispatch.NUMBA_SERIAL and NUMBA_PARALLEL).
DEF NB_SERIAL = 1
DEF NB_PARALLEL = 2
NUMBA_SERIAL = NB_SERIAL
NUMBA_PARALLEL = NB_PARALLEL


cdef inline bint _numba_serial(int pass_, int di, int kid) noexcept:
    """The calling context's route gives this serial call to Numba's kernel (``di``,
    ``kid`` in range): the route _decide chose for it, where this thread ran the last
    _decide (no second read of the context)."""
    cdef Route *r = _decided_route()
    return r != NULL and (r.numba[pass_][di][kid] & NB_SERIAL) != 0


cdef inline bint _numba_runs(int pass_, int di, int kid, int nthreads) noexcept:
    """The route gives this elementwise call of ``nthreads`` threads (as _decide
    returned them) to Numba's kernel: serial, or on the OpenMP driver's chunks."""
    cdef Route *r = _decided_route()
    return r != NULL and (r.numba[pass_][di][kid]
                          & (NB_SERIAL if nthreads == 1 else NB_PARALLEL)) != 0


cdef inline bint _numba_asked() noexcept:
    """The calling context's route is the Numba backend's (as _numba_serial reads it)."""
    cdef Route *r = _decided_route()
    return r != NULL and r.numba_asked


cdef inline void _nb_run(void *k, const void *a, const void *b, void *out, Py_ssize_t n,
                         const double *p, uint64_t seed) noexcept nogil:
    if b == NULL:
        (<nb_unary>k)(a, out, p, 0, seed, 0, n)
    else:
        (<nb_binary>k)(a, b, out, p, 0, seed, 0, n)


cdef void _nb_chunks(void *k, const void *a, const void *b, void *out, Py_ssize_t n,
                     const double *p, uint64_t seed, int nthreads) noexcept nogil:
    """Numba's kernel ``k`` over elements 0:n, one static chunk per thread cut as the
    C driver cuts them (_chunks): the kernels index from the buffers' starts."""
    cdef Py_ssize_t nch = _n_chunks(n, nthreads), c, start, stop
    cdef Py_ssize_t step = _chunk_len(n, nch)
    if nch <= 1:
        _nb_run(k, a, b, out, n, p, seed)
        return
    for c in prange(nch, schedule="static", num_threads=nch):
        start = c * step
        if start < n:
            stop = start + step if start + step <= n else n
            if b == NULL:
                (<nb_unary>k)(a, out, p, 0, seed, start, stop)
            else:
                (<nb_binary>k)(a, b, out, p, 0, seed, start, stop)


cdef object _numba_elementwise(int table, int pass_, int di, int kid, const void *ap,
                               const void *bp, cnp.ndarray o, Py_ssize_t n, const double *p,
                               uint64_t seed, int nthreads):
    """Numba's kernel of dtype index ``di`` (a 16-bit format's from N_DTYPES on) over the
    whole buffer, its in-place twin when ``o`` is the first input; serial, or on the
    OpenMP driver's chunks for nthreads > 1.  None when it is not compiled yet."""
    cdef void *op = cnp.PyArray_DATA(o)
    cdef int slot = (2 if table == TRAIN else 0) + pass_ + (4 if op == ap else 0)
    cdef void *k = _nb_kernel(slot, di, kid)
    cdef bint parallel = nthreads > 1
    if k == NULL:
        return None
    if parallel:
        nthreads = _par_begin(nthreads)
    if n < GIL_RELEASE_MIN:
        _nb_chunks(k, ap, bp, op, n, p, seed, nthreads)
    else:
        with nogil:
            _nb_chunks(k, ap, bp, op, n, p, seed, nthreads)
    if parallel:
        _par_end()
    return o


cdef inline void _nb_rows(void *k, const void *a, const void *b, void *out, Py_ssize_t rows,
                          Py_ssize_t rowlen) noexcept nogil:
    if b == NULL:
        (<nb_rowf>k)(a, out, _NB_NOPARAMS, rowlen, 0, rows)
    else:
        (<nb_rowb>k)(a, b, out, _NB_NOPARAMS, rowlen, 0, rows)


cdef void _nb_row_blocks(void *k, const void *a, const void *b, void *out, Py_ssize_t rows,
                         Py_ssize_t rowlen, int nthreads) noexcept nogil:
    """Numba's row kernel ``k`` over rows 0:rows, one static block of whole rows per
    thread (the kernels index from the buffers' starts; a row's bits do not depend
    on its block)."""
    cdef Py_ssize_t nblk = _n_chunks(rows * rowlen, nthreads), c, r0, step
    if nblk > rows:
        nblk = rows
    if nblk <= 1:
        _nb_rows(k, a, b, out, rows, rowlen)
        return
    step = (rows + nblk - 1) // nblk
    for c in prange(nblk, schedule="static", num_threads=nblk):
        r0 = c * step
        if r0 < rows:
            if b == NULL:
                (<nb_rowf>k)(a, out, _NB_NOPARAMS, rowlen, r0, min(r0 + step, rows))
            else:
                (<nb_rowb>k)(a, b, out, _NB_NOPARAMS, rowlen, r0, min(r0 + step, rows))


cdef object _numba_rows(int pass_, int di, int kid, const void *ap, const void *bp,
                        cnp.ndarray o, Py_ssize_t rows, Py_ssize_t rowlen, int nthreads):
    """Numba's rowwise kernel of dtype index ``di`` (a 16-bit format's row backward from
    N_DTYPES on) over all rows (its in-place twin when ``o`` is the first input, ``x``
    or ``g``: with two equal pointers its loops would run scalar); serial, or blocks of
    rows on the OpenMP driver for nthreads > 1.  None when it is not compiled yet."""
    cdef bint ip = cnp.PyArray_DATA(o) == ap
    cdef void *k = _nb_kernel((NB_ROWS_IP if ip else NB_ROWS) + pass_, di, kid)
    cdef void *op = cnp.PyArray_DATA(o)
    cdef bint parallel = nthreads > 1
    if k == NULL:
        return None
    if parallel:
        nthreads = _par_begin(nthreads)
    if rows * rowlen < GIL_RELEASE_MIN:
        _nb_row_blocks(k, ap, bp, op, rows, rowlen, nthreads)
    else:
        with nogil:
            _nb_row_blocks(k, ap, bp, op, rows, rowlen, nthreads)
    if parallel:
        _par_end()
    return o

