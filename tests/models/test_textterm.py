"""The sequential family's score-time terms beside the network: the pooled text kernel (zero-shot's, batched)
and the popularity prior, offline, live and through the index query."""

import contextlib
from dataclasses import replace

import numpy as np
import pytest
from tests.models.test_sequential import TINY, successor_task

from anyrec.models.registry import build_model
from anyrec.models.scoring import recency_weights
from anyrec.models.textvectors import kernel_scores


def _fitted():
    ds = successor_task(n_items=12, n_users=30, length=5, seed=7)
    return build_model("sequential", 0, {**TINY, "epochs": 1}).fit(ds), ds


def test_the_batched_kernel_equals_zero_shots_per_user_kernel():
    model, _ = _fitted()
    model.config = replace(model.config, kernel=0.1, half_life=2.0)
    seqs = [np.array([3, 1, 4, 1, 5]), np.array([9]), np.array([], dtype=np.int64), np.arange(1, 13)]
    got = model._text_similarity(seqs)
    unit = model._unit_text_table()
    for r, s in enumerate(seqs):
        if not len(s):
            assert (got[r] == 0).all()
            continue
        want, _ = kernel_scores(unit, s - 1, recency_weights(np.arange(len(s))[::-1], 2.0), 0.1)
        np.testing.assert_allclose(got[r], want, rtol=1e-4, atol=1e-5)
    # a column subset scores the same as those columns of the whole table
    np.testing.assert_allclose(
        model._text_similarity(seqs, np.array([2, 7]))[:, :], got[:, [2, 7]], rtol=1e-5, atol=1e-6
    )


def test_the_prior_adds_popularity_times_the_standardised_log_counts_everywhere():
    model, ds = _fitted()
    users = np.arange(ds.n_users)
    base = model.score(users)
    counts = np.bincount(ds.interactions.item, minlength=ds.n_items)
    z = (np.log1p(counts) - np.log1p(counts).mean()) / np.log1p(counts).std()
    assert model.item_priors() is None  # off by default
    model.config = replace(model.config, popularity=0.2)
    np.testing.assert_allclose(model.score(users) - base, np.broadcast_to(0.2 * z, base.shape), rtol=1e-4, atol=1e-5)
    items, weights = np.array([0, 1, 2]), np.ones(3)
    live = model.score_history(items, weights)
    model.config = replace(model.config, popularity=0.0)
    np.testing.assert_allclose(live - model.score_history(items, weights), 0.2 * z, rtol=1e-4, atol=1e-5)
    model.config = replace(model.config, popularity=0.2)
    query = model.index_query(items, weights)
    assert query is not None and np.allclose(query.prior, 0.2 * z, atol=1e-6)
    cand = np.array([4, 5, 6])
    np.testing.assert_allclose(query.exact(cand), live[cand], rtol=1e-4, atol=1e-5)  # the exact score of the candidates
    model.config = replace(model.config, kernel=0.1, text_blend=0.5)
    assert model.index_query(items, weights) is None  # no single query vector: every item is scored


@pytest.mark.parametrize("center", [True, False])
def test_a_centred_network_reads_no_trace_of_what_every_item_of_the_catalog_shares(center):
    ds = successor_task(n_items=12, n_users=30, length=5, seed=3)
    rng = np.random.default_rng(0)  # generic vectors: no two principal components of the same variance
    text = rng.normal(size=(ds.n_items, 32)).astype(np.float32)
    shift = rng.normal(size=text.shape[1]).astype(np.float32)
    opts = {**TINY, "epochs": 2, "center_text": center}
    a, b = build_model("sequential", 0, opts), build_model("sequential", 0, opts)
    a.use_item_vectors(text)
    b.use_item_vectors(text + shift)
    a.fit(ds)
    b.fit(ds)
    users = np.arange(ds.n_users)
    same = np.allclose(a.score(users), b.score(users), atol=1e-4)
    assert same == center
    if center:
        np.testing.assert_allclose(b.text_center_, text.mean(0) + shift, rtol=1e-5, atol=1e-5)
        b.add_items(text[:1] + shift)  # a new item is read the same way: less the fitted centre
        a.add_items(text[:1])
        np.testing.assert_allclose(a.item_space()[-1], b.item_space()[-1], atol=1e-4)


def test_a_validation_search_keeps_the_network_scores_and_chooses_the_same():
    from anyrec.data.split import leave_one_out
    from anyrec.eval import search

    ds = successor_task(n_items=12, n_users=40, length=6, seed=5)
    split = leave_one_out(ds)
    chosen, passes = [], []
    for reuse in (True, False):
        model = build_model("sequential", 0, {**TINY, "epochs": 2}).fit(split.train_dataset(ds))
        calls = []
        inner = model._score_sequences
        model._score_sequences = lambda seqs, cols=None, inner=inner, calls=calls: calls.append(1) or inner(seqs, cols)
        if not reuse:
            model.reuse_similarities = lambda mb: contextlib.nullcontext()  # type: ignore[method-assign]  # every point afresh
        chosen.append(search.tune_on_validation(model, ds, split, 5))
        passes.append(len(calls))
    assert chosen[0] == chosen[1]
    assert passes[0] * 5 < passes[1]  # one pass per batch, not one per grid point
