"""The key of the sources the C extension is generated and compiled from.

``setup.py`` compiles it into the extension (``fa_source_key.h``) and the
Cython backend compares it with the installed sources at import: an extension
built from another table, math, code generator or driver is refused (with
how to rebuild) instead of running kernels that no longer match the table.
Standard library only: ``setup.py`` loads this file by path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]
CYDIR = PKG / "_backends" / "cython"
# Written by the build: not inputs of the key.
GENERATED = frozenset({"fa_kernels.h", "fa_source_key.h"})
_PY_INPUTS = ("table.py", "_math/functions.py", "_codegen/dialect.py", "_codegen/c_kernels.py")
_C_SUFFIXES = (".pyx", ".pxd", ".pxi", ".h")


def inputs(pkg: Path = PKG) -> list[Path]:
    """The files the extension is made from, in a fixed order."""
    cydir = pkg / "_backends" / "cython"
    files = [pkg / name for name in _PY_INPUTS]
    files += sorted(
        p for p in cydir.iterdir() if p.suffix in _C_SUFFIXES and p.name not in GENERATED
    )
    return files


def source_key(pkg: Path = PKG) -> str:
    """A short hash of the names and contents of :func:`inputs`."""
    h = hashlib.sha256()
    for path in inputs(pkg):
        h.update(path.relative_to(pkg).as_posix().encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()[:16]


def header(key: str) -> str:
    return (
        "/* Written by setup.py (fastact/_codegen/source_key.py). Do not edit. */\n"
        f'#define FA_SOURCE_KEY "{key}"\n'
    )
