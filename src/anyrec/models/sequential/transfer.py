"""Transfer to a new catalog: the text-only sequential network pretrained across catalogs
(:mod:`anyrec.models.sequential.pretrain`, ``anyrec pretrain-rec``) scoring a catalog it never saw, as
it is (items are their text) or fine-tuned there from its weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.models.base import Recommender
from anyrec.models.sequential.config import TransferConfig, TransferTunedConfig
from anyrec.models.sequential.model import Sequential


class Transfer(Sequential):
    """The text-only sequential network pretrained across catalogs (``anyrec pretrain-rec``) on a new one:
    no training there (``epochs`` 0), or fine-tuned from it (:class:`TransferTuned`)."""

    name = "transfer"
    Config = TransferConfig
    training_grid: ClassVar[dict[str, list[Any]]] = {}  # its architecture is the pretrained one

    def _train(self, ds: Dataset, validate: Callable[[Recommender], float] | None) -> None:
        if not self.config.init:
            raise ConfigError(f"{self.name} needs a pretrained model: {self.name}.init=DIR or --init DIR "
                              "(a folder written by `anyrec pretrain-rec`)")
        super()._train(ds, validate)

    def learns_from_interactions(self) -> bool:
        return self.config.epochs > 0  # without epochs the rows only feed its popularity prior, as zero-shot's


class TransferTuned(Transfer):
    """:class:`Transfer` fine-tuned on the target's training rows, early-stopped on validation."""

    name = "transfer-tuned"
    Config = TransferTunedConfig
