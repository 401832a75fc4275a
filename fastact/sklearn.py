"""Alias of :mod:`fastact.integrations.sklearn` (``pip install "fastact[sklearn]"``)."""

from fastact.integrations import sklearn as _impl
from fastact.integrations.sklearn import *  # noqa: F403
from fastact.integrations.sklearn import __all__  # noqa: F401

__doc__ = _impl.__doc__
