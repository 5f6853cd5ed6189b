"""The click classifier where the data has impressions: shown-but-not-clicked items are its negatives.

Under the impression protocol (:mod:`anyrec.eval.impressions`) every impression is a list of shown
items, each clicked or not. The classifier learns from the impressions before a validation cut
(history: the user's clicks before the impression; yes: each clicked item; no: up to
``negatives`` shown-and-not-clicked items of the same impression, a seeded draw), picks its epoch
and its blend with the retriever on the impressions between the validation cut and the test cut
(mean AUC, MIND's first metric; the retriever for that step is fitted on what came before the
validation cut only, so it has not seen those clicks), and is then read on the test impressions
behind the retriever fitted on everything before the test cut, as every other row of the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from anyrec.data.dataset import Catalog, Dataset, HistoryIndex
from anyrec.data.impressions import Impression
from anyrec.models.base import Recommender
from anyrec.rank.cross import ClickClassifier
from anyrec.rank.cross_config import ClickClassifierConfig
from anyrec.rank.stage import blend_scores
from anyrec.rank.train import BLENDS, unfitted_copy

log = logging.getLogger(__name__)

ImpressionMetrics = Callable[[np.ndarray, np.ndarray], dict[str, float]]
"""``metrics(labels, scores)`` of one impression's shown items, e.g.
:func:`anyrec.eval.impressions.impression_metrics`."""


def impression_pairs(
    clf: ClickClassifier, hist: HistoryIndex, impressions: Sequence[Impression], negatives: int, seed: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(left text, item, label) pairs: every clicked item of an impression (yes) and up to ``negatives``
    of its shown-not-clicked items per click (no), the history being the clicks before the impression."""
    rng = np.random.default_rng(seed)
    lefts: list[str] = []
    items: list[int] = []
    labels: list[int] = []
    for imp in impressions:
        left = clf.left(hist.before(imp.user, imp.time))
        clicked, shown = imp.items[imp.labels == 1], imp.items[imp.labels == 0]
        picked = rng.permutation(shown)[: negatives * len(clicked)]
        for item, label in [*((int(i), 1) for i in clicked), *((int(i), 0) for i in picked)]:
            lefts.append(left)
            items.append(item)
            labels.append(label)
    return lefts, np.array(items, dtype=np.int64), np.array(labels, dtype=np.int64)


def shown_scores(retriever: Recommender, impressions: Sequence[Impression]) -> list[np.ndarray]:
    """The retriever's scores of each impression's shown items (they do not change while the classifier trains)."""
    return [np.asarray(retriever.score(np.array([imp.user]))[0], dtype=np.float64)[imp.items] for imp in impressions]


def stage_metrics(
    retrieved: Sequence[np.ndarray],
    clf: ClickClassifier,
    histories: Sequence[np.ndarray],
    impressions: Sequence[Impression],
    blends: Sequence[float],
    metrics: ImpressionMetrics,
    progress: Callable[[int, int], None] | None = None,
) -> dict[float, dict[str, float]]:
    """Mean ``metrics(labels, scores)`` over ``impressions`` of ``blend · z(classifier) + (1 − blend) · z(retriever)``
    over each impression's shown items, for every blend; ``retrieved`` from :func:`shown_scores`,
    ``histories`` the history each impression's classifier input reads."""
    rows: dict[float, list[dict[str, float]]] = {b: [] for b in blends}
    for n, (imp, base, hist) in enumerate(zip(impressions, retrieved, histories)):
        if progress is not None and n % 50 == 0:
            progress(n, len(impressions))
        ranked = clf.score([hist], imp.items[None, :])
        for b in blends:
            rows[b].append(metrics(imp.labels, blend_scores(base[None, :], ranked, b)[0]))
    if progress is not None:
        progress(len(impressions), len(impressions))
    return {b: {m: float(np.mean([r[m] for r in rs])) for m in rs[0]} for b, rs in rows.items() if rs}


def fit_impression_stage(
    retriever: Recommender,
    train: Dataset,
    catalog: Catalog,
    impressions: Sequence[Impression],
    metrics: ImpressionMetrics,
    config: ClickClassifierConfig | None = None,
    valid_share: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
    valid_progress: Callable[[int, int], None] | None = None,
) -> tuple[ClickClassifier, dict[str, Any]]:
    """Train the classifier on ``impressions`` (all before the test cut) behind a retriever of the same
    class and config as ``retriever``; epoch and blend chosen on the last ``valid_share`` of them, by the
    ``"auc"`` of ``metrics`` (the protocol's own per-impression metrics, handed in by the evaluator)."""
    cfg = config or ClickClassifierConfig()
    times = np.array([imp.time for imp in impressions])
    cut = float(np.quantile(times, 1 - valid_share))
    fit_on, valid = [i for i in impressions if i.time < cut], [i for i in impressions if i.time >= cut]
    inter = train.interactions
    early = Dataset(
        name=f"{train.name}-before-valid",
        catalog=catalog,
        users=train.users,
        interactions=inter.subset(inter.time < cut),
    )
    inner = unfitted_copy(retriever).fit(early)
    hist, early_hist = train.interactions.history(train.n_users), early.interactions.history(early.n_users)
    valid_retrieved, valid_hists = shown_scores(inner, valid), [early_hist.of(imp.user) for imp in valid]
    clf = ClickClassifier(catalog, cfg)
    lefts, items, labels = impression_pairs(clf, hist, fit_on, cfg.negatives, cfg.seed)
    log.info(
        "impression ranker: %d pairs from %d impressions; %d validation impressions",
        len(labels),
        len(fit_on),
        len(valid),
    )

    def validate(model: ClickClassifier) -> tuple[float, dict[str, Any]]:
        by_blend = stage_metrics(valid_retrieved, model, valid_hists, valid, BLENDS, metrics, valid_progress)
        log.info("validation AUC by blend: %s", {b: round(m["auc"], 4) for b, m in by_blend.items()})
        return max(m["auc"] for m in by_blend.values()), {str(b): round(m["auc"], 6) for b, m in by_blend.items()}

    clf.fit(lefts, items, labels, validate, progress=progress)
    best_epoch = max(clf.report_["epochs"], key=lambda e: e["valid"])
    auc_by_blend = {float(b): v for b, v in best_epoch["detail"].items()}
    blend = max(auc_by_blend, key=lambda b: (auc_by_blend[b], b))
    report = {
        **clf.report_,
        "validation_auc_by_blend": best_epoch["detail"],
        "blend": blend,
        "valid_cut": cut,
        "train_impressions": len(fit_on),
        "valid_impressions": len(valid),
        "retriever_valid_auc": auc_by_blend[0.0],
    }
    return clf, report
