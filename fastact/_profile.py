"""The dispatch profile: per activation, pass and dtype, which backend and when to go parallel.

``python -m fastact tune`` measures it on this machine and saves it as JSON
in the user's cache directory (platformdirs; ``FASTACT_PROFILE`` overrides the
path).  A profile written by another fastact version or on another CPU, or
one that does not parse, is ignored with a warning: the shipped defaults
apply then.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ._version import __version__ as _VERSION

FORMAT = 1
# Below these many elements the shipped defaults run one thread: starting a
# parallel region costs a few microseconds, the time of a serial pass over
# ~16K elements of a transcendental kernel or ~128K float32 of a cheap one.
# A cheap kernel's limit is in bytes (each array): 131072 float32, 65536
# float64 elements.  A float64 pass over 10^5 elements on one core moves
# 2.4 MB (backward: three arrays), more than its 2 MiB L2; on two threads each
# half stays in its core's L2: relu's backward ran 92 -> 14 us, hardsigmoid's
# 106 -> 31 us, relu's forward 22 -> 11 us (docs/performance.md).
DEFAULT_SERIAL_BELOW = 16384
CHEAP_SERIAL_BELOW_BYTES = 131072 * 4


@dataclass(frozen=True)
class Plan:
    """How calls of one (activation, pass, dtype) run."""

    serial_below: int = DEFAULT_SERIAL_BELOW
    small: str = "cython"  # backend for serial calls
    large: str = "cython"  # backend for parallel calls


def cpu_signature() -> str:
    """Identifies the CPU a profile was measured on."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.machine()}|{model}|{os.cpu_count()}"


def path() -> Path:
    env = os.environ.get("FASTACT_PROFILE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("fastact")) / "profile.json"


def key(name: str, pass_: str, dtype: str) -> str:
    return f"{name}/{pass_}/{dtype}"


def load(p: Path | None = None) -> tuple[dict[str, Plan], str]:
    """The saved plans and a description of where they came from ({} if none)."""
    p = p or path()
    if not p.exists():
        return {}, "defaults (no profile saved; run `python -m fastact tune`)"
    try:
        data = json.loads(p.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        if data.get("fastact") != _VERSION:
            raise ValueError(f"written by fastact {data.get('fastact')}, this is {_VERSION}")
        if data.get("cpu") != cpu_signature():
            raise ValueError("measured on another CPU")
        plans = {k: _checked(k, Plan(**v)) for k, v in data["plans"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(
            f"ignoring the fastact profile {p}: {exc}; using the defaults "
            "(run `python -m fastact tune` to measure a new one)",
            RuntimeWarning,
            stacklevel=3,
        )
        return {}, f"defaults (profile {p} ignored: {exc})"
    return plans, f"profile {p} (measured {data.get('created', '?')})"


_BACKENDS = ("cython", "numba", "numpy")
_PASSES = ("forward", "backward")
_DTYPES = ("float32", "float64", "float16", "bfloat16")
NEVER = 2**62  # serial_below meaning "never parallel"


def _checked(k: str, plan: Plan) -> Plan:
    """``plan`` if its key and fields make sense, else ValueError."""
    parts = k.split("/")
    if len(parts) != 3 or parts[1] not in _PASSES or parts[2] not in _DTYPES:
        raise ValueError(f"bad plan key {k!r}")
    n = plan.serial_below
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= NEVER:
        raise ValueError(f"bad serial_below for {k}: {n!r}")
    if plan.small not in _BACKENDS or plan.large not in _BACKENDS:
        raise ValueError(f"bad backend for {k}: {plan.small!r}/{plan.large!r}")
    return plan


def save(plans: dict[str, Plan], p: Path | None = None, extra: dict | None = None) -> Path:
    p = p or path()
    p.parent.mkdir(parents=True, exist_ok=True)
    import datetime

    data = {
        "format": FORMAT,
        "fastact": _VERSION,
        "cpu": cpu_signature(),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "plans": {k: asdict(v) for k, v in sorted(plans.items())},
        **(extra or {}),
    }
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(p)
    return p
