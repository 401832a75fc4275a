"""Type stub of the compiled Cython/OpenMP driver (_kernels.pyx)."""

import numpy as np

FORWARD: int
BACKWARD: int
TRAIN_FORWARD: int
TRAIN_BACKWARD: int
N_KERNELS: int
HAS_OPENMP: bool
COMPILER: str
SIMD_CLONES: str
SOURCE_KEY: str
NUMBA_KINDS: tuple[str, ...]
NUMBA_SERIAL: int
NUMBA_PARALLEL: int
BIAS_ORDER: tuple[int, int, int, int]
FAST_ROW_RUN: int

def unary(
    kind: int,
    kid: int,
    x: np.ndarray,
    out: np.ndarray,
    params: tuple[float, ...],
    seed: int = ...,
    nthreads: int = ...,
) -> np.ndarray: ...
def binary(
    kind: int,
    kid: int,
    g: np.ndarray,
    s: np.ndarray,
    out: np.ndarray,
    params: tuple[float, ...],
    seed: int = ...,
    nthreads: int = ...,
) -> np.ndarray: ...
def channel_forward(
    kid: int,
    x: np.ndarray,
    out: np.ndarray,
    weight: np.ndarray,
    outer: int,
    C: int,
    inner: int,
    nthreads: int = ...,
) -> np.ndarray: ...
def channel_backward(
    kid: int,
    g: np.ndarray,
    s: np.ndarray,
    out: np.ndarray,
    weight: np.ndarray,
    outer: int,
    C: int,
    inner: int,
    nthreads: int = ...,
) -> np.ndarray: ...
def rowwise(
    kind: int,
    kid: int,
    a: np.ndarray,
    b: np.ndarray | None,
    out: np.ndarray,
    rows: int,
    rowlen: int,
    nthreads: int = ...,
) -> np.ndarray: ...
def stream(
    a: np.ndarray, b: np.ndarray | None, out: np.ndarray, nthreads: int = ...
) -> np.ndarray: ...
def set_policy(
    enabled: bool,
    serial_all: bool,
    par_threads: int,
    omp_default: int,
    limits: np.ndarray,
    numba: np.ndarray,
    block_threads: int = ...,
    override: object = ...,
    block_backends: tuple[str, ...] = ...,
    block_limits: np.ndarray | None = ...,
    block_numba: np.ndarray | None = ...,
    numba_asked: tuple[bool, ...] = ...,
) -> None: ...
def fast_threads(kind: int, pass_: int, dtype_index: int, kid: int, n: int) -> int: ...
def par_enter(nthreads: int) -> int: ...
def par_exit() -> None: ...
def parallel_used() -> bool: ...
def set_numba_kernel(slot: int, dtype_index: int, kid: int, address: int) -> None: ...
def numba_kernel(slot: int, dtype_index: int, kid: int) -> int: ...
def fast_forward(kid: int, x: object, out: object, params: tuple) -> np.ndarray | None: ...
def fast_backward(
    kid: int, g: object, s: object, out: object, params: tuple
) -> np.ndarray | None: ...
def fast_train_forward(
    kid: int, x: object, out: object, params: tuple, seed: int
) -> np.ndarray | None: ...
def fast_train_backward(
    kid: int, g: object, s: object, out: object, params: tuple, seed: int
) -> np.ndarray | None: ...
def set_bias_blocks(most: int, block_min: int, per_channel: int) -> None: ...
def fast_bias_forward(
    kid: int, x: object, bias: object, bias_axis: object, out: object, params: tuple
) -> np.ndarray | None: ...
def fast_bias_backward(
    kid: int,
    recompute: bool,
    g: object,
    s: object,
    bias: object,
    bias_axis: object,
    out: object,
    params: tuple,
) -> tuple[np.ndarray, np.ndarray] | None: ...
def fast_train_bias_forward(
    kid: int, x: object, bias: object, bias_axis: object, out: object, params: tuple, seed: int
) -> np.ndarray | None: ...
def fast_train_bias_backward(
    kid: int,
    recompute: bool,
    g: object,
    s: object,
    bias: object,
    bias_axis: object,
    out: object,
    params: tuple,
    seed: int,
) -> tuple[np.ndarray, np.ndarray] | None: ...
def fast_rowwise_forward(kid: int, x: object, axis: object, out: object) -> np.ndarray | None: ...
def fast_rowwise_backward(
    kid: int, g: object, s: object, axis: object, out: object
) -> np.ndarray | None: ...
def fast_channel_forward(kid: int, x: object, weight: object, out: object) -> np.ndarray | None: ...
def fast_channel_backward(
    kid: int, g: object, s: object, weight: object, out: object
) -> tuple[np.ndarray, np.ndarray] | None: ...
def bias_forward(
    kind: int,
    kid: int,
    x: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    C: int,
    inner: int,
    params: tuple[float, ...],
    seed: int = ...,
    nthreads: int = ...,
) -> np.ndarray: ...
def bias_backward(
    kind: int,
    kid: int,
    g: np.ndarray,
    s: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    C: int,
    inner: int,
    recompute: bool,
    params: tuple[float, ...],
    partial: np.ndarray,
    seed: int = ...,
    nthreads: int = ...,
) -> np.ndarray: ...
def max_threads() -> int: ...

# 16-bit storage (_half.pxi): uint16 views of format fmt (1 float16, 2 bfloat16)
def half_unary(
    fmt: int,
    kind: int,
    kid: int,
    x: np.ndarray,
    out: np.ndarray,
    params: tuple[float, ...],
    seed: int = ...,
    nthreads: int = ...,
) -> np.ndarray: ...
def half_binary(
    fmt: int,
    kind: int,
    kid: int,
    g: np.ndarray,
    s: np.ndarray,
    out: np.ndarray,
    params: tuple[float, ...],
    seed: int = ...,
    nthreads: int = ...,
) -> np.ndarray: ...
def half_convert(fmt: int, src: np.ndarray, dst: np.ndarray, nthreads: int = ...) -> np.ndarray: ...
def half_rowwise(
    fmt: int,
    kind: int,
    kid: int,
    a: np.ndarray,
    b: np.ndarray | None,
    out: np.ndarray,
    rows: int,
    rowlen: int,
    nthreads: int = ...,
) -> np.ndarray: ...
def half_channel_forward(
    fmt: int,
    kid: int,
    x: np.ndarray,
    out: np.ndarray,
    weight: np.ndarray,
    outer: int,
    C: int,
    inner: int,
    nthreads: int = ...,
) -> np.ndarray: ...
def half_channel_backward(
    fmt: int,
    kid: int,
    g: np.ndarray,
    s: np.ndarray,
    out: np.ndarray,
    weight: np.ndarray,
    outer: int,
    C: int,
    inner: int,
    nthreads: int = ...,
) -> np.ndarray: ...
def half_set_bfloat16(typenum: int) -> None: ...
def half_set_limits(row_max: int, row_batch: int) -> None: ...
def half_has_f16c() -> bool: ...
def nt_min_bytes(value: int | None = None) -> int: ...
def half_use_f16c(level: int) -> int: ...
def half_f16c_copy() -> int: ...
def half_has_bf16v4() -> bool: ...
def half_use_bf16v4(on: bool) -> bool: ...
