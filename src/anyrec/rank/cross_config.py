"""The click classifier's settings (:class:`ClickClassifierConfig`) and ``ranker.FIELD=VALUE`` options read into
them, checked before any model is fitted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anyrec.errors import ConfigError
from anyrec.rank.evidence import parse_features


@dataclass(frozen=True)
class ClickClassifierConfig:
    """Attributes:
        encoder: a Hugging Face encoder name or folder (``default`` = the offline MiniLM).
        history: most recent history items in the left text.
        max_length: tokens per pair.
        negatives: hard negatives per positive.
        positions: training positions per user (the latest ones of the training history).
        epochs, lr, batch_size, warmup: the optimiser; ``patience`` epochs without a better validation stop it.
        max_minutes: time budget for training (0 = none).
        threads: torch CPU threads (0 = torch's default); device: ``cpu``, ``cuda`` or ``auto``.
        resume: continue from the checkpoint in the output folder (same pairs, same config).
        holdout: 0 = pointwise pairs from the training rows (``positions``, ``negatives``); n > 0 =
            listwise training on lists from a second retriever fitted without each user's last n
            training items: for each of those n positions, the retriever's top ``depth`` for the
            history before it, kept where the clicked item is among them (the lists the stage sees
            at serving time, from a retriever that never trained on the answer).
        list_negatives: with ``holdout``, train on the clicked item and this many of the list's
            other items (a seeded draw per list; 0 = the whole list): more lists for the same time.
        evidence: with ``holdout``, collaborative features added to the text's logit with learned
            weights (comma-separated names from :data:`anyrec.rank.evidence.FEATURES`, e.g.
            ``popularity,cooc,recent``; empty = the text alone). The weights start from what the
            features earn on their own, so the encoder learns what they miss.
    """

    encoder: str = "default"
    history: int = 5
    max_length: int = 128
    negatives: int = 4
    positions: int = 3
    epochs: int = 3
    lr: float = 3e-5
    batch_size: int = 32
    warmup: float = 0.1
    patience: int = 1
    max_minutes: float = 0.0
    threads: int = 0
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    holdout: int = 0
    list_negatives: int = 0
    evidence: str = ""


def ranker_config(options: dict[str, Any]) -> ClickClassifierConfig:
    """``ranker.FIELD=VALUE`` options → a config; an unknown field or feature name is a :class:`ConfigError`
    naming it (raised before any model is fitted)."""
    fields = set(ClickClassifierConfig.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(
            f"unknown ranker option(s) {', '.join('ranker.' + u for u in unknown)}; known: {', '.join(sorted(fields))}"
        )
    cfg = ClickClassifierConfig(**options)
    if parse_features(cfg.evidence) and cfg.holdout <= 0:
        raise ConfigError("ranker.evidence needs listwise training: set ranker.holdout (e.g. 3)")
    return cfg
