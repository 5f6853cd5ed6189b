"""The stability check serving options are chosen with: one like or dislike keeps most of a list, each card its own
reasons."""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from anyrec.data.split import leave_one_out
from anyrec.eval.search import tune_on_validation
from anyrec.eval.stability import StabilityRule, passes, stability

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from test_zeroshot import genre_catalog, zs  # noqa: E402

RULE = StabilityRule(users=50)


def test_a_profile_of_the_last_events_fails_on_reasons_and_the_pooled_kernel_passes():
    ds = genre_catalog(n_per=30, n_users=60, per_user=20)
    train = leave_one_out(ds).train_dataset(ds)
    last_only = stability(zs(half_life=1.0, short_term=1.0).fit(train), train, RULE)
    assert (
        last_only is not None and last_only["reasons_differ"] == 0.0 and not passes(last_only, RULE)
    )  # every card: the last events
    pooled = stability(zs(half_life=1.0, short_term=1.0, kernel=0.05).fit(train), train, RULE)
    assert pooled is not None and pooled["reasons_differ"] >= 0.5 and passes(pooled, RULE)
    assert stability(zs().fit(train), train, StabilityRule(min_history=10_000)) is None  # nobody to check


def test_serving_options_pass_the_check_they_were_chosen_with():
    ds = genre_catalog(n_per=30, n_users=60, per_user=20)
    split = leave_one_out(ds)
    train = split.train_dataset(ds)
    model = zs().fit(train)
    chosen = tune_on_validation(model, ds, split, 10, stable=RULE)
    again = stability(model, train, RULE)
    assert passes(again, RULE)
    assert again is not None and chosen["valid_reasons_differ"] == again["reasons_differ"]
    assert chosen["valid_like_kept"] == again["like_kept"] and chosen["valid_dislike_kept"] == again["dislike_kept"]
    # A rule no option can meet leaves the starting options in place.
    strict = StabilityRule(users=50, like_kept=10.0)
    model = zs().fit(train)
    start = model.config
    tune_on_validation(model, ds, split, 10, stable=strict)
    assert replace(model.config) == start
    assert np.isfinite(chosen["valid_ndcg@10"])
