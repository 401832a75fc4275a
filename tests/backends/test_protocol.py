"""Every backend implements the whole Backend protocol, with its parameters in order."""

from __future__ import annotations

import inspect

import pytest

from fastact import _backends
from fastact._backends import Backend

METHODS = [
    name
    for name, member in inspect.getmembers(Backend, inspect.isfunction)
    if not name.startswith("_")
]


def test_the_protocol_covers_the_three_kinds_and_the_bias_epilogue():
    assert set(METHODS) == {
        "forward",
        "backward",
        "rowwise_forward",
        "rowwise_backward",
        "channel_forward",
        "channel_backward",
        "bias_forward",
        "bias_backward",
    }


@pytest.mark.parametrize("name", _backends.NAMES)
def test_backend_implements_the_protocol(name):
    try:
        backend = _backends.get(name)
    except ImportError as exc:
        pytest.skip(str(exc))
    assert isinstance(backend, Backend)
    assert backend.name == name
    for method in METHODS:
        want = list(inspect.signature(getattr(Backend, method)).parameters)[1:]
        got = inspect.signature(getattr(backend, method)).parameters
        required = [p for p, v in got.items() if v.default is inspect.Parameter.empty]
        assert list(got)[: len(want)] == want, (name, method)
        assert required == want, (name, method)


def test_the_compiled_module_matches_its_stub():
    """_kernels.pyi names exactly the public functions and constants of _kernels."""
    import ast
    from pathlib import Path

    try:
        from fastact._backends.cython import _kernels
    except ImportError as exc:
        pytest.skip(str(exc))
    stub = ast.parse(Path(_kernels.__file__).with_name("_kernels.pyi").read_text())
    declared = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    declared |= {n.target.id for n in stub.body if isinstance(n, ast.AnnAssign)}
    public = {
        name
        for name, value in vars(_kernels).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, (int, str, tuple)))
    } - {"np"}
    assert declared == public
    for node in stub.body:
        if isinstance(node, ast.FunctionDef):
            fn = getattr(_kernels, node.name)
            assert [a.arg for a in node.args.args] == list(inspect.signature(fn).parameters)
            assert fn.__doc__, node.name
