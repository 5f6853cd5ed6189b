"""Plots of experiment results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anyrec.plotting import save_figure


def plot_results(result: dict[str, Any], out: str | Path, metrics: tuple[str, ...] = ("ndcg", "recall", "mrr")) -> Path:
    """Grouped bar chart: one group per metric@K, one bar per model; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = list(result["models"])
    names = [f"{m}@{k}" for m in metrics for k in result["ks"]]
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names) + 2), 4))
    x = np.arange(len(names))
    for i, model in enumerate(models):
        vals = [result["models"][model].get(n, 0.0) for n in names]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=model)
    ax.set_xticks(x, names)
    ax.set_ylabel("score (higher is better)")
    ax.set_title(f"{result['dataset']} — {result['protocol']} (full ranking)")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, out)
