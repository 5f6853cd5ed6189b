"""The recommend top-k: a partial selection with exactly the order of a stable full sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from anyrec.models.scoring import top_k


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), k=st.integers(1, 80), levels=st.integers(1, 6),
       holes=st.floats(0, 0.9))
def test_top_k_equals_the_stable_full_sort(seed: int, n: int, k: int, levels: int, holes: float) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=n).astype(np.float64)  # few levels: many ties
    scores[rng.random(n) < holes] = -np.inf  # masked items never come back
    expected = [i for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])][:k]
    assert top_k(scores, k).tolist() == expected
