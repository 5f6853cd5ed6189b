"""Whitening of a catalog's text vectors: spread out, applied to queries and new items alike, kept in the folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import checkerboard

import anyrec.models.textvectors as tv
from anyrec.app import pipeline
from anyrec.app.persist import load_model, save_model
from anyrec.models.registry import build_model


def _mean_pairwise_cosine(x: np.ndarray) -> float:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = unit.sum(0)
    return float((s @ s - len(unit)) / (len(unit) * (len(unit) - 1)))


def test_whitened_vectors_have_mean_pairwise_cosine_near_zero() -> None:
    rng = np.random.default_rng(0)
    cone = np.ones(32) + 0.3 * rng.normal(size=(500, 32))  # every vector near one direction, as sentence vectors are
    assert _mean_pairwise_cosine(cone) > 0.8
    stats = tv.fit_whitening(cone)
    white = tv.whiten(cone, *stats, strength=1.0)
    assert abs(_mean_pairwise_cosine(white)) < 0.01
    assert np.allclose(np.linalg.norm(white, axis=1), 1.0, atol=1e-5)
    half = tv.whiten(cone, *stats, strength=0.5)
    assert abs(_mean_pairwise_cosine(half)) < 0.01  # centred too; each direction's spread evened out by half
    cov = np.cov(white.T)  # full whitening: the covariance is a multiple of the identity
    assert np.allclose(cov / np.trace(cov) * 32, np.eye(32), atol=0.2)


def test_zero_shot_whitens_its_table_queries_and_new_items_alike(tmp_path: Path) -> None:
    ds = checkerboard()
    plain = build_model("zeroshot", 0, {"encoder": "hashing:64"}).fit(ds)
    white = build_model("zeroshot", 0, {"encoder": "hashing:64", "whiten": 1.0}).fit(ds)
    assert white.item_vectors_ is not white.text_table()
    np.testing.assert_array_equal(plain.item_vectors_, white.item_vectors_)  # the encoder's vectors, kept as they are
    assert abs(_mean_pairwise_cosine(white.text_table())) < abs(_mean_pairwise_cosine(plain.text_table()))
    # a query is an encoder vector like an item's: whitened, it lands on that item's row
    encoded = white.text_encoder().encode(ds.catalog.texts()[:3])
    np.testing.assert_allclose(white.text_query(encoded), white.text_table()[:3], atol=1e-5)
    found = pipeline.search(white, ds, ds.catalog.texts()[5], k=1)
    assert found[0]["id"] == ds.catalog.ids.raw(5)
    # scores read the whitened table
    assert not np.allclose(white.score(np.arange(3)), plain.score(np.arange(3)))
    # the folder keeps the whitening (fitted on the catalog it was fitted on)
    save_model(white, ds, tmp_path / "m")
    again, _, _, _ = load_model(tmp_path / "m")
    np.testing.assert_allclose(again.text_table(), white.text_table(), atol=1e-6)
    np.testing.assert_allclose(again.score(np.arange(3)), white.score(np.arange(3)), atol=1e-5)
    # new items go through the same whitening
    n = white.n_items_
    assert white.add_items(encoded[:1])
    np.testing.assert_allclose(white.text_table()[n], white.text_table()[0], atol=1e-5)


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_whitening_is_searched_on_validation(strength: float) -> None:
    from anyrec.data.split import leave_one_out
    from anyrec.eval.search import tune_on_validation

    ds = checkerboard()
    split = leave_one_out(ds)
    model = build_model("zeroshot", 0, {"encoder": "hashing:64"}).fit(split.train_dataset(ds))
    assert strength in model.tuning_grid["whiten"]
    chosen = tune_on_validation(model, ds, split, 10)
    assert "whiten" in chosen and chosen["whiten"] in model.tuning_grid["whiten"]
