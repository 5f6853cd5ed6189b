"""The sequential model served from vector indexes: a live history's score split into inner products
(the model-space index and the text index, plus the prior's own order), and the exact score of the
candidates they return (:mod:`anyrec.serve.retrieval`).

A mixin of :class:`anyrec.models.sequential.Sequential`, kept apart so the model file reads in one sitting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anyrec.models.base import IndexQuery


class IndexSide:
    """Reads the model's network (``_queries``, ``_item_side``), its text terms (``_unit_text_table``,
    ``_text_profiles``, ``_prior``), ``_minus_dislikes`` and ``config``."""

    config: Any
    _queries: Any
    _item_side: Any
    _unit_text_table: Any
    _text_profiles: Any
    _prior: Any
    _minus_dislikes: Any

    def score_candidates(self, parts: tuple[np.ndarray, np.ndarray | None, float], items: np.ndarray,
                         weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """:meth:`score_history` over ``candidates``, from the ``parts`` :meth:`retrieval_queries`
        returned for the same history (no second pass through the transformer)."""
        q, profile, _ = parts
        scores = (self.item_space()[candidates] @ q).astype(np.float64)
        if profile is not None:
            scores += self.config.text_blend * (self._unit_text_table()[candidates] @ profile)
        prior = self._prior(candidates)
        if prior is not None:
            scores += prior
        return self._minus_dislikes(
            scores, np.asarray(items, dtype=np.int64), np.asarray(weights, dtype=np.float64), candidates
        )

    def retrieval_queries(
        self, items: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, float] | None:
        """A live history's score as inner products, for retrieval from vector indexes:
        ``(q, p, slack)`` with score = ``item_space() @ q + text_blend * unit_text @ p - dislike``,
        where the dislike part adds at most ``slack``; ``p`` is ``None`` without a text term.
        ``None`` for a history without positive events (nothing to search with)."""
        items = np.asarray(items, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        seq = items[weights > 0] + 1
        if not len(seq):
            return None
        _, q = self._queries([seq])
        query = q[0].cpu().numpy().astype(np.float32) * (
            self.config.temperature if self.config.temperature > 0 else 1.0
        )
        text = self.config.text_blend > 0 and self.config.use_text
        profile = self._text_profiles([seq])[0] if text else None
        return query, profile, 0.0  # dislikes only lower scores (kin pushes ≥ 0): the terms bound every item

    def item_space(self) -> np.ndarray:
        """The items' vectors in the model's scoring space ``(n_items, hidden)`` (for a vector index)."""
        return np.ascontiguousarray(self._item_side().cpu().numpy(), dtype=np.float32)

    def index_tables(self, approximate: bool) -> dict[str, tuple[np.ndarray, str | None]]:
        """With an approximate spec: the items in the model's scoring space (inner product) and, when it reads
        text, the pretrained text vectors (its text-blend term); exact search scores every item instead."""
        if not approximate:
            return {}
        tables: dict[str, tuple[np.ndarray, str | None]] = {"model": (self.item_space(), "ip")}
        if self.config.use_text:
            tables["text"] = (self._unit_text_table(), "cosine")
        return tables

    def index_queries(self, items: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        queries = self.retrieval_queries(items, weights)
        out = {} if queries is None else {"model": queries[0]}
        if self.config.use_text:
            out["text"] = self._text_profiles([np.asarray(items, dtype=np.int64) + 1])[0]
        return out

    def retrieval_indexes(self) -> tuple[str, ...]:
        return ("model", "text") if self.config.text_blend > 0 and self.config.use_text else ("model",)

    def index_query(
        self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None
    ) -> IndexQuery | None:
        """``<item, q>`` in the model's space plus ``text_blend * cos(item, profile)`` plus the prior: the
        model-space index and the text index give two lists, the prior its own order. ``None`` with ``kernel``
        (no single query vector: every item is scored)."""
        queries = self.retrieval_queries(items, weights) if self.config.kernel <= 0 else None
        if queries is None:
            return None
        q, profile, slack = queries
        terms = {"model": (q, 1.0)}
        if profile is not None:
            terms["text"] = (profile, float(self.config.text_blend))
        return IndexQuery(
            terms, lambda cand: self.score_candidates(queries, items, weights, cand), self._prior(), slack
        )
