"""Peer scores read back and ranked by anyrec's evaluator (benchmarks/peer_scores.py: the peers' plumbing lives
beside the benchmark that runs them, not in the package)."""


import numpy as np
import pytest
from tests.conftest import checkerboard, load_benchmark

from anyrec.data.split import leave_one_out
from anyrec.errors import ConfigError, UnknownIdError
from anyrec.eval.evaluate import evaluate_model

ExternalScores = load_benchmark("peer_scores").ExternalScores  # type: ignore[attr-defined]


def test_peer_scores_in_its_own_id_order_are_mapped_and_ranked(tmp_path):
    ds = checkerboard()
    split = leave_one_out(ds)
    test = ds.interactions.subset(split.test).matrix(ds.n_users, ds.n_items).toarray()
    train = ds.interactions.subset(split.train).matrix(ds.n_users, ds.n_items).toarray()
    users = np.arange(ds.n_users)[::-1]  # the peer lists users and items in another order
    items = np.arange(ds.n_items)[::-1]
    scores = (10 * train + test)[users][:, items]
    path = tmp_path / "peer.npz"
    np.savez(path, users=np.array(ds.users.raws(users)), items=np.array(ds.catalog.ids.raws(items)), scores=scores)
    peer = ExternalScores.load(ds, path, "peer").fit(split.train_dataset(ds))
    assert evaluate_model(peer, ds, split, "test", (1,))["recall@1"] == pytest.approx(1.0)  # seen items masked
    assert evaluate_model(peer, ds, split, "test", (1,), mask="none")["recall@1"] == 0.0


def test_items_the_peer_never_saw_cannot_be_recommended_and_missing_users_are_errors():
    ds = checkerboard()
    split = leave_one_out(ds)
    peer = ExternalScores.from_raw(ds, ds.users.raws([0, 1]), ds.catalog.ids.raws([0, 1]), np.ones((2, 2)), "peer")
    peer.fit(split.train_dataset(ds))
    ids, _ = peer.recommend(np.array([0]), k=5, exclude_seen=False)
    assert set(ids[0][ids[0] >= 0].tolist()) <= {0, 1}
    with pytest.raises(ConfigError, match="no scores for user index 5"):
        peer.recommend(np.array([5]))
    with pytest.raises(UnknownIdError, match="peer item"):
        ExternalScores.from_raw(ds, ["u0"], ["nope"], np.ones((1, 1)), "peer")
    bad = ExternalScores.__new__(ExternalScores)
    with pytest.raises(ConfigError, match="one row per user"):
        bad.__init__(np.array([0, 1]), np.ones((3, 2)), "peer")
