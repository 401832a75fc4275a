"""Generate the C kernels of the Cython backend from the activation table.

``setup.py`` calls :func:`write` before building the extension; the output is
``fastact/_backends/cython/fa_kernels.h`` (not kept in git).  For every entry
and both float types it emits the inner loops (one contiguous chunk each,
called per thread by the Cython driver) and tables of function pointers
indexed by the entry's position in :data:`fastact.table.TABLE`.

Kernel signatures (T is float or double):

* unary   ``void k(const T *x, T *out, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
* binary  ``void k(const T *g, const T *s, T *out, Py_ssize_t n, const double *p, uint64_t seed, int64_t off)``
* pgrad   ``void k(const T *g, const T *s, Py_ssize_t n, const double *p, double *acc)``

``p`` holds the parameters in table order; ``off`` is the flat index of the
chunk's first element (rrelu's counter-based slopes).  Entries with a channel
parameter get a second "vector" form in which that parameter is read per
element from ``p[k]`` (prelu on ``(N, C)`` input).  Each loop is compiled for
several instruction sets and chosen at load time (``FA_CLONES``).
"""

from __future__ import annotations

from pathlib import Path

from ..table import Activation
from .dialect import CTYPES, expr_to_c, free_names, function_to_c

KINDS = ("fwd", "bwd", "tfwd", "tbwd", "fwdv", "bwdv")
UNARY = {"fwd", "tfwd", "fwdv"}


def _formula(entry: Activation, kind: str) -> str | None:
    if entry.rowwise:
        return None
    if kind in ("fwd", "fwdv"):
        return entry.forward if (kind == "fwd" or entry.channel_param) else None
    if kind in ("bwd", "bwdv"):
        return entry.backward if (kind == "bwd" or entry.channel_param) else None
    if kind == "tfwd":
        return entry.train_forward
    return entry.train_backward


def _param_lines(entry: Activation, ctype: str, vector: bool) -> list[str]:
    lines = []
    for j, prm in enumerate(entry.parameters):
        if vector and prm.name == entry.channel_param:
            continue
        lines.append(f"    const {ctype} {prm.name} = ({ctype})p[{j}];")
    return lines


def _kernel(entry: Activation, kind: str, sfx: str, helpers: list[str]) -> str:
    ctype = CTYPES[sfx]
    src = _formula(entry, kind)
    vector = kind.endswith("v")
    where = f"{entry.name}.{kind}"
    body = expr_to_c(src, sfx, helpers, where)
    saved = "x" if entry.saves == "input" else "y"
    name = f"fa_{entry.name}_{kind}_{sfx}"
    if kind in UNARY:
        sig = f"const {ctype} *xp, {ctype} *out"
        load = f"        const {ctype} x = xp[k];"
    else:
        sig = f"const {ctype} *gp, const {ctype} *sp, {ctype} *out"
        load = f"        const {ctype} g = gp[k];\n        const {ctype} {saved} = sp[k];"
    lines = [
        f"FA_CLONES static void {name}({sig}, Py_ssize_t n, const double *p, "
        "uint64_t seed, int64_t off) {",
        "    (void)seed; (void)off; (void)p;",
        *_param_lines(entry, ctype, vector),
        "    for (Py_ssize_t k = 0; k < n; k++) {",
        load,
    ]
    if vector:
        cp = entry.channel_param
        lines.append(f"        const {ctype} {cp} = ({ctype})p[k];")
    if "i" in free_names(src):
        lines.append("        const int64_t i = off + (int64_t)k;")
    lines += [f"        out[k] = {body};", "    }", "}"]
    return "\n".join(lines)


def _rowwise(entry: Activation, backward: bool, sfx: str, helpers: list[str]) -> str:
    """One kernel over ``rows`` contiguous rows of length ``n``: reductions, then the map."""
    ctype = CTYPES[sfx]
    stages = entry.row_backward if backward else entry.row_forward
    final = entry.backward if backward else entry.forward
    where = f"{entry.name}.{'backward' if backward else 'forward'}"
    name = f"fa_{entry.name}_r{'bwd' if backward else 'fwd'}_{sfx}"
    if backward:
        sig = f"const {ctype} *gp, const {ctype} *sp, {ctype} *out"
        offs = [f"const {ctype} *g_r = gp + r * n;", f"const {ctype} *s_r = sp + r * n;"]
        load = [f"const {ctype} g = g_r[k];", f"const {ctype} y = s_r[k];"]
    else:
        sig = f"const {ctype} *xp, {ctype} *out"
        offs = [f"const {ctype} *x_r = xp + r * n;"]
        load = [f"const {ctype} x = x_r[k];"]
    lines = [
        f"FA_CLONES static void {name}({sig}, Py_ssize_t rows, Py_ssize_t n, const double *p) {{",
        "    (void)p;",
        "    for (Py_ssize_t r = 0; r < rows; r++) {",
    ]
    lines += ["        " + o for o in offs]
    lines.append(f"        {ctype} *o_r = out + r * n;")
    declared = []
    for var, op, expr in stages:
        if op == "log":
            # the log of an earlier sum, taken in double before rounding
            lines.append(f"        const {ctype} {var}_acc_t = ({ctype})log({expr}_acc);")
            declared.append(var)
            continue
        body = expr_to_c(expr, sfx, helpers, f"{where}.{var}")
        if op == "max":
            # NaN-propagating maximum: once NaN, it stays NaN.
            lines.append(f"        {ctype} {var}_acc = -INFINITY;")
            update = f"{var}_acc = ({var}_acc != {var}_acc) ? {var}_acc : ((v > {var}_acc || v != v) ? v : {var}_acc);"
        elif op == "sum":
            # Sums accumulate in double, also for float32 rows.
            lines.append(f"        double {var}_acc = 0.0;")
            update = f"{var}_acc += (double)v;"
        else:
            raise SyntaxError(f"{where}: unknown reduction {op!r}")
        lines.append("        for (Py_ssize_t k = 0; k < n; k++) {")
        lines += ["            " + ld for ld in load]
        lines += [f"            const {ctype} {d} = {d}_acc_t;" for d in declared]
        lines.append(f"            const {ctype} v = {body};")
        lines.append(f"            {update}")
        lines.append("        }")
        lines.append(f"        const {ctype} {var}_acc_t = ({ctype}){var}_acc;")
        declared.append(var)
    body = expr_to_c(final, sfx, helpers, where)
    lines.append("        for (Py_ssize_t k = 0; k < n; k++) {")
    lines += ["            " + ld for ld in load]
    lines += [f"            const {ctype} {d} = {d}_acc_t;" for d in declared]
    lines.append(f"            o_r[k] = {body};")
    lines += ["        }", "    }", "}"]
    return "\n".join(lines)


def _pgrad(entry: Activation, sfx: str, helpers: list[str], vector: bool) -> str:
    """The parameter-gradient kernel: ``pgrad`` sums the call's terms, ``pgradv`` adds each.

    ``pgrad`` keeps eight double partial sums: element ``k`` of the call adds to
    ``part[k % 8]`` in increasing ``k``, and the total is
    ``((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))``.  The Numba backend
    sums in the same order (the bits of both agree), and the fixed-8 inner loop
    vectorizes without reassociating anything.
    """
    ctype = CTYPES[sfx]
    saved = "x" if entry.saves == "input" else "y"
    body = expr_to_c(entry.param_grad, sfx, helpers, f"{entry.name}.param_grad")
    name = f"fa_{entry.name}_pgrad{'v' if vector else ''}_{sfx}"
    lines = [
        f"FA_CLONES static void {name}(const {ctype} *gp, const {ctype} *sp, "
        "Py_ssize_t n, const double *p, double *acc) {",
        *_param_lines(entry, ctype, vector),
    ]
    if vector:
        cp = entry.channel_param
        lines += [
            "    for (Py_ssize_t k = 0; k < n; k++) {",
            f"        const {ctype} g = gp[k];",
            f"        const {ctype} {saved} = sp[k];",
            f"        const {ctype} {cp} = ({ctype})p[k];",
            f"        acc[k] += (double)({body});",
            "    }",
            "}",
        ]
        return "\n".join(lines)
    lines += [
        "    double part[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};",
        "    Py_ssize_t k = 0;",
        "    for (; k + 8 <= n; k += 8) {",
        "        for (int j = 0; j < 8; j++) {",
        f"            const {ctype} g = gp[k + j];",
        f"            const {ctype} {saved} = sp[k + j];",
        f"            part[j] += (double)({body});",
        "        }",
        "    }",
        "    for (int j = 0; k < n; k++, j++) {",
        f"        const {ctype} g = gp[k];",
        f"        const {ctype} {saved} = sp[k];",
        f"        part[j] += (double)({body});",
        "    }",
        "    acc[0] += ((part[0] + part[1]) + (part[2] + part[3]))"
        " + ((part[4] + part[5]) + (part[6] + part[7]));",
        "}",
    ]
    return "\n".join(lines)


PROLOGUE = """\
/* Generated by fastact/_codegen/c_kernels.py from fastact/table.py. Do not edit. */
#ifndef FA_KERNELS_H
#define FA_KERNELS_H
#include "fa_intrinsics.h"

typedef void (*fa_unary_f32)(const float *, float *, Py_ssize_t, const double *, uint64_t, int64_t);
typedef void (*fa_unary_f64)(const double *, double *, Py_ssize_t, const double *, uint64_t, int64_t);
typedef void (*fa_binary_f32)(const float *, const float *, float *, Py_ssize_t, const double *,
                              uint64_t, int64_t);
typedef void (*fa_binary_f64)(const double *, const double *, double *, Py_ssize_t,
                              const double *, uint64_t, int64_t);
typedef void (*fa_pgrad_f32)(const float *, const float *, Py_ssize_t, const double *, double *);
typedef void (*fa_pgrad_f64)(const double *, const double *, Py_ssize_t, const double *, double *);
typedef void (*fa_rowf_f32)(const float *, float *, Py_ssize_t, Py_ssize_t, const double *);
typedef void (*fa_rowf_f64)(const double *, double *, Py_ssize_t, Py_ssize_t, const double *);
typedef void (*fa_rowb_f32)(const float *, const float *, float *, Py_ssize_t, Py_ssize_t,
                            const double *);
typedef void (*fa_rowb_f64)(const double *, const double *, double *, Py_ssize_t, Py_ssize_t,
                            const double *);
"""


def generate(table: tuple[Activation, ...], helpers: tuple) -> str:
    """The whole header: helpers, kernels, and pointer tables."""
    names = [h.__name__ for h in helpers]
    out = [PROLOGUE]
    for sfx in CTYPES:
        for h in helpers:
            out.append(function_to_c(h, sfx, names))
    for sfx in CTYPES:
        for entry in table:
            for kind in KINDS:
                if _formula(entry, kind) is not None:
                    out.append(_kernel(entry, kind, sfx, names))
            if entry.param_grad is not None:
                out.append(_pgrad(entry, sfx, names, vector=False))
                out.append(_pgrad(entry, sfx, names, vector=True))
            if entry.rowwise:
                out.append(_rowwise(entry, False, sfx, names))
                out.append(_rowwise(entry, True, sfx, names))
    for sfx in CTYPES:
        for kind in KINDS + ("pgrad", "pgradv"):
            sig = "unary" if kind in UNARY else ("pgrad" if kind.startswith("pgrad") else "binary")
            ptrs = []
            for entry in table:
                has = (
                    entry.param_grad is not None
                    if kind.startswith("pgrad")
                    else _formula(entry, kind) is not None
                )
                ptrs.append(f"fa_{entry.name}_{kind}_{sfx}" if has else "NULL")
            out.append(
                f"static fa_{sig}_{sfx} FA_{kind.upper()}_{sfx.upper()}[{len(table)}] = {{\n    "
                + ",\n    ".join(ptrs)
                + "\n};"
            )
    for sfx in CTYPES:
        for kind, sig in (("rfwd", "rowf"), ("rbwd", "rowb")):
            ptrs = [f"fa_{e.name}_{kind}_{sfx}" if e.rowwise else "NULL" for e in table]
            out.append(
                f"static fa_{sig}_{sfx} FA_{kind.upper()}_{sfx.upper()}[{len(table)}] = {{\n    "
                + ",\n    ".join(ptrs)
                + "\n};"
            )
    out.append(f"#define FA_N_KERNELS {len(table)}\n#endif")
    return "\n\n".join(out) + "\n"


def write(path: Path, table: tuple[Activation, ...], helpers: tuple) -> bool:
    """Write the header at ``path`` if its content changed; True when written."""
    text = generate(table, helpers)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
