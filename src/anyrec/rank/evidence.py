"""Collaborative evidence beside the click classifier's text: what other users did with a candidate.

A text cross-encoder sees titles and genres; it cannot see that a candidate is popular or that
people who watched the user's films watched it too, and on ml-100k that is where the retriever's
top 20 leaves most room (``benchmarks/rerank_signal.py``: re-ordering by item-kNN or ALS scores
adds 8–9 % validation NDCG@10, the text classifier nothing). :class:`Evidence` turns an
interaction table into per-(history, candidate) features; :class:`EvidenceRanker` scores a list as
a weighted sum of them, each standardised within the list (the stage re-ranks one list at a time,
so only a candidate's standing among its list-mates matters).

Features (names for ``ClickClassifierConfig.evidence``):

- ``popularity``: log(1 + the candidate's interactions).
- ``cooc``: Σ over the whole history of the cosine between the history item's and the
  candidate's user sets (item-kNN's score).
- ``recent``: the same over the last ``recent`` history items only.

The table is the one the stage was fitted on (for training lists: the one without the held-out
items, so the answer's own interaction is never counted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.rank.stage import standardise

FEATURES = ("popularity", "cooc", "recent")


def parse_features(spec: str) -> tuple[str, ...]:
    """``"popularity,cooc"`` → ``("popularity", "cooc")``; an unknown name is a :class:`ConfigError`."""
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    bad = [n for n in names if n not in FEATURES]
    if bad:
        raise ConfigError(f"ranker.evidence: unknown feature(s) {bad}; choose from {list(FEATURES)}")
    return names


class Evidence:
    """``fit(ds)`` then ``features(histories, candidates) -> (rows, n, len(names))`` (raw values)."""

    def __init__(self, names: Sequence[str], recent: int = 5) -> None:
        self.names = tuple(names)
        self.recent = recent
        self._items: sp.csr_matrix | None = None  # items × users, columns scaled to unit length per item

    def fit(self, ds: Dataset) -> Evidence:
        x = ds.interactions.matrix(ds.n_users, ds.n_items).T.tocsr()
        counts = np.diff(x.indptr).astype(np.float64)  # binary rows: the users who touched the item
        self.log_pop_ = np.log1p(counts)
        self._items = sp.diags(1.0 / np.sqrt(np.maximum(counts, 1.0))) @ x
        self._items = self._items.tocsr()
        return self

    def _cooc(self, history: np.ndarray, cands: np.ndarray) -> np.ndarray:
        assert self._items is not None
        known = history[(history >= 0) & (history < self._items.shape[0])]
        if not len(known):
            return np.zeros(len(cands))
        profile = np.asarray(self._items[known].sum(axis=0)).ravel()
        ok = (cands >= 0) & (cands < self._items.shape[0])
        out = np.zeros(len(cands))
        out[ok] = self._items[cands[ok]] @ profile
        return out

    def features(self, histories: Sequence[np.ndarray], candidates: np.ndarray) -> np.ndarray:
        if self._items is None:
            raise ConfigError("the ranker's evidence is not fitted: call set_evidence(dataset) first")
        rows, n = candidates.shape
        out = np.zeros((rows, n, len(self.names)))
        known = (candidates >= 0) & (candidates < len(self.log_pop_))
        for f, name in enumerate(self.names):
            if name == "popularity":
                out[:, :, f] = np.where(known, self.log_pop_[np.where(known, candidates, 0)], 0.0)
            else:
                for r, h in enumerate(histories):
                    h = np.asarray(h, dtype=np.int64)
                    out[r, :, f] = self._cooc(h[-self.recent:] if name == "recent" else h, candidates[r])
        return out


def standardised(features: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Each feature standardised within each list (:func:`anyrec.rank.stage.standardise`) over the
    list's valid entries (0 where constant); invalid entries become 0."""
    valid = np.ones(features.shape[:2], dtype=bool) if valid is None else valid
    out = np.zeros(features.shape)
    for f in range(features.shape[2]):
        out[:, :, f] = np.where(valid, standardise(np.where(valid, features[:, :, f], np.nan)), 0.0)
    return out


class EvidenceRanker:
    """``score(histories, candidates) = standardised(features) @ weights``: collaborative evidence alone,
    the ablation of the click classifier without its text (and the prior the classifier starts from)."""

    def __init__(self, evidence: Evidence, weights: np.ndarray) -> None:
        self.evidence = evidence
        self.weights = np.asarray(weights, dtype=np.float64)

    def score(self, histories: Sequence[np.ndarray], candidates: np.ndarray) -> np.ndarray:
        return standardised(self.evidence.features(histories, candidates), candidates >= 0) @ self.weights


def fit_weights(features: np.ndarray, offsets: np.ndarray, answers: np.ndarray, valid: np.ndarray,
                steps: int = 300, seed: int = 0) -> tuple[np.ndarray, float]:
    """Listwise softmax regression of the clicked position on ``standardised features @ w + beta · offsets``
    (full batch, Adam): the weights the evidence earns on its own. Returns ``(w, beta)``."""
    import torch

    torch.manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    off = torch.as_tensor(np.where(valid, offsets, 0.0), dtype=torch.float32)
    pad = torch.as_tensor(~valid)
    y = torch.as_tensor(answers, dtype=torch.long)
    w = torch.zeros(features.shape[2], requires_grad=True)
    beta = torch.ones((), requires_grad=True)
    opt = torch.optim.Adam([w, beta], lr=0.05)
    for _ in range(steps):
        logits = (x @ w + beta * off).masked_fill(pad, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach().numpy().astype(np.float64), float(beta.detach())
