"""Start-up costs, each sample in a fresh interpreter (asv's timeraw_).

``timeraw_import``: ``import fastact`` after NumPy is loaded.
``timeraw_first_call``: the first forward of one activation (sigmoid when the
table has it) on 1000 float32 elements, including the backend's import and,
for numba, the JIT compilation (with an empty NUMBA_CACHE_DIR, so no on-disk
cache helps).  ``timeraw_first_call_all``: a first forward and backward of
every table entry in both dtypes: the whole warm-up a process pays.
"""

from __future__ import annotations

import fastact

from .common import CI, use_backend

FIRST = "sigmoid" if "sigmoid" in fastact.activations() else fastact.activations()[0]

# A fresh NUMBA_CACHE_DIR: no on-disk cache helps (in CI the cache is kept:
# the dry run only checks that the benchmark runs).
_SETUP = (
    (
        ""
        if CI
        else """
import os, tempfile
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastact-asv-")
"""
    )
    + """
import numpy as np
import fastact
"""
)

# Runs in the fresh interpreter: one forward and one backward of every entry.
_CALL_ALL = """
fastact.set_backend({backend!r})
for name in fastact.activations():
    entry = fastact.activation(name)
    fwd, bwd = getattr(fastact, name), getattr(fastact, name + "_backward")
    for dt in (np.float32, np.float64):
        x = np.linspace(-4, 4, 1000, dtype=dt)
        args = (entry.params[entry.channel_param],) if entry.channel_param else ()
        kw = {{p.name: p.default if p.default is not None else getattr(p, "example", None)
              for p in entry.scalar_params}}
        y = fwd(x, *args, **kw)
        bwd(np.ones_like(x), x if entry.saves == "input" else y, *args, **kw)
"""


class Import:
    def timeraw_import(self):
        return "import fastact", "import numpy"


class FirstCall:
    params = (("cython", "numba", "auto"),)
    param_names = ("backend",)
    repeat = (3, 5, 60.0)
    rounds = 1

    def setup(self, backend):
        use_backend(backend)

    def timeraw_first_call(self, backend):
        stmt = f"fastact.set_backend({backend!r}); fastact.{FIRST}(x)"
        setup = _SETUP + "x = np.linspace(-4, 4, 1000, dtype=np.float32)\n"
        return stmt, setup

    def timeraw_first_call_all(self, backend):
        return _CALL_ALL.format(backend=backend), _SETUP
