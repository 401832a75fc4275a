"""Build the Cython/OpenMP extension; its C kernels are generated from the table.

The generator and the table are loaded by path (they use only the standard
library), so the build needs neither an installed fastact nor NumPy at import.
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
CYDIR = ROOT / "fastact" / "_backends" / "cython"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def generate_kernels() -> None:
    pkg = ROOT / "fastact"
    # Minimal package skeletons so the relative imports inside resolve.
    for name, path in (
        ("fastact", pkg),
        ("fastact._codegen", pkg / "_codegen"),
        ("fastact._math", pkg / "_math"),
    ):
        if name not in sys.modules:
            spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
            module = importlib.util.module_from_spec(spec)
            module.__path__ = [str(path)]
            sys.modules[name] = module
    table = _load("fastact.table", pkg / "table.py")
    functions = _load("fastact._math.functions", pkg / "_math" / "functions.py")
    _load("fastact._codegen.dialect", pkg / "_codegen" / "dialect.py")
    gen = _load("fastact._codegen.c_kernels", pkg / "_codegen" / "c_kernels.py")
    gen.write(CYDIR / "fa_kernels.h", table.TABLE, functions.HELPERS)
    for name in [m for m in sys.modules if m == "fastact" or m.startswith("fastact.")]:
        del sys.modules[name]


generate_kernels()

if sys.platform == "win32":
    omp_compile, omp_link = ["/openmp"], []
elif sys.platform == "darwin":
    omp_compile, omp_link = ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
else:
    omp_compile, omp_link = ["-fopenmp"], ["-fopenmp"]

# Portable build: no -march=native and no -ffast-math (it breaks NaN/inf
# handling); the kernels pick their instruction set at load time instead.
# No FMA contraction, so both backends round identically.
extra_compile = ["-O3", "-ffp-contract=off", "-fno-math-errno"] if os.name != "nt" else ["/O2"]

extensions = [
    Extension(
        "fastact._backends.cython._kernels",
        sources=["fastact/_backends/cython/_kernels.pyx"],
        include_dirs=[np.get_include(), str(CYDIR)],
        extra_compile_args=extra_compile + omp_compile,
        extra_link_args=omp_link,
        libraries=["m"] if os.name != "nt" else [],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=[str(CYDIR / "fa_kernels.h"), str(CYDIR / "fa_intrinsics.h")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
    )
)
