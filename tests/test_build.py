"""Which build this is, and what happens without the C extension or with a stale one."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastact
from fastact import _dispatch
from fastact._codegen import source_key as sk

from .conftest import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
CYDIR = Path(fastact.__file__).parent / "_backends" / "cython"
OPTIONAL_HOSTS = {"torch", "dask", "distributed", "sklearn", "matplotlib", "numexpr", "hypothesis"}
HOST_ADAPTERS = {"fastact.torch", "fastact.dask", "fastact.sklearn", "fastact.integrations"}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )


# --- the key of the sources ---------------------------------------------------


def _copy_inputs(dst: Path) -> Path:
    pkg = dst / "fastact"
    for path in sk.inputs():
        rel = path.relative_to(sk.PKG)
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, pkg / rel)
    return pkg


def test_source_key_follows_every_input(tmp_path):
    pkg = _copy_inputs(tmp_path)
    key = sk.source_key(pkg)
    assert key == sk.source_key() and len(key) == 16
    names = [p.relative_to(pkg).as_posix() for p in sk.inputs(pkg)]
    assert "table.py" in names and "_backends/cython/fa_intrinsics.h" in names
    assert not set(names) & {f"_backends/cython/{g}" for g in sk.GENERATED}
    for path in sk.inputs(pkg):
        before = path.read_bytes()
        path.write_bytes(before + b"\n")
        assert sk.source_key(pkg) != key, path.name
        path.write_bytes(before)
    assert sk.source_key(pkg) == key
    # the generated headers are not inputs
    (pkg / "_backends" / "cython" / "fa_kernels.h").write_text("/* anything */")
    assert sk.source_key(pkg) == key


def test_a_built_extension_is_not_stale():
    """Where the extension is compiled in this tree, it matches the sources and loads."""
    built = list(CYDIR.glob("_kernels.*.so")) + list(CYDIR.glob("_kernels.*.pyd"))
    if not built:
        pytest.skip("the C extension is not compiled here")
    from fastact._backends.cython import _kernels

    assert _kernels.SOURCE_KEY == sk.source_key(), "stale build: python setup.py build_ext -i"
    assert "cython" in fastact.backends()


# --- which build --------------------------------------------------------------


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
def test_build_info_in_info_and_explain():
    from fastact import _info
    from fastact._backends.cython import BACKEND, build_info

    info = build_info()
    assert set(info) == {
        "openmp",
        "simd_clones",
        "compiler",
        "source_key",
        "float16_conversion",
        "bfloat16_conversion",
        "nt_min_bytes",
    }
    assert isinstance(info["openmp"], bool)
    assert info["float16_conversion"] in {"F16C", "C"}
    assert info["bfloat16_conversion"] in {"AVX512_BF16", "C"}
    assert info["nt_min_bytes"] >= 0
    assert info["compiler"].split()[0] in {"gcc", "clang", "MSVC"}
    c = _info.collect()["c_extension"]
    assert c["available"] and c["openmp"] == info["openmp"]
    line = _info._c_extension_line(c)
    assert info["compiler"] in line and ("no OpenMP" in line) == (not info["openmp"])
    assert f"bfloat16 by {info['bfloat16_conversion']}" in line
    with fastact.config(backend="cython"):
        text = str(fastact.explain("sigmoid", np.ones(10)))
    assert f"C extension: {info['compiler']}" in text
    assert BACKEND.parallel == info["openmp"] == _dispatch.c_parallel()


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
def test_auto_sends_parallel_calls_to_numba_without_openmp(monkeypatch):
    from fastact._backends.cython import BACKEND

    entry = fastact.activation("sigmoid")
    x = np.ones(10**6, np.float32)
    monkeypatch.setattr(BACKEND, "parallel", False)
    plan = _dispatch.plan_for(entry, "forward", x.dtype)
    assert plan.large == "numba" and plan.small == "cython"
    e = fastact.explain("sigmoid", x)
    if e.num_threads > 1 and "numba" in BACKENDS:
        assert e.backend == "numba"
        assert any("without OpenMP" in r for r in e.reasons)
    small = fastact.explain("sigmoid", np.ones(16, np.float32))
    assert small.backend == "cython" and small.num_threads == 1
    monkeypatch.undo()
    assert _dispatch.plan_for(entry, "forward", x.dtype).large == (
        "cython" if BACKEND.parallel else "numba"
    )


# --- without the extension, or with a stale one -----------------------------------

_CHECK = (
    "import warnings, numpy as np\n"
    "with warnings.catch_warnings(record=True) as w:\n"
    "    warnings.simplefilter('always')\n"
    "    import fastact\n"
    "    x = np.linspace(-3, 3, 100000).astype(np.float32)\n"
    "    y = fastact.sigmoid(x)\n"
    "np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)\n"
    "print('backends', fastact.backends())\n"
    "print('warnings', len(w))\n"
    "for m in w: print('warning', m.message)\n"
    "from fastact import _info\n"
    "print(_info._c_extension_line(_info.collect()['c_extension']))\n"
)


def test_without_the_extension_numba_and_numpy_run_everything():
    code = (
        "import sys\nsys.modules['fastact._backends.cython._kernels'] = None\n"  # as if not built
        + _CHECK
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert "backends ['numba', 'numpy']" in r.stdout
    assert "warnings 0" in r.stdout  # nothing else changes for the user
    assert "C extension: none: the C extension is not compiled" in r.stdout
    assert "C compiler" in r.stdout


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
def test_a_stale_extension_is_refused_with_how_to_rebuild(tmp_path):
    # the package with its compiled extension, then a table edited after the build
    shutil.copytree(
        Path(fastact.__file__).parent,
        tmp_path / "fastact",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    table = tmp_path / "fastact" / "table.py"
    table.write_text(table.read_text() + "\n# edited after the build\n")
    r = subprocess.run(
        [sys.executable, "-c", _CHECK],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "backends ['numba', 'numpy']" in r.stdout
    assert "warnings 1" in r.stdout, r.stdout  # once, however often it is imported
    warning = next(ln for ln in r.stdout.splitlines() if ln.startswith("warning "))
    assert "stale" in warning and "pip install -e ." in warning
    assert f"key {sk.source_key()}" in warning  # the build's key, then the sources'
    assert "C extension: none: fastact's compiled C extension is stale" in r.stdout


# --- the README's commands and the tests' imports -------------------------------------


def _quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / ".ci" / "quickstart.py")
    if spec is None or not (ROOT / ".ci" / "quickstart.py").exists():
        pytest.skip("not a source checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_reads_the_quickstart_commands_from_readme():
    cmds = _quickstart().commands((ROOT / "README.md").read_text())
    assert len(cmds) == 2
    assert cmds[0].startswith("pip install -e . ") and "fastact bench --quick" in cmds[0]
    assert cmds[1] == 'pip install -e ".[test]" && python -m pytest -q'


def _module_level_imports(tree: ast.Module):
    """(module name, line) of the imports that run at import, before any importorskip."""
    for node in tree.body:
        if isinstance(node, ast.Expr | ast.Assign) and "importorskip" in ast.unparse(node):
            return  # the module is skipped without its host before what follows
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from ((f"{node.module}.{a.name}", node.lineno) for a in node.names)


def test_no_test_module_imports_an_optional_host_at_module_level():
    """The README's test command runs with the test extra only: hosts are imported
    where they are used, with pytest.importorskip."""
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for name, line in _module_level_imports(tree):
            top = name.split(".")[0]
            if top in OPTIONAL_HOSTS or any(
                name == a or name.startswith(a + ".") for a in HOST_ADAPTERS
            ):
                bad.append(f"{path.relative_to(TESTS)}:{line}: {name}")
    assert not bad, bad
