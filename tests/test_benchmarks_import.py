"""Every benchmark script still imports against the package (a moved function breaks a benchmark nobody runs for a
week otherwise; four did when fit_one and validator moved to anyrec.eval.flow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import load_benchmark

BENCHMARKS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
# recbole_runner runs inside RecBole's own environment (.venv-recbole: its pins clash with ours; make peers)
OWN_ENVIRONMENT = {"recbole_runner"}


@pytest.mark.parametrize("name", [b for b in BENCHMARKS if b not in OWN_ENVIRONMENT])
def test_the_benchmark_imports(name: str) -> None:
    module = load_benchmark(name)
    assert module.__doc__, f"benchmarks/{name}.py says what it measures in its docstring"
