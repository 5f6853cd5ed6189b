"""Fit a model for serving: validation-chosen options, then a refit on everything.

Shared by ``anyrec fit`` and ``anyrec retrain`` so a retrained version follows the same
validation rules as the first one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from anyrec.cluster import LOCAL, Runner
from anyrec.data.dataset import Dataset
from anyrec.data.split import leave_one_out
from anyrec.eval.auto import candidates as auto_candidates
from anyrec.eval.auto import choose, weigh_blend
from anyrec.eval.auto import skipped as auto_skipped
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.experiment import auto_memory_mb
from anyrec.eval.flow import embed_on, fit_and_tune, fit_one
from anyrec.eval.search import tune_on_validation
from anyrec.eval.stability import StabilityRule
from anyrec.index.vector import FaissIndex, VectorIndex, make_index, recall_against_exact
from anyrec.models import Recommender
from anyrec.models.registry import option_names

log = logging.getLogger(__name__)


def fit_for_serving(name: str, ds: Dataset, options: dict[str, Any], seed: int = 0, tune: bool = True,
                    progress: Callable[[str, int, int], None] | None = None, index_spec: str = "exact",
                    metric: str = "cosine", runner: Runner | None = None, stable: bool = True,
                    ) -> tuple[Recommender, dict[str, Any], dict[str, float], dict[str, VectorIndex]]:
    """``(model, options chosen, validation metrics, indexes)``; the model is fitted on all of ``ds``.

    With ``tune``, options are chosen on a leave-one-out validation split (each user's last
    interaction), and NDCG@10 / Recall@10 there are the version's validation metrics. With
    ``stable`` (the default: this fits what is served) a grid point is taken only when one like or
    dislike leaves most of a list in place (:mod:`anyrec.eval.stability`). A Ray
    ``runner`` trains data-parallel models with Ray Train and runs the evaluations on its workers.

    Indexes (see :func:`build_indexes`) go with the version; a FAISS index's recall@10 against exact
    search, on real users' queries, is measured here and joins the metrics.
    """
    runner = runner or LOCAL
    if index_spec not in ("exact", "numpy", "") and "kernel" in option_names(name) and "kernel" not in options:
        # The pooled kernel scores each history item against the catalog (no single query vector to search
        # an index with): a version fitted for ANN retrieval keeps the one-profile score.
        options = {**options, "kernel": 0.0}
        log.info("%s: kernel=0 (one profile) because the version retrieves from a %s index", name, index_spec)
    vectors = embed_on(runner, ds, (name,), {name: options}, progress)  # on Ray: by its actors
    tuned: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    if tune:
        # The one flow (anyrec.eval.flow) on a leave-one-out split (each user's last interaction): early stopping and
        # the score-time options chosen on it; then the served model reads (or is refitted on) everything.
        split = leave_one_out(ds)
        done = fit_and_tune(name, ds, split, split.train_dataset(ds), options, seed, k=10, stable=stable,
                            item_vectors=vectors, progress=progress, runner=runner)
        model, tuned = done.model, done.tuned
        valid = evaluate_model(model, ds, split, "valid", (10,), runner=runner)
        metrics = {
            "valid_ndcg@10": round(float(valid["ndcg@10"]), 6),
            "valid_recall@10": round(float(valid["recall@10"]), 6),
        }
        if model.trains_with_validation:
            model.set_history(ds)
        else:
            encoded = model.encoded_items()
            if encoded is not None:
                model.use_item_vectors(encoded)  # the refit reuses the vectors just computed
            model.fit(ds)
    else:
        model = fit_one(name, seed, options, ds, None, vectors, progress, runner)
    indexes = build_indexes(model, ds, index_spec, metric)
    metrics.update(index_recall(model, ds, indexes, seed))
    log.info("fitted %s on %s: %s %s", name, ds.name, tuned, metrics)
    return model, tuned, metrics, indexes


def build_indexes(model: Recommender, ds: Dataset, index_spec: str, metric: str = "cosine") -> dict[str, VectorIndex]:
    """The vector indexes a served version retrieves from (by name, see :func:`anyrec.app.persist.save_model`):
    one per table the model names (:meth:`~anyrec.models.base.Recommender.index_tables`) — zero-shot its text
    vectors (``exact`` included: search and similar items use it); sequential with a FAISS spec, its scoring
    space (inner product) and, when it reads text, the pretrained text vectors (its text-blend term)."""
    found = {}
    for name, (vectors, kind) in model.index_tables(approximate=index_spec not in ("exact", "numpy", "")).items():
        found[name] = make_index(index_spec, kind or metric)
        found[name].add(range(ds.n_items), vectors)
    return found


def index_recall(
    model: Recommender, ds: Dataset, indexes: dict[str, VectorIndex], seed: int = 0, users: int = 500, k: int = 10
) -> dict[str, float]:
    """Recall@``k`` of each FAISS index against exact search, queried as serving queries it: with the
    profiles (and, for sequential, model-space queries) of up to ``users`` sampled users' histories."""
    faiss = {name: ix for name, ix in indexes.items() if isinstance(ix, FaissIndex)}
    if not faiss:
        return {}
    seqs = ds.interactions.sequences(ds.n_users)
    rng = np.random.default_rng(seed)
    sample = [seqs[u] for u in rng.permutation(ds.n_users) if len(seqs[u])][:users]
    queries: dict[str, list[np.ndarray]] = {name: [] for name in faiss}
    tables = {name: table for name, (table, _) in model.index_tables(approximate=True).items() if name in faiss}
    for seq in sample:
        found = model.index_queries(seq, np.ones(len(seq)))
        for name in faiss:
            queries[name].append(found[name])
    out = {}
    for name, ix in faiss.items():
        if queries[name]:
            key = f"index_recall@{k}" if name == "text" else f"{name}_index_recall@{k}"
            out[key] = round(recall_against_exact(ix, tables[name], np.stack(queries[name]), k), 4)
            log.info(
                "index %s (%s): recall@%d against exact search %.4f on %d users' queries",
                name,
                ix.factory if isinstance(ix, FaissIndex) else ix.kind,
                k,
                out[key],
                len(queries[name]),
            )
    return out


def fit_auto(
    ds: Dataset,
    options: dict[str, dict[str, Any]],
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    index_spec: str = "exact",
    metric: str = "cosine",
    runner: Runner | None = None,
    stable: bool = True,
    max_minutes: float | None = None,
) -> tuple[Recommender, dict[str, Any], dict[str, float], dict[str, VectorIndex], dict[str, Any]]:
    """``fit --model auto``: every candidate that suits ``ds`` (:mod:`anyrec.eval.auto`) fitted for serving as
    :func:`fit_for_serving` fits one, the best validation NDCG@10 kept. Returns the winner's
    ``(model, options, metrics, indexes)`` and a report: candidates with their reasons, each one's
    validation NDCG@10 and seconds, what was left out and why, the winner."""
    found = auto_candidates(ds, auto_memory_mb(), max_minutes)
    report: dict[str, Any] = {
        "candidates": {c.name: c.reason for c in found},
        "left out": auto_skipped(ds, found),
        "validation": {},
        "seconds": {},
    }
    for c in found:
        log.info("auto: candidate %s (%s)", c.name, c.reason)
    best: tuple[Recommender, dict[str, Any], dict[str, float], dict[str, VectorIndex]] | None = None
    served: dict[str, tuple[Recommender, dict[str, Any]]] = {}  # the two best so far, for the blend
    for c in found:
        opts = dict(options.get(c.name, {}))
        if c.name == "sequential" and max_minutes is not None:
            opts.setdefault("max_minutes", max_minutes)
        t0 = time.perf_counter()
        fitted = fit_for_serving(c.name, ds, opts, seed, True, progress, index_spec, metric, runner, stable)
        report["seconds"][c.name] = round(time.perf_counter() - t0, 2)
        report["validation"][c.name] = fitted[2].get("valid_ndcg@10", float("-inf"))
        if choose(report["validation"]) == c.name:
            best = fitted
        served[c.name] = (fitted[0], {**opts, **{k: v for k, v in fitted[1].items() if k in option_names(c.name)}})
        served = dict(sorted(served.items(), key=lambda kv: -report["validation"][kv[0]])[:2])
    assert best is not None
    if len(served) == 2:
        blended = _serving_blend(served, ds, seed, progress, index_spec, metric, stable, report)
        if blended is not None and choose(report["validation"]) == blended[0].label:
            best = blended
    report["chosen"] = best[0].label
    return (*best, report)


def _serving_blend(
    served: dict[str, tuple[Recommender, dict[str, Any]]],
    ds: Dataset,
    seed: int,
    progress: Callable[[str, int, int], None] | None,
    index_spec: str,
    metric: str,
    stable: bool,
    report: dict[str, Any],
) -> tuple[Recommender, dict[str, Any], dict[str, float], dict[str, VectorIndex]] | None:
    """``auto``'s blend of its two best candidates for serving: both refitted on the validation split with the
    options they chose (no search), the weight chosen there; a candidate only when its cross-fitted gain over the
    better part is sure enough (:func:`~anyrec.eval.auto.weigh_blend`; ``None`` otherwise, said in the report), and
    then the weight re-chosen under the stability rule (with ``stable``) and the served parts blended with it."""
    from anyrec.models.blend import Blend, BlendConfig

    split = leave_one_out(ds)
    train = split.train_dataset(ds)
    parts = [
        fit_and_tune(name, ds, split, train, opts, seed, k=10, tune=False, progress=progress).model
        for name, (_model, opts) in served.items()
    ]  # the options they chose, no search
    blend = Blend(parts=(parts[0], parts[1])).fit(train)
    step = (lambda d, t: progress("tune the blend on validation", d, t)) if progress else None  # noqa: E731
    choice = weigh_blend(blend, ds, split, 10, seed, step)
    label = blend.label
    first_name = next(iter(served))
    if not choice.kept:
        report["left out"].append(f"{label}: {choice.reason(first_name)}")
        return None
    tuned = tune_on_validation(blend, ds, split, 10, stable=StabilityRule(), progress=step) if stable else {}
    valid = evaluate_model(blend, ds, split, "valid", (10,))
    report["candidates"][label] = (
        f"a blend of the two best ({', '.join(served)}), the weight chosen on validation; {choice.reason(first_name)}"
    )
    report["validation"][label] = round(float(valid["ndcg@10"]), 6)
    (_, (first, _)), (_, (second, _)) = served.items()
    out = Blend(BlendConfig(weight=blend.config.weight), parts=(first, second)).fit(ds)
    metrics = {"valid_ndcg@10": report["validation"][label], "valid_recall@10": round(float(valid["recall@10"]), 6)}
    return (
        out,
        {"weight": blend.config.weight, **{k: v for k, v in tuned.items() if k.startswith("valid")}},
        metrics,
        build_indexes(out, ds, index_spec, metric),
    )
