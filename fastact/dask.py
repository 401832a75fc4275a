"""Alias of :mod:`fastact.integrations.dask` (``pip install "fastact[dask]"``)."""

from fastact.integrations import dask as _impl
from fastact.integrations.dask import *  # noqa: F403
from fastact.integrations.dask import __all__  # noqa: F401

__doc__ = _impl.__doc__
