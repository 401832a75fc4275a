"""Translate the formula dialect into C and into Numba-ready Python.

A formula is a Python expression (see :mod:`fastact.table`); a math helper is
a Python function whose body is a sequence of ``name = expression``
assignments and a final ``return`` (see :mod:`fastact._math.functions`).
Both are parsed with :mod:`ast` and re-emitted:

* as C for one floating type (``float`` or ``double``): numeric literals get
  the type's suffix, so float32 math stays float32; helpers become
  always-inlined functions suffixed ``_f32``/``_f64``; ``a if c else b``
  becomes ``fa_sel_f32(c, a, b)`` (both values computed: no branch) and
  ``and``/``or`` become ``&``/``|`` on comparison results;
* as Python for Numba: every numeric literal is wrapped as ``T(literal)`` with
  ``T`` bound to ``np.float32``/``np.float64``, because a bare Python float
  would promote float32 arithmetic to float64.

``poly(t, c0, ..., cn)`` expands to Horner's scheme with fused multiply-adds
(``fma``) at translation time;
``by_type(a, b)`` is ``a`` in float32 code and ``b`` in float64 code (so a
helper can use a shorter polynomial in float32).
Only the constructs listed here are accepted; anything else is a
``SyntaxError`` naming the construct, raised when the code is generated.

Both generators also read here which kernels a table entry has and the
formula of each (:func:`kernel_formula`).
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..table import Activation

CTYPES = {"f32": "float", "f64": "double"}

# Intrinsics: name -> (C for float, C for double, Numba/Python).  The C names
# are the C99 <math.h> functions or fastact's own from fa_intrinsics.h.  A math
# helper of the same name (fastact._math.functions) takes precedence in every
# formula: ``exp``, ``expm1``, ``log1p``, ``tanh`` and ``erfc`` are fastact's
# branch-free vectorizable versions there; the ``libm_*`` names keep the C
# library's reachable.  ``pow2i``, ``exponent`` and ``mantissa`` work on the
# bits (fa_intrinsics.h in C, LLVM bitcasts in the Numba backend):
#
# * pow2i(n): 2**n for integer-valued n in the normal exponent range
#   ([-126, 127] for float32, [-1022, 1023] for float64), branch-free;
# * exponent(x): floor(log2(|x|)) as a float, for normal nonzero finite x;
# * mantissa(x): |x| / 2**exponent(x), in [1, 2), for normal nonzero finite x;
# * ldexpk(v, k): v * 2**n for k = n + 1.5 * 2**23 (2**52 in float64), the
#   rounded sum from which a range reduction takes n (``gauss_k``): n is added to
#   v's exponent field (two integer operations; no float-to-int conversion, no
#   product); for results in the normal range only;
# * fma(a, b, c): a * b + c rounded once (the FMA instruction where the CPU has
#   one, which every x86-64-v3/v4 and ARMv8 CPU does);
#
# ``uniform_slope(seed, i, lo, hi)`` is rrelu's random slope of element ``i``
# (the flat C-order index) for ``seed``, in [lo, hi]: a counter-based generator
# (fa_intrinsics.h).  Its first two arguments must be the names ``seed`` and
# ``i``: the kernels do not evaluate it from them but from a state they step
# per element (``fa_w``, and ``fa_kh`` in float32; ``_fa_w``/``_fa_kh`` in
# Python), so it reads neither name (:func:`free_names`) and a formula that
# calls it has a loop of its own (:func:`uses_uniform_slope`).
INTRINSICS: dict[str, tuple[str, str, str]] = {
    "exp": ("expf", "exp", "math.exp"),
    "expm1": ("expm1f", "expm1", "math.expm1"),
    "log": ("logf", "log", "math.log"),
    "log1p": ("log1pf", "log1p", "math.log1p"),
    "tanh": ("tanhf", "tanh", "math.tanh"),
    "erf": ("erff", "erf", "math.erf"),
    "erfc": ("erfcf", "erfc", "math.erfc"),
    "sqrt": ("sqrtf", "sqrt", "math.sqrt"),
    "fabs": ("fabsf", "fabs", "abs"),
    "floor": ("floorf", "floor", "math.floor"),
    "rint": ("rintf", "rint", "np.rint"),
    "copysign": ("copysignf", "copysign", "math.copysign"),
    "uniform_slope": ("fa_slope_f32", "fa_slope_f64", "uniform_slope"),
    "pow2i": ("fa_pow2i_f32", "fa_pow2i_f64", "pow2i"),
    "exponent": ("fa_exponent_f32", "fa_exponent_f64", "exponent"),
    "mantissa": ("fa_mantissa_f32", "fa_mantissa_f64", "mantissa"),
    "ldexpk": ("fa_ldexpk_f32", "fa_ldexpk_f64", "ldexpk"),
    "fma": ("fa_fma_f32", "fa_fma_f64", "fma"),
    "libm_exp": ("expf", "exp", "math.exp"),
    "libm_expm1": ("expm1f", "expm1", "math.expm1"),
    "libm_log1p": ("log1pf", "log1p", "math.log1p"),
    "libm_tanh": ("tanhf", "tanh", "math.tanh"),
    "libm_erfc": ("erfcf", "erfc", "math.erfc"),
}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMPOPS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}


def _reject(node: ast.AST, where: str) -> SyntaxError:
    return SyntaxError(f"{where}: {type(node).__name__} is not part of the formula dialect")


class _Emitter:
    """Shared walk over an expression tree; subclasses choose the target."""

    def __init__(self, where: str, helpers: Iterable[str]):
        self.where = where
        self.helpers = set(helpers)

    def expr(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise _reject(node, self.where)
            return self.literal(node.value)
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise _reject(node.op, self.where)
            return f"({self.expr(node.left)} {op} {self.expr(node.right)})"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return f"(-{self.expr(node.operand)})"
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
            if isinstance(node.op, ast.Not):
                return self.negate(self.expr(node.operand))
            raise _reject(node.op, self.where)
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise SyntaxError(f"{self.where}: chained comparisons are not supported")
            op = _CMPOPS.get(type(node.ops[0]))
            if op is None:
                raise _reject(node.ops[0], self.where)
            return f"({self.expr(node.left)} {op} {self.expr(node.comparators[0])})"
        if isinstance(node, ast.BoolOp):
            parts = [self.expr(v) for v in node.values]
            return self.boolop(isinstance(node.op, ast.And), parts)
        if isinstance(node, ast.IfExp):
            return self.select(self.expr(node.test), self.expr(node.body), self.expr(node.orelse))
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.keywords:
                raise SyntaxError(f"{self.where}: only plain calls f(a, b) are supported")
            args = [self.expr(a) for a in node.args]
            name = node.func.id
            if name == "isnan":
                (a,) = args
                return f"({a} != {a})"
            if name == "by_type":
                # by_type(a, b): a in float32 code, b in float64 code.
                if len(args) != 2:
                    raise SyntaxError(f"{self.where}: by_type takes a float32 and a float64 value")
                return self.by_type(args[0], args[1])
            if name == "uniform_slope":
                if len(args) != 4 or [ast.unparse(a) for a in node.args[:2]] != ["seed", "i"]:
                    raise SyntaxError(f"{self.where}: uniform_slope takes (seed, i, lower, upper)")
                return self.uniform_slope(args[2], args[3])
            if name == "poly":
                # poly(t, c0, c1, ..., cn) = c0 + t * (c1 + t * (... + t * cn)), Horner
                # with one fused multiply-add per coefficient.
                if len(args) < 2:
                    raise SyntaxError(f"{self.where}: poly needs a variable and coefficients")
                t, coeffs = args[0], args[1:]
                text = coeffs[-1]
                for c in reversed(coeffs[:-1]):
                    text = self.call("fma", [t, text, c], node)
                return text
            return self.call(name, args, node)
        raise _reject(node, self.where)


class _CEmitter(_Emitter):
    def __init__(self, where: str, helpers: Iterable[str], sfx: str):
        super().__init__(where, helpers)
        self.sfx = sfx
        self.bounded = getattr(helpers, "bounded", frozenset())

    def literal(self, value: float) -> str:
        text = repr(float(value))
        if "inf" in text or "nan" in text:
            raise SyntaxError(f"{self.where}: infinite or NaN literals are not allowed")
        return text + ("f" if self.sfx == "f32" else "")

    def negate(self, a: str) -> str:
        return f"(!{a})"

    def boolop(self, is_and: bool, parts: list[str]) -> str:
        # Bitwise on the 0/1 results of comparisons: no short-circuit branches.
        return "(" + (" & " if is_and else " | ").join(parts) + ")"

    def select(self, test: str, a: str, b: str) -> str:
        # A function call evaluates both values first, so the select is a blend of
        # two computed values, never a branch around a computation: gcc if-converts
        # and vectorizes a loop only when no arithmetic is conditional (with
        # -ftrapping-math, its default, it may not speculate arithmetic itself).
        return f"fa_sel_{self.sfx}({test}, {a}, {b})"

    def by_type(self, a: str, b: str) -> str:
        return a if self.sfx == "f32" else b

    def uniform_slope(self, lo: str, hi: str) -> str:
        if self.sfx == "f32":
            return f"fa_slope_f32(fa_w, fa_kh, {lo}, {hi})"
        return f"fa_slope_f64(fa_w, {lo}, {hi})"

    def call(self, name: str, args: list[str], node: ast.AST) -> str:
        # Helpers first: a helper named like an intrinsic replaces it.
        if name in self.helpers:
            cname = f"fa_{name}_{self.sfx}"
            if name in self.bounded:
                args = [*args, bounds_pointer(self.sfx)]
        elif name in INTRINSICS:
            cname = INTRINSICS[name][0 if self.sfx == "f32" else 1]
        else:
            raise SyntaxError(f"{self.where}: unknown function {name!r}")
        return f"{cname}({', '.join(args)})"


class _PyEmitter(_Emitter):
    def literal(self, value: float) -> str:
        return f"T({float(value)!r})"

    def negate(self, a: str) -> str:
        return f"(not {a})"

    def boolop(self, is_and: bool, parts: list[str]) -> str:
        return "(" + (" and " if is_and else " or ").join(parts) + ")"

    def select(self, test: str, a: str, b: str) -> str:
        return f"({a} if {test} else {b})"

    def by_type(self, a: str, b: str) -> str:
        # T is np.float32 or np.float64 in the generated module; the test is a
        # constant (2**24 + 1 rounds to 2**24 in float32 only), which LLVM folds,
        # so only the chosen branch is left in the compiled code.
        return f"({a} if T(16777217.0) == T(16777216.0) else {b})"

    def uniform_slope(self, lo: str, hi: str) -> str:
        return f"uniform_slope(_fa_w, _fa_kh, {lo}, {hi})"

    def call(self, name: str, args: list[str], node: ast.AST) -> str:
        # Helpers first: a helper named like an intrinsic replaces it.
        if name in self.helpers:
            return f"{name}({', '.join(args)})"
        if name in INTRINSICS:
            fname = INTRINSICS[name][2]
            if name in ("floor", "rint"):
                return f"T({fname}({', '.join(args)}))"
            return f"{fname}({', '.join(args)})"
        raise SyntaxError(f"{self.where}: unknown function {name!r}")


def _constant(node: ast.AST) -> bool:
    """Whether ``node`` reads no variable: literals, and calls (``by_type``, ``exp_hi()``) of them."""
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return not any(isinstance(n, ast.Name) and id(n) not in called for n in ast.walk(node))


def hide_bounds(
    tree: ast.AST,
    hide: Callable[[ast.expr], ast.expr],
    calls: Mapping[str, Collection[int]] | None = None,
    constant: Callable[[ast.AST], bool] = _constant,
) -> None:
    """Replace, in place, each constant bound of a min or a max by ``hide(bound)``.

    A select ``c if e < c else e`` (any comparison; ``e`` on either side, ``c`` in
    either branch) with ``c`` constant (``constant``, :func:`_constant` by default)
    is a minimum or a maximum, and so is ``clamp(e, lo, hi)``
    (fastact/_math/functions.py) in each of its constant bounds, and a constant
    argument of a helper at a position ``calls`` names (a parameter the helper
    uses as such a bound: :class:`HelperNames`).  gcc 12 compiles such a select to one ``vminps``/``vmaxps``
    where ``c`` is a variable, but to a compare and a blend (which load ``e`` again
    where it is a load) where ``c`` is a literal: relu6's forward in place at 10^6
    floats ran at 1.5x the streaming limit against hardtanh's 1.07x, logsigmoid's
    backward (its helper clamps to [-20, 0]) 20% slower.  ``hide`` returns the
    same value hidden from the optimizer: a kernel's local set once through
    ``fa_opaque`` (:func:`fastact._codegen.c_kernels._kernel`), or a member of
    the helpers' bounds (:class:`HelperNames`).  Same values, same bits.
    """
    calls = {**(calls or {}), "clamp": (1, 2)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in calls:
            at = calls[node.func.id]
            node.args = [hide(a) if j in at and constant(a) else a for j, a in enumerate(node.args)]
            continue
        if not (isinstance(node, ast.IfExp) and isinstance(node.test, ast.Compare)):
            continue
        test = node.test
        if len(test.ops) != 1:
            continue
        sides = [test.left, test.comparators[0]]
        consts = [x for x in sides if constant(x)]
        if len(consts) != 1:
            continue
        c = consts[0]
        e = sides[1] if sides[0] is c else sides[0]
        if _constant(e) or {ast.dump(node.body), ast.dump(node.orelse)} != {
            ast.dump(c),
            ast.dump(e),
        }:
            continue
        for v in ("body", "orelse"):
            if ast.dump(getattr(node, v)) == ast.dump(c):
                setattr(node, v, hide(c))
        if sides[0] is c:
            test.left = hide(c)
        else:
            test.comparators = [hide(c)]


def _parse_expr(src: str, where: str) -> ast.AST:
    try:
        return ast.parse(src, mode="eval").body
    except SyntaxError as exc:  # pragma: no cover - message re-raised with context
        raise SyntaxError(f"{where}: {exc.msg} in {src!r}") from None


def expr_to_c(src: str, sfx: str, helpers: Iterable[str] = (), where: str = "formula") -> str:
    """C text of the dialect expression ``src`` for float (f32) or double (f64)."""
    return _CEmitter(where, helpers, sfx).expr(_parse_expr(src, where))


def expr_to_python(src: str, helpers: Iterable[str] = (), where: str = "formula") -> str:
    """Python text of ``src`` with literals typed as ``T(...)`` (for Numba)."""
    return _PyEmitter(where, helpers).expr(_parse_expr(src, where))


def _rng_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "uniform_slope"
    ]


def uses_uniform_slope(src: str) -> bool:
    """Whether ``src`` calls ``uniform_slope`` (its kernels then step the generator's state)."""
    return bool(_rng_calls(_parse_expr(src, "formula")))


def called_names(src: str) -> set[str]:
    """The names of the functions an expression (or a block of Python code) calls."""
    tree = ast.parse(src)
    return {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def free_names(src: str) -> set[str]:
    """Variable names an expression reads (calls' function names excluded).

    ``uniform_slope``'s ``seed`` and ``i`` are not read: the kernels step the
    generator's state instead.
    """
    tree = _parse_expr(src, "formula")
    called = called_names(src)
    skip = {id(a) for c in _rng_calls(tree) for a in c.args[:2]}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in skip}
    return names - called


def _function_parts(fn: Callable) -> tuple[str, list[str], list[tuple[str, ast.AST]], ast.AST]:
    tree = ast.parse(inspect.getsource(fn)).body[0]
    if not isinstance(tree, ast.FunctionDef):
        raise SyntaxError(f"{fn.__name__}: not a function definition")
    where = f"helper {tree.name}"
    args = [a.arg for a in tree.args.args]
    body = [
        s for s in tree.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    assigns: list[tuple[str, ast.AST]] = []
    for stmt in body[:-1]:
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            raise _reject(stmt, where)
        assigns.append((stmt.targets[0].id, stmt.value))
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        raise SyntaxError(f"{where}: must end with a return statement")
    return tree.name, args, assigns, body[-1].value


def bounds_pointer(sfx: str) -> str:
    """The C name of the pointer to the helpers' bounds in code of type ``sfx``."""
    return f"fa_hb{sfx[1:]}"


def bound_key(c: ast.expr) -> str:
    """A constant bound as text, a number as a float (``0`` and ``0.0`` alike)."""
    if isinstance(c, ast.Constant):
        return repr(float(c.value))
    return ast.unparse(c)


class HelperNames(list):
    """The math helpers' names, with their constant bounds of a min or a max.

    A bound (:func:`hide_bounds`) inlined into a kernel's loop as a literal costs a
    compare and a blend; hidden from the optimizer in the loop (an asm barrier, a
    call), it stops the vectorizer or costs a call where gcc does not hoist it (in
    the 16-bit kernels' chunk loops).  So each distinct bound is a member ``bN``
    of a struct (``fa_hb_f32``, ``fa_hb_f64``) that a kernel function sets once
    at its top through ``fa_opaque`` (``FA_HB_F32``: ``c_kernels.declare_bounds``) and
    passes by pointer (:func:`bounds_pointer`) to each helper that reads a bound,
    itself or through a helper it calls (``bounded``).
    """

    def __init__(self, helpers: Iterable[Callable]):
        helpers = list(helpers)
        super().__init__(h.__name__ for h in helpers)
        self.bounds: list[str] = []
        calls: dict[str, set[str]] = {}
        own: set[str] = set()

        def record(c: ast.expr) -> ast.expr:
            key = bound_key(c)
            if key not in self.bounds:
                self.bounds.append(key)
            own.add(name)
            return c

        parts = {}
        for h in helpers:
            name, args, assigns, ret = _function_parts(h)
            parts[name] = (args, [ret, *(value for _, value in assigns)])
        # the parameters each helper uses as a bound, itself or through a helper it
        # passes them to (exp16_neg(x, lo) clamps x to lo; silu passes it silu_lo())
        self.bound_args: dict[str, set[int]] = {}
        while True:
            grew = False
            for name, (args, nodes) in parts.items():
                for j, a in enumerate(args):
                    if j in self.bound_args.get(name, ()):
                        continue
                    found: list[ast.expr] = []
                    for node in nodes:
                        hide_bounds(
                            copy.deepcopy(node),
                            lambda c, found=found: found.append(c) or c,
                            self.bound_args,
                            lambda n, a=a: isinstance(n, ast.Name) and n.id == a,
                        )
                    if found:
                        self.bound_args.setdefault(name, set()).add(j)
                        grew = True
            if not grew:
                break
        for name, (_, nodes) in parts.items():
            calls[name] = set().union(*(called_names(ast.unparse(n)) for n in nodes))
            for node in nodes:
                hide_bounds(node, record, self.bound_args)
        bounded = set(own)
        while True:
            more = {n for n, c in calls.items() if c & bounded} - bounded
            if not more:
                break
            bounded |= more
        self.bounded = frozenset(bounded)

    def member(self, c: ast.expr, sfx: str) -> ast.Name:
        """The struct member that holds the bound ``c``."""
        return ast.Name(f"{bounds_pointer(sfx)}->b{self.bounds.index(bound_key(c))}", ast.Load())


def function_to_c(fn: Callable, sfx: str, helpers: Iterable[str]) -> str:
    """An always-inlined C function (``FA_INLINE``) for the dialect helper ``fn``; one
    that reads a bound (:class:`HelperNames`) takes a pointer to them last."""
    name, args, assigns, ret = _function_parts(fn)
    ctype = CTYPES[sfx]
    params = ", ".join(f"{ctype} {a}" for a in args)
    if isinstance(helpers, HelperNames):
        for node in [ret, *(value for _, value in assigns)]:
            hide_bounds(node, lambda c: helpers.member(c, sfx), helpers.bound_args)
        if name in helpers.bounded:
            params += f"{', ' if params else ''}const fa_hb_{sfx} *{bounds_pointer(sfx)}"
    em = _CEmitter(f"helper {name}", helpers, sfx)
    # FA_INLINE (fa_intrinsics.h): always inlined, so the loops that call a helper
    # see straight-line code they can vectorize.
    body = [f"    return {em.expr(ret)};"]
    # from the return up: a local that ``by_type`` left unread for this type is dropped
    for target, value in reversed(assigns):
        if re.search(rf"\b{target}\b", "\n".join(body)):
            body.insert(0, f"    const {ctype} {target} = {em.expr(value)};")
    return "\n".join([f"FA_INLINE {ctype} fa_{name}_{sfx}({params}) {{", *body, "}"])


def function_to_python(fn: Callable, helpers: Iterable[str]) -> str:
    """Python source of the helper ``fn`` with typed literals (for Numba)."""
    name, args, assigns, ret = _function_parts(fn)
    em = _PyEmitter(f"helper {name}", helpers)
    lines = [f"def {name}({', '.join(args)}):"]
    for target, value in assigns:
        lines.append(f"    {target} = {em.expr(value)}")
    lines.append(f"    return {em.expr(ret)}")
    return "\n".join(lines)


# --- kernels of a table entry ----------------------------------------------------
#
# The kinds of kernel a table entry may have, each computing one formula of
# the entry: ``fwd``/``bwd`` (the forward and the backward), ``tfwd``/``tbwd``
# (their training-mode forms), ``fwdv``/``bwdv`` (the "vector" forms of a
# per-channel entry, which read the channel parameter per element), ``pgrad``/
# ``pgradv`` (the gradient of the channel parameter) and ``rfwd``/``rbwd`` (a
# rowwise entry's row kernels).  A unary kernel reads ``x``; the others read
# ``g`` and the saved array (:func:`saved_name`).

# A row sum is taken in segments of this many elements (a multiple of 8 and of
# the C kernels' block): each segment's lanes, then the segments' totals in
# order.  The order depends on the row only, so a long row may spread over
# threads segment by segment; a row of at most this length sums as one segment.
ROW_SPLIT = 65536
# A backward's row sums (softmax's of g * y) add into 32 lanes, four chains of 8
# (fewer chains left the pass bounded by the latency of the double additions);
# each 8 combine pairwise, then the four totals are added in order.  Forward
# sums keep 8 lanes.
BACKWARD_LANES = 32
# The drivers of both backends (fastact/_backends/cython/_channel.pxi,
# fastact/_backends/numba/drivers.py) cut a per-channel row into segments of at
# most CHANNEL_SEGMENT elements (one long row, one channel, still spreads over
# threads) and sum a parameter gradient in at most PGRAD_BLOCKS partial sums: the
# order then depends on the shape only, so any thread count gives the same bits.
# No thread takes a chunk of fewer than MIN_CHUNK elements (but a call's only one;
# a multiple of 16, so chunk boundaries fall on 64-byte lines for both float types).
CHANNEL_SEGMENT = 16384
PGRAD_BLOCKS = 64
MIN_CHUNK = 4096
# (N, C) input, a weight per element of a row: runs of CHANNEL_ROW_RUN // C rows (C below
# it) share a tiled weight, one kernel call per run; the tile's weights (doubles) and,
# backward, its partial sums stay in L1 up to about 1280 elements.  On the Zen 4 machine,
# float32 prelu on 10^6 elements, one call per tile: forward 110 us at 640-1280
# elements a tile, 148-190 us at 2000-4000 (92 us with one weight); backward with the
# weight gradient 282-307 us at 640-1280, 338-385 at 2000-4000.
CHANNEL_ROW_RUN = 1024
# A registered activation's Numba float32 kernel runs on 16-bit arrays through float32
# buffers of HALF_BLOCK elements (the table's entries have kernels for the formats:
# fastact/_codegen/numba_kernels.py); the bits do not depend on it.
HALF_BLOCK = 1024

UNARY = ("fwd", "tfwd", "fwdv")
BINARY = ("bwd", "tbwd", "bwdv")
# The kinds with kernels on 16-bit storage in both backends (plain and training mode):
# the float32 formula on each element widened exactly, rounded once as stored.
HALF_KINDS = ("fwd", "bwd", "tfwd", "tbwd")


def memory_bound(entry: Activation, kind: str) -> bool:
    """Whether the pass of kernel ``kind`` (UNARY: the forward) is memory-bound: the
    table's cost class ``cheap``.  Such kernels store large outputs non-temporally
    (C) and prefetch only in place (both backends)."""
    return entry.cost_of("forward" if kind in UNARY else "backward") == "cheap"


PGRAD = ("pgrad", "pgradv")
ROWWISE = ("rfwd", "rbwd")


def kernel_formula(entry: Activation, kind: str) -> str | None:
    """The dialect formula of kernel ``kind`` of ``entry``, or None if it has none."""
    if kind in ROWWISE:
        if not entry.rowwise:
            return None
        return entry.forward if kind == "rfwd" else entry.backward
    if entry.rowwise:
        return None
    if kind in ("fwd", "fwdv"):
        return entry.forward if (kind == "fwd" or entry.channel_param) else None
    if kind in ("bwd", "bwdv"):
        return entry.backward if (kind == "bwd" or entry.channel_param) else None
    if kind == "tfwd":
        return entry.train_forward
    if kind == "tbwd":
        return entry.train_backward
    if kind in PGRAD:
        return entry.param_grad if entry.channel_param else None
    raise ValueError(f"unknown kernel kind {kind!r}")


def saved_name(entry: Activation) -> str:
    """The dialect name of the array a backward kernel reads besides ``g``."""
    return "x" if entry.saves == "input" else "y"


def has_half_row_bwd(entry: Activation) -> bool:
    """Whether the entry's backward has row kernels on 16-bit storage in both backends
    (float32 inside, each element widened as loaded, rounded once as stored): a rowwise
    entry whose backward keeps no stage's values in the output (16 bits cannot hold
    them)."""
    if not entry.rowwise or any(op not in ("sum", "log") for _, op, _ in entry.row_backward):
        return False
    return cached_stage(entry.row_backward, entry.backward, {"g", "y"}) is None


def cached_stage(stages, final: str, loads: set[str]) -> tuple[str, str] | None:
    """(var, final'): the last reduction's per-element values kept in ``out``.

    When the map after the reductions contains the last reduction's (a sum's)
    expression (softmax: ``exp(x - m) / s`` and the sum of ``exp(x - m)``),
    the reduction pass stores each element's value in the output row and the
    map reads it back as ``{var}_elem`` instead of computing it again: the same
    bits, one transcendental less per element.  Only when the map then reads
    no input (the output may be the input itself).
    """
    reductions = [(var, op, expr) for var, op, expr in stages if op in ("max", "sum")]
    if not reductions or reductions[-1][1] != "sum":
        return None
    var, _, expr = reductions[-1]
    target = ast.dump(ast.parse(expr, mode="eval").body)
    found = False

    class Replace(ast.NodeTransformer):
        def visit(self, node):
            nonlocal found
            if isinstance(node, ast.expr) and ast.dump(node) == target:
                found = True
                return ast.Name(id=f"{var}_elem", ctx=ast.Load())
            return super().visit(node)

    tree = Replace().visit(ast.parse(final, mode="eval"))
    if not found:
        return None
    new = ast.unparse(tree)
    if free_names(new) & loads:
        return None
    return var, new
