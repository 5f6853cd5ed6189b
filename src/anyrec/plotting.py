"""Figures written as PNG files: shared by the evaluation plots and the explanation heat maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, out: str | Path) -> Path:
    """Lay out, write as PNG (its folder made), close; the path written."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
