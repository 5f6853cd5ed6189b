import numpy as np
import pytest
from tests.conftest import checkerboard

from anyrec.data.split import leave_one_out
from anyrec.eval.evaluate import evaluate_model, rank_top
from anyrec.models.base import Recommender


class Constant(Recommender):
    name = "constant"

    def _fit(self, ds):
        pass

    def score(self, users):
        return np.zeros((len(users), self.n_items_))


class Oracle(Recommender):
    """Knows the test items: the ceiling."""

    name = "oracle"

    def __init__(self, target):
        super().__init__(config=object())
        self.target = target

    def _fit(self, ds):
        pass

    def score(self, users):
        return self.target[users].toarray()


def test_rank_top_tie_rule():
    scores = np.array([[1.0, 1.0, 1.0, 0.0]])
    rel = np.array([[True, False, False, False]])
    top, hits = rank_top(scores, rel, 2)
    assert top.tolist() == [[1, 2]] and not hits.any()
    top, hits = rank_top(scores, rel, 2, ties="optimistic")
    assert top.tolist() == [[0, 1]] and hits[0, 0]
    top, hits = rank_top(np.array([[-np.inf, 2.0, -np.inf]]), np.array([[True, False, False]]), 3)
    assert top.tolist() == [[1, -1, -1]] and not hits.any()


def test_constant_scores_never_win_ties():
    ds = checkerboard()
    split = leave_one_out(ds)
    m = Constant(config=object()).fit(split.train_dataset(ds))
    res = evaluate_model(m, ds, split, "test", (5,))
    assert res["recall@5"] == 0.0 and res["ndcg@5"] == 0.0 and res["users"] == 40


def test_oracle_scores_one_and_training_items_are_masked():
    ds = checkerboard()
    split = leave_one_out(ds)
    target = ds.interactions.subset(split.test).matrix(ds.n_users, ds.n_items)
    m = Oracle(target).fit(split.train_dataset(ds))
    res = evaluate_model(m, ds, split, "test", (1, 5))
    for k in (1, 5):
        assert res[f"recall@{k}"] == pytest.approx(1.0)
        assert res[f"ndcg@{k}"] == pytest.approx(1.0)
    assert res["precision@5"] == pytest.approx(0.2)
    # Scoring the training items highest gains nothing: they are masked.
    train = ds.interactions.subset(split.train).matrix(ds.n_users, ds.n_items)
    m2 = Oracle(train * 10 + target).fit(split.train_dataset(ds))
    assert evaluate_model(m2, ds, split, "test", (1,))["recall@1"] == pytest.approx(1.0)


def phase_matrix(ds, rows):
    return ds.interactions.subset(rows).matrix(ds.n_users, ds.n_items)


def test_validation_items_are_masked_at_test_time():
    ds = checkerboard()
    split = leave_one_out(ds)
    valid, test = phase_matrix(ds, split.valid), phase_matrix(ds, split.test)
    m = Oracle(valid * 10 + test).fit(split.train_dataset(ds))
    assert evaluate_model(m, ds, split, "test", (1,))["recall@1"] == pytest.approx(1.0)
    assert evaluate_model(m, ds, split, "valid", (1,))["recall@1"] == pytest.approx(1.0)


def test_repeat_targets_are_masked_unless_asked_for_peer_compatibility():
    from tests.conftest import make_dataset

    # user a: i1, i2, then i1 again as the test item (a repeat purchase)
    ds = make_dataset([("a", "i1"), ("a", "i2"), ("a", "i3"), ("a", "i1"), ("b", "i1"), ("b", "i2"), ("b", "i3")])
    split = leave_one_out(ds)
    target = ds.interactions.subset(split.test).matrix(ds.n_users, ds.n_items)
    m = Oracle(target).fit(split.train_dataset(ds))
    strict = evaluate_model(m, ds, split, "test", (1,))
    lenient = evaluate_model(m, ds, split, "test", (1,), mask="history-minus-targets")
    assert strict["recall@1"] == pytest.approx(0.5)  # a's repeat is unreachable, b's item is found
    assert lenient["recall@1"] == pytest.approx(1.0)


def test_mask_none_leaves_seen_items_rankable():
    ds = checkerboard()
    split = leave_one_out(ds)
    train, test = phase_matrix(ds, split.train), phase_matrix(ds, split.test)
    # Seen items score highest: they crowd out the held-out item unless they are masked.
    m = Oracle(train * 10 + test).fit(split.train_dataset(ds))
    assert evaluate_model(m, ds, split, "test", (1,))["recall@1"] == pytest.approx(1.0)
    assert evaluate_model(m, ds, split, "test", (1,), mask="none")["recall@1"] == pytest.approx(0.0)
    # Each user has 4 training items ahead of the held-out one: it ranks 5th.
    res = evaluate_model(m, ds, split, "test", (4, 5), mask="none")
    assert res["recall@4"] == 0.0 and res["ndcg@5"] == pytest.approx(1 / np.log2(6))
    with pytest.raises(ValueError, match="mask must be one of"):
        evaluate_model(m, ds, split, "test", (1,), mask="some")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
@pytest.mark.parametrize("selector", ["torch", "numpy"])
def test_partial_top_k_equals_the_full_sort(seed, ties, selector, monkeypatch):
    import anyrec.eval.evaluate as E

    if selector == "numpy":  # the path taken where torch is not installed
        monkeypatch.setattr(E, "_torch_topk", lambda: None)
    elif E._torch_topk() is None:
        pytest.skip("torch is not installed: only the numpy selection runs")
    rng = np.random.default_rng(seed)
    rows, items = 50, 40
    kinds = [
        rng.normal(size=(rows, items)),  # no ties
        rng.integers(0, 3, size=(rows, items)).astype(float),  # tie-heavy
        np.zeros((rows, items)),  # everything tied
    ]
    for scores in kinds:
        scores = scores.copy()
        scores[rng.random((rows, items)) < 0.3] = -np.inf  # masked items
        scores[:3] = -np.inf  # rows with nothing allowed
        scores[3, ::7] = np.nan  # a model that returned NaN for some items
        rel = rng.random((rows, items)) < 0.1
        for k in (1, 5, 20, items):
            fast, fast_hits = rank_top(scores, rel, k, ties)
            ref, ref_hits = full_sort_reference(scores, rel, k, ties)
            assert np.array_equal(fast, ref) and np.array_equal(fast_hits, ref_hits)


def test_rank_top_pads_lists_longer_than_the_catalog():
    top, hits = rank_top(np.array([[0.5, 1.0]]), np.array([[True, False]]), 4)
    assert top.tolist() == [[1, 0, -1, -1]] and hits.tolist() == [[False, True, False, False]]
    with pytest.raises(ValueError, match="k must be at least 1"):
        rank_top(np.zeros((1, 2)), np.zeros((1, 2), bool), 0)


def test_experiment_reads_each_model_under_extra_mask_rules():
    from anyrec.errors import ConfigError
    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    ds = checkerboard()
    res = run_experiment(ds, ExperimentConfig(models=("popularity",), ks=(5,), also_masks=("none",)))
    m = res["models"]["popularity"]
    assert res["mask"] == "history" and set(m["by_mask"]) == {"none"}
    # Unmasked, the most popular items are often ones the user already has: never better.
    assert m["by_mask"]["none"]["recall@5"] <= m["recall@5"]
    with pytest.raises(ConfigError, match="mask must be one of"):
        ExperimentConfig(also_masks=("everything",))


def full_sort_reference(scores, relevant, k, ties="pessimistic"):
    """The rule spelled out: a full sort by (score descending, held-out last or first, item index)."""
    order = np.lexsort((relevant if ties == "pessimistic" else ~relevant, -scores), axis=1)[:, :k]
    valid = np.isfinite(np.take_along_axis(scores, order, axis=1))
    hits = np.take_along_axis(relevant, order, axis=1) & valid
    return np.where(valid, order, -1), hits


def test_batches_are_sized_by_memory_and_do_not_change_metrics(board):
    from anyrec.data.split import leave_one_out
    from anyrec.eval.evaluate import evaluate_model, users_per_batch
    from anyrec.models.baselines import ItemKNN

    assert users_per_batch(1_682) == 4_096 and users_per_batch(1_000_000) == 8 and users_per_batch(10**9) == 1
    split = leave_one_out(board)
    model = ItemKNN().fit(split.train_dataset(board))
    whole = evaluate_model(model, board, split, "test", (5,))
    assert evaluate_model(model, board, split, "test", (5,), batch_size=3) == whole
    assert evaluate_model(model, board, split, "test", (5,), memory_mb=0) == whole  # one user per batch


def test_memory_budget_counts_the_page_cache_as_available() -> None:
    """The validation search's cache budget reads the memory that can be had (free + droppable page
    cache), not the free pages alone, which shrink whenever large files have been read."""
    import os

    from anyrec.eval.search import available_memory, tuning_cache_mb

    free_pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    found = available_memory()
    assert found is not None and found >= 0.9 * free_pages  # MemAvailable ≥ MemFree (sampled a moment apart)
    if os.path.exists("/proc/meminfo"):
        meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
        assert abs(found - int(meminfo["MemAvailable"].split()[0]) * 1024) < 2**30
    assert 0 < tuning_cache_mb() <= 4096


def test_a_large_validation_set_is_searched_on_a_seeded_sample_of_its_users(monkeypatch) -> None:
    """Above SEARCH_CELLS (validation users × items) a grid point scores a seeded sample of the validation
    users, the same sample at every point; the figure says how many; below it every user is scored."""
    from dataclasses import dataclass

    from anyrec.eval import search
    from anyrec.eval.search import tune_on_validation

    @dataclass
    class Opts:
        lift: float = 0.0

    class Watching(Recommender):
        name = "watching"
        Config = Opts
        tuning_grid = {"lift": [0.0, 1.0]}

        def _fit(self, ds):
            self.users: list[set[int]] = []

        def score(self, users):
            self.users.append(set(users.tolist()))
            return np.zeros((len(users), self.n_items_)) + self.config.lift

    ds = checkerboard(n_users=200, n_items=20, per_user=6)
    split = leave_one_out(ds)
    model = Watching()
    model.fit(split.train_dataset(ds))
    every = tune_on_validation(model, ds, split, 10)
    assert "valid_users_searched" not in every and set().union(*model.users) == set(range(200))

    monkeypatch.setattr(search, "SEARCH_CELLS", 50 * 20)
    monkeypatch.setattr(search, "SEARCH_MIN_USERS", 10)
    model.users = []
    sampled = tune_on_validation(model, ds, split, 10)
    assert sampled["valid_users_searched"] == 50
    cut, n = search.search_split(ds, split)
    assert n == 50 and search.search_split(ds, split)[0].valid.tolist() == cut.valid.tolist()  # seeded: the same sample
    chosen = set(ds.interactions.user[cut.valid].tolist())
    assert len(chosen) == 50 and all(
        users <= chosen for users in model.users
    )  # every grid point scored the sample only
    assert set().union(*model.users) == chosen


def test_a_search_with_a_time_budget_keeps_the_best_point_it_reached() -> None:
    """A model's ``search_minutes`` ends its validation search: out of time, no further grid point is scored,
    the options stay at the best point scored and the result says at which step the budget ended it."""
    from dataclasses import dataclass

    from anyrec.eval.search import tune_on_validation

    @dataclass
    class Opts:
        lift: float = 0.0
        search_minutes: float = 0.0

    class Counting(Recommender):
        name = "counting"
        Config = Opts
        tuning_grid = {"lift": [0.0, 1.0, 2.0]}

        def search_minutes(self):
            return self.config.search_minutes

        def _fit(self, ds):
            self.calls = 0

        def score(self, users):
            self.calls += 1
            return np.zeros((len(users), self.n_items_)) + self.config.lift

    ds = checkerboard(n_users=40)
    split = leave_one_out(ds)
    free = Counting()
    free.fit(split.train_dataset(ds))
    assert "valid_search_steps" not in tune_on_validation(free, ds, split, 10) and free.calls > 1
    budgeted = Counting(search_minutes=1e-9)
    budgeted.fit(split.train_dataset(ds))
    found = tune_on_validation(budgeted, ds, split, 10)
    assert budgeted.calls == 1 and found["lift"] == 0.0 and found["valid_search_steps"] == 1


def test_a_search_does_not_begin_a_grid_point_that_would_end_past_its_budget() -> None:
    """The budget bounds the search's time, not only where it starts its last point: a point that would end
    past the deadline (as long as the slowest step so far) is not begun. Here each scoring takes 0.5 s and the
    budget is 1.2 s: the start point and one more fit; a search that checked only the clock began a third at
    1.0 s and ended at 1.5 s."""
    import time as clock
    from dataclasses import dataclass

    from anyrec.eval.search import tune_on_validation

    @dataclass
    class Opts:
        lift: float = 0.0
        search_minutes: float = 1.2 / 60

    class Slow(Recommender):
        name = "slow"
        Config = Opts
        tuning_grid = {"lift": [0.0, 1.0, 2.0, 3.0]}

        def search_minutes(self):
            return self.config.search_minutes

        def _fit(self, ds):
            self.calls = 0

        def score(self, users):
            self.calls += 1
            clock.sleep(0.5)
            return np.zeros((len(users), self.n_items_)) + self.config.lift

    ds = checkerboard(n_users=40)
    split = leave_one_out(ds)
    model = Slow()
    model.fit(split.train_dataset(ds))
    began = clock.monotonic()
    found = tune_on_validation(model, ds, split, 10)
    assert model.calls == 2 and found["valid_search_steps"] == 2, (model.calls, found)
    assert clock.monotonic() - began < 1.2 + 0.4


def test_early_stopping_scores_the_sample_of_validation_users_a_model_asks_for() -> None:
    """``validation_users`` > 0 (the generative model on a large log): every epoch's validation scores the same
    seeded sample of that many users; 0 scores them all."""
    from anyrec.eval.flow import validator

    class Asking(Recommender):
        name = "asking"
        validation_users = 10

        def _fit(self, ds):
            self.seen = []

        def score(self, users):
            self.seen.append(sorted(int(u) for u in users))
            return np.zeros((len(users), self.n_items_))

    ds = checkerboard(n_users=40)
    split = leave_one_out(ds)
    model = Asking()
    model.fit(split.train_dataset(ds))
    validate = validator(ds, split, 10)
    validate(model)
    validate(model)
    assert [len(s) for s in model.seen] == [10, 10] and model.seen[0] == model.seen[1]
    model.validation_users = 0
    validate(model)
    assert len(model.seen[-1]) == len(np.unique(ds.interactions.user[split.valid])) == 40
