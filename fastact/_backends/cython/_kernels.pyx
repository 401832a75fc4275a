# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Parallel drivers for the generated C kernels (fa_kernels.h), and their fast path.

The kernels themselves are plain C loops over one contiguous chunk, generated
from the activation table; the drivers here split an array into one static
chunk per thread (``prange(..., schedule='static')``), release the GIL, and
pick the dtype's table.  One driver per kind of entry, written once over the
fused type ``real``:

* ``_abi.pxi``: the kernel tables of fa_kernels.h and the calls into them;
* ``_fast.pxi``: the fast path's decision (pushed by fastact._dispatch) and
  the checks that send a call down the general path instead;
* ``_numba.pxi``: the addresses of Numba's compiled kernels, which the fast
  path calls for the serial calls the policy gives to the Numba backend;
* ``_elementwise.pxi``, ``_rowwise.pxi`` (softmax), ``_channel.pxi`` (prelu):
  the general path's drivers and the fast path's calls of each kind;
* ``_epilogue.pxi``: the bias epilogues of elementwise entries;
* ``_half.pxi``: float16 and bfloat16 arrays through the float32 kernels.

The general path (fastact._api) has already validated the arrays: same
dtype, contiguous in the same order, and ``out`` writeable; its drivers do
not re-check that.  The fast path checks everything itself and returns None
where the general path must run.
"""

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint16_t, uint64_t
from libc.string cimport memcpy, memset
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from . cimport fa_openmp as openmp
from .fa_build cimport FA_COMPILER, FA_SIMD_CLONES, FA_SOURCE_KEY

import numpy as np

cnp.import_array()

include "_abi.pxi"

# Kernel kinds, as in fastact/_codegen/c_kernels.py.
FORWARD = 0
BACKWARD = 1
TRAIN_FORWARD = 2
TRAIN_BACKWARD = 3

N_KERNELS = FA_N_KERNELS

# What this build is (fastact._backends.cython.build_info).
HAS_OPENMP = bool(openmp.FA_HAS_OPENMP)
COMPILER = FA_COMPILER.decode().strip()
SIMD_CLONES = FA_SIMD_CLONES.decode()
SOURCE_KEY = FA_SOURCE_KEY.decode()

DEF MAX_PARAMS = 8
# The smallest chunk handed to a thread, in elements, and the fixed number of
# partial sums of a parameter gradient (fastact/_codegen/dialect.py).
cdef extern from "fa_kernels.h":
    enum:
        MIN_CHUNK "FA_MIN_CHUNK"
        PGRAD_BLOCKS "FA_PGRAD_BLOCKS"

include "_fast.pxi"
include "_numba.pxi"
include "_elementwise.pxi"
include "_rowwise.pxi"
include "_channel.pxi"
include "_epilogue.pxi"
include "_half.pxi"


def max_threads():
    """omp_get_max_threads() of the calling thread (threadpoolctl lowers it)."""
    return openmp.omp_get_max_threads()
