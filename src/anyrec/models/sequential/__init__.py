"""The sequential recommender: its settings, its torch network and the model that trains and scores it."""

from anyrec.models.sequential.config import SASRecConfig, SequentialConfig
from anyrec.models.sequential.model import SASRec, Sequential
from anyrec.models.sequential.transfer import Transfer, TransferTuned

__all__ = ["SASRec", "SASRecConfig", "Sequential", "SequentialConfig", "Transfer", "TransferTuned"]
