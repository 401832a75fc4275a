"""Activation patterns of many points at once, bit-packed.

Layout of a packed pattern (one row of ``activation_patterns``): the hidden
layers one after the other, each padded to whole bytes; inside a layer, unit
``u`` owns ``m`` bits (``m`` = the activation's number of kinks), bit ``j``
being ``z_u > kinks[j]`` (a thermometer code: the piece index is the number
of set bits).  Bits are packed big-endian within a byte (``np.packbits``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

import fastact

from ._network import Network

DEFAULT_CHUNK = 8192


def as_points(points: Any, dim: int, name: str = "points") -> np.ndarray:
    """``points`` as a finite (N, dim) float array (float32 stays float32)."""
    a = np.asarray(points)
    if a.dtype.kind not in "fiu" or a.dtype.kind == "b":
        raise TypeError(f"{name} must be a real array, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim == 1 and dim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2 or a.shape[1] != dim:
        raise ValueError(
            f"{name} must have shape (N, {dim}) for a network with {dim} input(s), got {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    return a


def layer_bytes(net: Network) -> list[int]:
    """Bytes of each hidden layer's block in a packed pattern."""
    return [-(-act.width * len(act.kinks) // 8) for act in net.activations]


def pattern_nbytes(net: Network) -> int:
    """Bytes per packed pattern."""
    return sum(layer_bytes(net))


def activation_patterns(
    net: Network,
    points: Any,
    *,
    dtype: Any = np.float64,
    chunk: int = DEFAULT_CHUNK,
    num_threads: int | None = None,
) -> np.ndarray:
    """Bit-packed activation pattern of every point: uint8 array (N, pattern_nbytes(net)).

    Two points share a row exactly when every hidden unit is on the same
    piece of its activation at both (layout in this module's docstring;
    :func:`decode_patterns` gives piece indices).  Work is done in chunks of
    ``chunk`` points so it stays in cache: BLAS for ``h @ W``, comparisons
    against the table's kink points, fastact's kernel (in place) for the
    activation.  The chunks run on ``num_threads`` Python threads (default
    ``fastact.get_num_threads()``), each calling single-threaded BLAS and
    kernels: interleaving multithreaded BLAS with OpenMP kernels was 3-9x
    slower on 2 cores (both pools spin for the cores).  While it runs, the
    process's BLAS is limited to one thread (threadpoolctl).
    ``dtype`` float64 (default) or float32 (faster; points within float32
    rounding of a kink may get the other piece).
    """
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    if num_threads is None:
        num_threads = fastact.get_num_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    x = as_points(points, net.input_dim)
    n = x.shape[0]
    nbytes = layer_bytes(net)
    out = np.empty((n, sum(nbytes)), np.uint8)
    if n == 0 or not nbytes:
        return out
    layers = [(w.astype(dt), b.astype(dt), act) for w, b, act in net.layers()]
    c = min(chunk, n)
    starts = range(0, n, c)
    workers = max(1, min(num_threads, len(starts)))
    local = threading.local()

    def work(start: int) -> None:
        bufs = getattr(local, "bufs", None)
        if bufs is None:
            bufs = local.bufs = [
                (
                    np.empty((c, act.width), dt),
                    np.empty((c, act.width, len(act.kinks)), bool) if len(act.kinks) > 1 else None,
                )
                for _, _, act in layers
            ]
        stop = min(start + c, n)
        rows = stop - start
        h = x[start:stop].astype(dt, copy=False)
        col = 0
        for (w, b, act), (zb, bb), nb in zip(layers, bufs, nbytes):
            z = zb[:rows]
            np.matmul(h, w, out=z)
            z += b
            if nb:
                if bb is None:
                    packed = np.packbits(z > act.kinks[0], axis=1)
                else:
                    bv = bb[:rows]
                    for j, k in enumerate(act.kinks):
                        np.greater(z, k, out=bv[:, :, j])
                    packed = np.packbits(bv.reshape(rows, -1), axis=1)
                out[start:stop, col : col + nb] = packed
            col += nb
            h = act.apply(z)

    def serial(chunk_starts) -> None:
        with fastact.config(num_threads=1):
            for s in chunk_starts:
                work(s)

    with _single_threaded_blas():
        if workers == 1:
            serial(starts)
        else:
            with ThreadPoolExecutor(workers) as pool:
                # Every worker takes every workers-th chunk.
                blocks = [starts[i::workers] for i in range(workers)]
                for f in [pool.submit(serial, blk) for blk in blocks]:
                    f.result()
    return out


_CONTROLLER: list = []


@contextmanager
def _single_threaded_blas():
    """Limit BLAS to one thread meanwhile (a cached threadpoolctl controller: ~3 us)."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    controller = _CONTROLLER[0]
    if controller is None:  # pragma: no cover
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def decode_patterns(net: Network, packed: np.ndarray) -> np.ndarray:
    """Piece index of every hidden unit: int8 array (N, net.units) from packed patterns."""
    packed = np.asarray(packed)
    nb = layer_bytes(net)
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != sum(nb):
        raise ValueError(
            f"packed must be a uint8 array of shape (N, {sum(nb)}), got {packed.dtype} {packed.shape}"
        )
    out = []
    col = 0
    for act, b in zip(net.activations, nb):
        m = len(act.kinks)
        if m == 0:
            out.append(np.zeros((packed.shape[0], act.width), np.int8))
        else:
            bits = np.unpackbits(packed[:, col : col + b], axis=1, count=act.width * m)
            out.append(bits.reshape(-1, act.width, m).sum(axis=2, dtype=np.int8))
        col += b
    if not out:
        return np.zeros((packed.shape[0], 0), np.int8)
    return np.concatenate(out, axis=1)


def encode_patterns(net: Network, pieces: np.ndarray) -> np.ndarray:
    """The packed form of piece indices (N, net.units), inverse of :func:`decode_patterns`."""
    pieces = np.asarray(pieces)
    if pieces.ndim != 2 or pieces.shape[1] != net.units:
        raise ValueError(f"pieces must have shape (N, {net.units}), got {pieces.shape}")
    blocks = []
    col = 0
    for act in net.activations:
        p = pieces[:, col : col + act.width]
        m = len(act.kinks)
        if m:
            bits = p[:, :, None] > np.arange(m)[None, None, :]
            blocks.append(np.packbits(bits.reshape(len(p), -1), axis=1))
        col += act.width
    if not blocks:
        return np.zeros((pieces.shape[0], 0), np.uint8)
    return np.concatenate(blocks, axis=1)


def unique_patterns(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a packed pattern array and how many points have each."""
    packed = np.ascontiguousarray(packed)
    if packed.shape[1] == 0:
        n = packed.shape[0]
        return packed[:1], np.array([n] if n else [], dtype=np.intp)
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    uniq, counts = np.unique(rows, return_counts=True)
    return uniq.view(np.uint8).reshape(-1, packed.shape[1]), counts


def count_by_sampling(net: Network, points: Any, **kwargs: Any) -> int:
    """Number of distinct activation patterns among ``points``.

    Each pattern's region is convex (fixing the pattern makes every
    pre-activation affine, and the region is where those affine functions
    lie on the pattern's pieces), so this is the number of linear regions the
    points hit: a lower bound of the exact count, equal to it when every
    region holds a point.  ``kwargs`` go to :func:`activation_patterns`.
    """
    packed = activation_patterns(net, points, **kwargs)
    if packed.shape[0] == 0:
        return 0
    return len(unique_patterns(packed)[1])
