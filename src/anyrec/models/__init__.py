"""Recommenders behind one contract, and the registry of their names."""

from anyrec.models.base import Filters, Recommender
from anyrec.models.baselines import Bias, ItemKNN, Popularity, Random
from anyrec.models.factorization import ALS, BPR
from anyrec.models.generative import Generative
from anyrec.models.registry import MODELS, build_model
from anyrec.models.sequential import SASRec, Sequential
from anyrec.models.zeroshot import ZeroShot

__all__ = [
    "ALS",
    "BPR",
    "MODELS",
    "Bias",
    "Filters",
    "Generative",
    "ItemKNN",
    "Popularity",
    "Random",
    "Recommender",
    "SASRec",
    "Sequential",
    "ZeroShot",
    "build_model",
]
