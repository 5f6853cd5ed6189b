"""The README stays a door, not a notebook: short, and its Python example runs as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_the_python_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1), "README.md", "exec"), {})  # noqa: S102  (our own documentation)
    printed = out.getvalue().splitlines()
    assert printed[0].startswith("1 ") and "because" in printed[0]
    assert sum(line.startswith("search:") for line in printed) == 3
    assert 0.0 < float(printed[-1]) < 1.0
