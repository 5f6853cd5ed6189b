"""Run several models on one split of one dataset and collect a comparable result table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from anyrec.cluster import Runner
from anyrec.data.dataset import Dataset
from anyrec.data.split import Split, SplitConfig, make_split, share_of_users
from anyrec.errors import AnyrecError, ConfigError
from anyrec.eval.auto import candidates as auto_candidates
from anyrec.eval.auto import choose, weigh_blend
from anyrec.eval.auto import skipped as auto_skipped
from anyrec.eval.evaluate import MASK_RULES, evaluate_model, unreachable_targets
from anyrec.eval.flow import StepProgress, fit_and_tune, read_all_then, training_grid, validator
from anyrec.machine import available_memory_mb
from anyrec.models.base import Recommender
from anyrec.models.registry import MODELS, build_model

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ExperimentConfig:
    """What to run.

    Attributes:
        models: registry names, in display order.
        ks: cut-offs for every metric.
        split: the protocol.
        seed: seeds the split and every model that has a ``seed`` field.
        model_options: per-model overrides of config fields, ``{"itemknn": {"k": 50}}``.
        tune: choose the options of models that declare a ``tuning_grid`` by validation
            NDCG at the first K (coordinate-wise); test is never looked at.
        test_history: what a model may use as a user's history when scoring the test
            phase: ``train+valid`` (all that is known by then; models are not refitted, ALS
            folds the new item in) or ``train`` (RecBole's convention for general models).
        tune_training: also search the training-time options of models that declare a
            ``training_grid`` (one fit per value, coordinate-wise, by validation NDCG at the
            first K); every such model gets the same number of fits.
        stable: tune as serving does: only options passing the stability check
            (:mod:`anyrec.eval.stability`); off by default, as the peers are tuned on accuracy alone.
        mask: what the evaluator removes before ranking (see :mod:`anyrec.eval.evaluate`).
        report_untuned: also read each tuned model's test figures with the options it was fitted with,
            before the score-time search (``models[name]["before_tuning"]``; same fit, same history): what
            the search adds (for the sequential family, its network alone against network + text terms).
        also_masks: further masking rules to read every model under (same fit, same history),
            reported as ``models[name]["by_mask"][rule]``.
        train_share: the low-resource protocol: models learn from this seeded share of the training
            users' rows (:func:`anyrec.data.split.share_of_users`), are validated and tested on the same
            users as at 1, and read every user's whole history when scoring; at 0 only the models that
            need no training run (the others are listed under ``skipped``).
        ranker: ``classifier`` adds a ranking stage behind each model of ``rank_behind``: the
            click classifier (options ``ranker_options``) re-ranks its top ``rank_depth``, trained
            on the same training rows, stopped and blended on validation; reported as the row
            ``"MODEL→classifier"`` under the same evaluator.
    """

    models: tuple[str, ...] = ("popularity", "itemknn", "als", "bpr")
    ks: tuple[int, ...] = (10, 20)
    split: SplitConfig = field(default_factory=SplitConfig)
    seed: int = 0
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    tune: bool = True
    stable: bool = False
    test_history: str = "train+valid"
    tune_training: bool = False
    mask: str = "history"
    also_masks: tuple[str, ...] = ()
    report_untuned: bool = False
    ranker: str = ""
    rank_behind: tuple[str, ...] = ()
    ranker_options: dict[str, Any] = field(default_factory=dict)
    rank_depth: int = 20
    train_share: float = 1.0

    def __post_init__(self) -> None:
        if self.test_history not in ("train", "train+valid"):
            raise ConfigError(f"test_history must be 'train' or 'train+valid', got {self.test_history!r}")
        for rule in (self.mask, *self.also_masks):
            if rule not in MASK_RULES:
                raise ConfigError(f"mask must be one of {', '.join(MASK_RULES)}, got {rule!r}")


def _step(progress: StepProgress, desc: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(desc, done, total)


def run_experiment(
    ds: Dataset, config: ExperimentConfig, progress: StepProgress = None, split: Split | None = None,
    item_vectors: Any = None, runner: Runner | None = None,
) -> dict[str, Any]:
    """Fit and evaluate each model on the same split; returns the JSON-ready result.

    ``item_vectors`` (items × dim), when given, are handed to text models instead of encoding
    the catalog again (for example the vectors of a saved model). ``runner`` (see
    :mod:`anyrec.cluster`) scores the validation-search and test evaluations on Ray's workers,
    sharded by users; the metrics equal the local ones.
    """
    for name in config.models:
        if name not in MODELS and name != "auto":
            raise ConfigError(f"unknown model {name!r}; choose from auto, {', '.join(MODELS)}")
    split_cfg = replace(config.split, seed=config.seed)
    split = split if split is not None else make_split(ds, split_cfg)
    train = split.train_dataset(ds)
    learn, share = (train, None) if config.train_share >= 1 else share_of_users(train, config.train_share, config.seed)
    result: dict[str, Any] = {
        "dataset": ds.name,
        "protocol": split.protocol,
        "seed": config.seed,
        "ks": list(config.ks),
        "data": ds.summary(),
        "load_report": ds.report.as_dict(),
        "split": {
            "train": int(len(split.train)),
            "valid": int(len(split.valid)),
            "test": int(len(split.test)),
            **split.report,
            "test_targets_already_in_history (masked, misses for all)": unreachable_targets(ds, split, "test"),
        },
        "test_history": config.test_history,
        "mask": config.mask,
        "models": {},
    }
    if share is not None:
        result["train_share"] = share
    names = list(config.models)
    if (
        "auto" in names
    ):  # the candidates that suit the log get rows of their own; "auto" is the one chosen on validation
        found = auto_candidates(train, auto_memory_mb(), config.model_options.get("sequential", {}).get("max_minutes"))
        result["auto"] = {"candidates": {c.name: c.reason for c in found}, "left out": auto_skipped(train, found)}
        names = [n for n in names if n != "auto"] + [c.name for c in found if c.name not in names]
    kept: dict[str, Recommender] = {}  # auto: the two best candidates so far, fitted, for the blend
    for name in names:
        try:
            model = _evaluate_one(name, ds, config, split, train, learn, share, result, progress, item_vectors, runner)
        except AnyrecError as exc:  # a model that refuses (memory, missing text or order) gets its reason as its row
            log.warning("%s refused: %s", name, exc)
            result.setdefault("refused", {})[name] = str(exc)
            if "auto" in result:
                result["auto"].get("validation", {}).pop(name, None)
            continue
        if (
            model is not None
            and "auto" in result
            and name in result["auto"]["candidates"]
            and name in result["auto"].get("validation", {})
        ):
            kept[name] = model
            valid = result["auto"]["validation"]
            kept = dict(sorted(kept.items(), key=lambda kv: -valid[kv[0]])[:2])
    if "auto" in result and len(kept) == 2 and share is None:
        _blend_candidate(kept, ds, config, split, train, result, progress)
    if "auto" in result and result["auto"].get("validation"):
        pool = {n: v for n, v in result["auto"]["validation"].items() if n in result["auto"]["candidates"]}
        winner = choose(pool)
        result["auto"]["chosen"] = winner
        fits = sum(float(result["models"][n]["fit_seconds"]) + float(result["models"][n]["tune_seconds"]) for n in pool)
        result["models"]["auto"] = {
            **result["models"][winner],
            "chosen": winner,
            "fit_seconds": round(fits, 3),
            "tune_seconds": 0.0,
        }
    return result


def _blend_candidate(
    kept: dict[str, Recommender],
    ds: Dataset,
    config: ExperimentConfig,
    split: Split,
    train: Dataset,
    result: dict[str, Any],
    progress: StepProgress,
) -> None:
    """``auto``'s blend of its two best candidates (:mod:`anyrec.models.blend`): the weight chosen on validation (the
    parts read the training histories, as when they were validated), a row of its own, and a candidate of ``auto``
    only when its cross-fitted gain over the better part clears :data:`~anyrec.eval.auto.BLEND_MIN_Z`
    (:func:`~anyrec.eval.auto.weigh_blend`): a blend that wins validation by the search's own luck is not kept."""
    from anyrec.models.blend import Blend

    (first, a), (second, b) = kept.items()
    blend = Blend(parts=(a, b))
    label = blend.label
    t0 = time.perf_counter()
    blend.fit(train)  # (its parts are fitted: only the seen items and ids are read here)
    blend.set_history(train)
    choice = weigh_blend(blend, ds, split, config.ks[0], config.seed, _step(progress, f"tune {label}"))
    search_s = time.perf_counter() - t0
    if config.test_history == "train+valid" and len(split.valid):
        blend.set_history(split.history_dataset(ds, "test"))
    metrics: dict[str, Any] = dict(
        evaluate_model(
            blend, ds, split, "test", config.ks, progress=_step(progress, f"evaluate {label}"), mask=config.mask
        )
    )
    metrics.update({"fit_seconds": 0.0, "tune_seconds": round(search_s, 3), "weight": choice.weight})
    result["models"][label] = metrics
    metric = f"ndcg@{config.ks[0]}"
    result.setdefault("tuned", {})[label] = {"weight": choice.weight, f"valid_{metric}": round(choice.valid, 6)}
    result["auto"]["blend"] = {
        "parts": [first, second],
        "weight": choice.weight,
        f"valid_{metric}": round(choice.valid, 6),
        "cross-fitted gain": round(choice.gain, 6),
        "z": round(choice.z, 2),
        "kept": choice.kept,
    }
    log.info("%s: %s", label, choice.reason(first))
    if not choice.kept:
        result["auto"]["left out"].append(f"{label}: {choice.reason(first)}")
        return
    result["auto"]["candidates"][label] = (
        f"a blend of the two best on validation ({first}, {second}), scores standardised per user, the weight "
        f"chosen on validation; {choice.reason(first)}"
    )
    result["auto"]["validation"][label] = round(choice.valid, 6)


def _evaluate_one(
    name: str,
    ds: Dataset,
    config: ExperimentConfig,
    split: Split,
    train: Dataset,
    learn: Dataset,
    share: Any,
    result: dict[str, Any],
    progress: StepProgress,
    item_vectors: Any,
    runner: Runner | None,
) -> Recommender | None:
    """Fit, tune and evaluate one model into ``result`` (see :func:`run_experiment`); returns the fitted model (``None``
    when it was skipped)."""
    options = config.model_options.get(name, {})
    if config.train_share == 0 and build_model(name, config.seed, options).learns_from_interactions():
        result.setdefault("skipped", {})[name] = "learns from the target's training rows; the train share is 0"
        return None
    grid = training_grid(name, learn, options)
    if not config.tune_training:  # how counts are read is searched wherever the log has them (a cheap refit)
        grid = {k: v for k, v in grid.items() if k == "weighting"}
    valid = (
        validator(ds, split, config.ks[0])
        if share is None
        else read_all_then(train, validator(ds, split, config.ks[0]))
    )
    done = fit_and_tune(
        name,
        ds,
        split,
        learn,
        options,
        config.seed,
        validate=valid,
        k=config.ks[0],
        tune=config.tune,
        stable=config.stable,
        grid=grid,
        item_vectors=item_vectors,
        progress=progress,
        runner=runner,
        after_fit=(lambda m: m.set_history(train)) if share is not None else None,
    )
    model, tuned, fit_s, search_s = done.model, done.tuned, done.fit_seconds, done.search_seconds
    fitted = done.fitted_config
    stage = _rank_stage(model, ds, split, config, progress) if config.ranker and name in config.rank_behind else None
    if "auto" in result and len(split.valid):
        # A search on a sample of the validation users (a large log) is not read here: auto compares every row on all.
        valid_metric = None if tuned.get("valid_users_searched") else tuned.get(f"valid_ndcg@{config.ks[0]}")
        result["auto"].setdefault("validation", {})[name] = round(
            float(
                valid_metric
                if valid_metric is not None
                else evaluate_model(model, ds, split, "valid", config.ks[:1], runner=runner)[f"ndcg@{config.ks[0]}"]
            ),
            6,
        )
    if config.test_history == "train+valid" and len(split.valid):
        model.set_history(split.history_dataset(ds, "test"))
    model.reset_checks()  # count the test lists only
    t0 = time.perf_counter()
    metrics: dict[str, Any] = dict(
        evaluate_model(
            model,
            ds,
            split,
            "test",
            config.ks,
            progress=_step(progress, f"evaluate {name}"),
            mask=config.mask,
            runner=runner,
        )
    )
    metrics["fit_seconds"] = round(fit_s, 3)
    metrics["tune_seconds"] = round(search_s, 3)
    if tuned:
        result.setdefault("tuned", {})[name] = tuned
    if model.report_.sized:
        result.setdefault("sized for the data", {})[name] = dict(model.report_.sized)
    if model.report_.pictures:
        metrics["pictures"] = dict(model.report_.pictures)
    history = model.report_.epochs
    if history:  # how training went: epochs run, the best epoch and its validation figure
        scored = [e for e in history if e.get("valid_ndcg@10") is not None]
        best = max(scored, key=lambda e: e["valid_ndcg@10"]) if scored else None
        metrics["training"] = {
            "epochs": sum(e.get("epoch", 0) >= 0 for e in history),
            "best_epoch": best["epoch"] if best else None,
            "best_valid_ndcg@10": best["valid_ndcg@10"] if best else None,
        }
    metrics["eval_seconds"] = round(time.perf_counter() - t0, 3)
    stats = model.report_.checks
    if stats is not None:  # generative models: every generated id checked against the catalog and the filters
        metrics["generation"] = dict(stats)
    if config.report_untuned and name in result.get("tuned", {}):  # a search ran (it may have kept the options)
        tuned_config, model.config = model.config, fitted
        metrics["before_tuning"] = dict(
            evaluate_model(model, ds, split, "test", config.ks, mask=config.mask, runner=runner)
        )
        model.config = tuned_config
    if config.also_masks:
        metrics["by_mask"] = {
            rule: evaluate_model(model, ds, split, "test", config.ks, mask=rule) for rule in config.also_masks
        }
    result["models"][name] = metrics
    log.info("%s: %s", name, {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
    if stage is not None:
        result["models"][f"{name}→{config.ranker}"] = _evaluate_stage(stage, ds, split, config, progress)
    return model


def auto_memory_mb() -> float:
    """What a dense solve may take, as ``auto`` states it: the models' own default (80 % of the memory available now,
    8 GB where that is unknown; see ``EASEConfig.max_memory_mb``)."""
    return available_memory_mb(0.8)


def _rank_stage(
    model: Recommender, ds: Dataset, split: Split, config: ExperimentConfig, progress: StepProgress
) -> tuple[Any, dict[str, Any], float]:
    """The click classifier behind a fitted model (its history still the training rows)."""
    from anyrec.rank.cross_config import ranker_config
    from anyrec.rank.train import fit_click_stage

    if config.ranker != "classifier":
        raise ConfigError(f"unknown ranker {config.ranker!r}; choose classifier")
    if not len(split.valid):
        raise ConfigError("the ranking stage needs a validation split (its epochs and blend are chosen there)")
    opts = {"seed": config.seed, **config.ranker_options}
    t0 = time.perf_counter()
    stage, report = fit_click_stage(
        model,
        ds,
        split,
        ranker_config(opts),
        depth=config.rank_depth,
        progress=_step(progress, f"train ranker behind {model.name}"),
    )
    return stage, report, time.perf_counter() - t0


def _evaluate_stage(
    fitted: tuple[Any, dict[str, Any], float],
    ds: Dataset,
    split: Split,
    config: ExperimentConfig,
    progress: StepProgress,
) -> dict[str, Any]:
    stage, report, fit_s = fitted
    if config.test_history == "train+valid":
        stage.set_history(split.history_dataset(ds, "test"))
    t0 = time.perf_counter()
    metrics: dict[str, Any] = dict(
        evaluate_model(
            stage, ds, split, "test", config.ks, progress=_step(progress, "evaluate ranked"), mask=config.mask
        )
    )
    metrics.update(fit_seconds=round(fit_s, 3), eval_seconds=round(time.perf_counter() - t0, 3), ranker=report)
    return metrics
