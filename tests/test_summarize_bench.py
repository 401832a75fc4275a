"""benchmarks/summarize_bench.py: the list of cells where a peer is faster."""

from __future__ import annotations

from tests.conftest import load_script


def _load():
    return load_script("benchmarks/summarize_bench.py")


def _cell(case, size, threads, impl, seconds, pass_="fwd"):
    return {
        "case": case,
        "dtype": "float32",
        "pass": pass_,
        "size": size,
        "threads": threads,
        "impl": impl,
        "best_s": seconds,
    }


def test_slower_cells_lists_large_cells_where_the_peer_beats_the_margin():
    results = [
        _cell("gelu", 10**6, 1, "fastact-cython", 1.0),
        _cell("gelu", 10**6, 1, "torch", 0.8),  # listed: 0.80
        _cell("relu", 10**7, 2, "fastact-cython", 1.0),
        _cell("relu", 10**7, 2, "torch", 0.96),  # within the margin: not listed
        _cell("tanh", 10**3, 1, "fastact-cython", 1.0),
        _cell("tanh", 10**3, 1, "torch", 0.5),  # small: not listed
        _cell("silu", 10**7, 1, "fastact-cython", 2.0, "bwd"),
        _cell("silu", 10**7, 1, "torch", 1.0, "bwd"),  # listed: 0.50, first
        _cell("elu", 10**6, 1, "fastact-cython", 1.0),  # no peer: not listed
    ]
    text = _load().slower_cells(results)
    assert text.startswith("2 cells where torch took under 0.95")
    rows = [line for line in text.splitlines() if line.startswith("| 0.")]
    assert rows == [
        "| 0.50 | silu | float32 | bwd | 1e+07 | 1 |",
        "| 0.80 | gelu | float32 | fwd | 1e+06 | 1 |",
    ]
