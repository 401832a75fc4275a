"""The type stubs match what is built at run time."""

from __future__ import annotations

import inspect

import fastact
from fastact._codegen import stubs


def test_package_stub_is_up_to_date():
    assert stubs.STUB.read_text() == stubs.generate(), (
        "fastact/__init__.pyi is stale: run python -m fastact._codegen.stubs"
    )


def test_stub_names_every_public_function_with_its_parameters():
    text = stubs.STUB.read_text()
    for name in fastact.activations():
        for fn_name in (name, f"{name}_backward"):
            fn = getattr(fastact, fn_name)
            line = next(ln for ln in text.splitlines() if ln.startswith(f"def {fn_name}("))
            for p in inspect.signature(fn).parameters:
                assert f"{p}:" in line or p == "x", (fn_name, p)
