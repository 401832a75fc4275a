"""Print the commands of README's Quickstart block, one a line (for .ci/run)."""

import re
import sys
from pathlib import Path


def commands(readme: str) -> list[str]:
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh|console)?\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README's Quickstart has no code block")
    return [
        ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")
    ]


if __name__ == "__main__":
    print("\n".join(commands(Path(sys.argv[1]).read_text())))
