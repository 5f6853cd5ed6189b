"""The shared feedback rules: signed ratings, long + short term weights, bounded kin pushes, the pooled kernel."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyrec.errors import ConfigError
from anyrec.models.feedback import RatingScale, kin_push, live_term_weights, term_weights
from anyrec.models.textvectors import history_order, kernel_scores


def unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_rating_is_a_signed_weight_on_the_declared_scale():
    scale = RatingScale(1, 5, 2.5)
    np.testing.assert_allclose(scale.weight(np.array([5, 4, 3, 2.5, 2, 1])), [1, 0.6, 0.2, 0, -1 / 3, -1])
    assert scale.weight(9.0) == 1.0  # clipped to the scale
    with pytest.raises(ConfigError, match="low < neutral < high"):
        RatingScale(1, 5, 5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=30), st.sampled_from([0.0, 1.0, 3.0]), st.floats(0, 1))
def test_each_term_sums_to_one_per_user(groups, half_life, short_term):
    group = np.sort(np.array(groups))
    from_end = np.zeros(len(group))
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        from_end[rows] = np.arange(len(rows))[::-1]
    w = term_weights(from_end, group, 4, half_life, short_term)
    for g in np.unique(group):
        assert w[group == g].sum() == pytest.approx(1.0)
    if half_life > 0 and short_term > 0 and len(group) > 1:
        latest = [np.flatnonzero(group == g)[-1] for g in np.unique(group)]
        assert all(w[i] == w[group == group[i]].max() for i in latest)


def test_the_short_term_share_is_what_it_says():
    w = live_term_weights(10, 1.0, 0.25)
    flat = np.full(10, 0.1)
    r = 0.5 ** np.arange(10)[::-1]
    np.testing.assert_allclose(w, 0.75 * flat + 0.25 * r / r.sum())


def test_a_push_reaches_only_the_kin_and_is_bounded():
    table = unit(50)
    history = np.array([3, 4])
    push = kin_push(table, np.array([7]), np.array([-1.0]), 5, history=history)
    cos = table @ table[7]
    cos[[7, 3, 4]] = -np.inf
    kin = set(np.argsort(-cos)[:5].tolist())
    assert set(np.flatnonzero(push > 0).tolist()) == kin
    assert push.max() <= 1.0 and push[list(kin)].min() >= 0.5  # the k-th nearest: half the push
    assert push[7] == 0 and push[3] == 0 and push[4] == 0  # the item itself is hidden; the history is not listed
    assert np.argmax(push) == np.argmax(cos)  # the nearest is pushed most
    weak = kin_push(table, np.array([7]), np.array([-0.25]), 5, history=history)
    np.testing.assert_allclose(weak, push * 0.25)
    np.testing.assert_allclose(
        kin_push(table, np.array([7]), np.array([-1.0]), 5, candidates=np.array([1, 2]), history=history), push[[1, 2]]
    )


def test_the_pooled_kernel_adds_up_and_tends_to_the_closest_item():
    table = unit(30, seed=1)
    items, weights = np.array([2, 5, 5, 9]), np.array([1.0, 0.5, 0.5, -1.0])  # the negative one is not pooled
    scores, shares = kernel_scores(table, items, weights, 0.1)
    np.testing.assert_allclose(shares.sum(0), scores, atol=1e-12)
    cos = table[[2, 5]] @ table.T
    assert (scores <= cos.max(0) + 1e-12).all() and (scores >= cos.min(0) - 1e-12).all()
    sharp, _ = kernel_scores(table, items, weights, 1e-3)
    np.testing.assert_allclose(sharp, cos.max(0), atol=0.01)
    placed = history_order(items, weights, np.array([9, 5, 2]), shares)
    np.testing.assert_allclose(placed[0], 0.0)
    np.testing.assert_allclose(placed[1:], shares[::-1])


def test_the_kernel_table_gives_the_same_scores():
    import scipy.sparse as sp

    from anyrec.models.textvectors import history_kernel_scores, kernel_table, pooled_scores

    table_vectors = unit(40, seed=2).astype(np.float32)
    items, weights = np.array([1, 7, 7, 30]), np.array([0.2, 0.3, 0.1, 0.4])
    direct, _ = kernel_scores(table_vectors, items, weights, 0.05)
    table = kernel_table(table_vectors, 0.05)
    np.testing.assert_allclose(history_kernel_scores(table_vectors, items, weights, 0.05, table), direct, atol=1e-5)
    rows = sp.csr_matrix((weights, (np.zeros(4, dtype=int), items)), shape=(2, 40))  # the second row: no history
    both = pooled_scores(rows, table, 0.05)
    np.testing.assert_allclose(both[0], direct, atol=1e-5)
    assert (both[1] == 0).all()


def test_the_batched_pooled_kernel_equals_the_kernel_of_each_history():
    from anyrec.models.textvectors import kernel_scores, pooled_kernel

    rng = np.random.default_rng(3)
    unit = rng.normal(size=(40, 8)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    histories = [(np.array([3, 3, 7]), np.array([0.5, 0.25, 1.0])),  # a repeated item: its weights add up
                 (np.array([1, 2, 9, 30]), np.array([1.0, -1.0, 0.2, 2.0])),  # a negative weight: left out
                 (np.array([5]), np.array([-1.0])),  # nothing positive: zeros
                 (np.array([], dtype=np.int64), np.array([])),
                 (np.arange(20), rng.random(20) + 0.1)]
    targets = np.array([0, 7, 39])
    for block in (1 << 24, 50):  # everything in one block, and blocks of a history or two
        got = pooled_kernel(unit, histories, 0.1, block=block)
        cols = pooled_kernel(unit, histories, 0.1, targets, block=block)
        for r, (items, weights) in enumerate(histories):
            want = kernel_scores(unit, items, weights, 0.1)[0]
            np.testing.assert_allclose(got[r], want, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(cols[r], want[targets], rtol=1e-6, atol=1e-6)


def test_the_pooled_kernel_keeps_each_block_within_its_budget(monkeypatch):
    """A block is padded to its longest history: short and long histories together must not pass ``block``
    similarities (sized by the shortest, one block on a 50,000-user log asked for 36 GB)."""
    import torch

    from anyrec.models.textvectors import pooled_kernel

    rng = np.random.default_rng(4)
    unit = rng.normal(size=(30, 4)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    histories = [(np.array([i % 30]), np.array([1.0])) for i in range(40)] + [(np.arange(30), np.ones(30))] * 3
    shapes: list[tuple[int, ...]] = []
    einsum = torch.einsum

    def watch(eq, *ops):
        shapes.append((*ops[0].shape[:2], ops[1].shape[0]))
        return einsum(eq, *ops)

    monkeypatch.setattr(torch, "einsum", watch)
    pooled_kernel(unit, histories, 0.1, block=30 * 30 * 2)
    assert shapes and all(b * length * n <= 30 * 30 * 2 or b == 1 for b, length, n in shapes), shapes
    assert sum(b for b, _, _ in shapes) == len(histories)
