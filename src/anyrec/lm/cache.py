"""On-disk embedding cache keyed by (model identity, hash of the cleaned text).

One SQLite file per cache folder; rows are ``(model, text_sha256) -> float32 bytes``. A second
run over the same catalog re-embeds nothing; a catalog where 10 texts changed re-embeds those 10.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A persistent map from (model, text) to its vector. Safe to share between threads (the service
    embeds in its request threads): one connection, used under a lock."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vec (model TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, "
            "data BLOB NOT NULL, PRIMARY KEY (model, key))"
        )
        self._db.commit()

    def get_many(self, model: str, keys: list[str]) -> dict[str, np.ndarray]:
        """Vectors found for ``keys`` (missing keys are simply absent)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            self._get_chunks(model, unique, found)
        return found

    def _get_chunks(self, model: str, unique: list[str], found: dict[str, np.ndarray]) -> None:
        for start in range(0, len(unique), 900):  # stay under SQLite's host-parameter limit
            chunk = unique[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, data FROM vec WHERE model = ? AND key IN ({marks})", [model, *chunk])
            for key, data in rows:
                found[key] = np.frombuffer(data, dtype=np.float32)

    def put_many(self, model: str, keys: list[str], vectors: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO vec (model, key, dim, data) VALUES (?, ?, ?, ?)",
                [(model, k, int(v.shape[0]), v.tobytes()) for k, v in zip(keys, vecs)],
            )
            self._db.commit()

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._db.execute("SELECT COUNT(*) FROM vec").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM vec WHERE model = ?", [model]).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
