"""Run several models on one split of one dataset and collect a comparable result table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from anyrec.data.dataset import Dataset
from anyrec.data.split import Split, SplitConfig, make_split
from anyrec.errors import ConfigError
from anyrec.eval.evaluate import evaluate_model, unreachable_targets
from anyrec.models import MODELS, Recommender

log = logging.getLogger(__name__)

StepProgress = Callable[[str, int, int], None] | None
"""Called as ``progress(step_description, done, total)``."""


@dataclass(frozen=True)
class ExperimentConfig:
    """What to run.

    Attributes:
        models: registry names, in display order.
        ks: cut-offs for every metric.
        split: the protocol.
        seed: seeds the split and every model that has a ``seed`` field.
        model_options: per-model overrides of config fields, ``{"itemknn": {"k": 50}}``.
    """

    models: tuple[str, ...] = ("popularity", "itemknn", "als", "bpr")
    ks: tuple[int, ...] = (10, 20)
    split: SplitConfig = field(default_factory=SplitConfig)
    seed: int = 0
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_model(name: str, seed: int = 0, options: dict[str, Any] | None = None) -> Recommender:
    """A model from the registry with ``seed`` and ``options`` applied."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    cls = MODELS[name]
    cfg = cls.Config()
    names = {f.name for f in fields(cfg)}
    opts = dict(options or {})
    unknown = sorted(set(opts) - names)
    if unknown:
        raise ConfigError(f"model {name!r} has no option(s) {', '.join(unknown)}; options: {', '.join(sorted(names)) or '(none)'}")
    if "seed" in names:
        opts.setdefault("seed", seed)
    return cls(replace(cfg, **opts))


def _step(progress: StepProgress, desc: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(desc, done, total)


def run_experiment(ds: Dataset, config: ExperimentConfig, progress: StepProgress = None, split: Split | None = None) -> dict[str, Any]:
    """Fit and evaluate each model on the same split; returns the JSON-ready result."""
    for name in config.models:
        if name not in MODELS:
            raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    split_cfg = replace(config.split, seed=config.seed)
    split = split if split is not None else make_split(ds, split_cfg)
    train = split.train_dataset(ds)
    result: dict[str, Any] = {
        "dataset": ds.name,
        "protocol": split.protocol,
        "seed": config.seed,
        "ks": list(config.ks),
        "data": ds.summary(),
        "load_report": ds.report.as_dict(),
        "split": {
            "train": int(len(split.train)), "valid": int(len(split.valid)), "test": int(len(split.test)), **split.report,
            "test_targets_already_in_history (masked, misses for all)": unreachable_targets(ds, split, "test"),
        },
        "models": {},
    }
    for name in config.models:
        model = build_model(name, config.seed, config.model_options.get(name))
        if progress:
            progress(f"fit {name}", 0, 1)
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        if progress:
            progress(f"fit {name}", 1, 1)
        t0 = time.perf_counter()
        metrics = evaluate_model(model, ds, split, "test", config.ks, progress=_step(progress, f"evaluate {name}"))
        metrics["fit_seconds"] = round(fit_s, 3)
        metrics["eval_seconds"] = round(time.perf_counter() - t0, 3)
        result["models"][name] = metrics
        log.info("%s: %s", name, {k: round(v, 4) for k, v in metrics.items()})
    return result
