"""The README's examples run, and its Quickstart holds exactly two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _needs(code: str) -> list[str]:
    hosts = {"torch": "torch", "sklearn": "sklearn", "dask": "dask", "distributed": "distributed"}
    return [mod for key, mod in hosts.items() if re.search(rf"\b{key}\b", code)]


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_python_examples_run(code):
    for mod in _needs(code):
        pytest.importorskip(mod)
    if "LocalCluster" in code or "Client(" in code:
        pytest.skip("cluster example: covered by tests/integrations")
    exec(compile(code, "<README example>", "exec"), {})


def test_quickstart_has_two_commands():
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(commands) == 2
    assert "pip install" in commands[0] and "pip install" in commands[1]
    assert "pytest" in commands[1]
