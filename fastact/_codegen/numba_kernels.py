"""Generate the Numba kernels of the Numba backend from the activation table.

The same formulas that become C for the Cython backend (:mod:`.c_kernels`)
become Python source here, through :func:`.dialect.expr_to_python` and
:func:`.dialect.function_to_python` (every literal typed as ``T(...)``, ``T``
bound to ``np.float32`` or ``np.float64``, so float32 math stays float32).
The backend (:mod:`fastact._backends.numba`) writes each generated module to
its cache directory, imports it, and compiles the kernels one by one on first
use, as C-ABI ``cfunc`` functions.

One module per (entry, float type) holds:

* an import of the functions of :mod:`fastact._backends.numba.intrinsics`
  the kernels call (rrelu's counter-based generator, the bit-level
  functions, the ``<8 x double>`` lanes of pgrad and of the row sums), in
  the module's float type, under the names the kernel text uses
  (:data:`IMPORTS`);
* the math helpers of :mod:`fastact._math.functions` the entry uses, each
  wrapped in ``njit`` (Numba compiles a helper as part of its caller);
* one plain Python function per kernel kind (``_fa_fwd``, ``_fa_bwd``...),
  each a serial loop over ``range(start, stop)`` of flat buffers.

The drivers (:mod:`fastact._backends.numba.drivers`) call a kernel by its
address per chunk, exactly as the OpenMP driver of the Cython backend calls
the generated C loops through function pointers; :func:`drivers_module` is
the copy of that module the backend compiles.

Kernel signatures, C ABI (T: float or double; every index int64):

* unary   ``k(T *x, T *out, double *p, poff, uint64 seed, start, stop)``
* binary  ``k(T *g, T *s, T *out, double *p, poff, uint64 seed, start, stop)``
* pgrad   ``k(T *g, T *s, double *p, poff, double *acc, aoff, start, stop)``
* rowwise ``k(T *x, T *out, double *p, rowlen, r0, r1)`` and
  ``k(T *g, T *s, T *out, double *p, rowlen, r0, r1)`` (rows ``r0..r1-1``)

The in-place twins (``fwd_ip``, ``bwd_ip``, ``rfwd_ip``... see ``INPLACE``)
have the signature of their kind, ignore ``out`` and write ``x`` (unary,
rfwd) or ``g`` (binary, rbwd): the backend calls them when ``out`` is that
very buffer, so that the loop has one pointer and vectorizes.

Parameter ``j`` (table order) is ``p[poff + j]``; in the "vector" forms of a
per-channel entry (prelu on ``(N, C)``) the channel parameter of element
``k`` is ``p[poff + k - start]``.  ``k`` is the flat index of rrelu's
counter-based slopes (``uniform_slope(seed, i, ...)`` with ``i = k``).

A generated module names the digest of the real modules it imports
(:func:`sources_digest`), so that changing them changes its name and so its
entry in Numba's disk cache, which does not track a kernel's callees in
other files.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path

from ..table import Activation
from .dialect import (
    BACKWARD_LANES,
    BINARY,
    HALF_KINDS,
    INTRINSICS,
    PGRAD,
    ROW_SPLIT,
    ROWWISE,
    UNARY,
    cached_stage,
    called_names,
    expr_to_python,
    free_names,
    function_to_python,
    has_half_row_bwd,
    kernel_formula,
    memory_bound,
    saved_name,
)

DTYPES = {"f32": "np.float32", "f64": "np.float64"}
# The 16-bit formats' kernels (HALF_KINDS and their in-place twins), one module per
# (entry, format): float32 inside (T = np.float32), each element widened as loaded and
# rounded once as stored by the format's conversions in the intrinsics (the C
# kernels' bits), so that LLVM vectorizes one loop with no float32 buffers.
HALF_SFX = {"f16": "float16", "bf16": "bfloat16"}
# A per-channel entry's (prelu's) kinds on 16-bit storage besides HALF_KINDS, which the
# Numba channel drivers run on the formats' patterns: a weight per element of a row,
# and the weight gradient's partial sums (float32 terms of the widened elements,
# summed in float64 as float32's).  The C backend runs its float32 kernels there.
HALF_CHANNEL_KINDS = ("fwdv", "bwdv", "pgrad", "pgradv")
HALF_IMPORTS = {"_fa_widen": "widen_{sfx}", "_fa_narrow": "narrow_{sfx}"}

# In-place twins of the elementwise and row kinds (``<kind>_ip``): same
# signature, but they read and write one buffer (x for the unary kinds and
# rfwd, g for the binary ones and rbwd) and never touch ``out``, which the
# caller passes equal to it.  With two equal pointers LLVM's runtime alias
# check fails and the loop runs scalar; with one pointer it vectorizes.
INPLACE = {kind: f"{kind}_ip" for kind in UNARY + BINARY + ROWWISE}
KINDS = UNARY + BINARY + PGRAD + ROWWISE + tuple(INPLACE.values())
PGRAD_LANES = 8  # pgrad's partial sums (the C generator's _pgrad: the same order)
# terms per block of pgrad's and row sums' stack buffer (a multiple of BACKWARD_LANES)
PGRAD_BLOCK = 128

# Emitted Python that Numba would compile with other semantics than C:
# Numba's math.floor returns an int64 (garbage for inf/NaN/huge values).
_ALIASES = {"math.floor(": "np.floor("}

# The functions a generated module imports from the intrinsics: the name the
# kernel text calls -> the function of fastact/_backends/numba/intrinsics.py
# (``{sfx}``: the module's float type).  The digest of that file and of the
# drivers' is in every generated module (sources_digest).
_BACKEND = Path(__file__).resolve().parent.parent / "_backends" / "numba"
_SOURCES = ("intrinsics.py", "drivers.py")
INTRINSICS_MODULE = "fastact._backends.numba.intrinsics"
IMPORTS = {
    "uniform_slope": "slope_{sfx}",
    "fa_counter": "counter",
    "fa_run_end": "run_end_{sfx}",
    "fa_run_key": "run_key_{sfx}",
    "fa_weyl": "weyl_{sfx}",
    "fa_step": "step_{sfx}",
    "fma": "fma_{sfx}",
    "pow2i": "pow2i_{sfx}",
    "exponent": "exponent_{sfx}",
    "mantissa": "mantissa_{sfx}",
    "ldexpk": "ldexpk_{sfx}",
    "_fa_scratch": "scratch",
    "_fa_lanes_zero": "lanes_zero",
    "_fa_lanes_add": "lanes_add",
    "_fa_lanes_total": "lanes_total",
    "_fa_max_init": "max_lanes_init",
    "_fa_max_step": "max_lanes_step",
    "_fa_max_total": "max_lanes_total",
    "_FA_MAX_LANES": "MAX_LANES_{sfx}",
    "_FA_NEG0": "NEG0",
    "_fa_block": "block_{sfx}",
    "_fa_prefetch": "prefetch_{sfx}",
    "_FA_AHEAD": "AHEAD_{sfx}",
}

HEADER = """\
# Generated by fastact/_codegen/numba_kernels.py from fastact/table.py. Do not edit.
# {what}
# Sources: {sources}
import math  # noqa: F401

import numpy as np
from numba import njit, prange  # noqa: F401

T = {dtype}
"""


@functools.cache
def sources_digest() -> str:
    """Digest of the real modules the generated ones import (intrinsics and drivers)."""
    return digest("".join((_BACKEND / name).read_text() for name in _SOURCES))


def _header(what: str, sfx: str) -> str:
    return HEADER.format(what=what, sources=sources_digest(), dtype=DTYPES[sfx])


def _imports(sfx: str) -> str:
    """The intrinsics a module of float type ``sfx`` imports (a 16-bit format's: the
    float32 ones and the format's conversions)."""
    names = [
        f"    {real.format(sfx='f32' if sfx in HALF_SFX else sfx)} as {name},"
        for name, real in IMPORTS.items()
    ]
    if sfx in HALF_SFX:
        names += [f"    {real.format(sfx=sfx)} as {name}," for name, real in HALF_IMPORTS.items()]
    return "\n".join([f"from {INTRINSICS_MODULE} import (  # noqa: F401", *names, ")"])


# --- helpers ----------------------------------------------------------------


def _helper_calls(fn: Callable) -> set[str]:
    return called_names(inspect.getsource(fn))


def helpers_used(formulas: Iterable[str], helpers: tuple) -> list[Callable]:
    """The helpers the formulas call, directly or through other helpers, in order."""
    by_name = {h.__name__: h for h in helpers}
    todo = set()
    for src in formulas:
        todo |= called_names(src) & by_name.keys()
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo |= (_helper_calls(by_name[name]) & by_name.keys()) - seen
    return [h for h in helpers if h.__name__ in seen]


def _py(src: str, helpers: Iterable[str], where: str) -> str:
    text = expr_to_python(src, helpers, where)
    for a, b in _ALIASES.items():
        text = text.replace(a, b)
    return text


def _check_intrinsics(text: str, where: str) -> None:
    """Every bare name the emitted code calls must exist in the generated module."""
    for name in called_names(text):
        if name in ("T", "njit", "prange", "range", "min", "max") or name.startswith("_fa_"):
            continue
        if name in IMPORTS or hasattr(builtins, name):
            continue
        spelled = [v[2] for v in INTRINSICS.values()]
        if name in spelled:
            raise NotImplementedError(
                f"{where}: intrinsic {name!r} has no Numba implementation; add it to "
                "fastact/_backends/numba/intrinsics.py and to IMPORTS in "
                "fastact/_codegen/numba_kernels.py"
            )


# --- formulas per kernel kind ---------------------------------------------


def formula(entry: Activation, kind: str) -> str | None:
    """The dialect formula of kernel ``kind`` of ``entry`` (an in-place twin: its base kind's)."""
    if kind.endswith("_ip"):
        base = kind[: -len("_ip")]
        if INPLACE.get(base) != kind:
            raise ValueError(f"unknown kernel kind {kind!r}")
        return kernel_formula(entry, base)
    return kernel_formula(entry, kind)


def kinds_of(entry: Activation, sfx: str = "f32") -> list[str]:
    """The kernel kinds ``entry`` has for float type ``sfx`` (a 16-bit format's: those of
    HALF_KINDS and HALF_CHANNEL_KINDS, the row backward where :func:`has_half_row_bwd`,
    and their in-place twins)."""
    kinds = [k for k in KINDS if formula(entry, k) is not None]
    if sfx in HALF_SFX:
        half = HALF_KINDS + HALF_CHANNEL_KINDS + (("rbwd",) if has_half_row_bwd(entry) else ())
        return [k for k in kinds if k.removesuffix("_ip") in half]
    return kinds


def _reductions(entry: Activation, kind: str) -> tuple:
    return tuple((entry.row_forward if kind == "rfwd" else entry.row_backward) or ())


def _all_formulas(entry: Activation) -> list[str]:
    out = []
    for kind in kinds_of(entry):
        out.append(formula(entry, kind))
        out += [expr for _, _, expr in _reductions(entry, kind)]
    return out


# --- kernel text ----------------------------------------------------------------


def _load(name: str, buf: str, half: bool) -> str:
    """``name = buf[_fa_k]``, the element widened from its 16-bit format where ``half``."""
    return f"{name} = " + (f"_fa_widen({buf}[_fa_k])" if half else f"{buf}[_fa_k]")


def _stored(body: str, half: bool) -> str:
    """The value a kernel stores: ``body``, rounded once to the 16-bit format where ``half``."""
    return f"_fa_narrow(T({body}))" if half else body


def _param_lines(entry: Activation, vector: bool, indent: str) -> list[str]:
    lines = []
    for j, prm in enumerate(entry.parameters):
        if vector and prm.name == entry.channel_param:
            continue
        lines.append(f"{indent}{prm.name} = T(_fa_p[_fa_poff + {j}])")
    return lines


def _check_vector(entry: Activation, kind: str) -> None:
    if kind.endswith("v") and len(entry.parameters) != 1:
        # The per-channel drivers hand the kernel a pointer into the channel
        # parameter array (as the C drivers do); other parameters would need
        # their own array.
        raise NotImplementedError(
            f"{entry.name}: a per-channel entry may have no parameter but {entry.channel_param!r}"
        )


def elementwise_kernel(
    entry: Activation, kind: str, body: str, uses: set[str], half: bool = False
) -> str:
    """Source of kernel ``_fa_<kind>`` computing the Python expression ``body``.

    ``uses`` are the dialect variables the body reads (``x``, ``y``, ``g``,
    ``i``, ``seed``...), so that only those are loaded.  An in-place kind
    (``fwd_ip``, ``bwd_ip``...) has its base kind's signature but stores into
    the buffer it reads (``x``, or ``g`` for the binary kinds), not ``out``.
    ``half``: the buffers hold a 16-bit format (:data:`HALF_SFX`), each element
    widened as loaded and the float32 result rounded once as stored.
    """
    inplace = kind.endswith("_ip")
    base = kind[: -len("_ip")] if inplace else kind
    vector = base.endswith("v")
    _check_vector(entry, base)
    if half and base not in HALF_KINDS + HALF_CHANNEL_KINDS:
        raise ValueError(f"{entry.name}.{kind}: no 16-bit kernel")
    if base not in PGRAD:  # a weight gradient's terms are summed, not stored
        body = _stored(body, half)
    cp = entry.channel_param
    per_elem = [f"        {cp} = T(_fa_p[_fa_poff + _fa_k - _fa_start])"] if vector else []
    if "i" in uses:
        per_elem.append("        i = _fa_k")
    head: list[str] = []
    if "seed" in uses:
        head.append("    seed = _fa_seed")

    if base in UNARY:
        args = "_fa_x, _fa_out, _fa_p, _fa_poff, _fa_seed, _fa_start, _fa_stop"
        loads = ["        " + _load("x", "_fa_x", half)]
        target = "_fa_x" if inplace else "_fa_out"
    elif base in BINARY or base in PGRAD:
        saved = saved_name(entry)
        loads = ["        " + _load(n, b, half) for n, b in (("g", "_fa_g"), (saved, "_fa_s"))]
        target = "_fa_g" if inplace else "_fa_out"
        if base in BINARY:
            args = "_fa_g, _fa_s, _fa_out, _fa_p, _fa_poff, _fa_seed, _fa_start, _fa_stop"
        else:
            args = "_fa_g, _fa_s, _fa_p, _fa_poff, _fa_acc, _fa_aoff, _fa_start, _fa_stop"
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(kind)
    lines = [f"def _fa_{kind}({args}):", *head, *_param_lines(entry, vector, "    ")]
    if base == "pgrad":
        return "\n".join(lines + _pgrad_lines(loads + per_elem, body))
    if "uniform_slope(" in body:
        if base not in UNARY + BINARY:
            raise NotImplementedError(f"{entry.name}.{kind}: uniform_slope in a {base} kernel")
        # rrelu's generator (intrinsics.py): the state _fa_w of element
        # _fa_k is stepped per element; in float32 the chunk is split into the
        # runs of counters that share one key _fa_kh (fa_run_end), as in C.
        lines += [
            "    _fa_c0 = fa_counter(_fa_seed, _fa_start)",
            "    _fa_n = _fa_stop - _fa_start",
            "    _fa_r0 = 0",
            "    while _fa_r0 < _fa_n:",
            "        _fa_r1 = fa_run_end(_fa_c0, _fa_r0, _fa_n)",
            "        _fa_kh = fa_run_key(_fa_c0 + np.uint64(_fa_r0))",
            "        _fa_w = fa_weyl(_fa_c0 + np.uint64(_fa_r0))",
            "        for _fa_k in range(_fa_start + _fa_r0, _fa_start + _fa_r1):",
            *["    " + ln for ln in loads + per_elem],
            f"            {target}[_fa_k] = {body}",
            "            _fa_w = fa_step(_fa_w)",
            "        _fa_r0 = _fa_r1",
        ]
        return "\n".join(lines)
    if base == "pgradv":
        lines.append("    for _fa_k in range(_fa_start, _fa_stop):")
        lines += loads + per_elem
        lines.append(f"        _fa_acc[_fa_aoff + _fa_k - _fa_start] += np.float64({body})")
        return "\n".join(lines)
    # Blocks that prefetch ahead in large chunks, as the C kernels (their driver in
    # c_kernels.py says why): a compute-bound kernel's input, or the input stored
    # into by an in-place one; never a memory-bound kernel's.
    if memory_bound(entry, base) or half:  # (the prefetch takes float arrays)
        ahead = None
    elif base in UNARY:
        ahead = "_fa_x"
    else:
        ahead = "_fa_g" if inplace else None
    if ahead is None:
        lines.append("    for _fa_k in range(_fa_start, _fa_stop):")
        lines += loads + per_elem
    else:
        lines += [
            "    _fa_bl = _fa_block(_fa_stop - _fa_start)",
            "    for _fa_k0 in range(_fa_start, _fa_stop, _fa_bl):",
            "        _fa_k1 = min(_fa_k0 + _fa_bl, _fa_stop)",
            "        if _fa_bl < _fa_stop - _fa_start:",
            f"            _fa_prefetch({ahead}, _fa_k0 + _FA_AHEAD, _fa_k1 + _FA_AHEAD, _fa_stop)",
            "        for _fa_k in range(_fa_k0, _fa_k1):",
            *["    " + ln for ln in loads + per_elem],
        ]
    indent = "        " if ahead is None else "            "
    lines.append(f"{indent}{target}[_fa_k] = {body}")
    return "\n".join(lines)


def _pgrad_lines(loads: list[str], body: str) -> list[str]:
    """The loops of ``pgrad``: eight float64 partial sums, combined pairwise at the end.

    Element ``k`` adds ``float64(term)`` to partial sum ``(k - start) % 8`` in
    increasing ``k``; the total is ``((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6
    + a7))``: the order of the C generator's ``_pgrad``, so both backends give
    the same bits.  Numba compiles without LLVM's SLP vectorizer, so eight
    scalar accumulators stay scalar; instead, per block of PGRAD_BLOCK
    elements, a plain loop (vectorized) writes the terms to a stack buffer,
    and the eight sums are one ``<8 x double>`` register (intrinsics.lanes_add) that
    adds the buffer eight terms at a time: the same IEEE additions per lane.
    The last block is padded with -0.0 to a multiple of eight (``a + -0.0``
    is ``a``, bit for bit).
    """
    lanes = PGRAD_LANES
    inner = ["    " + ld for ld in loads]
    return [
        "    _fa_buf = _fa_scratch(_FA_PBLOCK)",
        "    _fa_sums = _fa_lanes_zero()",
        "    for _fa_b in range(_fa_start, _fa_stop, _FA_PBLOCK):",
        "        _fa_n = min(_FA_PBLOCK, _fa_stop - _fa_b)",
        "        for _fa_j in range(_fa_n):",
        "            _fa_k = _fa_b + _fa_j",
        *inner,
        f"            _fa_buf[_fa_j] = np.float64({body})",
        f"        for _fa_j in range(_fa_n, (_fa_n + {lanes - 1}) // {lanes} * {lanes}):",
        "            _fa_buf[_fa_j] = _FA_NEG0",
        f"        for _fa_j in range(0, _fa_n, {lanes}):",
        "            _fa_sums = _fa_lanes_add(_fa_sums, _fa_buf, _fa_j)",
        "    _fa_acc[_fa_aoff] += _fa_lanes_total(_fa_sums)",
    ]


def _row_sum_lines(
    acc: str, loads: list[str], value: str, width: int = 8, keep: str | None = None
) -> list[str]:
    """A row sum into float64 ``acc``: the lanes of ``pgrad`` per segment of the row.

    The row ``_fa_a.._fa_b-1`` is cut into segments of ``ROW_SPLIT`` elements;
    element ``k`` of a segment adds ``float64(value)`` to lane ``k % 8`` (from
    the segment's start) in increasing ``k``, the segment's total is ``((l0 +
    l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``, and ``acc`` adds the totals
    in order: the C generator's row sums, bit for bit.  As in
    :func:`_pgrad_lines`, a plain loop (vectorized) writes each block's values
    to the stack buffer ``_fa_buf`` (its length is a multiple of 8, so every
    block starts in lane 0), the ``<8 x double>`` lanes add it eight at a
    time, and the last block is padded with -0.0.  With a ``width`` of
    ``8 * s`` (a backward's sums, ``BACKWARD_LANES``) ``s`` such sets of eight
    lanes take the groups of eight in turn, and a segment's total adds the
    sets' totals in order.  ``keep``: the array that also gets each value (the row's
    output: :func:`~fastact._codegen.dialect.cached_stage`).
    """
    lanes = PGRAD_LANES
    sets = width // lanes
    zero = [f"            _fa_sums{c} = _fa_lanes_zero()" for c in range(sets)]
    adds = [
        f"                    _fa_sums{c} = _fa_lanes_add(_fa_sums{c}, _fa_buf, _fa_j + {c * lanes})"
        for c in range(sets)
    ]
    total = " + ".join(f"_fa_lanes_total(_fa_sums{c})" for c in range(sets))
    return [
        f"        {acc} = np.float64(0.0)",
        f"        for _fa_sa in range(_fa_a, _fa_b, {ROW_SPLIT}):",
        f"            _fa_sb = min(_fa_sa + {ROW_SPLIT}, _fa_b)",
        *zero,
        "            for _fa_c in range(_fa_sa, _fa_sb, _FA_PBLOCK):",
        "                _fa_n = min(_FA_PBLOCK, _fa_sb - _fa_c)",
        "                for _fa_j in range(_fa_n):",
        "                    _fa_k = _fa_c + _fa_j",
        *["                    " + ld for ld in loads],
        *(
            [f"                    _fa_buf[_fa_j] = np.float64({value})"]
            if keep is None
            else [
                f"                    _fa_e = {value}",
                f"                    {keep}[_fa_k] = _fa_e",
                "                    _fa_buf[_fa_j] = np.float64(_fa_e)",
            ]
        ),
        f"                for _fa_j in range(_fa_n, (_fa_n + {width - 1}) // {width} * {width}):",
        "                    _fa_buf[_fa_j] = _FA_NEG0",
        f"                for _fa_j in range(0, _fa_n, {width}):",
        *adds,
        f"            _fa_t = {total}",
        f"            {acc} = _fa_t if _fa_sa == _fa_a else {acc} + _fa_t",
    ]


def _max_update(acc: str, v: str) -> str:
    """NaN-propagating maximum without a branch: once NaN, it stays NaN."""
    return f"{acc} = {acc} if (({v} <= {acc}) | ({acc} != {acc})) else {v}"


def _row_max_lines(acc: str, loads: list[str], value: str) -> list[str]:
    """A row's maximum into ``acc``, exact: the sequential loop's value and the C
    kernels' (which NaN or which signed zero aside).

    Of a loaded input itself (softmax's ``x``), the elements go through the
    vector lanes of the intrinsics (``max_lanes_*``), the rest to a scalar
    chain.  Of another expression, in eight independent chains folded in order:
    element ``k`` of each whole group of eight goes to chain ``k % 8``, the rest
    to chain 0 (branch-free selects of independent chains overlap).
    """
    arrays = {ld.split(" = ")[0]: ld.split(" = ")[1].split("[")[0] for ld in loads}
    plain = value[2:-1] if value.startswith("T(") and value.endswith(")") else value
    if plain in arrays:
        src = arrays[plain]
        return [
            f"        _fa_mv = _fa_max_init({src})",
            "        _fa_i = _fa_a",
            "        while _fa_i + _FA_MAX_LANES <= _fa_b:",
            f"            _fa_mv = _fa_max_step(_fa_mv, {src}, _fa_i)",
            "            _fa_i += _FA_MAX_LANES",
            f"        {acc} = _fa_max_total(_fa_mv)",
            "        for _fa_k in range(_fa_i, _fa_b):",
            *["            " + ld for ld in loads],
            f"            _fa_v = {value}",
            "            " + _max_update(acc, "_fa_v"),
        ]
    chains = [f"{acc}_{c}" for c in range(8)]
    lines = [f"        {chains[0]} = T(-np.inf)"]
    lines += [f"        {c} = {chains[0]}" for c in chains[1:]]
    lines += ["        _fa_i = _fa_a", "        while _fa_i + 8 <= _fa_b:"]
    for c, ch in enumerate(chains):
        lines.append(f"            _fa_k = _fa_i + {c}")
        lines += ["            " + ld for ld in loads]
        lines += [f"            _fa_v = {value}", "            " + _max_update(ch, "_fa_v")]
    lines += ["            _fa_i += 8", "        for _fa_k in range(_fa_i, _fa_b):"]
    lines += ["            " + ld for ld in loads]
    lines += [f"            _fa_v = {value}", "            " + _max_update(chains[0], "_fa_v")]
    lines += ["        " + _max_update(chains[0], c) for c in chains[1:]]
    lines.append(f"        {acc} = {chains[0]}")
    return lines


def rowwise_kernel(entry: Activation, kind: str, helpers: list[str], half: bool = False) -> str:
    """Source of a row kernel: the row reductions in order, then the elementwise map.

    The same arithmetic as the C generator's rows: ``max`` propagates NaN
    (once NaN, it stays NaN), ``sum`` accumulates in float64 also for float32
    rows, in eight lanes combined pairwise (:func:`_row_sum_lines`), and is
    rounded to T once, ``log`` takes the log of an earlier sum in float64
    before rounding.  ``half``: a backward on 16-bit rows (:func:`has_half_row_bwd`),
    each pass widening the elements it loads, the map rounding once as it stores.
    """
    where = f"{entry.name}.{kind}"
    inplace = kind.endswith("_ip")
    base = kind[: -len("_ip")] if inplace else kind
    if half and (base != "rbwd" or not has_half_row_bwd(entry)):
        raise ValueError(f"{where}: no 16-bit row kernel")

    if base == "rfwd":
        args = "_fa_x, _fa_out, _fa_p, _fa_rowlen, _fa_r0, _fa_r1"
        loads = [_load("x", "_fa_x", half)]
        target = "_fa_x" if inplace else "_fa_out"
    else:
        args = "_fa_g, _fa_s, _fa_out, _fa_p, _fa_rowlen, _fa_r0, _fa_r1"
        loads = [_load(n, b, half) for n, b in (("g", "_fa_g"), (saved_name(entry), "_fa_s"))]
        target = "_fa_g" if inplace else "_fa_out"
    lines = [f"def _fa_{kind}({args}):", "    _fa_poff = 0"]
    lines += _param_lines(entry, False, "    ")
    if any(op == "sum" for _, op, _ in _reductions(entry, base)):
        lines.append("    _fa_buf = _fa_scratch(_FA_PBLOCK)")
    lines += [
        "    for _fa_r in range(_fa_r0, _fa_r1):",
        "        _fa_a = _fa_r * _fa_rowlen",
        "        _fa_b = _fa_a + _fa_rowlen",
    ]
    final = formula(entry, base)
    cached = cached_stage(
        _reductions(entry, base), final, {"x"} if base == "rfwd" else {"g", saved_name(entry)}
    )
    for var, op, expr in _reductions(entry, base):
        acc = f"_fa_acc_{var}"
        if op == "log":
            lines.append(f"        {var} = T(math.log(_fa_acc_{expr}))")
            continue
        value = _py(expr, helpers, f"{where}.{var}")
        if op == "max":
            lines += _row_max_lines(acc, loads, f"T({value})")
        elif op == "sum":
            width = BACKWARD_LANES if base == "rbwd" else PGRAD_LANES
            keep = target if cached is not None and cached[0] == var else None
            lines += _row_sum_lines(acc, loads, f"T({value})", width, keep)
        else:
            raise NotImplementedError(f"{where}: unknown row reduction {op!r}")
        lines.append(f"        {var} = T({acc})")
    lines.append("        for _fa_k in range(_fa_a, _fa_b):")
    if cached is not None:  # the sum's values, kept in the output by its pass
        body = _py(cached[1], helpers, where)
        lines.append(f"            {cached[0]}_elem = {target}[_fa_k]")
    else:
        body = _py(final, helpers, where)
        lines += ["            " + ld for ld in loads]
    body = _stored(body, half)
    lines.append(f"            {target}[_fa_k] = {body}")
    return "\n".join(lines)


def kernel_source(entry: Activation, kind: str, helpers: list[str], half: bool = False) -> str:
    """Source of one kernel of a table entry (formulas in the dialect); ``half``: on
    16-bit storage (:func:`elementwise_kernel`)."""
    if kind in ROWWISE or kind in (INPLACE[k] for k in ROWWISE):
        return rowwise_kernel(entry, kind, helpers, half)
    src = formula(entry, kind)
    where = f"{entry.name}.{kind}"
    body = _py(src, helpers, where)
    return elementwise_kernel(entry, kind, body, free_names(src), half)


def entry_module(entry: Activation, sfx: str, helpers: tuple) -> str:
    """The whole module of ``entry``'s kernels for float type ``sfx`` ("f32"/"f64", or
    a 16-bit format of :data:`HALF_SFX`: its kernels of :func:`kinds_of`)."""
    used = helpers_used(_all_formulas(entry), helpers)
    names = [h.__name__ for h in helpers]
    half = sfx in HALF_SFX
    what = f"{HALF_SFX[sfx]} stored, np.float32 inside" if half else DTYPES[sfx]
    head = _header(f"{entry.name}, {what}", "f32" if half else sfx)
    parts = [head + "\n" + _imports(sfx)]
    if "pgrad" in kinds_of(entry, sfx) or entry.rowwise:
        parts[0] += f"\n\n_FA_PBLOCK = {PGRAD_BLOCK}  # a literal: the length of a stack buffer"
    for h in used:
        src = function_to_python(h, names)
        for a, b in _ALIASES.items():
            src = src.replace(a, b)
        _check_intrinsics(src, f"helper {h.__name__}")
        # inline="always": the math helpers (exp, tanh, erfc...) are too large for
        # LLVM's inliner, and a loop that still calls one is not vectorized.
        parts.append(
            f"{src}\n\n\n{h.__name__} = "
            f"njit(nogil=True, error_model='numpy', inline='always')({h.__name__})"
        )
    for kind in kinds_of(entry, sfx):
        src = kernel_source(entry, kind, names, half)
        _check_intrinsics(src, f"{entry.name}.{kind}")
        parts.append(src)
    return "\n\n\n".join(parts) + "\n"


USER_KINDS = ("fwd", "bwd", "fwd_ip", "bwd_ip")


def user_module(entry: Activation, sfx: str) -> str:
    """Kernels of a user-registered entry: they call ``_fa_user_forward``/``_fa_user_backward``.

    The caller binds those two names to the njit-compiled user functions.
    """
    params = ", ".join(p.name for p in entry.parameters)
    sep = ", " if params else ""
    saved = saved_name(entry)
    parts = [_header(f"user activation {entry.name}, {DTYPES[sfx]}", sfx) + "\n" + _imports(sfx)]
    fwd = f"T(_fa_user_forward(x{sep}{params}))"
    bwd = f"T(_fa_user_backward(g, {saved}{sep}{params}))"
    for kind in USER_KINDS:
        base = kind.removesuffix("_ip")
        body, uses = (fwd, {"x"}) if base == "fwd" else (bwd, {"g", saved})
        parts.append(elementwise_kernel(entry, kind, body, uses))
    return "\n\n\n".join(parts) + "\n"


# --- drivers -------------------------------------------------------------------


def drivers_module(mode: str) -> str:
    """The source the backend compiles its ``mode`` drivers from ("par" or "ser").

    A copy of :mod:`fastact._backends.numba.drivers` under a header: the
    backend compiles one copy with ``parallel=True`` and one without, because
    Numba's disk cache does not tell apart one function compiled both ways.
    """
    if mode not in ("par", "ser"):
        raise ValueError(f"unknown driver mode {mode!r}")
    what = "parallel=True" if mode == "par" else "serial"
    head = (
        f"# Copy of fastact/_backends/numba/drivers.py, compiled {what}. Do not edit.\n"
        f"# Sources: {sources_digest()}\n"
    )
    return head + (_BACKEND / "drivers.py").read_text()


def digest(text: str) -> str:
    """Short content hash: generated files are named by it, so a change makes a new file."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]
