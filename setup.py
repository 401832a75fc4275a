"""Build the Cython/OpenMP extension; its C kernels are generated from the table.

The generator and the table are loaded by path (they use only the standard
library), so the build needs neither an installed fastact nor NumPy at import.

The build adapts to the compiler it finds:

* OpenMP is used when a test program with ``-fopenmp`` (or the platform's
  spelling) compiles and links; otherwise the C kernels are built serial (the
  Numba backend still runs in parallel) and ``python -m fastact info`` says so.
* The x86-64 SIMD clones are used when a test program with them builds.
* Without a working C compiler the package installs without the extension and
  runs on the Numba and NumPy backends, with one warning here.

Environment: ``FASTACT_OPENMP=0`` builds without OpenMP, ``FASTACT_SIMD_CLONES=0``
without the clones, ``FASTACT_REQUIRE_EXTENSION=1`` makes a failed extension
build an error instead of a warning.
"""

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CYDIR = ROOT / "fastact" / "_backends" / "cython"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generate_sources() -> None:
    """fa_kernels.h from the table, fa_source_key.h from the sources' key."""
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
    keys = _load("fastact._codegen.source_key", pkg / "_codegen" / "source_key.py")
    _write_if_changed(CYDIR / "fa_source_key.h", keys.header(keys.source_key(pkg)))
    for name in [m for m in sys.modules if m == "fastact" or m.startswith("fastact.")]:
        del sys.modules[name]


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in ("0", "no", "false", "off")


def _warn(text: str) -> None:
    bar = "=" * 78
    print(f"\n{bar}\nfastact: {textwrap.fill(text, 78)}\n{bar}\n", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _silenced():
    """Standard output and error of this process and its children go to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return (n > 0 && omp_get_max_threads() > 0) ? 0 : 1;
}
"""
# The kernels' own test of where the clones apply (fa_intrinsics.h), and whether
# every construct they then use builds (GNU ifunc needs glibc): the clones, the
# x86-64 levels and F16C as targets (fa_convert.h, fa_half.h) and as CPU tests.
CLONES_PROBE = """
#define FA_STANDALONE
#include "fa_intrinsics.h"
#if !FA_HAVE_CLONES
#error "no SIMD clones for this compiler and target"
#endif
FA_CLONES static double twice(double x) { return 2.0 * x; }
__attribute__((target(FA_TARGET_V3))) static double v3(double x) { return x; }
__attribute__((target(FA_TARGET_V4))) static double v4(double x) { return x; }
__attribute__((target("avx,f16c"))) static double f16c(double x) { return x; }
int main(void) {
    __builtin_cpu_init();
    const int cpu = FA_CPU_V4 + FA_CPU_V3 + FA_CPU_F16C;
    return twice(v3(v4(f16c(1.0)))) == 2.0 && cpu >= 0 ? 0 : 1;
}
"""
PLAIN_PROBE = "int main(void) { return 0; }\n"


class BuildExt(build_ext):
    """build_ext that probes the compiler, degrades instead of failing, and reuses
    an in-place extension built from the same C sources and flags."""

    def _probe(self, source: str, compile_args=(), link_args=()) -> bool:
        """Whether ``source`` compiles and links into a program with these flags
        (the compiler's messages about it are not shown)."""
        with tempfile.TemporaryDirectory() as tmp, _silenced():
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(source)
            try:
                objs = self.compiler.compile(
                    [src],
                    output_dir=tmp,
                    include_dirs=[str(CYDIR)],
                    extra_postargs=list(compile_args),
                )
                self.compiler.link_executable(
                    objs, "probe", output_dir=tmp, extra_postargs=list(link_args)
                )
            except Exception:  # CompileError, LinkError, or no compiler at all
                return False
        return True

    def _openmp_flags(self):
        if not _flag("FASTACT_OPENMP", True):
            return None, "disabled by FASTACT_OPENMP=0"
        if self.compiler.compiler_type == "msvc":
            candidates = [(["/openmp"], [])]
        else:
            candidates = [(["-fopenmp"], ["-fopenmp"])]
            if sys.platform == "darwin":  # Apple clang with Homebrew's or a vendored libomp
                candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
        for compile_args, link_args in candidates:
            if self._probe(OPENMP_PROBE, compile_args, link_args):
                return (compile_args, link_args), " ".join(compile_args)
        return None, "the compiler has no OpenMP (a test program did not build)"

    def build_extensions(self) -> None:
        if not self._probe(PLAIN_PROBE):
            self._skip("no working C compiler was found")
            return
        omp, omp_why = self._openmp_flags()
        if self.compiler.compiler_type == "msvc":
            flags = ["/O2"]
        else:
            # Portable build: no -march=native and no -ffast-math (it breaks NaN/inf
            # handling); the kernels pick their instruction set at load time instead.
            # No FMA contraction, so both backends round identically.
            flags = ["-O3", "-ffp-contract=off", "-fno-math-errno"]
        clones = _flag("FASTACT_SIMD_CLONES", True) and self._probe(CLONES_PROBE)
        for ext in self.extensions:
            ext.extra_compile_args = flags + (omp[0] if omp else [])
            ext.extra_link_args = omp[1] if omp else []
            if not clones:
                ext.define_macros.append(("FA_NO_CLONES", "1"))
        if omp is None:
            _warn(
                f"building the C kernels without OpenMP ({omp_why}): they run on one "
                "thread; the Numba backend still runs in parallel and the automatic "
                "backend choice uses it for large arrays. For OpenMP install one "
                "(e.g. libomp) and reinstall."
            )
        print(
            f"fastact: OpenMP: {omp_why if omp else 'no'}; SIMD clones: {'yes' if clones else 'no'}",
            file=sys.stderr,
        )
        try:
            super().build_extensions()
        except Exception as exc:
            if _flag("FASTACT_REQUIRE_EXTENSION", False):
                raise
            self._skip(f"the C extension failed to build ({exc})")

    def _skip(self, why: str) -> None:
        if _flag("FASTACT_REQUIRE_EXTENSION", False):
            raise RuntimeError(f"fastact: {why} (FASTACT_REQUIRE_EXTENSION is set)")
        _warn(
            f"{why}. fastact installs without its compiled (Cython) backend and runs "
            "every activation on the Numba and NumPy backends; `python -m fastact info` "
            "says so. To build it, install a C compiler and reinstall."
        )
        self.extensions = []

    # --- reuse of an unchanged in-place build -----------------------------------

    def _key(self, ext) -> str:
        """What the compiled extension depends on: C sources, headers, flags, tools."""
        h = hashlib.sha256()
        for name in sorted(set(ext.sources) | set(ext.depends)):
            path = Path(name)
            # Cython's C file records the build environment's paths: key its .pyx instead
            if path.suffix == ".c" and path.with_suffix(".pyx").exists():
                path = path.with_suffix(".pyx")
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        state = {
            "compiler": list(getattr(self.compiler, "compiler_so", None) or []),
            "linker": list(getattr(self.compiler, "linker_so", None) or []),
            "compile": ext.extra_compile_args,
            "link": ext.extra_link_args,
            "macros": ext.define_macros,
            "libraries": ext.libraries,
            "numpy": np.__version__,
            "cython": Cython.__version__,
            "suffix": sysconfig.get_config_var("EXT_SUFFIX"),
            "python": sys.version,
        }
        h.update(json.dumps(state, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def build_extension(self, ext) -> None:
        target = Path(self.get_ext_fullpath(ext.name))
        inplace = ROOT / Path(*ext.name.split(".")).with_name(target.name)
        stamp = inplace.with_name(inplace.name.split(".")[0] + ".build-key")
        key = self._key(ext)
        if (
            inplace.exists()
            and inplace.resolve() != target.resolve()
            and stamp.exists()
            and stamp.read_text().strip() == key
        ):
            print(
                f"fastact: {inplace.name} is up to date (same sources and flags): reused",
                file=sys.stderr,
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(inplace, target)
            return
        super().build_extension(ext)
        try:
            stamp.write_text(key + "\n")
        except OSError:  # a read-only source tree: nothing to reuse next time
            pass


generate_sources()

extensions = [
    Extension(
        "fastact._backends.cython._kernels",
        sources=["fastact/_backends/cython/_kernels.pyx"],
        include_dirs=[np.get_include(), str(CYDIR)],
        libraries=["m"] if os.name != "nt" else [],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=sorted(
            str(p) for pattern in ("*.h", "*.pxd", "*.pxi") for p in CYDIR.glob(pattern)
        ),
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildExt},
)
