"""Impression-based evaluation, the MIND convention: per impression, rank the items that were shown.

For every impression (the news a user was shown, each labelled clicked or not) the model scores the
shown items only; per impression AUC, MRR, nDCG@5 and nDCG@10 are computed as MIND's own evaluation
script does, and averaged over impressions:

- AUC: the probability that a clicked item outscores a not-clicked one (ties count one half);
- MRR: ``Σ_clicked 1 / rank  ÷  number clicked`` (ranks by descending score);
- nDCG@k: gains ``2^label − 1`` discounted by ``log2(rank + 1)`` over the top k, over the ideal order.

An impression needs at least one clicked and one not-clicked item (AUC is undefined otherwise);
the others are skipped and counted, as are shown items the catalog does not know.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.data.impressions import Impression, read_mind_impressions, split_by_time
from anyrec.errors import ConfigError
from anyrec.models.base import Recommender
from anyrec.models.registry import build_model


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted one half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def mrr(labels: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    ranked = labels[order]
    return float((ranked / (np.arange(len(ranked)) + 1)).sum() / ranked.sum())


def ndcg(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    def dcg(order: np.ndarray) -> float:
        gains = 2.0 ** labels[order][:k] - 1
        return float((gains / np.log2(np.arange(len(gains)) + 2)).sum())

    return dcg(np.argsort(-scores, kind="stable")) / dcg(np.argsort(-labels, kind="stable"))


def impression_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {
        "auc": auc(labels, scores),
        "mrr": mrr(labels, scores),
        "ndcg@5": ndcg(labels, scores, 5),
        "ndcg@10": ndcg(labels, scores, 10),
    }


def evaluate_impressions(model: Recommender, impressions: Iterable[Impression]) -> dict[str, float]:
    """Mean MIND metrics of ``model`` over impressions (it scores the shown items from its history)."""
    rows: list[dict[str, float]] = []
    for imp in impressions:
        scores = np.asarray(model.score(np.array([imp.user]))[0], dtype=np.float64)[imp.items]
        rows.append(impression_metrics(imp.labels, scores))
    if not rows:
        return {"impressions": 0}
    return {"impressions": len(rows), **{m: float(np.mean([r[m] for r in rows])) for m in rows[0]}}


def run_impressions(
    ds: Dataset,
    folder: str | Path,
    models: Sequence[str],
    options: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    test_share: float = 0.2,
    progress: Callable[[str, int, int], None] | None = None,
    rank_behind: Sequence[str] = (),
    ranker_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The impression protocol end to end: read the impressions, cut by time, fit each model on what
    came before the cut, score the shown items of every later impression; JSON-ready result.

    Behind each model of ``rank_behind`` the click classifier (options ``ranker_options``) is trained
    on the impressions before the cut, shown-not-clicked items as its negatives
    (:mod:`anyrec.rank.impressions`), and read on the same test impressions as row ``model→classifier``.
    """

    impressions, report = read_mind_impressions(folder, ds)
    if not impressions:
        raise ConfigError(
            f"{Path(folder) / 'behaviors.tsv'}: no impression with both a click and a non-click on known items "
            f"({report})"
        )
    train, test, cut = split_by_time(ds, impressions, test_share)
    result: dict[str, Any] = {
        "dataset": ds.name,
        "protocol": "impressions",
        "report": report,
        "cut": cut,
        "train_interactions": int(len(train.interactions)),
        "test_impressions": len(test),
        "models": {},
    }
    for n, name in enumerate(models):
        if progress is not None:
            progress(f"fit and score {name}", n, len(models))
        t0 = time.perf_counter()
        model = build_model(name, seed, (options or {}).get(name, {})).fit(train)
        result["models"][name] = {**evaluate_impressions(model, test), "seconds": round(time.perf_counter() - t0, 3)}
        if name in rank_behind:
            result["models"][f"{name}→classifier"] = _ranked(
                model,
                ds,
                train,
                [i for i in impressions if i.time < cut],
                test,
                {"seed": seed, **(ranker_options or {})},
                progress,
            )
    if progress is not None:
        progress("impressions", len(models), len(models))
    return result


def _ranked(
    model: Recommender,
    ds: Dataset,
    train: Dataset,
    before: list[Impression],
    test: list[Impression],
    options: dict[str, Any],
    progress: Callable[[str, int, int], None] | None,
) -> dict[str, Any]:
    from anyrec.rank.cross_config import ranker_config
    from anyrec.rank.impressions import fit_impression_stage, shown_scores, stage_metrics

    t0 = time.perf_counter()

    def step(what: str) -> Callable[[int, int], None] | None:
        return (lambda d, t: progress(f"{what} ({model.name}→classifier)", d, t)) if progress is not None else None

    clf, report = fit_impression_stage(
        model,
        train,
        ds.catalog,
        before,
        impression_metrics,
        ranker_config(options),
        progress=step("train ranker"),
        valid_progress=step("validation impressions"),
    )
    hist = train.interactions.history(train.n_users)
    metrics = stage_metrics(
        shown_scores(model, test),
        clf,
        [hist.of(imp.user) for imp in test],
        test,
        [report["blend"]],
        impression_metrics,
        step("test impressions"),
    )[report["blend"]]
    return {"impressions": len(test), **metrics, "seconds": round(time.perf_counter() - t0, 3), "ranker": report}
