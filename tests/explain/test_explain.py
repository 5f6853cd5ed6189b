"""Explanations: the model's own attribution, a deletion check that it is faithful, and a guard that lets
no sentence name an item the user did not touch."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import load_benchmark
from tests.serve.conftest import topic_dataset
from tests.serve.test_live import SEQ

from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.explain.attribution import attribute, history_of
from anyrec.explain.sentence import SentenceGuard, explain_sentence, shared_words, template_sentence
from anyrec.models.registry import build_model

faithfulness = load_benchmark("faithfulness").faithfulness  # type: ignore[attr-defined]  # benchmarks/faithfulness.py


@pytest.fixture(scope="module")
def topics() -> Dataset:
    return topic_dataset()


def test_zeroshot_terms_add_up_to_the_text_score(topics: Dataset) -> None:
    model = build_model("zeroshot", 0, {"encoder": "hashing:128", "popularity": 0.0, "trend": 0.0}).fit(topics)
    items, weights = history_of(topics, 0)
    targets = np.arange(topics.n_items)
    att = attribute(model, items, weights, targets)
    assert att.method == "text terms"
    text = model.score_history(items, weights) - model.priors()
    np.testing.assert_allclose(att.shares.sum(axis=0), text, atol=1e-5)


def test_deletion_shares_are_what_removing_each_item_does(topics: Dataset) -> None:
    model = build_model("sequential", 0, SEQ).fit(topics)
    items, weights = history_of(topics, 3)
    targets = np.array([0, 5, 14, 30])
    att = attribute(model, items, weights, targets)
    assert att.method == "deletion" and len(att.history) == len(np.unique(items))
    full = model.score_history(items, weights)
    for r, h in enumerate(att.history):
        keep = items != h
        np.testing.assert_allclose(
            att.shares[r], full[targets] - model.score_history(items[keep], weights[keep])[targets], atol=1e-6
        )


def test_models_without_a_history_score_cite_nothing(topics: Dataset) -> None:
    items, weights = history_of(topics, 0)
    for name, opts in (("popularity", {}), ("als", {"factors": 4, "iterations": 2})):
        att = attribute(build_model(name, 0, opts).fit(topics), items, weights, np.array([1, 2]))
        assert att.method == "none" and att.top(0) == []


def test_cited_items_lower_the_score_far_more_often_than_random_ones(topics: Dataset) -> None:
    for name, opts in (("zeroshot", {"encoder": "hashing:128"}), ("sequential", SEQ), ("itemknn", {})):
        model = build_model(name, 0, opts).fit(topics)
        rep = faithfulness(model, topics, np.arange(topics.n_users), k=5, cite=1, seed=0)
        assert rep["cited"]["n"] > 50, name
        assert rep["cited"]["score_lowered"] >= 0.9, (name, rep)
        assert rep["cited"]["mean_score_drop"] > rep["random"]["mean_score_drop"], (name, rep)
        assert rep["named_outside_history"] == 0


def films() -> Dataset:
    builder = DatasetBuilder(ReadPolicy(), fields=["title", "genres"])
    for n, (title, genres) in enumerate(
        [
            ("Star Wars (1977)", "space adventure"),
            ("Star (1990)", "drama"),
            ("Alien (1979)", "space horror"),
            ("Aliens (1986)", "space horror action"),
            ("Shining, The (1980)", "horror"),
            ("Heat (1995)", "crime"),
            ("Stranger, The (1994)", "drama"),
            ("Stranger in the House (1997)", "thriller"),
        ]
    ):
        builder.add_item(f"m{n}", {"title": title, "genres": genres}, path="items", line=n + 2, field="id")
    builder.add_interaction("u", "m0", time=1.0, path="inter", line=2)
    return builder.build("films", template="{title}. {genres}", category_field=None)


def test_the_guard_rejects_sentences_naming_items_outside_the_allowed_set() -> None:
    ds = films()
    guard = SentenceGuard(ds.catalog)
    star_wars, alien, aliens, shining, heat = 0, 2, 3, 4, 5
    allowed = {star_wars, aliens}
    assert guard.allows("Because you liked “Star Wars (1977)”, try Aliens.", allowed)
    assert guard.allows("Star Wars fans like space action.", allowed)  # "Star" lies inside the allowed "Star Wars"
    adversarial = ["You loved Alien, so Aliens is next.",  # a catalog item outside the history, unquoted
                   "Since you watched The Shining you will like Aliens.",  # "Shining, The" in its natural order
                   "Because you liked “The Godfather”.",  # an invented quoted title
                   "After “Heat (1995)” comes Aliens.",  # quoted catalog title outside the history
                   "ALIEN and aliens alike."]  # case does not hide a title
    for text in adversarial:
        assert not guard.allows(text, allowed), text
    assert guard.rejected == len(adversarial)
    assert {alien} <= guard.strays(adversarial[0], allowed)[0] and {shining} <= guard.strays(adversarial[1], allowed)[0]
    assert heat in guard.strays(adversarial[3], allowed)[0]
    # Titles do not run across quotation marks: "…Shining, The” “Stranger in…" does not name "Stranger, The".
    assert guard.allows("Because you liked “Shining, The (1980)” and “Stranger in the House (1997)”.", {shining, 7})


def test_a_generator_that_invents_items_never_reaches_the_user() -> None:
    ds = films()
    guard = SentenceGuard(ds.catalog)
    liar = lambda prompt: "You watched Heat and Alien, so here is Aliens."  # noqa: E731
    text, source = explain_sentence(ds.catalog, 3, [0], guard, liar)
    assert source == "template" and "Heat" not in text and "“Star Wars (1977)”" in text
    honest = lambda prompt: "Star Wars fans often enjoy Aliens."  # noqa: E731
    assert explain_sentence(ds.catalog, 3, [0], guard, honest) == ("Star Wars fans often enjoy Aliens.", "generator")
    assert guard.rejected == 1


def test_template_names_the_cited_items_and_their_shared_words() -> None:
    ds = films()
    assert shared_words(ds.catalog, 3, [2]) == ["space", "horror"]
    assert (
        template_sentence(ds.catalog, 3, [0, 2])
        == "Because you liked “Star Wars (1977)” and “Alien (1979)” (shared: space, horror)."
    )
    assert "without a history item" in template_sentence(ds.catalog, 3, [])
