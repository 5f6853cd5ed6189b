"""``add(ids, vectors)``; ``search(queries, k) -> (ids, scores)``; filters; save / load.

Metric ``cosine`` uses inner product over unit vectors (scores are cosine similarities);
``ip`` the inner product of the vectors as given (a model whose score is a dot product);
``l2`` uses euclidean distance and returns *negated* squared distances, so that higher is
better for all three. Filters: ``exclude`` (per query) and ``allow`` (one allow-list for all).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.errors import ConfigError

METRICS = ("cosine", "ip", "l2")


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class VectorIndex(ABC):
    """Common part: id bookkeeping, filtering by over-fetching, persistence of the ids."""

    kind = "base"

    def __init__(self, metric: str = "cosine") -> None:
        if metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        self.metric = metric
        self.ids = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` ``(n, dim)`` under integer ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
            raise ConfigError(f"expected vectors of shape (len(ids), dim), got {vectors.shape} for {ids.shape[0]} ids")
        if self.metric == "cosine":
            vectors = _normalise(vectors)
        self._add(vectors)
        self.ids = np.concatenate([self.ids, ids])

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: Sequence[Sequence[int]] | None = None,
        allow: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` ids and scores per query (higher is better); ``-1`` / ``-inf`` pad short rows."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.metric == "cosine":
            q = _normalise(q)
        allowed = None if allow is None else set(np.asarray(allow).tolist())
        extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
        fetch = min(len(self), k + extra if allowed is None else len(self))
        out_ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        out_scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        if fetch == 0:
            return out_ids, out_scores
        pos, scores = self._search(q, fetch)
        for r in range(q.shape[0]):
            banned = set(exclude[r]) if exclude is not None else set()
            n = 0
            for p, s in zip(pos[r], scores[r]):
                if p < 0:
                    continue
                item = int(self.ids[p])
                if item in banned or (allowed is not None and item not in allowed):
                    continue
                out_ids[r, n], out_scores[r, n] = item, s
                n += 1
                if n == k:
                    break
        return out_ids, out_scores

    @abstractmethod
    def _add(self, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into ``self.ids``) and higher-is-better scores, best first."""

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "index_ids.npy", self.ids)
        (folder / "index.json").write_text(json.dumps(self._meta()))
        self._save(folder)

    def _meta(self) -> dict[str, str]:
        return {"kind": self.kind, "metric": self.metric}

    @abstractmethod
    def _save(self, folder: Path) -> None: ...


class ExactIndex(VectorIndex):
    """Brute force in numpy: exact, fine up to a few hundred thousand vectors."""

    kind = "exact"

    def __init__(self, metric: str = "cosine") -> None:
        super().__init__(metric)
        self.vectors: np.ndarray | None = None

    def _add(self, vectors: np.ndarray) -> None:
        self.vectors = vectors if self.vectors is None else np.concatenate([self.vectors, vectors])

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = _exact_scores(self, queries)  # (queries, n)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(scores, order, axis=1)

    def _save(self, folder: Path) -> None:
        np.save(
            folder / "index_vectors.npy", self.vectors if self.vectors is not None else np.zeros((0, 0), np.float32)
        )


class FaissIndex(VectorIndex):
    """A FAISS index built from a factory string (``Flat``, ``HNSW32``, ``IVF256,PQ32`` …).

    Indexes that need training (IVF, PQ) are trained on the first ``add``; IVF lists are
    clamped to the data size so a small catalog still builds.
    """

    kind = "faiss"

    def __init__(self, factory: str = "Flat", metric: str = "cosine", nprobe: int = 16, ef_search: int = 64) -> None:
        super().__init__(metric)
        self.factory = factory
        self.nprobe = nprobe
        self.ef_search = ef_search  # HNSW: candidates kept while searching (recall against speed)
        self.index: Any = None

    def _make(self, dim: int, n: int) -> Any:
        import faiss

        factory = self.factory
        if factory.startswith("IVF"):
            head, _, rest = factory.partition(",")
            lists = int(head[3:])
            # FAISS wants ~39 points per list to train; fewer lists is the honest fallback on small data.
            lists = max(1, min(lists, n // 39))
            factory = f"IVF{lists}" + (f",{rest}" if rest else "")
        space = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        try:
            return faiss.index_factory(dim, factory, space)
        except RuntimeError as exc:
            raise ConfigError(f"FAISS cannot build {self.factory!r} for dimension {dim}: {exc}") from None

    def _add(self, vectors: np.ndarray) -> None:
        if self.index is None:
            self.index = self._make(vectors.shape[1], vectors.shape[0])
        if not self.index.is_trained:
            self.index.train(vectors)
        self.index.add(vectors)
        if hasattr(self.index, "nprobe"):
            self.index.nprobe = self.nprobe

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        assert self.index is not None
        ivf = faiss.try_extract_index_ivf(self.index) if "IVF" in self.factory else None
        if ivf is not None:
            ivf.nprobe = self.nprobe
        if "HNSW" in self.factory:
            faiss.ParameterSpace().set_index_parameter(self.index, "efSearch", max(self.ef_search, k))
        scores, pos = self.index.search(queries, k)
        if self.metric == "l2":
            scores = -scores
        return pos, scores

    def _meta(self) -> dict[str, str]:
        return {
            **super()._meta(),
            "factory": self.factory,
            "nprobe": str(self.nprobe),
            "ef_search": str(self.ef_search),
        }

    def _save(self, folder: Path) -> None:
        import faiss

        if self.index is not None:
            faiss.write_index(self.index, str(folder / "index.faiss"))


def make_index(spec: str = "exact", metric: str = "cosine") -> VectorIndex:
    """``exact`` for numpy brute force; anything else is a FAISS factory string, optionally ``:N`` for
    the search effort (nprobe of IVF, efSearch of HNSW), e.g. ``IVF1024,Flat:48`` or ``HNSW32:256``."""
    if spec in ("exact", "numpy", ""):
        return ExactIndex(metric)
    factory, _, effort = spec.partition(":")
    if not effort:
        return FaissIndex(factory, metric)
    if not effort.isdigit() or int(effort) < 1:
        raise ConfigError(f"index {spec!r}: the part after ':' is the search effort, a whole number, got {effort!r}")
    return FaissIndex(factory, metric, nprobe=int(effort), ef_search=int(effort))


def load_index(folder: str | Path) -> VectorIndex:
    folder = Path(folder)
    meta = json.loads((folder / "index.json").read_text())
    ids = np.load(folder / "index_ids.npy")
    index: VectorIndex
    if meta["kind"] == "exact":
        exact = ExactIndex(meta["metric"])
        exact.vectors = np.load(folder / "index_vectors.npy")
        index = exact
    else:
        import faiss

        fi = FaissIndex(meta["factory"], meta["metric"], int(meta.get("nprobe", 16)), int(meta.get("ef_search", 64)))
        fi.index = faiss.read_index(str(folder / "index.faiss"))
        index = fi
    index.ids = ids
    return index


def recall_against_exact(index: VectorIndex, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Share of each query's exact top ``k`` (brute force by the index's metric over ``vectors``, whose
    row numbers are the ids) that ``index`` returns, averaged over ``queries``. Ties count: a returned
    item scoring as high as the exact k-th is a hit (equal vectors make the exact top k ambiguous)."""
    if not len(queries) or not len(vectors):
        return 1.0
    k = min(k, len(vectors))
    exact = ExactIndex(index.metric)
    exact.add(np.arange(len(vectors)), vectors)
    hits = []
    for start in range(0, len(queries), 32):  # bounded memory: 32 score rows of the catalog at a time
        part = np.ascontiguousarray(queries[start : start + 32], dtype=np.float32)
        q = _normalise(part) if index.metric == "cosine" else part
        scores = _exact_scores(exact, q)  # (32, items)
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
        found, _ = index.search(part, k)
        for r in range(len(part)):
            ids = found[r][found[r] >= 0]
            hits.append(min(k, int((scores[r, ids] >= kth[r] - 1e-6).sum())) / k)
    return float(np.mean(hits))


def _exact_scores(exact: ExactIndex, queries: np.ndarray) -> np.ndarray:
    """Every item's score for each query (higher is better, as ``search`` returns them)."""
    assert exact.vectors is not None
    if exact.metric == "l2":
        return -(
            (queries**2).sum(1, keepdims=True) - 2 * queries @ exact.vectors.T + (exact.vectors**2).sum(1)[None, :]
        )
    return queries @ exact.vectors.T
