"""Collaborative evidence beside the click classifier: features by hand, the weights they earn, the
classifier trained with them (saved, loaded, and fitted without the answers' own clicks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.rank.test_rank import TINY, tiny_encoder
from tests.serve.conftest import topic_dataset

from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.data.split import SplitConfig, make_split, without_last
from anyrec.errors import ConfigError
from anyrec.models.registry import build_model
from anyrec.rank.evidence import Evidence, EvidenceRanker, fit_weights, parse_features, standardised


def small() -> Dataset:
    """Items a..d; u0: a b, u1: a b c, u2: a c, u3: d."""
    b = DatasetBuilder(ReadPolicy(), fields=["title"])
    for i in "abcd":
        b.add_item(i, {"title": f"item {i}"}, path="items", line=1, field="id")
    row = 1
    for u, items in enumerate(["ab", "abc", "ac", "d"]):
        for i in items:
            b.add_interaction(f"u{u}", i, time=float(row), path="inter", line=row)
            row += 1
    return b.build("small", template="{title}")


def test_features_by_hand() -> None:
    ds = small()
    a, b, c, d = (ds.catalog.ids.index(x) for x in "abcd")
    ev = Evidence(("popularity", "cooc", "recent"), recent=1).fit(ds)
    f = ev.features([np.array([a, b])], np.array([[c, d]]))
    # users: a {0,1,2}, b {0,1}, c {1,2}, d {3}; cos(a, c) = 2 / sqrt(3·2), cos(b, c) = 1 / sqrt(2·2)
    np.testing.assert_allclose(f[0, :, 0], np.log1p([2, 1]))
    np.testing.assert_allclose(f[0, :, 1], [2 / np.sqrt(6) + 1 / 2, 0.0])
    np.testing.assert_allclose(f[0, :, 2], [1 / 2, 0.0])  # only the last history item, b
    assert np.all(
        ev.features([np.zeros(0, dtype=np.int64)], np.array([[c, d]]))[0, :, 1:] == 0
    )  # no history, no co-occurrence


def test_standardised_within_each_list_over_valid_entries_only() -> None:
    x = np.array([[[1.0], [3.0], [100.0]], [[2.0], [2.0], [2.0]]])
    z = standardised(x, np.array([[True, True, False], [True, True, True]]))
    np.testing.assert_allclose(z[0, :, 0], [-1.0, 1.0, 0.0])  # the padded 100 neither counts nor shows
    np.testing.assert_allclose(z[1, :, 0], 0.0)  # a constant feature says nothing


def test_unknown_feature_names_are_a_clear_error() -> None:
    assert parse_features(" popularity, cooc ") == ("popularity", "cooc")
    with pytest.raises(ConfigError, match="ranker.evidence.*'likes'"):
        parse_features("popularity,likes")


def test_weights_follow_the_signal_and_ignore_noise() -> None:
    rng = np.random.default_rng(0)
    lists, width = 400, 8
    feats = rng.normal(size=(lists, width, 2))
    answers = (feats[:, :, 0] + 0.3 * rng.normal(size=(lists, width))).argmax(axis=1)  # feature 0 picks the answer
    w, beta = fit_weights(feats, np.zeros((lists, width)), answers, np.ones((lists, width), dtype=bool))
    assert w[0] > 2.0 and abs(w[1]) < 0.5 * w[0]
    ranker = EvidenceRanker(Evidence(("popularity",)), w[:1])
    assert ranker.weights.shape == (1,)


def test_the_classifier_trains_with_evidence_saves_and_loads_it(tmp_path: Path) -> None:
    from anyrec.rank.cross import ClickClassifier
    from anyrec.rank.cross_config import ClickClassifierConfig
    from anyrec.rank.train import fit_click_stage, load_stage

    topics = topic_dataset(users=60, length=8)
    enc = tiny_encoder(tmp_path / "enc")
    split = make_split(topics, SplitConfig(protocol="loo"))
    train = split.train_dataset(topics)
    retriever = build_model("zeroshot", 0, {"encoder": "hashing:128"}).fit(train)
    cfg = ClickClassifierConfig(encoder=str(enc), holdout=2, list_negatives=3, evidence="popularity,cooc", **TINY)
    stage, report = fit_click_stage(retriever, topics, split, cfg, depth=12, out_dir=tmp_path / "ranker")
    alone = report["lists"]["evidence_alone"]
    assert len(alone["weights"]) == 2 and set(alone["valid_ndcg@10_by_blend"]) == {
        str(b) for b in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
    }
    assert all(len(e["w"]) == 2 for e in report["epochs"])  # the weights train with the encoder, epoch by epoch
    loaded = ClickClassifier.load(tmp_path / "ranker", topics.catalog)
    np.testing.assert_allclose(loaded.prior_.weights, stage.ranker.prior_.weights)
    cands = np.array([[0, 12, 24, 5]])
    with pytest.raises(ConfigError, match="set_evidence"):
        loaded.score([np.array([1, 2, 3])], cands)  # features need the interactions they count
    loaded.set_evidence(train)
    np.testing.assert_allclose(
        loaded.score([np.array([1, 2, 3])], cands), stage.ranker.score([np.array([1, 2, 3])], cands), rtol=1e-4
    )
    text_only = ClickClassifier.load(tmp_path / "ranker", topics.catalog)
    text_only.prior_ = None
    assert not np.allclose(
        text_only.score([np.array([1, 2, 3])], cands), stage.ranker.score([np.array([1, 2, 3])], cands)
    )
    served = load_stage(retriever, train, str(tmp_path / "ranker"))
    assert served.ranker.prior_.evidence._items is not None  # the served stage counts its own data


def test_evidence_needs_listwise_training(tmp_path: Path) -> None:
    from anyrec.rank.cross import ClickClassifier
    from anyrec.rank.cross_config import ClickClassifierConfig

    clf = ClickClassifier(
        topic_dataset().catalog,
        ClickClassifierConfig(encoder=str(tiny_encoder(tmp_path / "enc")), evidence="popularity"),
    )
    with pytest.raises(ConfigError, match="holdout"):
        clf.fit(["x"], np.array([0]), np.array([1]))


def test_training_features_do_not_count_the_answers_clicks() -> None:
    """The lists' features come from the table without the held-out items: the answer's popularity
    there is its count minus the held-out clicks."""
    topics = topic_dataset(users=60, length=8)
    train = make_split(topics, SplitConfig(protocol="loo")).train_dataset(topics)
    full, inner = Evidence(("popularity",)).fit(train), Evidence(("popularity",)).fit(without_last(train, 2, keep=2))
    held = np.bincount(train.interactions.item, minlength=topics.n_items) - np.bincount(
        without_last(train, 2, keep=2).interactions.item, minlength=topics.n_items
    )
    items = np.arange(topics.n_items)[None, :]
    np.testing.assert_allclose(
        np.expm1(full.features([np.zeros(0)], items)[0, :, 0])
        - np.expm1(inner.features([np.zeros(0)], items)[0, :, 0]),
        held,
    )
    assert held.sum() > 0


@pytest.mark.parametrize(("option", "message"), [
    ("ranker.evidence=likes", "unknown feature.*'likes'"),
    ("ranker.evidence=popularity", "needs listwise training: set ranker.holdout"),
    ("ranker.epoch=2", "unknown ranker option.*ranker.epoch;.*epochs"),
])
def test_a_bad_ranker_option_is_named_before_anything_trains(option: str, message: str) -> None:
    import re

    from click.testing import CliRunner

    from anyrec.cli import cli

    res = CliRunner().invoke(cli, ["evaluate", "--models", "popularity", "--ranker", "classifier", "--option", option])
    assert isinstance(res.exception, ConfigError) and re.search(message, str(res.exception)), (
        res.output
    )  # main() prints it, exit 2
    assert "popularity" not in res.output.lower()  # raised before any model was fitted or evaluated
