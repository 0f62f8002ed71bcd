"""The code users copy from the READMEs and guides runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = [
    ROOT / "README.md",
    *sorted(ROOT.glob("packages/*/README.md")),
    *sorted(ROOT.glob("docs/*.md")),
]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for readme in READMES:
        for number, match in enumerate(PYTHON_BLOCK.finditer(readme.read_text("utf-8")), 1):
            found.append((f"{readme.relative_to(ROOT)}#{number}", match.group(1)))
    return found


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[where for where, _ in _blocks()])
def test_readme_python_blocks_run(
    where: str, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(code, where, "exec"), {"__name__": "__readme__"})
