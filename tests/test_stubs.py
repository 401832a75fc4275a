"""The generated files (public functions, type stubs) match the table and the code."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
from pathlib import Path

import pytest

import fastact
from fastact import nn
from fastact._codegen import functions, stubs
from fastact.table import TABLE


def test_public_functions_module_is_up_to_date():
    assert functions.TARGET.read_text() == functions.generate(), (
        "fastact/_functions.py is stale: run python -m fastact._codegen.stubs"
    )


def test_public_functions_module_is_ruff_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    path = str(functions.TARGET)
    assert subprocess.run([ruff, "check", "-q", path]).returncode == 0
    assert subprocess.run([ruff, "format", "--check", "-q", path]).returncode == 0


def test_the_api_runs_no_generated_source():
    """The public functions are source files: nothing is compiled from strings at import."""
    api = Path(fastact.__file__).parent / "_api"
    for path in [functions.TARGET, Path(fastact.__file__), *api.glob("*.py")]:
        text = path.read_text()
        assert "exec(" not in text, path
    for name in ("relu", "leaky_relu_backward", "prelu_backward", "softmax"):
        fn = getattr(fastact, name)
        assert fn.__code__.co_filename == str(functions.TARGET)
        assert f"def {name}(" in inspect.getsource(fn)


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


# --- fastact/nn.pyi -------------------------------------------------------


def _nn_stub_tree() -> ast.Module:
    assert stubs.NN_STUB.exists(), "fastact/nn.pyi is missing: run python -m fastact._codegen.stubs"
    return ast.parse(stubs.NN_STUB.read_text(), filename=str(stubs.NN_STUB))


def _stub_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _table_layer_classes() -> list[type]:
    """The classes fastact.nn exposes (less those of activations registered at run time)."""
    names = {entry.name for entry in TABLE}
    found = []
    for obj in vars(nn).values():
        if inspect.isclass(obj) and issubclass(obj, nn.Layer) and obj.__module__ == nn.__name__:
            entry = obj.__dict__.get("entry")
            if entry is None or entry.name in names:
                found.append(obj)
    return found


def test_nn_stub_is_up_to_date():
    assert stubs.NN_STUB.exists(), "fastact/nn.pyi is missing: run python -m fastact._codegen.stubs"
    assert stubs.NN_STUB.read_text() == stubs.generate_nn(), (
        "fastact/nn.pyi is stale: run python -m fastact._codegen.stubs"
    )


@pytest.mark.parametrize("path", [stubs.STUB, stubs.NN_STUB], ids=lambda p: p.name)
def test_stubs_parse(path):
    ast.parse(path.read_text(), filename=str(path))


def test_nn_stub_names_resolve():
    # Every annotation of the stub, evaluated in the stub's own namespace (after
    # it has run, as stubs may refer to classes defined further down): a name it
    # uses but does not import fails here.
    text = stubs.NN_STUB.read_text()
    namespace = {"__name__": "fastact._nn_stub_check", "__package__": "fastact"}
    exec(compile(text, str(stubs.NN_STUB), "exec"), namespace)  # annotations stay strings
    annotations = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef) and node.returns is not None:
            annotations.append(node.returns)
    assert len(annotations) > 100
    for ann in annotations:
        eval(ast.unparse(ann), namespace)


def test_nn_stub_has_every_class_and_function():
    classes = _stub_classes(_nn_stub_tree())
    exposed = _table_layer_classes()
    assert {c.__name__ for c in exposed} >= {*stubs.NN_BASES, "ReLU", "PReLU", "RReLU", "Softmax"}
    for cls in exposed:
        assert cls.__name__ in classes, cls.__name__
        stub_bases = [b.id for b in classes[cls.__name__].bases if isinstance(b, ast.Name)]
        assert stub_bases == [b.__name__ for b in cls.__bases__ if b is not object], cls
    functions = {n.name for n in _nn_stub_tree().body if isinstance(n, ast.FunctionDef)}
    for name in nn.__all__:
        if inspect.isfunction(getattr(nn, name)):
            assert name in functions, name
    assert set(stubs.NN_FUNCTIONS) <= functions


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, str]]:
    a = fn.args
    out = [(p.arg, "positional") for p in a.posonlyargs + a.args]
    out += [(p.arg, "keyword") for p in a.kwonlyargs]
    return [p for p in out if p[0] != "self"]


def test_nn_stub_constructors_match_the_classes():
    classes = _stub_classes(_nn_stub_tree())
    for entry in TABLE:
        cls = nn.layer_class(entry.name)
        init = next(
            n
            for n in classes[cls.__name__].body
            if isinstance(n, ast.FunctionDef) and n.name == "__init__"
        )
        real = [
            (p.name, "keyword" if p.kind is p.KEYWORD_ONLY else "positional")
            for p in inspect.signature(cls).parameters.values()
        ]
        assert _stub_params(init) == real, cls.__name__
        text = ast.unparse(init)
        for p in entry.scalar_params:
            if p.choices:
                assert "Literal[" in text and all(repr(c) in text for c in p.choices), text
            if p.required:  # no default in the stub either
                assert f"{p.name}: float," in text or f"{p.name}: float)" in text, text
        if entry.rowwise:
            assert "axis: int" in text
        if entry.has_training_mode:
            assert "seed: int | None" in text
        if entry.channel_param:
            assert {"num_parameters", "init", "dtype"} <= {p for p, _ in real}
        else:
            assert "inplace: bool" in text
