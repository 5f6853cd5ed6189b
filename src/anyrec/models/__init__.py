"""Recommenders behind one contract, and the registry of their names."""

from anyrec.models.base import Filters, Recommender
from anyrec.models.baselines import Bias, ItemKNN, Popularity
from anyrec.models.factorization import ALS, BPR

# The one explicit registry of model names (no string-based imports).
MODELS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "als": ALS,
    "bpr": BPR,
    "bias": Bias,
}

__all__ = ["ALS", "BPR", "MODELS", "Bias", "Filters", "ItemKNN", "Popularity", "Recommender"]
