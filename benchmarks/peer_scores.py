"""Scores computed elsewhere (a peer library), ranked by anyrec's own evaluator.

A peer's evaluation loop has its own masking, tie and user rules. To compare like with like,
a peer's raw full-catalog scores are read back and handed to :func:`anyrec.eval.evaluate_model`
as if they came from an anyrec model, so every row of a leaderboard passes the same code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.models.base import Recommender


class ExternalScores(Recommender):
    """A fixed ``(users, items)`` score table from outside, behind the recommender contract.

    Items the peer never saw (absent from its files) get ``-inf``: the peer cannot rank them.
    Scoring a user without a row is an error, never a silent zero: a peer that skipped a test
    user must not be scored as if it had ranked them.
    """

    name = "external"

    def __init__(self, user_index: np.ndarray, scores: np.ndarray, label: str = "external") -> None:
        super().__init__(config=object())
        if scores.ndim != 2 or scores.shape[0] != len(user_index):
            raise ConfigError(f"{label}: scores must be (users, items) with one row per user, got {scores.shape} "
                              f"for {len(user_index)} users")
        self._label = label
        self._rows = {int(u): r for r, u in enumerate(user_index)}
        self._scores = scores

    @property
    def label(self) -> str:
        """The peer's name (how its row is named)."""
        return self._label

    @classmethod
    def from_raw(cls, ds: Dataset, users: list[str] | np.ndarray, items: list[str] | np.ndarray, scores: np.ndarray,
                 label: str = "external") -> ExternalScores:
        """Map a peer's raw user and item ids onto ``ds``'s indices; unknown ids are an error naming them."""
        user_index = np.array([ds.users.index(str(u), what=f"{label} user") for u in users], dtype=np.int64)
        cols = np.array([ds.catalog.ids.index(str(i), what=f"{label} item") for i in items], dtype=np.int64)
        full = np.full((len(user_index), ds.n_items), -np.inf, dtype=np.float32)
        full[:, cols] = scores
        return cls(user_index, full, label)

    @classmethod
    def load(cls, ds: Dataset, path: str | Path, label: str = "external") -> ExternalScores:
        """Read an ``.npz`` with ``users``, ``items`` (raw ids) and ``scores`` (users × items)."""
        with np.load(path, allow_pickle=False) as z:
            missing = {"users", "items", "scores"} - set(z.files)
            if missing:
                raise ConfigError(
                    f"{path}: missing array(s) {', '.join(sorted(missing))}; expected users, items, scores"
                )
            return cls.from_raw(ds, z["users"], z["items"], z["scores"], label)

    def _fit(self, ds: Dataset) -> None:
        pass  # the scores were learned elsewhere

    def score(self, users: np.ndarray) -> np.ndarray:
        missing = [int(u) for u in users if int(u) not in self._rows]
        if missing:
            raise ConfigError(f"{self.label}: no scores for user index {missing[0]} ({len(missing)} user(s) missing)")
        return self._scores[[self._rows[int(u)] for u in users]]
