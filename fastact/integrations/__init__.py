"""Adapters that embed fastact in other frameworks.

Each adapter is an optional extra; importing one whose host library is
missing raises an ImportError that names what to install:

* :mod:`fastact.integrations.sklearn` (alias ``fastact.sklearn``):
  route scikit-learn's MLP activations to fastact kernels
  (``pip install "fastact[sklearn]"``);
* :mod:`fastact.integrations.torch` (alias ``fastact.torch``): fastact
  kernels as PyTorch custom operators with autograd (``pip install torch``);
* :mod:`fastact.integrations.dask` (alias ``fastact.dask``): blockwise
  kernels for dask arrays, used by ``fastact.NAME`` when given one
  (``pip install "fastact[dask]"``).

The NumPy layers of :mod:`fastact.nn` need nothing beyond NumPy.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, adapter: str, host: str, install: str) -> ModuleType:
    """Import ``module`` or raise an ImportError naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{adapter} needs {host}: {install}") from exc
