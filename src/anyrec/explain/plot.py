"""The history × recommended-items heat map of an attribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anyrec.data.dataset import Catalog
from anyrec.explain.attribution import Attribution
from anyrec.plotting import save_figure


def _short(text: str, n: int = 38) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def plot_attribution(att: Attribution, catalog: Catalog, out: str | Path, title: str, rows: int = 25) -> Path:
    """Rows: history items (the ``rows`` with the largest absolute share over the targets, newest last);
    columns: the recommended items; cells: each history item's contribution (diverging colours, 0 white)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = att.shares
    keep = (
        np.sort(np.argsort(-np.abs(shares).max(axis=1), kind="stable")[:rows])
        if len(shares)
        else np.zeros(0, dtype=int)
    )
    data = shares[keep] if len(keep) else np.zeros((1, len(att.targets)))
    ylabels = [_short(catalog.title(int(att.history[r]))) for r in keep] or ["(no history)"]
    xlabels = [_short(catalog.title(int(t)), 28) for t in att.targets]
    lim = float(np.abs(data).max()) or 1.0
    fig, ax = plt.subplots(figsize=(2.2 + 0.55 * len(xlabels) + 2.5, 1.6 + 0.32 * len(ylabels)))
    im = ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(xlabels)), xlabels, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
    ax.set_xlabel("recommended")
    ax.set_ylabel("history (oldest at top)")
    ax.set_title(f"{title}\ncontribution by {att.method}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="contribution to score")
    return save_figure(fig, out)
