"""Generate the C kernels of the Cython backend from the activation table.

``setup.py`` calls :func:`write` before building the extension; the output is
``fastact/_backends/cython/fa_kernels.h`` (not kept in git).  For every entry
and both float types it emits the inner loops (one contiguous chunk each,
called per thread by the Cython driver) and tables of function pointers
indexed by the entry's position in :data:`fastact.table.TABLE`.

Kernel signatures (T is float or double):

* unary   ``void k(const T *x, T *out, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
* binary  ``void k(const T *g, const T *s, T *out, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
* bwdpg   ``void k(const T *g, const T *s, T *out, Py_ssize_t n, const double *p, double *acc)``
  (the binary kernel plus the channel parameter's gradient terms summed into ``acc``)
* fwdb    ``void k(const T *x, const T *b, T *out, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
  (the forward at ``x + b``, for the bias epilogue's dense rows)
* bwdb    ``void k(const T *g, const T *s, const T *b, T *out, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
  (the backward at ``s + b``, for the bias epilogue: :func:`_bias_kernel`)
* bwds    ``void k(const T *g, const T *s, const T *b, T *out, T *f, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
  (the backward that also adds each value into ``f[k]``: the bias epilogue's rows)

``p`` holds the parameters in table order; ``off`` is the flat index of the
chunk's first element (rrelu's counter-based slopes).  Entries with a channel
parameter get a second "vector" form (``fwdv``, ``bwdv``, ``bwdpgv``) in which that
parameter is read per element from ``p[k]``, an array of T (prelu on ``(N, C)``
input): the weights in the arrays' own type halve the bytes a float32 loop reads
beside its data and need no conversion (:func:`param_type`).  Each loop is compiled for
several instruction sets and chosen at load time (``FA_CLONES``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

from ..table import Activation
from .dialect import (
    BACKWARD_LANES,
    CHANNEL_ROW_RUN,
    CHANNEL_SEGMENT,
    CTYPES,
    HALF_KINDS,
    MIN_CHUNK,
    PGRAD_BLOCKS,
    ROW_SPLIT,
    UNARY,
    HelperNames,
    bound_key,
    bounds_pointer,
    cached_stage,
    called_names,
    expr_to_c,
    free_names,
    function_to_c,
    has_half_row_bwd,
    hide_bounds,
    kernel_formula,
    memory_bound,
    saved_name,
    uses_uniform_slope,
)

KINDS = ("fwd", "bwd", "tfwd", "tbwd", "fwdv", "bwdv")
# The kinds with pointer tables: bwdv runs inside bwdpgv only.
TABLED_KINDS = tuple(k for k in KINDS if k != "bwdv")
# The 16-bit kernels (the float32 kernel's range function on chunks of
# FA_H16_CHUNK elements widened exactly into float32 and rounded once as
# stored: fa_convert.h): suffix -> (the copies' attribute, the chunk
# conversions' prefix).  In C, in every x86-64 clone (bfloat16) or in one copy
# (float16); where the kernels have clones, also by conversion instructions in
# x86-64-v3/v4 copies (float16: F16C; bfloat16: AVX512_BF16) that fa_half.h
# chooses at load where the CPU has them.
HALF_STORES = {
    "bf16": ("FA_CLONES ", "fa_chunk_bf16"),
    "f16": ("", "fa_chunk_f16"),
}
INSTRUCTION_STORES = {
    "f16v3": ("FA_V3 ", "fa_chunk_f16c_v3"),
    "f16v4": ("FA_V4 ", "fa_chunk_f16c_v4"),
    "bf16v4": ("FA_BF16V4 ", "fa_chunk_bf16_v4"),
}
# Conversions that reorder the elements within a chunk (fa_convert.h), for the
# kinds whose kernels do not read an element's position (the training kinds'
# noise is drawn by position, so they keep the order).
REORDERING_STORES = {"bf16v4": "fa_chunk_bf16_v4pairs"}
# Their order: each block of PAIR_BLOCK elements is held as its even elements, then
# its odd ones; buffer index j of a block holds element pair_position(j).
PAIR_BLOCK = 32
PAIR_POSITION_C = f"(j < {PAIR_BLOCK // 2} ? 2 * j : 2 * j - {PAIR_BLOCK - 1})"


def pair_position(j: int) -> int:
    """The element of a block held at buffer index ``j`` (the reordering conversions)."""
    half = PAIR_BLOCK // 2
    return 2 * j if j < half else 2 * (j - half) + 1


def pair_lane(m: int) -> int:
    """The buffer index holding element ``m`` of a block: the inverse of pair_position."""
    return m // 2 + (PAIR_BLOCK // 2 if m % 2 else 0)


ORDERED_KINDS = ("tfwd", "tbwd")
# The stores whose ordered kinds widen several chunks per call of the float32 loop
# (fa_convert.h's FA_H16_UNARY_RUN): bfloat16's (rrelu in training 1.15-1.2x faster at
# 10^6 elements); float16's took 7-10% longer at 10^7 that way and keep one chunk.
RUN_STORES = ("bf16", "bf16v4")


def _param_lines(entry: Activation, ctype: str, vector: bool, src: str | None = None) -> list[str]:
    """The parameters as constants, those that ``src`` reads (all without it)."""
    used = None if src is None else free_names(src)
    if vector and len(entry.parameters) != 1:
        raise SyntaxError(f"{entry.name}: a vector form's p holds the channel parameter only")
    lines = []
    for j, prm in enumerate(entry.parameters):
        if (vector and prm.name == entry.channel_param) or (
            used is not None and prm.name not in used
        ):
            continue
        lines.append(f"    const {ctype} {prm.name} = ({ctype})p[{j}];")
    return lines


def param_type(ctype: str, vector: bool) -> str:
    """The type of ``p``: the kernel's own for a vector form's weight per element, double
    for the parameters of every other kernel."""
    return ctype if vector else "double"


class _Replace(ast.NodeTransformer):
    """Replaces every subtree equal to ``old`` by ``new``."""

    def __init__(self, old: ast.AST, new: ast.AST):
        self.old, self.new = ast.dump(old), new

    def visit(self, node: ast.AST) -> ast.AST:
        return self.new if ast.dump(node) == self.old else self.generic_visit(node)


def _unswitch(src: str, params: set[str]) -> list[tuple[str | None, str]]:
    """``src`` split on its selects whose test reads parameters only.

    Returns ``(test, formula)`` pairs: the formula to use where ``test`` holds
    (a dialect expression; None for the last, remaining case).  The kernel then
    runs one loop per case instead of computing both values of such a select
    for every element (gelu's two forms).
    """
    tree = ast.parse(src, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.IfExp) and free_names(ast.unparse(node.test)) <= params:
            test = ast.unparse(node.test)
            cases: list[tuple[str | None, str]] = []
            for branch, cond in ((node.body, test), (node.orelse, None)):
                rest = ast.unparse(_Replace(node, branch).visit(ast.parse(src, mode="eval")))
                for t, f in _unswitch(rest, params):
                    both = cond if t is None else (t if cond is None else f"({cond}) and ({t})")
                    cases.append((both, f))
            return cases
    return [(None, src)]


def _opaque_bounds(src: str, ctype: str, helpers: Iterable[str] = ()) -> tuple[str, list[str]]:
    """``src`` with each constant bound of a min or a max read from a local.

    The bounds are :func:`~fastact._codegen.dialect.hide_bounds`'s; each becomes a
    local ``fa_bN`` set once through ``fa_opaque`` (fa_intrinsics.h), which hides
    its value from the optimizer (hardsigmoid's forward in place at 10^6 floats:
    1.45x the streaming limit with literal bounds, against 1.0x).
    """
    tree = ast.parse(src, mode="eval")
    bounds: dict[str, str] = {}

    def local(c: ast.expr) -> ast.Name:
        return ast.Name(bounds.setdefault(bound_key(c), f"fa_b{len(bounds)}"), ast.Load())

    hide_bounds(tree, local, getattr(helpers, "bound_args", None))
    if not bounds:
        return src, []
    sfx = "f32" if ctype == "float" else "f64"
    lines = [
        f"    const {ctype} {name} = fa_opaque_{sfx}({expr_to_c(value, sfx, helpers)});"
        for value, name in bounds.items()
    ]
    return ast.unparse(tree), lines


def _kernel(entry: Activation, kind: str, sfx: str, helpers: list[str], bias: bool = False) -> str:
    """The kernel of ``kind`` in float type ``sfx``.

    ``bias`` (a forward, :func:`_has_row_kernel`): ``void k(const T *x, const T
    *b, T *out, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``, the
    forward at ``x[k] + b[k]`` (the sum rounded as when stored first), one loop
    over the chunk without the driver's blocks (the bias epilogue's tiles).
    """
    ctype = CTYPES[sfx]
    src = kernel_formula(entry, kind)
    vector = kind.endswith("v")
    where = f"{entry.name}.{kind}"
    saved = saved_name(entry)
    name = f"fa_{entry.name}_{kind}{'b' if bias else ''}_{sfx}"
    if bias:
        sig = f"const {ctype} *xp, const {ctype} *restrict bp, {ctype} *out"
        load = f"        const {ctype} x = xp[k] + bp[k];"
    elif kind in UNARY:
        sig = f"const {ctype} *xp, {ctype} *out"
        load = f"        const {ctype} x = xp[k];"
    else:
        sig = f"const {ctype} *gp, const {ctype} *sp, {ctype} *out"
        load = f"        const {ctype} g = gp[k];\n        const {ctype} {saved} = sp[k];"
    ptype = param_type(ctype, vector)
    lines = [
        f"FA_INLINE void {name}_range({sig}, Py_ssize_t k0, Py_ssize_t k1, const {ptype} *p, "
        "uint64_t seed, int64_t off) {",
        "    (void)seed; (void)off; (void)p;",
        *_param_lines(entry, ctype, vector, src),
    ]
    src, bound_lines = _opaque_bounds(src, ctype, helpers)
    lines += bound_lines
    scalar_params = {
        p.name for p in entry.parameters if not (vector and p.name == entry.channel_param)
    }
    cases = _unswitch(src, scalar_params)
    for j, (test, formula) in enumerate(cases):
        body = expr_to_c(formula, sfx, helpers, where)
        if len(cases) > 1:
            cond = "" if test is None else f"if ({expr_to_c(test, sfx, helpers, where)}) "
            lines.append(f"    {'} else ' if j else ''}{cond}{{")
        indent = "    " * (2 if len(cases) > 1 else 1)
        inner = [ld.strip() for ld in load.split("\n")]
        if vector:
            cp = entry.channel_param
            inner.append(f"const {ctype} {cp} = p[k];")
        if "i" in free_names(formula):
            inner.append("const int64_t i = off + (int64_t)k;")
        inner.append(f"out[k] = {body};")
        lines += _loop(inner, indent, sfx if uses_uniform_slope(formula) else None)
    if len(cases) > 1:
        lines.append("    }")
    lines.append("}")
    if bias:
        lines += [
            f"FA_CLONES static void {name}({sig}, Py_ssize_t n, const double *p, "
            "uint64_t seed, int64_t off) {",
            f"    {name}_range(xp, bp, out, 0, n, p, seed, off);",
            "}",
        ]
        return "\n".join(lines)
    if kind not in TABLED_KINDS:  # bwdv: the loop that bwdpgv runs, nothing calls it alone
        return "\n".join(lines)
    inputs = ("xp",) if kind in UNARY else ("gp", "sp")
    nt_ok = nt_stores(entry, kind)
    back = nt_ok and not uses_uniform_slope(src)
    forward = "for (Py_ssize_t k = k0; k < k1; k++) {"
    reverse = "for (Py_ssize_t k = k1 - 1; k >= k0; k--) {"
    if back:
        # The same loops from the last element to the first (fa_backwards).
        lines += [
            ln.replace(f"{name}_range(", f"{name}_back(").replace(forward, reverse) for ln in lines
        ]
    lines += _driver(name, sig, ctype, inputs, nt_ok, vector, back)
    return "\n".join(lines)


def nt_stores(entry: Activation, kind: str) -> bool:
    """Whether the kernel of ``kind`` stores large outputs non-temporally: where its
    pass is memory-bound (:func:`~fastact._codegen.dialect.memory_bound`).  A
    compute-bound loop was slower with them (sigmoid's and gelu's forward on 10^7
    floats: 1.1-1.2x the time), its loads waiting behind the bursts of
    non-temporal stores that end each block."""
    return memory_bound(entry, kind)


def _driver(
    name: str,
    sig: str,
    ctype: str,
    inputs: tuple[str, ...],
    nt_ok: bool,
    vector: bool = False,
    back: bool = False,
) -> list[str]:
    """The kernel ``name`` over a chunk: its ``_range`` loop on the head until
    ``out`` is 64-byte aligned (every vector store of the main loop then fills one
    cache line: fa_head), then on the rest, in blocks.

    A memory-bound kernel (``nt_ok``: :func:`nt_stores`) stores each block of a
    chunk too large to stay in cache through a buffer by non-temporal stores,
    where ``out`` is none of its inputs (fa_nt_stores), and never prefetches: on
    the Zen 4 machine the hardware prefetcher keeps up, and software prefetches
    cost 10-15% out of place and 20-45% in place (relu at 10^6 floats in place:
    1.46x the streaming limit with them, 1.00x without; its backward in place,
    112 us against 91).  A compute-bound one prefetches ahead in large chunks
    (fa_prefetch): its input, or ``out`` where ``out`` is one of several inputs
    (in place; with two streams of loads and a separate output the hardware
    prefetcher keeps up, and prefetching both cost 10-18% at 10^6 elements).  Each
    block runs the range function on pointers offset to its start (and ``off``
    with them: the element index of rrelu's slopes; ``p`` too where it holds one
    parameter per element, ``vector``).  With ``back`` (a memory-bound kernel
    whose elements do not depend on their order), a chunk whose output leads an
    input by a few lines modulo a page runs its ``_back`` loop after the head
    (fa_backwards: the loads would wait on the stores otherwise)."""
    args = ", ".join((*inputs, "out"))
    size = f"sizeof({ctype})"
    block = ", ".join(f"{x} + k" for x in inputs)
    pk = "p + k" if vector else "p"
    head = [
        f"FA_CLONES static void {name}({sig}, Py_ssize_t n, const {param_type(ctype, vector)} *p, "
        "uint64_t seed, int64_t off) {",
        f"    const Py_ssize_t h = fa_head(out, n, {size});",
    ]
    tail = [
        f"    {ctype} buf[FA_BLOCK_BYTES / {size}] FA_ALIGN64;",
        f"    {name}_range({args}, 0, h, p, seed, off);",
        "    for (Py_ssize_t k = h; k < n; k += b) {",
        "        const Py_ssize_t m = n - k > b ? b : n - k;",
    ]
    if nt_ok:
        apart = " && ".join(f"{x} != out" for x in inputs)
        head.append(
            f"    const int nt = {apart} && fa_nt_stores(out + h, n - h, {size}, "
            f"{len(inputs) + 1});"
        )
        if back:
            second = f"{inputs[1]} + h" if len(inputs) > 1 else "NULL"
            head += [
                f"    if (!nt && fa_backwards(out + h, {inputs[0]} + h, {second})) {{",
                f"        {name}_range({args}, 0, h, p, seed, off);",
                f"        {name}_back({args}, h, n, p, seed, off);",
                "        return;",
                "    }",
            ]
        return [
            *head,
            f"    const Py_ssize_t b = nt ? (Py_ssize_t)(FA_BLOCK_BYTES / {size}) : n - h;",
            *tail,
            f"        {name}_range({block}, nt ? buf : out + k, 0, m, {pk}, seed, off + (int64_t)k);",
            f"        if (nt) fa_nt_copy(out + k, buf, (size_t)m * {size});",
            "    }",
            "    if (nt) fa_nt_fence();",
            "}",
        ]
    if len(inputs) == 1:
        ahead, cond = inputs[0], ""
    else:
        ahead = "out"
        cond = " && (" + " || ".join(f"{x} == out" for x in inputs) + ")"
    return [
        *head,
        f"    const int pf = fa_prefetching(n, {size}){cond};",
        f"    const Py_ssize_t b = pf ? (Py_ssize_t)(FA_BLOCK_BYTES / {size}) : n - h;",
        f"    const Py_ssize_t a = FA_AHEAD_BYTES / {size};",
        *tail[1:],
        f"        if (pf) fa_prefetch({ahead}, k + a, k + m + a, n, {size});",
        f"        {name}_range({block}, out + k, 0, m, {pk}, seed, off + (int64_t)k);",
        "    }",
        "}",
    ]


def _bias_kernel(entry: Activation, sfx: str, helpers: list[str], summed: bool = False) -> str:
    """The backward at ``s + b`` of an entry that saves its input (the bias epilogue).

    ``void k(const T *g, const T *s, const T *b, T *out, Py_ssize_t n, const
    double *p, uint64_t seed, int64_t off)``: the ``bwd`` kernel with its saved
    input read as ``s[k] + b[k]`` in its own loop, rounded as when the sum is
    stored first (fastact/_api/epilogue.py: the pass reads ``s`` once).

    ``summed`` (:func:`_has_row_kernel`): ``void k(const T *g, const T *s, const T
    *b, T *out, T *f, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
    also adds each value stored into ``f[k]`` (one row of the bias gradient's
    sums: fastact/_backends/cython/_epilogue.pxi), ``s[k] + b[k]`` being the
    saved input only where the entry saves its input.  The values and the order
    of the additions are those of a sum over the stored rows: the same bits.
    """
    ctype = CTYPES[sfx]
    src = kernel_formula(entry, "bwd")
    kind = "bwds" if summed else "bwdb"
    where = f"{entry.name}.{kind}"
    name = f"fa_{entry.name}_{kind}_{sfx}"
    sig = f"const {ctype} *gp, const {ctype} *sp, const {ctype} *restrict bp, {ctype} *out"
    if summed:
        sig += f", {ctype} *restrict fp"
    lines = [
        f"FA_INLINE void {name}_range({sig}, Py_ssize_t k0, Py_ssize_t k1, const double *p, "
        "uint64_t seed, int64_t off) {",
        "    (void)seed; (void)off; (void)p;" + (" (void)bp;" if summed else ""),
        *_param_lines(entry, ctype, False, src),
    ]
    saved = "sp[k] + bp[k]" if entry.saves == "input" else "sp[k]"
    cases = _unswitch(src, {p.name for p in entry.parameters})
    for j, (test, formula) in enumerate(cases):
        body = expr_to_c(formula, sfx, helpers, where)
        if len(cases) > 1:
            cond = "" if test is None else f"if ({expr_to_c(test, sfx, helpers, where)}) "
            lines.append(f"    {'} else ' if j else ''}{cond}{{")
        indent = "    " * (2 if len(cases) > 1 else 1)
        inner = [f"const {ctype} g = gp[k];", f"const {ctype} {saved_name(entry)} = {saved};"]
        if "i" in free_names(formula):
            inner.append("const int64_t i = off + (int64_t)k;")
        if summed:
            inner += [f"const {ctype} v = {body};", "out[k] = v;", "fp[k] += v;"]
        else:
            inner.append(f"out[k] = {body};")
        lines += _loop(inner, indent, sfx if uses_uniform_slope(formula) else None)
    if len(cases) > 1:
        lines.append("    }")
    lines.append("}")
    if summed:
        lines += [
            f"FA_CLONES static void {name}({sig}, Py_ssize_t n, const double *p, "
            "uint64_t seed, int64_t off) {",
            f"    {name}_range(gp, sp, bp, out, fp, 0, n, p, seed, off);",
            "}",
        ]
    else:
        lines += _driver(name, sig, ctype, ("gp", "sp", "bp"), nt_stores(entry, "bwd"))
    return "\n".join(lines)


def _has_row_kernel(entry: Activation, kind: str) -> bool:
    """Whether the entry gets the bias epilogue's one-loop kernel of ``kind`` for dense
    rows (``fwd``: the forward at ``x + b``; ``bwd``: the backward that sums as it
    stores): elementwise and memory-bound (:func:`nt_stores`).  Against a tile of
    ``x + b`` then the kernel, the one forward loop took 1.2-1.4x less time (relu,
    float32, 10^7, in C); against a second pass over each row from L1, the summing
    backward 1.2x less (10^6, in L3).  A compute-bound kernel hides either pass."""
    return (
        kernel_formula(entry, kind) is not None
        and not entry.channel_param
        and nt_stores(entry, kind)
    )


def _has_bias_kernel(entry: Activation) -> bool:
    """Whether the entry gets a backward at ``s + b``: elementwise, saving its input."""
    return (
        kernel_formula(entry, "bwd") is not None
        and entry.saves == "input"
        and not entry.channel_param
    )


def _loop(inner: list[str], indent: str, rng: str | None) -> list[str]:
    """The loop over the chunk's elements ``k`` in [k0, k1) running the statements ``inner``.

    With ``rng`` (the float type of a formula that calls ``uniform_slope``)
    the loop also steps rrelu's generator (fa_intrinsics.h): the Weyl state
    ``fa_w`` of element ``k`` is an induction variable (no multiply per
    element), and in float32 the loop is split into the runs of counters that
    share one high half, each with its key ``fa_kh`` (one run, but for one
    chunk in 2**32 / n).
    """
    body = [f"{indent}    {ln}" for ln in inner]
    if rng is None:
        return [f"{indent}for (Py_ssize_t k = k0; k < k1; k++) {{", *body, f"{indent}}}"]
    if rng == "f64":
        return [
            f"{indent}uint64_t fa_w = (fa_counter(seed, off) + (uint64_t)k0) * FA_WEYL64;",
            f"{indent}for (Py_ssize_t k = k0; k < k1; k++, fa_w += FA_WEYL64) {{",
            *body,
            f"{indent}}}",
        ]
    return [
        f"{indent}const uint64_t fa_c0 = fa_counter(seed, off);",
        f"{indent}for (Py_ssize_t fa_k0 = k0, fa_k1; fa_k0 < k1; fa_k0 = fa_k1) {{",
        f"{indent}    fa_k1 = fa_run_end(fa_c0, fa_k0, k1);",
        f"{indent}    const uint32_t fa_kh = fa_run_key(fa_c0 + (uint64_t)fa_k0);",
        f"{indent}    uint32_t fa_w = fa_weyl32(fa_c0 + (uint64_t)fa_k0);",
        f"{indent}    for (Py_ssize_t k = fa_k0; k < fa_k1; k++, fa_w += FA_WEYL32) {{",
        *["    " + ln for ln in body],
        f"{indent}    }}",
        f"{indent}}}",
    ]


def _max_update(acc: str, v: str) -> str:
    """NaN-propagating maximum: once NaN, it stays NaN; of equal values, the first.

    One select of two comparisons (no ``||``: a branch would stop the loop
    from vectorizing).
    """
    return f"{acc} = (({v} <= {acc}) | ({acc} != {acc})) ? {acc} : {v};"


def _lane_max(var: str, ctype: str, body: str, load, consts: list[str]) -> list[str]:
    """The row's NaN-propagating maximum, in four blocks of eight vectorized lanes.

    Element ``k`` of each whole group of 32 goes to block ``(k % 32) // 8``,
    lane ``k % 8``; the elements after the last group to block 0.  The four
    blocks are independent chains (one block alone is a chain of dependent
    selects, which bounded the pass), folded lane by lane into block 0, then
    its eight lanes in order.  A maximum is exact: the lanes give the
    sequential loop's value (the Numba kernels' order), but for which NaN or
    which signed zero it returns, which no output of softmax or log_softmax
    shows.  The lane loops stay loops, which the vectorizer takes whole
    (unrolled, their selects would not vectorize).
    """
    init = ", ".join(["-INFINITY"] * 8)

    def update(idx: str, c: int, indent: str) -> list[str]:
        return [
            indent + "{",
            *[indent + "    " + ln for ln in load(idx) + consts],
            f"{indent}    const {ctype} v = {body};",
            indent + "    " + _max_update(f"{var}_lane{c}[j]", "v"),
            indent + "}",
        ]

    lines = [f"        {ctype} {var}_lane{c}[8] = {{{init}}};" for c in range(4)]
    lines += [
        "        for (k = 0; k + 32 <= n; k += 32) {",
        "            FA_NOUNROLL for (int j = 0; j < 8; j++) {",
    ]
    for c in range(4):
        lines += update(f"k + {8 * c} + j" if c else "k + j", c, "                ")
    lines += [
        "            }",
        "        }",
        "        for (; k + 8 <= n; k += 8) {",
        "            FA_NOUNROLL for (int j = 0; j < 8; j++) {",
        *update("k + j", 0, "                "),
        "            }",
        "        }",
        "        for (int j = 0; k < n; k++, j++) {",
        *update("k", 0, "            "),
        "        }",
    ]
    for c in range(1, 4):
        lines += [
            "        FA_NOUNROLL for (int j = 0; j < 8; j++) {",
            "            " + _max_update(f"{var}_lane0[j]", f"{var}_lane{c}[j]"),
            "        }",
        ]
    lines += [
        f"        {ctype} {var}_acc = {var}_lane0[0];",
        "        for (int j = 1; j < 8; j++) {",
        "            " + _max_update(f"{var}_acc", f"{var}_lane0[j]"),
        "        }",
    ]
    return lines


def _lane_adds(var: str, value, i: str, stop: str, width: int = 8, tail: bool = True) -> list[str]:
    """Add elements ``0..stop-1`` (index ``i``) to the lanes ``{var}_lane``, ``i`` to lane ``i % 8``
    (without ``tail``, the whole blocks of ``width`` only).

    ``value(idx)`` gives the statements that set ``v`` (a T) to the value of
    element ``idx``.  Element 0 is the row's first or a multiple of 8 after
    it, so lane ``j`` takes the row's elements ``k`` with ``k % 8 == j``, in
    increasing ``k``.  The fixed-8 inner loop unrolls into eight additions
    that the vectorizer packs, reassociating nothing.
    """
    lane = f"{var}_lane"
    blocks = [
        f"for ({i} = 0; {i} + {width} <= {stop}; {i} += {width}) {{",
        f"    for (int j = 0; j < {width}; j++) {{",
        *["        " + ln for ln in value(f"{i} + j")],
        f"        {lane}[j] += (double)v;",
        "    }",
        "}",
    ]
    if not tail:
        return blocks
    return [
        *blocks,
        f"for (int j = 0; {i} < {stop}; {i}++, j++) {{",
        *["    " + ln for ln in value(i)],
        f"    {lane}[j] += (double)v;",
        "}",
    ]


def _computed(ctype: str, body: str, load, consts: list[str]):
    """``value(idx)`` for :func:`_lane_adds`: the loads of element ``idx``, the consts,
    and ``v`` computed by ``body``."""
    return lambda idx: [*load(idx), *consts, f"const {ctype} v = {body};"]


def _lane_sum(
    var: str,
    ctype: str,
    body: str,
    load,
    consts: list[str],
    keep: bool,
    costly: bool,
    width: int = 8,
    stop: str = "n",
) -> list[str]:
    """The sum of a run of a row in double, in ``width`` lanes (element ``k`` into
    lane ``k % width``; 8, or BACKWARD_LANES).

    The lanes start at 0.0, each adds its elements in increasing ``k``, and
    each set of eight gives ``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 +
    l7))``, the sets' totals added in order: the order of ``pgrad`` (eight
    lanes) and of the Numba kernels (the same bits).  The values
    are computed apart from the additions where that lets them vectorize:
    into the output row when the map reads them back (``keep``), else, for a
    formula with calls, block by block into a stack buffer.  ``stop``: the run's
    length (computed values only).
    """
    lines = [f"        double {var}_lane[{width}] = {{{', '.join(['0.0'] * width)}}};"]

    computed = _computed(ctype, body, load, consts)

    def stored(buf: str):
        return lambda idx: [f"const {ctype} v = {buf}[{idx}];"]

    if keep:
        lines += [
            "        for (k = 0; k < n; k++) {",
            *["            " + ln for ln in load("k") + consts],
            f"            o_r[k] = {body};",
            "        }",
            *["        " + ln for ln in _lane_adds(var, stored("o_r"), "k", "n", width)],
        ]
    elif costly:
        # FA_ROW_BLOCK is a multiple of 8: each block starts in lane 0
        lines += [
            f"        {ctype} {var}_blk[FA_ROW_BLOCK];",
            "        for (Py_ssize_t k0 = 0; k0 < n; k0 += FA_ROW_BLOCK) {",
            "            const Py_ssize_t kn = n - k0 < FA_ROW_BLOCK ? n - k0 : FA_ROW_BLOCK;",
            "            Py_ssize_t i;",
            "            for (i = 0; i < kn; i++) {",
            *["                " + ln for ln in load("k0 + i") + consts],
            f"                {var}_blk[i] = {body};",
            "            }",
            *[
                "            " + ln
                for ln in _lane_adds(var, stored(f"{var}_blk"), "i", "kn", width)
            ],
            "        }",
        ]
    else:
        lines += ["        " + ln for ln in _lane_adds(var, computed, "k", stop, width)]
    lines.append("        " + _lane_total(var, width))
    return lines


def _lane_total(var: str, width: int, lane=lambda m: m) -> str:
    """``{var}_acc``, the lanes' total in :func:`_lane_sum`'s order; ``lane(m)``: where
    lane ``m`` is kept (the reordering chunk conversions move it)."""
    totals = []
    for b in range(0, width, 8):
        lv = [f"{var}_lane[{lane(b + j)}]" for j in range(8)]
        totals.append(
            f"(({lv[0]} + {lv[1]}) + ({lv[2]} + {lv[3]})) + (({lv[4]} + {lv[5]}) + ({lv[6]} + {lv[7]}))"
        )
    return f"const double {var}_acc = {' + '.join(f'({t})' for t in totals)};"


def _grouped(expr: str) -> str:
    """``expr`` in parentheses, unless it is one parenthesized group already."""
    depth = 0
    for i, c in enumerate(expr):
        depth += (c == "(") - (c == ")")
        if depth == 0 and i < len(expr) - 1:
            return f"({expr})"
    return expr if expr.startswith("(") else f"({expr})"


def _half_lane_sum(
    var: str,
    ctype: str,
    body: str,
    load,
    consts: list[str],
    width: int,
    widen,
    pairs: bool,
) -> list[str]:
    """:func:`_lane_sum` on 16-bit rows: ``widen(at, kn)`` converts the chunk of the
    row at ``at`` (``kn`` elements, or a whole chunk when None) into the buffers the
    loads read.  Whole chunks first, in a loop of their own (its lanes stay in
    registers), then the short last one, whose last block of lanes adds 0.0 where no
    element is: a lane starts at +0.0 and is never -0.0, so adding +0.0 changes no
    lane.  ``pairs``: the chunks are in the order of the reordering conversions
    (:data:`PAIR_BLOCK`): lane ``j`` of the buffers holds element
    :func:`pair_position` ``(j)`` of its block, and the total reads the lanes back in
    element order (:func:`pair_lane`).
    """
    if pairs and width != PAIR_BLOCK:
        raise ValueError(f"{var}: the reordering conversions need {PAIR_BLOCK} lanes")
    pos = PAIR_POSITION_C if pairs else "j"
    ctor = ", ".join(["0.0"] * width)

    computed = _computed(ctype, body, load, consts)

    def blocks(stop: str) -> list[str]:
        return _lane_adds(var, computed, "k", stop, width, tail=False)

    lines = [
        f"double {var}_lane[{width}] = {{{ctor}}};",
        "Py_ssize_t k0 = 0;",
        "for (; k0 + FA_H16_CHUNK <= n; k0 += FA_H16_CHUNK) {",
        *["    " + ln for ln in widen("k0", None)],
        *["    " + ln for ln in blocks("FA_H16_CHUNK")],
        "}",
        "if (k0 < n) {",
        "    const Py_ssize_t kn = n - k0;",
        *["    " + ln for ln in widen("k0", "kn")],
        *["    " + ln for ln in blocks("kn")],
        "    if (k < kn) {",
        f"        for (int j = 0; j < {width}; j++) {{",
        *["            " + ln for ln in load("k + j") + consts],
        f"            const {ctype} v = {pos} < kn - k ? {_grouped(body)} : ({ctype})0;",
        f"            {var}_lane[j] += (double)v;",
        "        }",
        "    }",
        "}",
        _lane_total(var, width, pair_lane if pairs else (lambda m: m)),
    ]
    return ["        " + ln for ln in lines]


# Row stages (row_forward/row_backward) as the driver of long rows sees them:
# ROP_MAX/ROP_SUM reduce over the row, ROP_LOG + j takes the log of stage j.
ROP_MAX, ROP_SUM, ROP_LOG = 1, 2, 16
RSTAGES = 4  # the most stages of a row kernel


def _row_ops(entry: Activation, backward: bool) -> list[int]:
    """The op code of each of the entry's row stages (ROP_*)."""
    stages = entry.row_backward if backward else entry.row_forward
    names = [var for var, _, _ in stages]
    ops = []
    for var, op, expr in stages:
        if op == "log":
            ops.append(ROP_LOG + names.index(expr))
        elif op in ("max", "sum"):
            ops.append(ROP_MAX if op == "max" else ROP_SUM)
        else:
            raise SyntaxError(f"{entry.name}: unknown reduction {op!r} of {var}")
    if len(ops) > RSTAGES:
        raise SyntaxError(f"{entry.name}: more than {RSTAGES} row stages")
    return ops


# The 16-bit backward row kernels run their stages on chunks of FA_H16_CHUNK
# elements widened into float32 by the format's chunk conversions (as the
# elementwise 16-bit kernels do): into a float32 copy of the row kept for all the
# passes where it fits FA_H16_ROW_KEPT (each conversion done once), else into
# chunk buffers by each pass, which reads its row from memory in 16 bits.  One
# kernel per store of HALF_STORES and INSTRUCTION_STORES.  (A
# bfloat16 row widened by a shift in the row loops themselves measured 5-10%
# slower than its chunks; float16 has no such shift.)
ROW_STORES = {**HALF_STORES, **INSTRUCTION_STORES}


def _rowwise(
    entry: Activation,
    backward: bool,
    sfx: str,
    helpers: list[str],
    store: str | None = None,
) -> str:
    """The row kernels of one pass: a function per reduction stage and one for the map
    (each over one run of a row, for the driver of long rows), and the kernel over
    ``rows`` contiguous rows of length ``n`` that runs them in order.

    A stage reads the earlier stages' values from ``acc`` (doubles: a max, a sum,
    the log of a sum).  Maxima run in vectorized lanes (exact); sums in eight
    double lanes combined in a fixed order (:func:`_lane_sum`, the Numba kernels'
    order) per segment of ``ROW_SPLIT`` elements, the segments' totals added in
    order.  The result depends on the row only, not on threads nor on how the
    row's segments are shared among them.

    ``store`` (a backward, :func:`has_half_row_bwd`): the kernel on 16-bit rows of
    that store of :data:`ROW_STORES`, float32 inside (``sfx`` "f32"): a row of at
    most FA_H16_ROW_KEPT elements is widened once, by the first stage that reads it,
    into float32 rows on the stack that the later passes read back; a longer one by
    each pass, chunk by chunk.  The map rounds chunk by chunk: the same bits as the
    float32 kernel on the widened rows, rounded once.
    """
    ctype = CTYPES[sfx]
    stages = entry.row_backward if backward else entry.row_forward
    final = entry.backward if backward else entry.forward
    where = f"{entry.name}.{'backward' if backward else 'forward'}"
    name = f"fa_{entry.name}_r{'bwd' if backward else 'fwd'}_{store or sfx}"
    # the arrays' element type, and where the stages' loops read: the rows, or (16
    # bits) the float32 copies g_b and s_b of their chunks (widened into the chunk
    # buffers g_c and s_c, or into the kept rows g_k and s_k)
    etype, ga, sa = (ctype, "g_r", "s_r") if store is None else ("uint16_t", "g_b", "s_b")
    if backward:
        a, b = "g_r", "s_r"

        def load(i: str) -> list[str]:
            return [f"const {ctype} g = {ga}[{i}];", f"const {ctype} y = {sa}[{i}];"]

    else:
        a, b = "x_r", "b_r"

        def load(i: str) -> list[str]:
            return [f"const {ctype} x = x_r[{i}];"]

    sig = f"const {etype} *{a}, const {etype} *{b}, {etype} *o_r, Py_ssize_t n, const double *acc"
    if store is not None:
        sig += ", float *g_k, float *s_k"
    loads = {"g", "y"} if backward else {"x"}
    cached = cached_stage(stages, final, loads)
    if store is not None and (not backward or cached is not None):
        raise ValueError(f"{where}: no {store} row kernel (has_half_row_bwd)")
    attr, conv = ROW_STORES[store] if store is not None else ("", None)
    # no stage nor map reads an element's position: the reordering conversions serve
    pairs = store in REORDERING_STORES
    conv = REORDERING_STORES.get(store, conv)
    # the inlined bodies call the chunk conversions: their target, not the clones
    battr = attr if store in INSTRUCTION_STORES else ""

    def chunks(used: set[str]) -> list[str]:
        """The chunk buffers of the rows a loop reads."""
        bufs = [
            f"{buf}[FA_H16_CHUNK] FA_ALIGN64"
            for v, buf in (("g", "g_c"), ("y", "s_c"))
            if v in used
        ]
        return [f"    {ctype} {', '.join(bufs)};"]

    # the rows a stage reads are kept in float32 (g_k, s_k) where the driver has room
    # for them (FA_H16_ROW_KEPT): the first stage to read one widens it, the stages
    # and the map after it read it back
    kept = {v for _, op, expr in stages if op != "log" for v in free_names(expr) & loads}

    def widen(used: set[str], at: str, kn: str | None, first: set[str]) -> list[str]:
        """The chunk at ``at`` (whole: ``kn`` None, else ``kn`` elements, padded) of
        the rows a loop reads (g, y) in float32 at g_b and s_b: in the kept rows or
        the chunk buffers, widened there unless an earlier stage did (``first``: the
        rows no earlier stage read)."""
        lines = []
        for v, row, buf in (("g", "g_r", "g"), ("y", "s_r", "s")):
            if v not in used:
                continue
            call = (
                f"{conv}_widen({row} + {at}, {buf}_b);"
                if kn is None
                else f"{conv}_widen_n({row} + {at}, {kn}, {buf}_b);"
            )
            if v in kept:
                lines.append(f"float *const {buf}_b = {buf}_k ? {buf}_k + {at} : {buf}_c;")
                lines.append(call if v in first else f"if (!{buf}_k) {call}")
            else:
                lines += [f"float *const {buf}_b = {buf}_c;", call]
        return lines

    out: list[str] = []

    def declare(upto: int, used: set[str]) -> list[str]:
        return [
            f"    const {ctype} {stages[j][0]}_acc_t = ({ctype})acc[{j}];"
            for j in range(upto)
            if stages[j][1] in ("max", "sum", "log") and stages[j][0] in used
        ]

    void = f"    (void){a}; (void){b}; (void)o_r; (void)acc;"
    if store is not None:
        void += " (void)g_k; (void)s_k;"
    read: set[str] = set()  # the rows the stages so far read
    for i, (var, op, expr) in enumerate(stages):
        if op == "log":
            continue
        body = expr_to_c(expr, sfx, helpers, f"{where}.{var}")
        used = free_names(expr)
        consts = [f"const {ctype} {d} = {d}_acc_t;" for d, _, _ in stages[:i] if d in used]
        lines = [
            f"{battr}FA_INLINE double {name}_s{i}_body({sig}) {{",
            void,
            *declare(i, used),
        ]

        def load_used(k: str, used: set[str] = used) -> list[str]:
            return [ln for ln in load(k) if ln.split()[2] in used]

        if op == "max":
            red = _lane_max(var, ctype, body, load_used, consts)
        else:
            keep = cached is not None and cached[0] == var
            width = BACKWARD_LANES if backward else 8
            costly = bool(called_names(expr))
            if store is not None:  # chunk by chunk (a multiple of the lanes), in order
                red = [
                    *["    " + ln for ln in chunks(used)],
                    *_half_lane_sum(
                        var,
                        ctype,
                        body,
                        load_used,
                        consts,
                        width,
                        lambda at, kn, used=used, first=used - read: widen(used, at, kn, first),
                        pairs,
                    ),
                ]
                read |= used & loads
            else:
                red = _lane_sum(var, ctype, body, load_used, consts, keep, costly, width)
        if any(re.search(r"\bk\b", ln) and "Py_ssize_t k " not in ln for ln in red):
            lines.append("    Py_ssize_t k;")  # the lane loops' index, shared with the tail
        lines += [ln[4:] for ln in red]
        lines += [f"    return (double){var}_acc;", "}"]
        if store is None:  # the long-row driver's stages (float32 and float64 only)
            lines += [
                f"FA_CLONES static double {name}_s{i}({sig}) {{",
                f"    return {name}_s{i}_body({a}, {b}, o_r, n, acc);",
                "}",
            ]
        out.append("\n".join(lines))
    used = free_names(cached[1] if cached is not None else final)
    lines = [f"{battr}FA_INLINE void {name}_map_body({sig}) {{", void, *declare(len(stages), used)]
    declared = [var for var, _, _ in stages]
    if store is not None:
        # a short last chunk is padded with zeros (computed, not stored): one trip count
        body = expr_to_c(final, sfx, helpers, where)
        chunk = [
            "    for (Py_ssize_t k = 0; k < FA_H16_CHUNK; k++) {",
            *["        " + ln for ln in load("k") if ln.split()[2] in used],
            *[f"        const {ctype} {d} = {d}_acc_t;" for d in declared if d in used],
            f"        o_c[k] = {body};",
            "    }",
        ]
        lines += [
            *chunks(used),
            f"    {ctype} o_c[FA_H16_CHUNK] FA_ALIGN64;",
            "    Py_ssize_t k0 = 0;",
            "    for (; k0 + FA_H16_CHUNK <= n; k0 += FA_H16_CHUNK) {",
            *["        " + ln for ln in widen(used, "k0", None, used - read)],
            *["    " + ln for ln in chunk],
            f"        {conv}_narrow(o_c, o_r + k0);",
            "    }",
            "    if (k0 < n) {",
            *["        " + ln for ln in widen(used, "k0", "n - k0", used - read)],
            *["    " + ln for ln in chunk],
            f"        {conv}_narrow_n(o_c, o_r + k0, n - k0);",
            "    }",
            "}",
        ]
    elif cached is not None:
        body = expr_to_c(cached[1], sfx, helpers, where)
        lines.append("    for (Py_ssize_t k = 0; k < n; k++) {")
        lines.append(f"        const {ctype} {cached[0]}_elem = o_r[k];")
    else:
        body = expr_to_c(final, sfx, helpers, where)
        lines.append("    for (Py_ssize_t k = 0; k < n; k++) {")
        lines += ["        " + ld for ld in load("k")]
    if store is None:
        lines += [f"        const {ctype} {d} = {d}_acc_t;" for d in declared if d in used]
        lines += [f"        o_r[k] = {body};", "    }", "}"]
        lines += [
            f"FA_CLONES static void {name}_map({sig}) {{",
            f"    {name}_map_body({a}, {b}, o_r, n, acc);",
            "}",
        ]
    out.append("\n".join(lines))
    if backward:
        rsig = f"const {etype} *gp, const {etype} *sp, {etype} *out"
        offs = [f"const {etype} *g_r = gp + r * n;", f"const {etype} *s_r = sp + r * n;"]
    else:
        rsig = f"const {ctype} *xp, {ctype} *out"
        offs = [f"const {ctype} *x_r = xp + r * n;", f"const {ctype} *b_r = x_r;"]

    def run(extra: str, split: bool) -> list[str]:
        """The row's stages and map (``extra``: the kept rows' arguments), its sums in
        segments of FA_ROW_SPLIT (``split``) or as one."""
        lines = []
        for i, (_var, op, expr) in enumerate(stages):
            if op == "log":
                j = [v for v, _, _ in stages].index(expr)
                lines.append(f"acc[{i}] = log(acc[{j}]);")
            elif op == "max" or not split:
                lines.append(f"acc[{i}] = {name}_s{i}_body({a}, {b}, o_r, n, acc{extra});")
            else:
                lines += [
                    "for (Py_ssize_t k0 = 0; k0 < n; k0 += FA_ROW_SPLIT) {",
                    "    const Py_ssize_t kn = n - k0 < FA_ROW_SPLIT ? n - k0 : FA_ROW_SPLIT;",
                    f"    const double t = {name}_s{i}_body({a} + k0, {b} + k0, o_r + k0, kn, acc{extra});",
                    f"    acc[{i}] = k0 ? acc[{i}] + t : t;",
                    "}",
                ]
        return [*lines, f"{name}_map_body({a}, {b}, o_r, n, acc{extra});"]

    head = [
        f"{attr if store else 'FA_CLONES '}static void {name}({rsig}, Py_ssize_t rows, Py_ssize_t n, "
        "const double *p) {",
        "    (void)p;",
    ]
    if store is not None:
        held = [f"{buf}_k" if v in kept else "NULL" for v, buf in (("g", "g"), ("y", "s"))]
        head += [f"    float {k}[FA_H16_ROW_KEPT] FA_ALIGN64;" for k in held if k != "NULL"]
        # a kept row is one segment of its sums
        body = [
            "if (n <= FA_H16_ROW_KEPT) {",
            *["    " + ln for ln in run(f", {held[0]}, {held[1]}", False)],
            "} else {",
            *["    " + ln for ln in run(", NULL, NULL", True)],
            "}",
        ]
    else:
        body = run("", True)
    lines = [
        *head,
        "    for (Py_ssize_t r = 0; r < rows; r++) {",
        *["        " + o for o in offs],
        f"        {etype} *o_r = out + r * n;",
        # zeros: a row of length 0 runs no sum loop, and the map then reads nothing
        f"        double acc[{max(len(stages), 1)}] = {{0.0}};",
        *["        " + ln for ln in body],
        "    }",
        "}",
    ]
    out.append("\n".join(lines))
    return "\n\n".join(out)


def _pointer_table(ctype: str, name: str, ptrs: list[str]) -> str:
    """A C table of kernel pointers, one per entry (NULL where it has none)."""
    return f"static {ctype} {name}[{len(ptrs)}] = {{\n    " + ",\n    ".join(ptrs) + "\n};"


def _pgrad_loops(
    body: str, entry: Activation, ctype: str, vector: bool, g: str, s: str, stop: str
) -> list[str]:
    """The parameter-gradient terms ``body`` of elements ``k`` to ``stop`` of a block
    starting at element ``k0`` of the call (``g[k]`` and ``s[k]`` hold the element), into
    ``part[(k0 + k) % 8]`` (``k0`` a multiple of 8) or, ``vector``, into ``acc[k0 + k]``."""
    saved = saved_name(entry)
    if vector:
        cp = entry.channel_param
        reads_cp = cp in free_names(entry.param_grad)
        return [
            f"for (; k < {stop}; k++) {{",
            f"    const {ctype} g = {g}[k];",
            f"    const {ctype} {saved} = {s}[k];",
            *([f"    const {ctype} {cp} = p[k0 + k];"] if reads_cp else []),
            f"    acc[k0 + k] += (double)({body});",
            "}",
        ]
    return [
        f"for (; k + 8 <= {stop}; k += 8) {{",
        "    for (int j = 0; j < 8; j++) {",
        f"        const {ctype} g = {g}[k + j];",
        f"        const {ctype} {saved} = {s}[k + j];",
        f"        part[j] += (double)({body});",
        "    }",
        "}",
        f"for (int j = 0; k < {stop}; k++, j++) {{",
        f"    const {ctype} g = {g}[k];",
        f"    const {ctype} {saved} = {s}[k];",
        f"    part[j] += (double)({body});",
        "}",
    ]


PGRAD_TOTAL = (
    "acc[0] += ((part[0] + part[1]) + (part[2] + part[3]))"
    " + ((part[4] + part[5]) + (part[6] + part[7]));"
)


def _pgrad_bwd(entry: Activation, sfx: str, helpers: list[str], vector: bool) -> str:
    """The backward with the parameter gradient, in one pass over ``g`` and ``s``.

    Block by block (``FA_ROW_BLOCK`` elements, a multiple of 8): the block's
    parameter-gradient terms, then its gradient (the ``bwd``/``bwdv`` loop), so
    the block is read from memory once; ``out`` may be ``g`` (each block's terms
    are taken before it is written).  The terms go to eight double partial sums
    (``bwdpg``: element ``k`` of the call adds to ``part[k % 8]`` in increasing
    ``k``, carried from block to block, the total
    ``((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))``; the Numba backend
    sums in the same order and the fixed-8 inner loop vectorizes without
    reassociating anything) or, in ``bwdpgv``, to each element's own sum.
    """
    ctype = CTYPES[sfx]
    v = "v" if vector else ""
    name = f"fa_{entry.name}_bwdpg{v}_{sfx}"
    body = expr_to_c(entry.param_grad, sfx, helpers, f"{entry.name}.param_grad")
    lines = [
        f"FA_CLONES static void {name}(const {ctype} *gp, const {ctype} *sp, {ctype} *out, "
        f"Py_ssize_t n, const {param_type(ctype, vector)} *p, double *acc) {{",
        *_param_lines(entry, ctype, vector, entry.param_grad),
    ]
    if not vector:
        lines.append("    double part[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};")
    lines += [
        "    for (Py_ssize_t k0 = 0; k0 < n; k0 += FA_ROW_BLOCK) {",
        "        const Py_ssize_t k1 = n - k0 < FA_ROW_BLOCK ? n - k0 : FA_ROW_BLOCK;",
        "        const " + ctype + " *const g_b = gp + k0, *const s_b = sp + k0;",
        "        Py_ssize_t k = 0;",
        *["        " + ln for ln in _pgrad_loops(body, entry, ctype, vector, "g_b", "s_b", "k1")],
        f"        fa_{entry.name}_bwd{v}_{sfx}_range(gp + k0, sp + k0, out + k0, 0, k1, "
        + ("p + k0" if vector else "p")
        + ", 0, 0);",
        "    }",
    ]
    if not vector:
        lines.append("    " + PGRAD_TOTAL)
    lines.append("}")
    return "\n".join(lines)


def _half_channel(entry: Activation, kind: str, store: str, helpers: list[str]) -> str:
    """The per-channel 16-bit kernel of ``kind`` (``fwdv``; ``bwdpg`` or ``bwdpgv``: the
    backward with the parameter gradient) in ``store`` of :data:`ROW_STORES`.

    Chunk by chunk (FA_H16_CHUNK elements, widened exactly into float32 buffers on the
    stack and rounded once as stored): the float32 kernel's loops on each chunk, so
    the results are the float32 kernel's on the widened arrays, bit for bit, the
    parameter gradient's sums included (the same terms into the same partial sums, in
    the same order).  The conversions keep each element's position (no reordering
    store): the partial sums depend on it.
    """
    attr, conv = ROW_STORES[store]
    vector = kind != "bwdpg"
    name = f"fa_{entry.name}_{kind}_{store}"
    if kind == "fwdv":
        sig = (
            "const uint16_t *xp, uint16_t *out, Py_ssize_t n, "
            f"const {param_type('float', vector)} *p, uint64_t seed, int64_t off"
        )
        lines = [
            f"{attr}static void {name}({sig}) {{",
            "    float a[FA_H16_CHUNK] FA_ALIGN64, b[FA_H16_CHUNK] FA_ALIGN64;",
            "    for (Py_ssize_t k0 = 0; k0 < n; k0 += FA_H16_CHUNK) {",
            "        const Py_ssize_t m = n - k0 < FA_H16_CHUNK ? n - k0 : FA_H16_CHUNK;",
            f"        if (m == FA_H16_CHUNK) {conv}_widen(xp + k0, a);",
            f"        else {conv}_widen_n(xp + k0, m, a);",
            f"        fa_{entry.name}_fwdv_f32_range(a, b, 0, m, p + k0, seed, off + (int64_t)k0);",
            f"        if (m == FA_H16_CHUNK) {conv}_narrow(b, out + k0);",
            f"        else {conv}_narrow_n(b, out + k0, m);",
            "    }",
            "}",
        ]
        return "\n".join(lines)
    v = "v" if vector else ""
    body = expr_to_c(entry.param_grad, "f32", helpers, f"{entry.name}.param_grad")
    lines = [
        f"{attr}static void {name}(const uint16_t *gp, const uint16_t *sp, uint16_t *out, "
        f"Py_ssize_t n, const {param_type('float', vector)} *p, double *acc) {{",
        *_param_lines(entry, "float", vector, entry.param_grad),
        "    float g_c[FA_H16_CHUNK] FA_ALIGN64, s_c[FA_H16_CHUNK] FA_ALIGN64,"
        " o_c[FA_H16_CHUNK] FA_ALIGN64;",
    ]
    if not vector:
        lines.append("    double part[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};")
    lines += [
        "    for (Py_ssize_t k0 = 0; k0 < n; k0 += FA_H16_CHUNK) {",
        "        const Py_ssize_t m = n - k0 < FA_H16_CHUNK ? n - k0 : FA_H16_CHUNK;",
        "        if (m == FA_H16_CHUNK) {",
        f"            {conv}_widen(gp + k0, g_c);",
        f"            {conv}_widen(sp + k0, s_c);",
        "        } else {",
        f"            {conv}_widen_n(gp + k0, m, g_c);",
        f"            {conv}_widen_n(sp + k0, m, s_c);",
        "        }",
        "        Py_ssize_t k = 0;",
        *["        " + ln for ln in _pgrad_loops(body, entry, "float", vector, "g_c", "s_c", "m")],
        f"        fa_{entry.name}_bwd{v}_f32_range(g_c, s_c, o_c, 0, m, "
        + ("p + k0" if vector else "p")
        + ", 0, 0);",
        f"        if (m == FA_H16_CHUNK) {conv}_narrow(o_c, out + k0);",
        f"        else {conv}_narrow_n(o_c, out + k0, m);",
        "    }",
    ]
    if not vector:
        lines.append("    " + PGRAD_TOTAL)
    lines.append("}")
    return "\n".join(lines)


# The per-channel 16-bit kernels (:func:`_half_channel`) and their signatures.
HALF_CHANNEL_KINDS = {"fwdv": "unaryv", "bwdpg": "bwdpg", "bwdpgv": "bwdpgv"}


def _half_channel_kernels(table: tuple[Activation, ...], names: list[str]) -> list[str]:
    """The per-channel 16-bit kernels of every store of :data:`ROW_STORES` and their
    pointer tables (``FA_BWDPG_BF16``...: NULL where the entry has no channel parameter)."""
    out = []
    for store in ROW_STORES:
        block = [
            _half_channel(e, kind, store, names)
            for e in table
            if e.param_grad is not None
            for kind in HALF_CHANNEL_KINDS
        ]
        for kind, sig in HALF_CHANNEL_KINDS.items():
            ptrs = [
                f"fa_{e.name}_{kind}_{store}" if e.param_grad is not None else "NULL" for e in table
            ]
            block.append(
                _pointer_table(f"fa_{sig}_h16", f"FA_{kind.upper()}_{store.upper()}", ptrs)
            )
        if store in INSTRUCTION_STORES:
            block = ["#if FA_HAVE_CLONES", *block, "#endif"]
        out += block
    return out


PROLOGUE = """\
/* Generated by fastact/_codegen/c_kernels.py from fastact/table.py. Do not edit. */
#ifndef FA_KERNELS_H
#define FA_KERNELS_H
#include "fa_intrinsics.h"
#include "fa_convert.h"

/* The fixed-8 lane loops of the row maxima stay loops, which gcc's
 * vectorizer takes whole (unrolled, their selects would not vectorize). */
#if defined(__GNUC__) && !defined(__clang__)
#define FA_NOUNROLL _Pragma("GCC unroll 1")
#else
#define FA_NOUNROLL
#endif
/* Row sums compute their values in blocks of this many (a multiple of 8),
 * then add them to their eight lanes. */
#define FA_ROW_BLOCK 256
/* Row sums add their segments of this many elements in order (ROW_SPLIT). */
#define FA_ROW_SPLIT {row_split}
/* The 16-bit backward row kernels keep a row of at most this many elements in
 * float32 (on the stack, in L1 with its partner row), widened once for all the
 * row's passes; a longer row is widened by each pass, chunk by chunk.  One
 * segment of the row sums. */
#define FA_H16_ROW_KEPT 2048
#if FA_H16_ROW_KEPT > FA_ROW_SPLIT || FA_H16_ROW_KEPT % FA_H16_CHUNK
#error "a kept 16-bit row is one segment of the row sums and whole chunks"
#endif
/* The drivers' layout (fastact/_codegen/dialect.py): CHANNEL_SEGMENT, PGRAD_BLOCKS,
 * MIN_CHUNK. */
#define FA_CHANNEL_SEGMENT {channel_segment}
#define FA_CHANNEL_ROW_RUN {channel_row_run}
#define FA_PGRAD_BLOCKS {pgrad_blocks}
#define FA_MIN_CHUNK {min_chunk}
#define FA_RSTAGES {rstages}
#define FA_ROP_MAX {rop_max}
#define FA_ROP_SUM {rop_sum}
#define FA_ROP_LOG {rop_log}

typedef void (*fa_unary_f32)(const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t);
typedef void (*fa_bwdb_f32)(const float *, const float *, const float *, float *, Py_ssize_t,
                            const double *, uint64_t, int64_t);
typedef void (*fa_bwdb_f64)(const double *, const double *, const double *, double *,
                            Py_ssize_t, const double *, uint64_t, int64_t);
typedef void (*fa_fwdb_f32)(const float *, const float *, float *, Py_ssize_t, const double *,
                            uint64_t, int64_t);
typedef void (*fa_fwdb_f64)(const double *, const double *, double *, Py_ssize_t,
                            const double *, uint64_t, int64_t);
typedef void (*fa_bwds_f32)(const float *, const float *, const float *, float *, float *,
                            Py_ssize_t, const double *, uint64_t, int64_t);
typedef void (*fa_bwds_f64)(const double *, const double *, const double *, double *, double *,
                            Py_ssize_t, const double *, uint64_t, int64_t);
typedef void (*fa_unary_f64)(const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t);
typedef void (*fa_binary_f32)(const float *, const float *, float *, Py_ssize_t, const double *,
                              uint64_t, int64_t);
typedef void (*fa_binary_f64)(const double *, const double *, double *, Py_ssize_t,
                              const double *, uint64_t, int64_t);
typedef void (*fa_rowf_f32)(const float *, float *, Py_ssize_t, Py_ssize_t, const double *);
typedef void (*fa_rowf_f64)(const double *, double *, Py_ssize_t, Py_ssize_t, const double *);
typedef void (*fa_rowb_f32)(const float *, const float *, float *, Py_ssize_t, Py_ssize_t,
                            const double *);
typedef void (*fa_rowb_f64)(const double *, const double *, double *, Py_ssize_t, Py_ssize_t,
                            const double *);
typedef void (*fa_bwdpg_f32)(const float *, const float *, float *, Py_ssize_t, const double *,
                             double *);
typedef void (*fa_bwdpg_f64)(const double *, const double *, double *, Py_ssize_t,
                             const double *, double *);
typedef double (*fa_rseg_f32)(const float *, const float *, float *, Py_ssize_t, const double *);
typedef double (*fa_rseg_f64)(const double *, const double *, double *, Py_ssize_t,
                              const double *);
typedef void (*fa_rmap_f32)(const float *, const float *, float *, Py_ssize_t, const double *);
typedef void (*fa_rmap_f64)(const double *, const double *, double *, Py_ssize_t,
                            const double *);
typedef void (*fa_unary_h16)(const uint16_t *, uint16_t *, Py_ssize_t, const double *, uint64_t,
                             int64_t);
typedef void (*fa_binary_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t,
                              const double *, uint64_t, int64_t);
typedef void (*fa_rowb_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t,
                            Py_ssize_t, const double *);
typedef void (*fa_bwdpg_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t,
                             const double *, double *);
/* The vector forms: a weight per element, in the arrays' type (float32 for 16 bits). */
typedef void (*fa_unaryv_f32)(const float *, float *, Py_ssize_t, const float *, uint64_t,
                              int64_t);
typedef void (*fa_unaryv_f64)(const double *, double *, Py_ssize_t, const double *, uint64_t,
                              int64_t);
typedef void (*fa_bwdpgv_f32)(const float *, const float *, float *, Py_ssize_t, const float *,
                              double *);
typedef void (*fa_bwdpgv_f64)(const double *, const double *, double *, Py_ssize_t,
                              const double *, double *);
typedef void (*fa_unaryv_h16)(const uint16_t *, uint16_t *, Py_ssize_t, const float *, uint64_t,
                              int64_t);
typedef void (*fa_bwdpgv_h16)(const uint16_t *, const uint16_t *, uint16_t *, Py_ssize_t,
                              const float *, double *);
"""


def _bounds_struct(names: HelperNames, sfx: str) -> str:
    """The helpers' bounds (:class:`~fastact._codegen.dialect.HelperNames`) in C: the
    struct, and ``FA_HB_F32`` (``_F64``), which declares it set through ``fa_opaque``
    and the pointer the helpers take."""
    ctype, hb = CTYPES[sfx], bounds_pointer(sfx)
    members = " ".join(f"{ctype} b{j};" for j in range(len(names.bounds)))
    values = ", ".join(f"fa_opaque_{sfx}({expr_to_c(b, sfx, names)})" for b in names.bounds)
    return "\n".join(
        [
            f"typedef struct {{ {members} }} fa_hb_{sfx};",
            f"#define FA_HB_{sfx.upper()} \\",
            f"    const fa_hb_{sfx} {hb}_v = {{{values}}}; \\",
            f"    const fa_hb_{sfx} *const {hb} = &{hb}_v; \\",
            f"    (void){hb}",
        ]
    )


def declare_bounds(text: str) -> str:
    """``text`` with ``FA_HB_F32;`` (``_F64``) at the top of each function that passes
    the helpers' bounds (:func:`_bounds_struct`) without taking them.

    A definition (a function's, a table's) starts at a line at column 0 that ends
    with ``{`` and ends at the next line ``}`` or ``};``, as the generator writes them.
    """
    out: list[str] = []
    start = None
    for line in text.split("\n"):
        out.append(line)
        if line.endswith("{") and line[:1] not in ("", " ", "#", "/"):
            start = len(out) - 1
        elif start is not None and line in ("}", "};"):
            body = "\n".join(out[start + 1 :])
            for sfx in CTYPES:
                hb = bounds_pointer(sfx)
                if re.search(rf"\b{hb}\b", body) and not re.search(rf"\b{hb}\b", out[start]):
                    out.insert(start + 1, f"    FA_HB_{sfx.upper()};")
            start = None
    return "\n".join(out)


def generate(table: tuple[Activation, ...], helpers: tuple) -> str:
    """The whole header: helpers, kernels, and pointer tables."""
    names = HelperNames(helpers)
    out = [
        PROLOGUE.replace("{row_split}", str(ROW_SPLIT))
        .replace("{channel_segment}", str(CHANNEL_SEGMENT))
        .replace("{channel_row_run}", str(CHANNEL_ROW_RUN))
        .replace("{pgrad_blocks}", str(PGRAD_BLOCKS))
        .replace("{min_chunk}", str(MIN_CHUNK))
        .replace("{rstages}", str(RSTAGES))
        .replace("{rop_max}", str(ROP_MAX))
        .replace("{rop_sum}", str(ROP_SUM))
        .replace("{rop_log}", str(ROP_LOG))
    ]
    for sfx in CTYPES:
        out.append(_bounds_struct(names, sfx))
        for h in helpers:
            out.append(function_to_c(h, sfx, names))
    for sfx in CTYPES:
        for entry in table:
            for kind in KINDS:
                if kernel_formula(entry, kind) is not None:
                    out.append(_kernel(entry, kind, sfx, names))
            if entry.param_grad is not None:
                out.append(_pgrad_bwd(entry, sfx, names, vector=False))
                out.append(_pgrad_bwd(entry, sfx, names, vector=True))
            if entry.rowwise:
                out.append(_rowwise(entry, False, sfx, names))
                out.append(_rowwise(entry, True, sfx, names))
            if _has_bias_kernel(entry):
                out.append(_bias_kernel(entry, sfx, names))
            if _has_row_kernel(entry, "bwd"):
                out.append(_bias_kernel(entry, sfx, names, summed=True))
            if _has_row_kernel(entry, "fwd"):
                out.append(_kernel(entry, "fwd", sfx, names, bias=True))
    for sfx in CTYPES:
        for kind in TABLED_KINDS:
            sig = ("unary" if kind in UNARY else "binary") + ("v" if kind.endswith("v") else "")
            ptrs = []
            for entry in table:
                has = kernel_formula(entry, kind) is not None
                ptrs.append(f"fa_{entry.name}_{kind}_{sfx}" if has else "NULL")
            out.append(_pointer_table(f"fa_{sig}_{sfx}", f"FA_{kind.upper()}_{sfx.upper()}", ptrs))
    for sfx in CTYPES:
        for kind, sig in (("rfwd", "rowf"), ("rbwd", "rowb")):
            ptrs = [f"fa_{e.name}_{kind}_{sfx}" if e.rowwise else "NULL" for e in table]
            out.append(_pointer_table(f"fa_{sig}_{sfx}", f"FA_{kind.upper()}_{sfx.upper()}", ptrs))
    out += _half_kernels(table, names)
    out += _half_row_kernels(table, names)
    out += _half_channel_kernels(table, names)
    out += _row_stage_tables(table)
    for sfx in CTYPES:
        for v in ("", "v"):
            ptrs = [
                f"fa_{e.name}_bwdpg{v}_{sfx}" if e.param_grad is not None else "NULL" for e in table
            ]
            out.append(
                _pointer_table(f"fa_bwdpg{v}_{sfx}", f"FA_BWDPG{v.upper()}_{sfx.upper()}", ptrs)
            )
    for sfx in CTYPES:
        for kind, has in (
            ("fwdb", lambda e: _has_row_kernel(e, "fwd")),
            ("bwdb", _has_bias_kernel),
            ("bwds", lambda e: _has_row_kernel(e, "bwd")),
        ):
            ptrs = [f"fa_{e.name}_{kind}_{sfx}" if has(e) else "NULL" for e in table]
            out.append(_pointer_table(f"fa_{kind}_{sfx}", f"FA_{kind.upper()}_{sfx.upper()}", ptrs))
    flags = ", ".join(str(int(nt_stores(e, "fwd"))) for e in table)
    out.append(
        "/* Whether the forward stores large outputs non-temporally (memory-bound): for the\n"
        " * bias epilogue's forward (_epilogue.pxi). */\n"
        f"static const unsigned char FA_NT_FWD[{len(table)}] = {{{flags}}};"
    )
    out.append(f"#define FA_N_KERNELS {len(table)}\n#endif")
    return declare_bounds("\n\n".join(out)) + "\n"


def _half_row_kernels(table: tuple[Activation, ...], names: list[str]) -> list[str]:
    """The backward row kernels of :data:`ROW_STORES` and their pointer tables
    (``FA_RBWD_BF16``...: NULL where the entry has none, :func:`has_half_row_bwd`)."""
    out = []
    for store in ROW_STORES:
        block = [_rowwise(e, True, "f32", names, store) for e in table if has_half_row_bwd(e)]
        ptrs = [f"fa_{e.name}_rbwd_{store}" if has_half_row_bwd(e) else "NULL" for e in table]
        block.append(_pointer_table("fa_rowb_h16", f"FA_RBWD_{store.upper()}", ptrs))
        if store in INSTRUCTION_STORES:
            block = ["#if FA_HAVE_CLONES", *block, "#endif"]
        out += block
    return out


def _half_kernels(table: tuple[Activation, ...], names: list[str]) -> list[str]:
    """The 16-bit kernels of :data:`HALF_STORES` and :data:`INSTRUCTION_STORES` (those
    where the kernels have clones) and their pointer tables (``FA_FWD_BF16``...:
    NULL where the entry has no such kernel)."""
    out = []
    for stores in (HALF_STORES, INSTRUCTION_STORES):
        if stores is INSTRUCTION_STORES:
            out.append("#if FA_HAVE_CLONES")
        for store, (attr, conv) in stores.items():
            for entry in table:
                for kind in HALF_KINDS:
                    if kernel_formula(entry, kind) is not None:
                        out.append(_half_kernel(entry, kind, store, attr, conv))
            for kind in HALF_KINDS:
                sig = "unary" if kind in UNARY else "binary"
                ptrs = [
                    f"fa_{e.name}_{kind}_{store}" if kernel_formula(e, kind) is not None else "NULL"
                    for e in table
                ]
                out.append(
                    _pointer_table(f"fa_{sig}_h16", f"FA_{kind.upper()}_{store.upper()}", ptrs)
                )
    out.append("#endif")
    return out


def _half_kernel(entry: Activation, kind: str, store: str, attr: str, conv: str) -> str:
    """The 16-bit kernel of ``kind`` in format ``store``: the float32 range function
    on chunks converted by ``conv``'s functions (fa_convert.h's FA_H16_UNARY)."""
    nt = int(nt_stores(entry, kind))
    if kind not in ORDERED_KINDS:
        conv = REORDERING_STORES.get(store, conv)
    args = f"{conv}_widen, {conv}_narrow, fa_{entry.name}_{kind}_f32_range, {nt}"
    run = "_RUN" if kind in ORDERED_KINDS and store in RUN_STORES else ""
    if kind in UNARY:
        sig, body = "const uint16_t *xp, uint16_t *out", f"FA_H16_UNARY{run}({args})"
    else:
        sig = "const uint16_t *gp, const uint16_t *sp, uint16_t *out"
        body = f"FA_H16_BINARY{run}({args})"
    return (
        f"{attr}static void fa_{entry.name}_{kind}_{store}({sig}, Py_ssize_t n, const double *p, "
        f"uint64_t seed, int64_t off) {{\n    {body}\n}}"
    )


def _row_stage_tables(table: tuple[Activation, ...]) -> list[str]:
    """The long-row driver's tables, flat, indexed ``(kid * 2 + backward) * FA_RSTAGES + stage``
    (FA_ROP: the op codes, 0 past the last stage; FA_RSEG: the stages' functions) and
    ``kid * 2 + backward`` (FA_RMAP: the maps)."""
    ops, segs, maps = [], {s: [] for s in CTYPES}, {s: [] for s in CTYPES}
    for entry in table:
        for backward in (False, True):
            codes = _row_ops(entry, backward) if entry.rowwise else []
            ops += codes + [0] * (RSTAGES - len(codes))
            for sfx in CTYPES:
                name = f"fa_{entry.name}_r{'bwd' if backward else 'fwd'}_{sfx}"
                for i in range(RSTAGES):
                    has = i < len(codes) and codes[i] < ROP_LOG
                    segs[sfx].append(f"{name}_s{i}" if has else "NULL")
                maps[sfx].append(f"{name}_map" if entry.rowwise else "NULL")
    n = len(table) * 2
    out = [f"static const int FA_ROP[{n * RSTAGES}] = {{{', '.join(map(str, ops))}}};"]
    for sfx in CTYPES:
        out.append(
            f"static fa_rseg_{sfx} FA_RSEG_{sfx.upper()}[{n * RSTAGES}] = {{\n    "
            + ",\n    ".join(segs[sfx])
            + "\n};"
        )
        out.append(
            f"static fa_rmap_{sfx} FA_RMAP_{sfx.upper()}[{n}] = {{\n    "
            + ",\n    ".join(maps[sfx])
            + "\n};"
        )
    return out


def write(path: Path, table: tuple[Activation, ...], helpers: tuple) -> bool:
    """Write the header at ``path`` if its content changed; True when written."""
    text = generate(table, helpers)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
