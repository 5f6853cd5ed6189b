"""The prefix trie of the catalog's codes, as arrays, for constrained beam search.

Level ``l`` has one node per distinct code prefix of length ``l`` (the root is level 0's node
0). ``child[l][node, code]`` is the node reached at level ``l + 1`` (at the last level: the
item index), or -1 where no item continues the prefix that way. ``leaves[l][node]`` counts the
items under a node, so a request that excludes items (seen ones, a filter) can tell which
prefixes still lead somewhere: a prefix is open while it has more leaves than excluded leaves.
Decoding only ever follows ``child`` entries that exist, so every generated code is an item.
"""

from __future__ import annotations

import numpy as np


class CodeTrie:
    """Trie over full item codes ``(items, depth)``; ``sizes[l]`` codes are possible at level ``l``."""

    def __init__(self, codes: np.ndarray, sizes: list[int]) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        self.depth = codes.shape[1]
        self.sizes = list(sizes)
        self.n_items = len(codes)
        self.child: list[np.ndarray] = []
        self.leaves: list[np.ndarray] = []
        self.path = np.zeros((len(codes), self.depth), dtype=np.int64)  # node of each item at each level
        node = np.zeros(len(codes), dtype=np.int64)
        n_nodes = 1
        for level in range(self.depth):
            self.path[:, level] = node
            self.leaves.append(np.bincount(node, minlength=n_nodes).astype(np.int64))
            table = np.full((n_nodes, sizes[level]), -1, dtype=np.int64)
            if level == self.depth - 1:
                if len(codes):
                    pairs = node * sizes[level] + codes[:, level]
                    if len(np.unique(pairs)) != len(pairs):
                        raise ValueError("two items share one full code; codes must be unique")
                table[node, codes[:, level]] = np.arange(len(codes))
            else:
                pairs = node * sizes[level] + codes[:, level]
                uniq, nxt = np.unique(pairs, return_inverse=True)
                table.reshape(-1)[uniq] = np.arange(len(uniq))
                node, n_nodes = nxt.ravel(), len(uniq)
            self.child.append(table)

    def item_of(self, codes: np.ndarray) -> np.ndarray:
        """Item index of each full code row, -1 where the code is no item."""
        codes = np.asarray(codes, dtype=np.int64)
        node = np.zeros(len(codes), dtype=np.int64)
        for level in range(self.depth):
            c = codes[:, level]
            ok = (node >= 0) & (c >= 0) & (c < self.sizes[level])
            nxt = np.full(len(codes), -1, dtype=np.int64)
            nxt[ok] = self.child[level][node[ok], c[ok]]
            node = nxt
        return node

    def size_at(self, level: int) -> int:
        """Nodes at ``level``; level ``depth`` is the items themselves."""
        return self.n_items if level == self.depth else len(self.leaves[level])

    def leaf_counts(self, allowed: np.ndarray | None = None) -> list[np.ndarray]:
        """Items under each node per level (``depth + 1`` arrays, the last one per item), counting
        only the ``allowed`` item indices when given (a category, the cold items …)."""
        weight = np.ones(self.n_items, dtype=np.int64)
        if allowed is not None:
            weight = np.zeros(self.n_items, dtype=np.int64)
            weight[np.asarray(allowed, dtype=np.int64)] = 1
        out = [np.bincount(self.path[:, lv], weights=weight, minlength=self.size_at(lv)).astype(np.int64)
               for lv in range(self.depth)]
        return [*out, weight]

    def exclusions(self, rows: np.ndarray, items: np.ndarray, leaves: list[np.ndarray] | None = None
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Excluded leaves per ``row * size_at(level) + node`` key, per level (``depth + 1`` tables),
        for (request row, excluded item) pairs; with ``leaves`` (from :meth:`leaf_counts`) only the
        exclusions of allowed items count, since the others were never in those counts."""
        rows, items = np.asarray(rows, dtype=np.int64), np.asarray(items, dtype=np.int64)
        if leaves is not None:
            keep = leaves[-1][items] > 0
            rows, items = rows[keep], items[keep]
        pairs = np.unique(rows * self.n_items + items)  # each (row, item) once
        rows, items = pairs // self.n_items, pairs % self.n_items
        out = []
        for level in range(self.depth + 1):
            node = self.path[items, level] if level < self.depth else items
            out.append(np.unique(rows * self.size_at(level) + node, return_counts=True))
        return out

    def open_children(self, level: int, nodes: np.ndarray, rows: np.ndarray, leaves: list[np.ndarray],
                      blocked: list[tuple[np.ndarray, np.ndarray]] | None) -> np.ndarray:
        """``(len(nodes), sizes[level])`` mask of the codes that lead to at least one item that is
        allowed (``leaves``, from :meth:`leaf_counts`) and not excluded for that row (``blocked``,
        from :meth:`exclusions`); ``rows`` are the request rows of the beams."""
        kids = self.child[level][nodes]  # (beams, codes)
        ok = kids >= 0
        left = np.where(ok, leaves[level + 1][np.maximum(kids, 0)], 0)
        if blocked and len(blocked[level + 1][0]):
            keys, counts = blocked[level + 1]
            r, c = np.nonzero(ok)
            query = rows[r] * self.size_at(level + 1) + kids[r, c]
            at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
            hit = keys[at] == query
            left[r[hit], c[hit]] -= counts[at[hit]]
        return left > 0
