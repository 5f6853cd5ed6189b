"""The one fit-and-tune flow of ``evaluate``, ``fit``, ``retrain`` and the Ray runner: a model fitted on a split's
training part (early stopping on its validation part where the model has it; the training-time grid, one fit per
value, where one is searched), then its score-time options chosen on the same validation part.

``evaluate`` (:func:`anyrec.eval.experiment.run_experiment`) then reads the test part; ``fit`` and ``retrain``
(:func:`anyrec.app.fitting.fit_for_serving`) refit on everything with the options chosen. A Ray ``runner`` trains
data-parallel models with Ray Train and scores the validation passes on its workers; the catalog's text vectors are
embedded once by its actors (:func:`embed_on`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyrec.cluster import LOCAL, Runner
from anyrec.data.dataset import Dataset
from anyrec.data.split import Split
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.search import tune_on_validation, validation_sample
from anyrec.eval.stability import StabilityRule
from anyrec.models.base import Recommender
from anyrec.models.registry import MODELS, build_model, option_names

log = logging.getLogger(__name__)

StepProgress = Callable[[str, int, int], None] | None
"""Called as ``progress(step_description, done, total)``."""


@dataclass
class Fitted:
    """What :func:`fit_and_tune` gives back: the model (fitted on the training part, its options chosen), the
    options chosen (training grid and score-time search), the seconds each took, and the model's options as fitted,
    before the score-time search (what ``report_untuned`` reads)."""

    model: Recommender
    tuned: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0
    search_seconds: float = 0.0
    fitted_config: Any = None


def fit_and_tune(name: str, ds: Dataset, split: Split, learn: Dataset, options: dict[str, Any], seed: int = 0, *,
                 validate: Callable[[Recommender], float] | None = None, k: int = 10, tune: bool = True,
                 stable: bool = False, grid: dict[str, list[Any]] | None = None, item_vectors: Any = None,
                 progress: StepProgress = None, runner: Runner | None = None,
                 after_fit: Callable[[Recommender], None] | None = None) -> Fitted:
    """Fit ``name`` on ``learn`` (a split's training rows, or a share of them), early-stopping on ``validate``
    (default: NDCG@``k`` on ``split``'s validation part); with ``grid``, one fit per training-time value, the best
    kept; ``after_fit`` (e.g. the whole training history for a model fitted on a share); then, with ``tune``, the
    score-time options searched on validation (``stable``: as serving chooses, see :mod:`anyrec.eval.stability`).
    Options given in ``options`` are never searched."""
    has_valid = len(split.valid) > 0
    validate = validate or (validator(ds, split, k) if has_valid else None)
    t0 = time.perf_counter()
    tuned: dict[str, Any] = {}
    if grid and validate is not None:
        model, tuned = search_training_grid(name, seed, options, learn, validate, item_vectors, progress, runner, grid)
    else:
        model = fit_one(name, seed, options, learn, validate, item_vectors, progress, runner)
    if after_fit is not None:
        after_fit(model)
    fit_s = time.perf_counter() - t0
    fitted = model.config
    t1 = time.perf_counter()
    if tune and has_valid and (model.tuning_grid or (stable and model.serving_grid)):
        step = (lambda d, t: progress(f"tune {name}", d, t)) if progress else None  # noqa: E731
        tuned.update(tune_on_validation(model, ds, split, k, progress=step, fixed=set(options), runner=runner,
                                        stable=StabilityRule() if stable else None))
    return Fitted(model, tuned, fit_s, time.perf_counter() - t1, fitted)


def embed_on(runner: Runner, ds: Dataset, names: tuple[str, ...], options: dict[str, dict[str, Any]],
             progress: StepProgress = None) -> Any:
    """The catalog's text vectors computed by a Ray runner's actors (and written to the cache) when every text model
    among ``names`` reads the same encoder; ``None`` otherwise (each model then embeds in this process)."""
    from anyrec.lm.encoder import TextEncoder
    from anyrec.models.registry import build_model

    if runner.name == "local":
        return None
    text_models = [m for m in names if "encoder" in option_names(m) and options.get(m, {}).get("use_text", True)]
    encoders = {build_model(m, 0, options.get(m, {})).config.encoder for m in text_models}
    if len(encoders) != 1:
        if text_models:
            log.warning("text models read different encoders: each embeds the catalog in this process")
        return None
    enc = TextEncoder(encoders.pop())
    return enc.encode(
        ds.catalog.texts(),
        runner=runner,
        progress=(lambda d, t: progress("embed catalog (ray)", d, t)) if progress else None,
    )


def validator(ds: Dataset, split: Split, k: int) -> Callable[[Recommender], float]:
    """Validation NDCG@k of a model whose history is the training rows (for early stopping). A model whose
    scoring is costly may ask for a seeded sample of the validation users (``validation_users`` > 0: the
    generative model on a large log generates every list by beam search), the same sample every epoch."""
    samples: dict[int, Split] = {}

    def run(m: Recommender) -> float:
        cap = int(m.validation_users or 0)
        if cap > 0 and cap not in samples:
            samples[cap] = validation_sample(ds, split, cap)[0]
        return evaluate_model(m, ds, samples.get(cap, split), "valid", (k,))[f"ndcg@{k}"]

    return run


def read_all_then(train: Dataset, validate: Callable[[Recommender], float]) -> Callable[[Recommender], float]:
    """``validate`` with the model's history set to all of ``train`` first (the low-resource protocol: a model
    learns from a share of the users and is validated on everyone, as at full share)."""

    def run(model: Recommender) -> float:
        model.set_history(train)
        return validate(model)

    return run


def fit_one(
    name: str,
    seed: int,
    options: dict[str, Any],
    train: Dataset,
    validate: Callable[[Recommender], float] | None,
    item_vectors: Any,
    progress: StepProgress,
    runner: Runner | None = None,
) -> Recommender:
    """One fit of a registry model; early stopping on ``validate`` (never on test) where the model has it."""
    model = build_model(name, seed, options)
    if item_vectors is not None:
        model.use_item_vectors(item_vectors)
    if progress:
        progress(f"fit {name}", 0, 1)
    model = (runner or LOCAL).fit(model, train, validate, progress)
    if progress:
        progress(f"fit {name}", 1, 1)
    return model


def _valid_score(model: Recommender, validate: Callable[[Recommender], float]) -> float:
    """The validation score early stopping already computed, or one validation pass when there is none."""
    kept = model.report_.best_valid_ndcg
    return float(kept) if kept is not None else float(validate(model))


def training_grid(name: str, train: Dataset, options: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """The options searched with one fit per value: the class's ``training_grid``; where the log has a weight
    column of counts, ``weighting`` over the ways the model can read them (``count_weightings``); where a model
    that fuses pictures at training time (not in its score-time grid) reads them, ``image_weight``."""
    cls = MODELS[name]
    grid = dict(cls.training_grid)
    if train.interactions.weight is not None and len(cls.count_weightings) > 1:
        grid["weighting"] = list(cls.count_weightings)
    if (
        (options or {}).get("image_encoder")
        and "image_weight" in option_names(name)
        and "image_weight" not in cls.tuning_grid
        and train.catalog.images() is not None
    ):
        grid["image_weight"] = [0.25, 0.5, 0.75]
    return grid


def search_training_grid(
    name: str,
    seed: int,
    options: dict[str, Any],
    train: Dataset,
    validate: Callable[[Recommender], float],
    item_vectors: Any = None,
    progress: StepProgress = None,
    runner: Runner | None = None,
    grid: dict[str, list[Any]] | None = None,
) -> tuple[Recommender, dict[str, Any]]:
    """Coordinate-wise search over the model class's ``training_grid``, one fit per value.

    Each candidate is a fresh fit with early stopping on ``validate``; the model with the best
    validation score is kept. Options the user set (``options``) are not searched. Returns the
    best model and ``{option: value, …, "training_fits": n, "valid_ndcg": best}``.
    """
    grid = {k: v for k, v in (MODELS[name].training_grid if grid is None else grid).items() if k not in options}
    current = dict(options)
    best_model = fit_one(name, seed, current, train, validate, item_vectors, progress, runner)
    best = _valid_score(best_model, validate)
    fits = [{**{k: getattr(best_model.config, k) for k in grid}, "valid": round(best, 6)}]
    for opt, values in grid.items():
        for value in values:
            if value == getattr(best_model.config, opt) or (
                opt == "weighting" and value == best_model.weighting(train)
            ):
                continue  # (the weighting a fit chose by itself is the one already fitted)
            trial = {**current, opt: value}
            model = fit_one(name, seed, trial, train, validate, item_vectors, progress, runner)
            score = _valid_score(model, validate)
            fits.append({**{k: getattr(model.config, k) for k in grid}, "valid": round(score, 6)})
            log.info("%s training grid %s: validation %.4f (best %.4f)", name, trial, score, best)
            if score > best + 1e-9:
                best, best_model, current = score, model, trial
    chosen = {
        opt: best_model.weighting(train) if opt == "weighting" else getattr(best_model.config, opt) for opt in grid
    }
    return best_model, {
        **chosen,
        "training_fits": len(fits),
        "training_grid_valid": fits,
        "valid_training_ndcg": round(best, 6),
    }
