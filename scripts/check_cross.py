"""Check the generated C kernels on another CPU: cross-compiled, run under emulation.

    python scripts/check_cross.py                      # aarch64: gcc-aarch64-linux-gnu, qemu-user
    python scripts/check_cross.py --cc gcc --run ""    # the same check natively
    python scripts/check_cross.py --cc clang --run "" --same-bits  # clang against this build

The kernels of ``fastact/_codegen/c_kernels.py`` (every entry: forward,
backward, the training forms, the row-wise and parameter-gradient kernels,
float32 and float64) are compiled with ``--cc`` into a small program that
reads inputs on stdin and writes the kernels' outputs on stdout; ``--run``
runs it (qemu-aarch64 here).  The inputs are typical values with the special
values (NaN, +-inf, +-0, tiny, huge) at positions in the vector body and the
tail.  Every output is compared with the float64 reference computed on this
machine (``fastact.reference``, with the test-suite's tolerances), and
with this machine's compiled kernels bit for bit where they are built.
Where they are built, the 16-bit kernels of every elementwise entry (float16,
and bfloat16 with ml_dtypes) run on all 65536 patterns and must give the
compiled kernels' bits (any NaN equal to any NaN).
Exits 1 on any mismatch with the reference or in 16 bits, and with
``--same-bits`` on any value that is not bit-identical to the compiled kernels'
(or when there are none to compare with).
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fastact  # noqa: E402
from fastact._codegen import c_kernels  # noqa: E402
from fastact._math.functions import HELPERS  # noqa: E402
from fastact.table import TABLE  # noqa: E402
from tests.conftest import (  # noqa: E402
    SPECIALS,
    Call,
    assert_close,
    example_params,
    sample,
)

CYDIR = ROOT / "fastact" / "_backends" / "cython"
OPS = {"fwd": 0, "bwd": 1, "tfwd": 2, "tbwd": 3, "rfwd": 4, "rbwd": 5}
N = 1000  # the vector body, its tail, and the alignment head
ROWS = 4
SEED = 1234

HARNESS = r"""
#define FA_STANDALONE 1
#include "fa_kernels.h"
#include <stdio.h>
#include <stdlib.h>

static void *take(size_t n) {
    void *p = malloc(n ? n : 1);
    if (n && fread(p, 1, n, stdin) != n) { fprintf(stderr, "short input\n"); exit(2); }
    return p;
}

#define NEED(t) if (!(t)) { fprintf(stderr, "no kernel: op %d entry %d\n", op, kid); return 3; }

int main(void) {
    int32_t h[4];
    while (fread(h, sizeof h, 1, stdin) == 1) {
        int64_t nr[2]; double p[8]; uint64_t seed;
        if (fread(nr, sizeof nr, 1, stdin) != 1 || fread(p, sizeof p, 1, stdin) != 1
            || fread(&seed, sizeof seed, 1, stdin) != 1) return 2;
        const int op = h[0], kid = h[1], f32 = h[2] == 0, h16 = h[2] >= 2, bf = h[2] == 3;
        const Py_ssize_t n = (Py_ssize_t)nr[0], rows = (Py_ssize_t)nr[1];
        const size_t es = h16 ? sizeof(uint16_t) : f32 ? sizeof(float) : sizeof(double);
        const int binary = op == 1 || op == 3 || op == 5;
        void *a = take((size_t)n * es), *b = binary ? take((size_t)n * es) : NULL;
        void *out = malloc((size_t)n * es + 1);
        if (kid < 0 || kid >= FA_N_KERNELS) return 3;
        if (h16) {
            /* the 16-bit kernels: float16 (2), bfloat16 (3) */
            fa_unary_h16 u = NULL;
            fa_binary_h16 v = NULL;
            switch (op) {
            case 0: u = (bf ? FA_FWD_BF16 : FA_FWD_F16)[kid]; break;
            case 1: v = (bf ? FA_BWD_BF16 : FA_BWD_F16)[kid]; break;
            case 2: u = (bf ? FA_TFWD_BF16 : FA_TFWD_F16)[kid]; break;
            case 3: v = (bf ? FA_TBWD_BF16 : FA_TBWD_F16)[kid]; break;
            default: return 3;
            }
            NEED(u || v);
            if (u) u(a, out, n, p, seed, 0); else v(a, b, out, n, p, seed, 0);
            fwrite(out, es, (size_t)n, stdout);
            free(a); free(b); free(out);
            continue;
        }
        switch (op * 2 + f32) {
        case 0: NEED(FA_FWD_F64[kid]); FA_FWD_F64[kid](a, out, n, p, seed, 0); break;
        case 1: NEED(FA_FWD_F32[kid]); FA_FWD_F32[kid](a, out, n, p, seed, 0); break;
        case 2: NEED(FA_BWD_F64[kid]); FA_BWD_F64[kid](a, b, out, n, p, seed, 0); break;
        case 3: NEED(FA_BWD_F32[kid]); FA_BWD_F32[kid](a, b, out, n, p, seed, 0); break;
        case 4: NEED(FA_TFWD_F64[kid]); FA_TFWD_F64[kid](a, out, n, p, seed, 0); break;
        case 5: NEED(FA_TFWD_F32[kid]); FA_TFWD_F32[kid](a, out, n, p, seed, 0); break;
        case 6: NEED(FA_TBWD_F64[kid]); FA_TBWD_F64[kid](a, b, out, n, p, seed, 0); break;
        case 7: NEED(FA_TBWD_F32[kid]); FA_TBWD_F32[kid](a, b, out, n, p, seed, 0); break;
        case 8: NEED(FA_RFWD_F64[kid]); FA_RFWD_F64[kid](a, out, rows, n / rows, p); break;
        case 9: NEED(FA_RFWD_F32[kid]); FA_RFWD_F32[kid](a, out, rows, n / rows, p); break;
        case 10: NEED(FA_RBWD_F64[kid]); FA_RBWD_F64[kid](a, b, out, rows, n / rows, p); break;
        case 11: NEED(FA_RBWD_F32[kid]); FA_RBWD_F32[kid](a, b, out, rows, n / rows, p); break;
        default: return 3;
        }
        fwrite(out, es, (size_t)n, stdout);
        free(a); free(b); free(out);
    }
    return 0;
}
"""


@dataclass
class Case:
    """One kernel call: what it computes, its inputs and the expected values."""

    what: str
    op: str
    kid: int
    dtype: type
    params: list[float]
    a: np.ndarray
    b: np.ndarray | None
    check: object  # got -> None, raises AssertionError
    host: np.ndarray | None  # this machine's compiled result, or None
    specials: int


def _kernel_params(entry, params: dict) -> list[float]:
    p = []
    for prm in entry.parameters:
        v = params[prm.name]
        p.append(float(prm.choices.index(v)) if prm.choices else float(v))
    return p + [0.0] * (8 - len(p))


def _inputs(entry, dtype) -> tuple[np.ndarray, np.ndarray, int]:
    x = sample(entry, N, dtype)
    g = sample(entry, N, dtype, seed=3)
    # every special value in the body and in the tail of each row
    positions = [k * 37 + 5 for k in range(len(SPECIALS))]
    positions += [N // ROWS - 1 - k for k in range(len(SPECIALS))]
    positions += [N - 1 - k for k in range(len(SPECIALS))]
    for k, pos in enumerate(positions):
        x[pos] = SPECIALS[k % len(SPECIALS)]
    return x, g, len(positions)


def _host(entry, call: Call, x, g, saved, forward: bool):
    """This machine's compiled kernels on the same inputs (None where not built)."""
    if "cython" not in fastact.backends():
        return None
    with fastact.config(backend="cython", num_threads=1):
        return call.forward(x) if forward else call.backward(g, saved)


def cases() -> list[Case]:
    out: list[Case] = []
    for kid, entry in enumerate(TABLE):
        for dtype in (np.float32, np.float64):
            x, g, nspecial = _inputs(entry, dtype)
            if entry.rowwise:
                x, g = x.reshape(ROWS, -1), g.reshape(ROWS, -1)
            sets = [
                {**entry.example_params, **s}
                for s in example_params(entry)
                if s.get(entry.channel_param, 0) is not None
            ]
            for params in sets:
                for training in (False, True) if entry.has_training_mode else (False,):
                    call = Call(entry, dict(params), training=training, seed=SEED)
                    p = _kernel_params(entry, call.params)
                    what = f"{entry.name} {np.dtype(dtype).name} {params} training={training}"
                    ref_y = call.ref_forward(x)
                    with np.errstate(all="ignore"):
                        saved = call.saved(x, ref_y.astype(dtype))
                    fop = "rfwd" if entry.rowwise else ("tfwd" if training else "fwd")
                    bop = "rbwd" if entry.rowwise else ("tbwd" if training else "bwd")
                    cond = call.condition(x)
                    atol = call.underflow(x, dtype)

                    def check_fwd(got, call=call, x=x, ref=ref_y, what=what, cond=cond, atol=atol):
                        assert_close(
                            got.reshape(x.shape),
                            ref,
                            x.dtype,
                            what=what + " forward",
                            cond=cond,
                            scale=call.forward_scale(x),
                            atol=atol,
                        )

                    ref_g = call.ref_backward(g, saved)

                    def check_bwd(got, call=call, g=g, ref=ref_g, what=what, cond=cond, atol=atol):
                        assert_close(
                            got.reshape(g.shape),
                            ref,
                            g.dtype,
                            what=what + " backward",
                            scale=call.grad_scale(g),
                            cond=cond,
                            atol=None if atol is None else atol * np.abs(g.astype(np.float64)),
                        )

                    out.append(
                        Case(
                            what + " forward",
                            fop,
                            kid,
                            dtype,
                            p,
                            x,
                            None,
                            check_fwd,
                            _host(entry, call, x, g, saved, True),
                            nspecial,
                        )
                    )
                    out.append(
                        Case(
                            what + " backward",
                            bop,
                            kid,
                            dtype,
                            p,
                            g,
                            saved,
                            check_bwd,
                            _host(entry, call, x, g, saved, False),
                            nspecial,
                        )
                    )
    return out


def _half_dtypes() -> list[np.dtype]:
    """float16, and bfloat16 where ml_dtypes is installed."""
    try:
        import ml_dtypes
    except ImportError:
        return [np.dtype(np.float16)]
    return [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]


def cases16() -> list[Case]:
    """The 16-bit kernels of every elementwise entry on all 65536 patterns (the
    gradient reversed), compared bit for bit with this machine's compiled kernels
    (any NaN equal to any NaN): none where they are not built."""
    if "cython" not in fastact.backends():
        return []
    out: list[Case] = []
    x16 = np.arange(65536, dtype=np.uint16)
    for kid, entry in enumerate(TABLE):
        if entry.rowwise:
            continue
        for half in _half_dtypes():
            x, g = x16.view(half), x16[::-1].copy().view(half)
            for params in (
                {**entry.example_params, **s}
                for s in example_params(entry)
                if s.get(entry.channel_param, 0) is not None
                and np.ndim(s.get(entry.channel_param, 0)) == 0
            ):
                for training in (False, True) if entry.has_training_mode else (False,):
                    call = Call(entry, dict(params), training=training, seed=SEED)
                    with np.errstate(all="ignore"):
                        y = _host(entry, call, x, g, None, True)
                        saved = call.saved(x, y)
                        gx = _host(entry, call, x, g, saved, False)
                    what = f"{entry.name} {half.name} {params} training={training}"
                    p = _kernel_params(entry, call.params)
                    for op, a, b, host in (
                        ("tfwd" if training else "fwd", x, None, y),
                        ("tbwd" if training else "bwd", g, saved, gx),
                    ):
                        out.append(
                            Case(
                                f"{what} {op}",
                                op,
                                kid,
                                half,
                                p,
                                a,
                                b,
                                _same16(host, f"{what} {op}"),
                                host,
                                0,
                            )
                        )
    return out


def _same16(host: np.ndarray, what: str):
    def check(got: np.ndarray) -> None:
        h = np.ascontiguousarray(host).reshape(-1)
        same = (got.view(np.uint16) == h.view(np.uint16)) | (np.isnan(got) & np.isnan(h))
        if not same.all():
            i = np.flatnonzero(~same)[:3]
            raise AssertionError(
                f"{what}: {int((~same).sum())} values differ from this machine's kernels, e.g. "
                f"patterns {[hex(int(v)) for v in i]}: {got[i]} against {h[i]}"
            )

    return check


DTYPE_CODES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}


def _encode(c: Case) -> bytes:
    a = np.ascontiguousarray(c.a, c.dtype)
    head = struct.pack(
        "<4i2q8dQ",
        OPS[c.op],
        c.kid,
        DTYPE_CODES[np.dtype(c.dtype).name],
        0,
        a.size,
        ROWS if c.op in ("rfwd", "rbwd") else 1,
        *c.params,
        SEED,
    )
    body = a.tobytes()
    if c.b is not None:
        body += np.ascontiguousarray(c.b, c.dtype).tobytes()
    return head + body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cc", default="aarch64-linux-gnu-gcc", help="the C compiler")
    ap.add_argument("--run", default="qemu-aarch64", help="runs the program ('' = natively)")
    ap.add_argument("--cflags", default="-O3 -ffp-contract=off -fno-math-errno -static")
    ap.add_argument(
        "--same-bits",
        action="store_true",
        help="fail unless every value is bit-identical to this machine's compiled kernels",
    )
    args = ap.parse_args(argv)
    for tool in [args.cc, args.run.split()[0] if args.run else None]:
        if tool and shutil.which(tool) is None:
            print(f"skipped: {tool} is not installed")
            return 0
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "fa_kernels.h").write_text(c_kernels.generate(TABLE, HELPERS))
        shutil.copy(CYDIR / "fa_intrinsics.h", t / "fa_intrinsics.h")
        shutil.copy(CYDIR / "fa_convert.h", t / "fa_convert.h")
        (t / "harness.c").write_text(HARNESS)
        exe = t / "harness"
        cmd = [args.cc, *args.cflags.split(), "-I", tmp, str(t / "harness.c"), "-o", str(exe)]
        cmd.append("-lm")
        print("compiling:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        all_cases = cases() + cases16()
        stdin = b"".join(_encode(c) for c in all_cases)
        runner = [*args.run.split(), str(exe)] if args.run else [str(exe)]
        print(f"running: {' '.join(runner)} on {len(all_cases)} kernel calls", flush=True)
        res = subprocess.run(runner, input=stdin, capture_output=True, check=False)
        if res.returncode != 0:
            print(res.stderr.decode(), file=sys.stderr)
            return 1
    data = memoryview(res.stdout)
    failures, values, bitwise, compared_bits = [], 0, 0, 0
    differ: list[str] = []
    entries, dtypes, specials = set(), set(), 0
    pos = 0
    for c in all_cases:
        count, dt = c.a.size, c.dtype
        nbytes = count * np.dtype(dt).itemsize
        got = np.frombuffer(data[pos : pos + nbytes], dt).copy()
        pos += nbytes
        values += count
        specials += c.specials
        entries.add(c.kid)
        dtypes.add(np.dtype(c.dtype).name)
        try:
            c.check(got)
        except AssertionError as exc:
            failures.append(str(exc))
        if c.host is not None:
            compared_bits += count
            host = np.ascontiguousarray(c.host).reshape(-1)
            # NaN is NaN: x86 and ARM set different sign bits on the NaN they create
            both_nan = np.isnan(got) & np.isnan(host)
            same = (got.view(f"u{got.itemsize}") == host.view(f"u{host.itemsize}")) | both_nan
            bitwise += int(np.sum(same))
            if not same.all():
                i = np.flatnonzero(~same)
                ulps = np.abs(
                    got[i].view(f"i{got.itemsize}").astype(np.float64)
                    - host[i].view(f"i{got.itemsize}").astype(np.float64)
                )
                differ.append(f"{c.what}: {i.size} values, at most {ulps.max():g} ulp apart")
    if pos != len(data):
        failures.append(f"output length {len(data)} bytes, expected {pos}")
    print(
        f"compared {len(entries)} entries x {len(dtypes)} dtypes ({', '.join(sorted(dtypes))}): "
        f"{len(all_cases)} kernel calls (forward, backward, training, row-wise), "
        f"{values} values of which {specials} special (NaN, +-inf, +-0, tiny, huge), "
        f"against fastact.reference: {len(failures)} mismatches"
    )
    if compared_bits:
        print(
            f"bit-identical to this machine's compiled kernels: {bitwise} of {compared_bits} values"
            " (any NaN equal to any NaN)"
        )
        for d in differ:
            print("  differs:", d)
    for f in failures[:20]:
        print("MISMATCH", f)
    if args.same_bits and (not compared_bits or bitwise != compared_bits):
        print(
            "NOT THE SAME BITS: "
            + ("the compiled kernels are not built here" if not compared_bits else "see above")
        )
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
