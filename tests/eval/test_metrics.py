"""Hand-computed metric cases."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyrec.eval import metrics as M

# user 0: hits at ranks 1 and 3 of 4, 2 relevant; user 1: no hit, 1 relevant; user 2: hit at rank 2, 3 relevant
HITS = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
NREL = np.array([2, 1, 3])


def test_recall_precision_hit():
    assert M.recall(HITS, NREL, 4).tolist() == [1.0, 0.0, 1 / 3]
    assert M.precision(HITS, NREL, 4).tolist() == [0.5, 0.0, 0.25]
    assert M.hit_rate(HITS, NREL, 2).tolist() == [1.0, 0.0, 1.0]
    assert M.recall(HITS, NREL, 1).tolist() == [0.5, 0.0, 0.0]


def test_f1_is_per_user_harmonic_mean():
    p, r = 0.25, 1 / 3
    assert M.f1(HITS, NREL, 4) == pytest.approx([2 * 0.5 * 1.0 / 1.5, 0.0, 2 * p * r / (p + r)])


def test_ndcg_binary_with_ideal_over_min_relevant_k():
    d = [1 / math.log2(i + 2) for i in range(4)]
    expect0 = (d[0] + d[2]) / (d[0] + d[1])
    expect2 = d[1] / (d[0] + d[1] + d[2])
    assert M.ndcg(HITS, NREL, 4) == pytest.approx([expect0, 0.0, expect2])
    # K=2, user 2 has 3 relevant: the ideal counts only 2 positions.
    assert M.ndcg(HITS, NREL, 2)[2] == pytest.approx(d[1] / (d[0] + d[1]))


def test_mrr_and_map():
    assert M.mrr(HITS, NREL, 4).tolist() == [1.0, 0.0, 0.5]
    # AP user 0: (1/1 + 2/3) / min(2,4); user 2: (1/2) / min(3,4)
    assert M.average_precision(HITS, NREL, 4) == pytest.approx([(1 + 2 / 3) / 2, 0.0, 0.5 / 3])


def test_coverage_ignores_padding():
    top = np.array([[0, 1, -1], [1, 2, -1]])
    assert M.coverage(top, 2, 10) == pytest.approx(0.3)
    assert M.coverage(top, 1, 4) == pytest.approx(0.5)


def test_rating_errors():
    assert M.mae(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == pytest.approx(0.5)
    assert M.rmse(np.array([1.0, 3.0]), np.array([3.0, 3.0])) == pytest.approx(math.sqrt(2))


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        M.recall(HITS, NREL, 5)
    with pytest.raises(ValueError):
        M.recall(HITS, np.array([1, 0, 1]), 2)


@given(st.lists(st.lists(st.booleans(), min_size=5, max_size=5), min_size=1, max_size=8), st.integers(1, 5))
def test_metric_invariants(rows, k):
    hits = np.array(rows, dtype=bool)
    nrel = np.maximum(hits.sum(1), 1) + 1
    for name, fn in M.PER_USER.items():
        vals = fn(hits, nrel, k)
        assert ((vals >= 0) & (vals <= 1 + 1e-12)).all(), name
    # recall and ndcg do not decrease with K; a perfect list scores 1.
    assert (M.recall(hits, nrel, 5) >= M.recall(hits, nrel, k) - 1e-12).all()
    perfect = np.ones_like(hits)
    assert M.ndcg(perfect, np.full(len(rows), 5), k) == pytest.approx(np.ones(len(rows)))
