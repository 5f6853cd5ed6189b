"""Semantic ids: unique, reproducible, order-free (the leakage guard), no dead codes, new items from text."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyrec.models.generative.codes import CodesConfig, SemanticIds, add_collision_codes, code_report, kmeans


def clustered(n: int = 300, dim: int = 16, groups: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim)) * 3
    return (centres[rng.integers(groups, size=n)] + rng.normal(size=(n, dim))).astype(np.float32)


def test_codes_are_unique_and_the_report_counts_use_and_collisions():
    x = clustered()
    x[10] = x[11]  # two identical texts: the collision level must still tell them apart
    codes = SemanticIds(CodesConfig(levels=2, codebook=8, seed=0)).fit(x)
    assert codes.shape == (300, 3)
    assert len(np.unique(codes, axis=0)) == 300
    assert codes[10, -1] != codes[11, -1] and (codes[10, :2] == codes[11, :2]).all()
    rep = code_report(codes, 8)
    assert rep["unique"] and [lv["used"] for lv in rep["levels"]] == [8, 8]
    assert 0 < rep["collision_rate"] < 1 and rep["largest_group"] >= 2
    groups = {}
    for row in map(tuple, codes[:, :2].tolist()):
        groups[row] = groups.get(row, 0) + 1
    assert rep["collision_rate"] == pytest.approx(sum(v for v in groups.values() if v > 1) / 300, abs=1e-4)


def test_same_seed_same_codes_and_another_seed_other_codebooks():
    x = clustered()
    a = SemanticIds(CodesConfig(levels=2, codebook=8, seed=3)).fit(x)
    b = SemanticIds(CodesConfig(levels=2, codebook=8, seed=3)).fit(x)
    assert np.array_equal(a, b)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_codes_depend_on_the_vectors_not_on_the_catalog_order(perm_seed, balanced):
    """The P5 lesson: if the id an item gets depended on where it sits in the catalog (often its
    time of first appearance), ids would leak order. Shuffling the catalog must change nothing."""
    x = clustered(n=120)
    x[5] = x[6]  # identical vectors: the collision number follows the key's hash, not the position
    keys = [f"item-{i}" for i in range(len(x))]
    base = SemanticIds(CodesConfig(levels=2, codebook=6, seed=0, balanced=balanced)).fit(x, keys)
    perm = np.random.default_rng(perm_seed).permutation(len(x))
    moved = SemanticIds(CodesConfig(levels=2, codebook=6, seed=0, balanced=balanced)).fit(
        x[perm], [keys[p] for p in perm]
    )
    assert np.array_equal(moved, base[perm])


def test_dead_codes_are_reseeded():
    """Every centroid starting on the same point: all codes but one would stay empty without re-seeding."""
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 20, rng.normal(size=(30, 2)) - 20]
    cents, assign, reseeds = kmeans(x, 6, iters=15, seed=1, init=np.repeat(x[:1], 6, axis=0))
    assert reseeds >= 5
    assert len(np.unique(assign)) == 6
    assert len(np.unique(np.round(cents, 6), axis=0)) == 6


def test_a_new_item_gets_its_code_from_its_text_alone():
    x = clustered()
    ids = SemanticIds(CodesConfig(levels=2, codebook=8, seed=0))
    codes = ids.fit(x)
    assert np.array_equal(ids.encode(x[:50]), codes[:50, :2])  # an existing text encodes to its own codes
    new = add_collision_codes(codes, ids.encode(x[:3]))  # the same texts again: next free collision numbers
    for r in range(3):
        group = codes[(codes[:, :2] == new[r, :2]).all(1)]
        assert new[r, -1] == group[:, -1].max() + 1 + sum((new[:r, :2] == new[r, :2]).all(1))
    full = np.vstack([codes, new])
    assert len(np.unique(full, axis=0)) == len(full)


def test_state_round_trip_encodes_the_same():
    x = clustered()
    ids = SemanticIds(CodesConfig(levels=3, codebook=4, seed=0))
    ids.fit(x)
    again = SemanticIds.from_state(ids.config, ids.state())
    assert np.array_equal(again.encode(x), ids.encode(x))


def test_balanced_codes_fill_every_code_evenly():
    x = clustered(n=400, groups=3)
    codes = SemanticIds(CodesConfig(levels=2, codebook=16, seed=0, balanced=True)).fit(x)
    rep = code_report(codes, 16)
    for level in range(2):
        assert np.bincount(codes[:, level], minlength=16).max() <= 25  # ceil(400 / 16)
    assert rep["unique"]
    assert [lv["used"] for lv in rep["levels"]] == [16, 16]
