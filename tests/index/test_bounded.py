"""The threshold rule: the top k of a sum of terms from short lists equals the full ranking's,
or it declines (``None``); never a wrong list."""

from __future__ import annotations

import numpy as np
import pytest

from anyrec.index.bounded import Term, bounded_top_k, index_term, order_term
from anyrec.index.vector import make_index
from anyrec.models.scoring import top_k


def lists_of(parts: list[np.ndarray], fetch: int) -> list[Term]:
    """Exact best-first lists of each term (what a perfect index returns)."""
    return [order_term(np.argsort(-p, kind="stable"), p, fetch) for p in parts]


@pytest.mark.parametrize("seed", range(30))
def test_the_cut_is_the_full_ranking_or_declines(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 400, int(rng.integers(1, 20))
    # Tie-heavy terms on some seeds: rounded values give many equal sums.
    parts = [np.round(rng.normal(size=n), 1 if seed % 3 == 0 else 6) for _ in range(int(rng.integers(1, 4)))]
    total = np.sum(parts, axis=0)
    allowed = rng.random(n) > 0.1
    found = bounded_top_k(lists_of(parts, int(rng.integers(k, 120))), lambda c: total[c], k, allowed)
    truth = top_k(np.where(allowed, total, -np.inf), k)
    if found is not None:
        np.testing.assert_array_equal(found[0], truth)
        np.testing.assert_allclose(found[1], total[truth])


def test_declines_when_an_item_outside_the_lists_could_win() -> None:
    a = np.array([1.0, 0.9, 0.0, 0.0, 0.8])  # item 4 is third in a, last-but-one in b
    b = np.array([0.0, 0.0, 0.5, 0.4, 0.3])
    terms = lists_of([a, b], 2)  # lists {0, 1} and {2, 3}; item 4 (1.1) beats everything listed
    assert bounded_top_k(terms, lambda c: (a + b)[c], 1, np.ones(5, dtype=bool)) is None
    items, _ = bounded_top_k(lists_of([a, b], 5), lambda c: (a + b)[c], 1, np.ones(5, dtype=bool))  # complete lists
    assert items.tolist() == [4]


def test_slack_for_parts_no_list_covers_makes_it_decline() -> None:
    a = np.linspace(1, 0, 50)
    terms = lists_of([a], 10)
    assert bounded_top_k(terms, lambda c: a[c], 3, np.ones(50, dtype=bool)) is not None
    assert bounded_top_k(terms, lambda c: a[c], 3, np.ones(50, dtype=bool), slack=1.0) is None


def test_index_term_declines_when_the_index_searched_too_little() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 16)).astype(np.float32)
    ivf = make_index("IVF50,Flat:1")  # one list probed: far fewer than 1,500 vectors seen
    ivf.add(range(2000), vectors)
    assert index_term(ivf, vectors[0], 1500) is None
    flat = make_index("Flat", "ip")
    flat.add(range(2000), vectors)
    term = index_term(flat, vectors[0], 100, scale=2.0)
    assert term is not None and len(term.ids) == 100
    assert term.floor == pytest.approx(2.0 * np.sort(vectors @ vectors[0])[-100], rel=1e-5)
    assert index_term(flat, vectors[0], 5000).floor == -np.inf  # every item listed: nothing outside
