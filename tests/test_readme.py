"""Every Python example of README runs as a script, prints what it shows, and warns of nothing;
the Quickstart holds exactly two commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
# Optional hosts an example may need, by the name it uses.
HOSTS = {
    "torch": "torch",
    "sklearn": "sklearn",
    "dask": "dask.array",
    "distributed": "distributed",
    "numba": "numba",
}


def _needs(code: str) -> list[str]:
    mods = [mod for key, mod in HOSTS.items() if re.search(rf"\b{key}\b", code)]
    if 'backend="numba"' in code:
        mods.append("numba")
    return mods


def test_every_python_block_is_found():
    assert len(BLOCKS) == README.read_text().count("```python")
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_python_example_runs_as_a_script(code, tmp_path):
    for mod in _needs(code):
        pytest.importorskip(mod)
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTHONWARNINGS", None)
    run = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip(), "the example prints nothing when run as a script"
    warnings = [ln for ln in run.stderr.splitlines() if "Warning" in ln]
    assert not warnings, warnings


def test_the_using_it_example_shows_each_activation_on_negative_values():
    """relu's in-place call comes last, so the other lines see negative inputs."""
    using = next(b for b in BLOCKS if "fastact.relu(x, out=x)" in b)
    lines = using.splitlines()
    relu = next(i for i, ln in enumerate(lines) if "fastact.relu(x, out=x)" in ln)
    for name in ("leaky_relu", "prelu", "rrelu", "softmax", "gelu"):
        first = next(i for i, ln in enumerate(lines) if f"fastact.{name}(" in ln)
        assert first < relu, name


def test_quickstart_has_two_commands():
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(commands) == 2
    assert "pip install" in commands[0] and "pip install" in commands[1]
    assert "pytest" in commands[1]
