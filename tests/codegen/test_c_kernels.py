"""The C generator's rewrites keep every value: checked by evaluating the formulas."""

import math
import re

import pytest

from fastact import table
from fastact._codegen import c_kernels
from fastact._codegen.c_kernels import _opaque_bounds
from fastact._codegen.dialect import HelperNames, function_to_c
from fastact._math import functions

VALUES = (-math.inf, -7.0, -0.0, 0.0, 1e-45, 3.0, 6.0, 6.5, math.inf, math.nan)


def _evaluate(src: str, x: float, names: dict[str, float]) -> float:
    return eval(src, {"clamp": functions.clamp}, {"x": x, **names})


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (
        a == b and math.copysign(1, a) == math.copysign(1, b)
    )


@pytest.mark.parametrize(
    ("src", "bounds"),
    [
        ("0 if x < 0 else (6 if x > 6 else x)", ["6.0"]),
        ("6 if 6 < x else x", ["6.0"]),
        ("x if x <= 6 else 6", ["6.0"]),
        ("0 if x <= 0 else x", ["0.0"]),
        ("0 if x < 0 else x * 2", []),
        ("x if x > 0 else x * 0.5", []),
        ("1 if x < 3 else x", []),
    ],
)
def test_min_and_max_shaped_selects_read_their_bound_from_a_local(src, bounds):
    new, lines = _opaque_bounds(src, "double")
    declared = dict(re.findall(r"double (fa_b\d+) = fa_opaque_f64\(([^)]*)\);", "\n".join(lines)))
    assert sorted(declared.values()) == sorted(bounds)
    assert (new == src) == (not bounds)
    names = {k: float(v) for k, v in declared.items()}
    for x in VALUES:
        assert _same(_evaluate(new, x, names), _evaluate(src, x, {})), (src, x)


def test_a_float_kernel_declares_float_bounds():
    _, lines = _opaque_bounds("6 if x > 6 else x", "float")
    assert lines == ["    const float fa_b0 = fa_opaque_f32(6.0f);"]


def test_the_tables_rewritten_formulas_keep_their_values():
    for entry in table.TABLE:
        src = entry.forward
        new, lines = _opaque_bounds(src, "double")
        if not lines:
            continue
        names = {
            k: float(v)
            for k, v in re.findall(r"(fa_b\d+) = fa_opaque_f64\(([^)]*)\)", "\n".join(lines))
        }
        params = {p.name: p.default for p in entry.parameters}
        for x in VALUES:
            assert _same(_evaluate(new, x, {**params, **names}), _evaluate(src, x, params)), (
                entry.name
            )


def test_clamps_literal_bounds_are_read_from_locals():
    new, lines = _opaque_bounds("clamp((x + 3) * 0.5, 0, 1) + clamp(x, -lambd, 2)", "double")
    assert new == "clamp((x + 3) * 0.5, fa_b0, fa_b1) + clamp(x, -lambd, fa_b2)"
    assert [ln.split("(")[-1] for ln in lines] == ["0.0);", "1.0);", "2.0);"]


BOUNDS = (-7.0, -0.0, 0.0, 3.0, 6.0, math.inf)


@pytest.mark.parametrize(("lo", "hi"), [(a, b) for a in BOUNDS for b in BOUNDS if a <= b])
def test_clamp_is_the_select_of_its_docstring(lo, hi):
    for x in VALUES:
        want = lo if x < lo else (hi if x > hi else x)
        assert _same(functions.clamp(x, lo, hi), want), (x, lo, hi)


def test_math_helpers_read_their_literal_bounds_from_the_kernels_struct():
    names = HelperNames(functions.HELPERS)
    lo, hi = names.bounds.index("by_type(-20.0, -40.0)"), names.bounds.index("0.0")
    c = function_to_c(functions.one_minus_exp, "f32", names)
    assert f"fa_clamp_f32(x, fa_hb32->b{lo}, fa_hb32->b{hi})" in c
    assert "fa_one_minus_exp_f32(float x, const fa_hb_f32 *fa_hb32)" in c
    c = function_to_c(functions.exp, "f64", names)
    assert "fa_clamp_f64(x, fa_hb64->b" in c
    # a helper that calls one that reads a bound takes the pointer and passes it on
    assert "sigmoid" in names.bounded and "clamp" not in names.bounded
    assert "fa_exp_neg_f32((-fabsf(x)), fa_hb32)" in function_to_c(functions.sigmoid, "f32", names)


def test_each_kernel_function_declares_the_bounds_it_passes():
    text = c_kernels.generate(table.TABLE, functions.HELPERS)
    assert "fa_bound" not in text
    functions_ = re.findall(r"^(\S[^\n]*\{)\n(.*?)^\}$", text, re.S | re.M)
    passing = [(head, body) for head, body in functions_ if "fa_hb32)" in body]
    assert passing
    for head, body in passing:
        assert "fa_hb32" in head or body.startswith("    FA_HB_F32;"), head
    lo = HelperNames(functions.HELPERS).bounds.index("by_type(-20.0, -40.0)")
    values = re.search(r"fa_hb_f32 fa_hb32_v = \{(.*)\};", text).group(1).split(", fa_opaque")
    assert values[lo].endswith("_f32((-20.0f))")


def test_bounds_are_declared_in_functions_not_in_tables():
    text = "\n".join(
        [
            "static fa_unary_f32 FA_X[2] = {",
            "    fa_a_f32,",
            "    NULL",
            "};",
            "FA_INLINE void fa_k_f32(const float *x, float *out) {",
            "    out[0] = fa_exp_f32(x[0], fa_hb32);",
            "}",
            "FA_INLINE float fa_exp_f32(float x, const fa_hb_f32 *fa_hb32) {",
            "    return fa_hb32->b0;",
            "}",
        ]
    )
    lines = c_kernels.declare_bounds(text).split("\n")
    assert lines.count("    FA_HB_F32;") == 1
    assert lines[lines.index("    FA_HB_F32;") - 1].startswith("FA_INLINE void fa_k_f32")


def test_a_constant_passed_to_a_helpers_bound_parameter_is_a_bound():
    names = HelperNames(functions.HELPERS)
    # exp16_neg(x, lo) takes the larger of x and lo; silu passes it silu_lo()
    assert 1 in names.bound_args["exp16_neg"] and 1 in names.bound_args["sigmoid16"]
    lo = names.bounds.index("silu_lo()")
    assert f"fa_exp16_neg_f32((-fabsf(x)), fa_hb32->b{lo})" in function_to_c(
        functions.silu, "f32", names
    )
    # a parameter that is a min or max only against a constant is not a bound
    assert "softplus" not in names.bound_args


def test_the_reordering_conversions_order_is_stated_once():
    """pair_position, its C form and pair_lane describe one permutation of a block, the
    one fa_convert.h's even/odd conversions make (the row sums read their lanes back
    in element order through it)."""
    block = c_kernels.PAIR_BLOCK
    cond, then, other = re.fullmatch(r"\((.+) \? (.+) : (.+)\)", c_kernels.PAIR_POSITION_C).groups()
    c_expr = f"({then}) if ({cond}) else ({other})"  # C's ternary, in Python
    positions = [c_kernels.pair_position(j) for j in range(block)]
    assert sorted(positions) == list(range(block))
    assert positions[:3] == [0, 2, 4] and positions[block // 2] == 1
    assert [eval(c_expr, {"j": j}) for j in range(block)] == positions  # noqa: S307
    assert [c_kernels.pair_lane(m) for m in positions] == list(range(block))


def test_the_16_bit_row_sums_take_whole_chunks_apart_from_the_short_one():
    """The 16-bit row kernels' sums: a loop of whole chunks without a test for the short
    one inside (the lanes stay in registers), the short chunk after it loaded under a
    mask (widen_n), and the reordering conversions' lanes read back in element order."""
    text = c_kernels.generate(table.TABLE, functions.HELPERS)
    body = re.search(r"double fa_softmax_rbwd_bf16v4_s0_body\(.*?\n\}\n", text, re.S).group(0)
    whole = body[body.index("for (; k0 + FA_H16_CHUNK <= n;") : body.index("if (k0 < n)")]
    assert "kn" not in whole and "fa_chunk_bf16_v4pairs_widen(g_r + k0, g_b)" in whole
    assert "fa_chunk_bf16_v4pairs_widen_n(g_r + k0, kn, g_b)" in body
    assert "fa_h16_chunk" not in body and "memcpy" not in body
    assert "(d_lane[0] + d_lane[16]) + (d_lane[1] + d_lane[17])" in body


def _function(text: str, head: str) -> str:
    return re.search(re.escape(head) + r"\(.*?\n\}\n", text, re.S).group(0)


def test_16_bit_rows_that_fit_are_widened_once_for_all_their_passes():
    """A 16-bit backward row of at most FA_H16_ROW_KEPT elements is widened into the
    kept float32 rows by the first stage that reads it; the later passes read it back
    unconverted.  A row no stage reads (log_softmax's y) is widened by the map alone,
    and a longer row goes chunk by chunk, its sums in segments."""
    text = c_kernels.generate(table.TABLE, functions.HELPERS)
    sm = _function(text, "static void fa_softmax_rbwd_f16v4")
    kept, chunked = sm.split("} else {")
    assert "if (n <= FA_H16_ROW_KEPT)" in kept and "FA_ROW_SPLIT" not in kept
    assert "s0_body(g_r, s_r, o_r, n, acc, g_k, s_k)" in kept
    assert "map_body(g_r, s_r, o_r, n, acc, g_k, s_k)" in kept
    assert "FA_ROW_SPLIT" in chunked and "NULL, NULL" in chunked
    stage = _function(text, "double fa_softmax_rbwd_f16v4_s0_body")
    assert "    fa_chunk_f16c_v4_widen(g_r + k0, g_b);" in stage
    assert "float *const g_b = g_k ? g_k + k0 : g_c;" in stage
    mapped = _function(text, "void fa_softmax_rbwd_f16v4_map_body")
    assert "if (!g_k) fa_chunk_f16c_v4_widen(g_r + k0, g_b);" in mapped
    assert "if (!s_k) fa_chunk_f16c_v4_widen(s_r + k0, s_b);" in mapped
    ls = _function(text, "static void fa_log_softmax_rbwd_f16v4")
    assert "n, acc, g_k, NULL)" in ls and "s_k" not in ls
    ls_map = _function(text, "void fa_log_softmax_rbwd_f16v4_map_body")
    assert "float *const s_b = s_c;\n" in ls_map
    assert "        fa_chunk_f16c_v4_widen(s_r + k0, s_b);" in ls_map
    assert "#define FA_H16_ROW_KEPT" in text


def test_a_weight_per_element_reaches_the_kernels_in_their_own_type():
    """The vector forms (prelu on (N, C) input) read float weights in the float32 and
    16-bit kernels, doubles in the float64 ones; one weight stays in the double
    parameters; an entry whose vector form would hold other parameters is refused."""
    import dataclasses

    text = c_kernels.generate(table.TABLE, functions.HELPERS)
    entry = next(e for e in table.TABLE if e.channel_param)
    heads = {
        m.group(1): m.group(2)
        for m in re.finditer(rf"^\S.* (fa_{entry.name}_\w+)\((.*)\) \{{$", text, re.M)
    }
    for kind in ("fwdv", "bwdpgv"):
        assert "const float *p" in heads[f"fa_{entry.name}_{kind}_f32"], kind
        assert "const double *p" in heads[f"fa_{entry.name}_{kind}_f64"], kind
        assert "const float *p" in heads[f"fa_{entry.name}_{kind}_f16"], kind
    assert "const double *p" in heads[f"fa_{entry.name}_bwdpg_f32"]
    assert "const double *p" in heads[f"fa_{entry.name}_fwd_f32"]
    assert "(float)p[k]" not in text.split(f"fa_{entry.name}_fwdv_f32_range", 1)[1][:400]
    extra = dataclasses.replace(entry, parameters=(*entry.parameters, entry.parameters[0]))
    with pytest.raises(SyntaxError, match="channel parameter only"):
        c_kernels._kernel(extra, "fwdv", "f32", list(functions.HELPERS))
