"""The one explicit registry of model names (no string-based imports), and building a model from it."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from anyrec.errors import ConfigError
from anyrec.models.base import Recommender
from anyrec.models.baselines import Bias, ItemKNN, Popularity, Random
from anyrec.models.factorization import ALS, BPR
from anyrec.models.generative import Generative
from anyrec.models.hybrid import Hybrid
from anyrec.models.neighbourhood import EASE, RP3beta
from anyrec.models.renamed import upgrade_options, with_options
from anyrec.models.sequential import SASRec, Sequential, Transfer, TransferTuned
from anyrec.models.zeroshot import ZeroShot

MODELS: dict[str, type[Recommender]] = {
    "random": Random,
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "rp3beta": RP3beta,
    "als": ALS,
    "bpr": BPR,
    "bias": Bias,
    "zeroshot": ZeroShot,
    "hybrid": Hybrid,
    "sequential": Sequential,
    "sasrec": SASRec,
    "transfer": Transfer,
    "transfer-tuned": TransferTuned,
    "generative": Generative,
}


def model_class(name: str) -> type[Recommender]:
    """The registered class of ``name``; a :class:`ConfigError` listing the names otherwise."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def option_names(name: str) -> set[str]:
    """The options (config fields) of the model ``name``; empty for a name the registry does not know."""
    return {f.name for f in fields(MODELS[name].Config)} if name in MODELS else set()


def build_model(name: str, seed: int = 0, options: dict[str, Any] | None = None) -> Recommender:
    """A model from the registry with ``seed`` and ``options`` applied."""
    cls = model_class(name)
    cfg = cls.Config()
    names = {f.name for f in fields(cfg)}
    opts = upgrade_options(name, cls.Config, dict(options or {}))
    unknown = sorted(set(opts) - names)
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; options: {', '.join(sorted(names)) or '(none)'}"
        )
    if "seed" in names:
        opts.setdefault("seed", seed)
    return cls(with_options(cfg, opts))
