"""A blend of two fitted models (``auto``'s blend candidate): ``w · z(a) + (1 − w) · z(b)``, each part's scores
standardised per user (mean 0, spread 1 over the catalog), the weight ``w`` chosen on validation.

The parts are fitted as they would be alone (their own options, searched as usual); the blend only re-weighs
their scores, for fitted users (:meth:`score`) and live histories (:meth:`score_history`) alike, so it serves
wherever both parts do. Explanations come from the part with the larger weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.models.base import Recommender


@dataclass(frozen=True)
class BlendConfig:
    """Attributes:
        weight: the first part's share ``w`` (0 = the second part alone, 1 = the first), chosen on validation.
        parts: the parts' registry names, first and second (said in tables and saved folders).
    """

    weight: float = 0.5
    parts: tuple[str, ...] = ()


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each row (a user's scores) centred and divided by its spread; a flat row stays 0. Non-finite scores (items
    a model cannot score) are read as the row's lowest finite one."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        return standardised(s[None, :])[0]
    finite = np.isfinite(s)
    if not finite.all():
        low = np.where(finite, s, np.inf).min(axis=1, keepdims=True)
        s = np.where(finite, s, np.where(np.isfinite(low), low, 0.0))
    mean = s.mean(axis=1, keepdims=True)
    spread = s.std(axis=1, keepdims=True)
    return (s - mean) / np.where(spread > 1e-12, spread, 1.0)


class Blend(Recommender):
    """``w · z(first) + (1 − w) · z(second)`` (see the module doc)."""

    name = "blend"
    Config = BlendConfig
    tuning_grid: ClassVar[dict[str, list[Any]]] = {"weight": [round(0.1 * i, 1) for i in range(11)]}

    def __init__(self, config: Any = None, *, parts: tuple[Recommender, Recommender] | None = None, **kw: Any) -> None:
        super().__init__(config, **kw)
        self.parts = parts
        if parts is not None:
            self.config = BlendConfig(weight=self.config.weight, parts=(parts[0].name, parts[1].name))

    @property
    def label(self) -> str:
        """How tables name it: ``blend(first+second)``."""
        return f"blend({'+'.join(self.config.parts)})"

    def _both(self) -> tuple[Recommender, Recommender]:
        if self.parts is None or len(self.parts) != 2:
            raise ConfigError("a blend needs its two parts (Blend(parts=(first, second)))")
        return self.parts[0], self.parts[1]

    def _fit(self, ds: Dataset) -> None:
        for part in self._both():  # parts fitted already (auto's candidates) are kept as they are
            if not part.is_fitted():
                part.fit(ds, progress=self.progress)

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        for part in self._both():
            part.set_history(ds)

    def score(self, users: np.ndarray) -> np.ndarray:
        a, b = self._both()
        w = float(self.config.weight)
        return w * standardised(a.score(users)) + (1.0 - w) * standardised(b.score(users))

    def score_history(
        self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None
    ) -> np.ndarray | None:
        a, b = self._both()
        sa, sb = a.score_history(items, weights, values), b.score_history(items, weights, values)
        if sa is None or sb is None:
            return None
        w = float(self.config.weight)
        return w * standardised(sa) + (1.0 - w) * standardised(sb)

    def history_attribution(
        self,
        history: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        targets: np.ndarray,
        values: np.ndarray | None,
    ) -> tuple[np.ndarray, str] | None:
        a, b = self._both()
        lead = a if float(self.config.weight) >= 0.5 else b
        found = lead.history_attribution(history, items, weights, targets, values)
        return None if found is None else (found[0], f"{found[1]} ({lead.name}, the blend's larger part)")

    def item_neighbours(self, item: int) -> np.ndarray | None:
        """The parts' item–item rows blended as their scores are (one part's alone where the other has none)."""
        a, b = self._both()
        na, nb = a.item_neighbours(item), b.item_neighbours(item)
        if na is None or nb is None:
            return na if nb is None else nb
        w = float(self.config.weight)
        return w * standardised(na) + (1.0 - w) * standardised(nb)

    def reads_text(self) -> bool:
        return any(p.reads_text() for p in self._both())

    def learns_from_interactions(self) -> bool:
        return any(p.learns_from_interactions() for p in self._both())

    def sub_models(self) -> tuple[Recommender, ...]:
        return self._both()

    def take_sub_models(self, parts: tuple[Recommender, ...]) -> None:
        if len(parts) != 2:
            raise ConfigError(f"a saved blend holds two parts, not {len(parts)}")
        self.parts = (parts[0], parts[1])

    def reset_checks(self) -> None:
        super().reset_checks()
        for part in self._both():
            part.reset_checks()
