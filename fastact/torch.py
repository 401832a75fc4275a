"""Alias of :mod:`fastact.integrations.torch` (needs PyTorch: ``pip install torch``)."""

from fastact.integrations import torch as _impl
from fastact.integrations.torch import *  # noqa: F403
from fastact.integrations.torch import __all__  # noqa: F401

__doc__ = _impl.__doc__


def __getattr__(name: str):
    return getattr(_impl, name)
