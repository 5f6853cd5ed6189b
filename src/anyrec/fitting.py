"""Fit a model for serving: validation-chosen options, then a refit on everything.

Shared by ``anyrec fit`` and ``anyrec retrain`` so a retrained version follows the same
validation rules as the first one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from anyrec.cluster import LOCAL, Runner
from anyrec.data.dataset import Dataset
from anyrec.data.split import leave_one_out
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.experiment import build_model, tune_on_validation, validator
from anyrec.index.vector import VectorIndex, make_index
from anyrec.lm.encoder import EncoderConfig, TextEncoder
from anyrec.models import Recommender
from anyrec.models.generative import Generative
from anyrec.models.sequential import Sequential
from anyrec.models.zeroshot import ZeroShot

log = logging.getLogger(__name__)


def fit_for_serving(name: str, ds: Dataset, options: dict[str, Any], seed: int = 0, tune: bool = True,
                    progress: Callable[[str, int, int], None] | None = None, index_spec: str = "exact",
                    metric: str = "cosine", runner: Runner | None = None,
                    ) -> tuple[Recommender, dict[str, Any], dict[str, float], VectorIndex | None]:
    """``(model, options chosen, validation metrics, index)``; the model is fitted on all of ``ds``.

    With ``tune``, options are chosen on a leave-one-out validation split (each user's last
    interaction), and NDCG@10 / Recall@10 there are the version's validation metrics. A Ray
    ``runner`` trains data-parallel models with Ray Train and runs the evaluations on its workers.
    """
    runner = runner or LOCAL
    model = build_model(name, seed, options)
    if progress is not None:
        setattr(model, "progress", progress)  # noqa: B010  (models that embed or train report progress)
    cfg = model.config
    if runner.name != "local" and hasattr(model, "_given_vectors") and getattr(cfg, "use_text", True):
        # The catalog embedded by the runner's actors (Ray Data); the model reads these vectors.
        enc = TextEncoder(EncoderConfig(model=cfg.encoder, cache_dir=cfg.cache_dir))
        model._given_vectors = enc.encode(ds.catalog.texts(), runner=runner,
                                          progress=(lambda d, t: progress("embed catalog (ray)", d, t)) if progress else None)
    tuned: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    if tune:
        split = leave_one_out(ds)
        if isinstance(model, (Sequential, Generative)):
            # Train once with each user's last interaction held out (early stopping and the
            # score-time options are chosen on it), then serve with the full history.
            model = runner.fit(model, split.train_dataset(ds), validator(ds, split, 10))
        else:
            model.fit(split.train_dataset(ds))
        if getattr(model, "tuning_grid", None):
            tuned = tune_on_validation(model, ds, split, 10, fixed=set(options), runner=runner,
                                       progress=(lambda d, t: progress("tune on validation", d, t)) if progress else None)
        valid = evaluate_model(model, ds, split, "valid", (10,), runner=runner)
        metrics = {"valid_ndcg@10": round(float(valid["ndcg@10"]), 6), "valid_recall@10": round(float(valid["recall@10"]), 6)}
        if isinstance(model, (Sequential, Generative)):
            model.set_history(ds)
        else:
            if isinstance(model, ZeroShot):
                model._given_vectors = model.item_vectors_  # the refit reuses the vectors just computed
            model.fit(ds)
    else:
        model = runner.fit(model, ds)
    index = None
    if isinstance(model, ZeroShot):
        index = make_index(index_spec, metric)
        index.add(range(ds.n_items), model.item_vectors_)
    log.info("fitted %s on %s: %s %s", name, ds.name, tuned, metrics)
    return model, tuned, metrics, index
