"""Candidate lists from a retriever, and how a ranking of them is scored.

The 20-candidate protocol (LlamaRec's): per test user, the true next item and the retriever's
best ``n - 1`` other items (the user's history excluded), shuffled with a seed so that the
position of the answer tells nothing. Any scorer of those lists — the retriever's own order, a
language model, a classifier — is read with the same pessimistic tie rule as full ranking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anyrec.models.base import Recommender
from anyrec.models.scoring import top_k


def candidate_lists(retriever: Recommender, users: np.ndarray, targets: np.ndarray, n: int = 20,
                    seed: int = 0, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(candidates (users, n), retriever scores (users, n))``: the target and the top ``n - 1``
    others by the retriever (seen items excluded), in a seeded random order per user."""
    rng = np.random.default_rng(seed)
    cands = np.zeros((len(users), n), dtype=np.int64)
    scores = np.zeros((len(users), n), dtype=np.float64)
    for s in range(0, len(users), batch):
        rows = retriever.masked_scores(users[s : s + batch], exclude_seen=True).astype(np.float64)
        for r, row in enumerate(rows):
            t = int(targets[s + r])
            keep = row.copy()
            keep[t] = -np.inf
            picked = np.r_[t, top_k(keep, n - 1)]
            order = rng.permutation(n)
            cands[s + r] = picked[order]
            scores[s + r] = row[picked[order]]
    return cands, scores


def target_ranks(scores: np.ndarray, candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each target among its candidates; ties count against it (pessimistic)."""
    hit = candidates == targets[:, None]
    tscore = np.where(hit, scores, -np.inf).max(axis=1)
    others = ~hit
    return 1 + ((scores >= tscore[:, None]) & others).sum(axis=1)


def list_metrics(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """HitRate@k and NDCG@k (one relevant item) and MRR from target ranks."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}"] = float((ranks <= k).mean())
        out[f"ndcg@{k}"] = float(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0).mean())
    out["mrr"] = float((1.0 / ranks).mean())
    return out
