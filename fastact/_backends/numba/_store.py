"""Where the generated Numba sources and Numba's disk cache live.

Generated modules are written as ``<cache dir>/<name>_<hash>.py`` and
imported from there; Numba then keeps its compiled kernels next to them (in
``__pycache__``, or under ``NUMBA_CACHE_DIR`` when that is set), so a second
process loads kernels in milliseconds instead of compiling them.  The cache
directory is ``FASTACT_CACHE_DIR`` when set (``0``/``off``/``none`` or an
empty value disable the disk cache), else the user cache directory of
platformdirs (``~/.cache/fastact`` on Linux), in a sub-folder per Numba and
Python version.  When no writable directory can be found, modules are
executed from memory and nothing is cached: never an import error.
"""

from __future__ import annotations

import linecache
import os
import sys
import tempfile
import threading
import types
from pathlib import Path

_OFF = ("", "0", "off", "none", "false", "no")


class Store:
    """Loads generated modules; knows whether (and where) caching is possible."""

    def __init__(self, version_tag: str) -> None:
        self._tag = version_tag
        self._lock = threading.Lock()
        self._resolved = False
        self.dir: Path | None = None
        self.reason = ""

    # -- the directory -----------------------------------------------------

    def _candidate(self) -> Path | None:
        env = os.environ.get("FASTACT_CACHE_DIR")
        if env is not None:
            if env.strip().lower() in _OFF:
                self.reason = f"disabled by FASTACT_CACHE_DIR={env!r}"
                return None
            return Path(env).expanduser() / self._tag
        try:
            import platformdirs

            base = Path(platformdirs.user_cache_dir("fastact", appauthor=False))
        except ImportError:  # pragma: no cover - platformdirs is a dependency
            base = Path.home() / ".cache" / "fastact"
        return base / self._tag

    @staticmethod
    def _writable(d: Path) -> bool:
        try:
            (d / "__pycache__").mkdir(parents=True, exist_ok=True)
            for sub in (d, d / "__pycache__"):
                with tempfile.NamedTemporaryFile(dir=sub, prefix=".probe-"):
                    pass
        except OSError:
            return False
        return True

    def resolve(self) -> Path | None:
        """The cache directory, or None (``reason`` says why)."""
        if self._resolved:
            return self.dir
        with self._lock:
            if not self._resolved:
                d = self._candidate()
                if d is not None and not self._writable(d):
                    self.reason = f"{d} is not writable"
                    d = None
                self.dir = d
                self._resolved = True
        return self.dir

    def describe(self) -> dict:
        d = self.resolve()
        info = {"cache_dir": str(d) if d else None, "cache": "on" if d else f"off ({self.reason})"}
        if d is not None:
            numba_dir = os.environ.get("NUMBA_CACHE_DIR")
            where = Path(numba_dir) if numba_dir else d / "__pycache__"
            try:
                info["kernels_on_disk"] = sum(1 for _ in where.rglob("_fastact_nb_*.nbi"))
            except OSError:  # pragma: no cover - unreadable cache dir
                pass
        return info

    # -- modules --------------------------------------------------------------

    def _write(self, path: Path, source: str, stem: str) -> bool:
        try:
            if path.exists() and path.read_text() == source:
                return True
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
            with os.fdopen(fd, "w") as f:
                f.write(source)
            os.replace(tmp, path)
        except OSError:
            return False
        self._prune(path, stem)
        return True

    @staticmethod
    def _prune(path: Path, stem: str) -> None:
        """Remove the older generations of a module (same stem, other content hash)."""
        d = path.parent
        for old in d.glob(f"{stem}_*.py"):
            if old == path or not old.name[len(stem) + 1 : -3].isalnum():
                continue
            for f in [old, *(d / "__pycache__").glob(f"{old.stem}.*")]:
                try:
                    f.unlink()
                except OSError:
                    pass

    def load(
        self, name: str, source: str, inject: dict | None = None, stem: str | None = None
    ) -> tuple[types.ModuleType, bool]:
        """Import the generated module ``name``; True when it is file-backed (cacheable).

        ``stem`` names the module's family (``name`` is ``<stem>_<hash>``): writing
        a new generation removes the older ones from the cache directory.

        ``inject`` binds extra globals before the module runs (user
        functions); such modules are never written to disk.
        """
        mod = None if inject else sys.modules.get(name)
        if mod is not None:
            return mod, getattr(mod, "__file__", None) is not None
        d = None if inject else self.resolve()
        if d is not None and self._write(d / f"{name}.py", source, stem or name):
            import importlib.util

            spec = importlib.util.spec_from_file_location(name, d / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            # Numba's cache imports the module by name when it loads a kernel.
            sys.modules[name] = mod
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            return mod, True
        mod = types.ModuleType(name)
        filename = f"<fastact-numba {name}>"
        # Registered so that tracebacks and Numba's error messages show the code.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        mod.__dict__.update(inject or {})
        sys.modules[name] = mod
        try:
            exec(compile(source, filename, "exec"), mod.__dict__)  # noqa: S102
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return mod, False
