"""The validation search of score-time options: coordinate-wise over a model's ``tuning_grid`` (and, when a
version is fitted for serving, its ``serving_grid`` under the stability check), the fitted model reused,
its kept scores reused where it can (``reuse_similarities``) within a budget of the memory available."""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from anyrec.cluster import Runner
from anyrec.data.dataset import Dataset
from anyrec.data.split import Split
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.stability import StabilityRule, passes, stability
from anyrec.machine import available_memory
from anyrec.models.base import Recommender

log = logging.getLogger(__name__)

# Validation users × candidate items one grid point may score (about Beauty's 22,363 × 12,101): above it the
# search scores a seeded sample of the validation users, so a large log's search costs what Beauty's does.
SEARCH_CELLS = 300_000_000
SEARCH_MIN_USERS = 5_000


def tune_on_validation(
    model: Recommender, ds: Dataset, split: Split, k: int, progress: Callable[[int, int], None] | None = None,
    fixed: set[str] | None = None, rounds: int = 2, runner: Runner | None = None, stable: StabilityRule | None = None,
) -> dict[str, Any]:
    """Coordinate-wise search over ``model.tuning_grid`` by validation NDCG@k.

    Only score-time options are in a grid, so the fitted model is reused; options the user
    set explicitly (``fixed``) are left alone. With ``stable`` (how serving chooses), a grid
    point is taken only when it also passes the stability check (:mod:`anyrec.eval.stability`)
    on the training histories. Returns the chosen options and their score (and stability figures).
    """
    # Options only serving searches (item-kNN's long + short term: its leaderboard row stays the classic model).
    serving = model.serving_grid if stable is not None else {}
    grid = {k_: v for k_, v in {**model.tuning_grid, **serving}.items() if k_ not in (fixed or set())}
    metric = f"ndcg@{k}"
    searched, sampled = search_split(ds, split)

    def score() -> float:
        return evaluate_model(model, ds, searched, "valid", (k,), runner=runner)[metric]

    # Kept products only help where the scoring runs here; on Ray each grid point ships the model anew.
    reuse = runner is None or runner.name == "local"
    check: Callable[[], dict[str, float] | None] | None = None
    if stable is not None:
        train = split.train_dataset(ds)
        rule = stable

        def check() -> dict[str, float] | None:
            return stability(model, train, rule, k)

    minutes = model.search_minutes()  # a model's own budget (sized to its log)
    deadline = time.monotonic() + 60 * minutes if minutes > 0 else None
    # Options that change the space the others are tuned in (whitening rescales every cosine): an outer loop, each
    # value with its own search of the rest; a greedy search tried them with the rest tuned to the other space.
    outer = {o: grid.pop(o) for o in model.space_options if o in grid}
    start, found = model.config, []
    own_point = {o: getattr(start, o) for o in outer}  # first, and always a candidate (no stability check needed)
    points = [own_point] + [
        p for p in (dict(zip(outer, vs)) for vs in itertools.product(*outer.values())) if p != own_point
    ]
    with model.reuse_similarities(tuning_cache_mb()) if reuse else contextlib.nullcontext():
        for n, given in enumerate(points):
            model.config = replace(start, **given)
            step = (lambda d, t, n=n: progress(n * t + d, len(points) * t)) if progress else None  # noqa: E731
            chosen = {**given, **_coordinate_search(model, grid, score, metric, rounds, step, check, stable, deadline)}
            if n == 0 or check is None or passes(check(), stable):
                found.append((chosen[f"valid_{metric}"], n, model.config, chosen))
    _, _, model.config, chosen = max(found, key=lambda f: (f[0], -f[1]))  # the first of equal scores
    if len(points) > 1:
        chosen["valid_by_space"] = {
            ", ".join(f"{k}={v}" for k, v in c.items() if k in outer): s for s, _, _, c in found
        }
    return {**chosen, "valid_users_searched": sampled} if sampled else chosen


def search_split(ds: Dataset, split: Split, seed: int = 0) -> tuple[Split, int]:
    """``split`` with its validation rows cut to a seeded sample of the validation users where scoring them all
    over the candidates would pass :data:`SEARCH_CELLS` (at least :data:`SEARCH_MIN_USERS`); returns the split the
    search scores and the sample's size (0: every validation user). Training rows, and so every history, stay."""
    items = ds.n_items if split.valid_candidates is None else int(len(split.valid_candidates))
    cap = max(SEARCH_MIN_USERS, SEARCH_CELLS // max(items, 1))
    searched, sampled = validation_sample(ds, split, cap, seed)
    if sampled:
        total = len(np.unique(ds.interactions.user[split.valid]))
        log.info(
            "the validation search scores a seeded %s of the %s validation users (%s × %s items > %s scores a grid "
            "point)",
            f"{cap:,}",
            f"{total:,}",
            f"{total:,}",
            f"{items:,}",
            f"{SEARCH_CELLS:,}",
        )
    return searched, sampled


def validation_sample(ds: Dataset, split: Split, cap: int, seed: int = 0) -> tuple[Split, int]:
    """``split`` with its validation rows cut to a seeded ``cap`` of the validation users, and ``cap``; ``split``
    and 0 where there are no more than ``cap`` (or ``cap`` ≤ 0). Training rows, and so every history, stay."""
    user = ds.interactions.user[split.valid]
    users = np.unique(user)
    if cap <= 0 or len(users) <= cap:
        return split, 0
    keep = np.random.default_rng(seed).choice(users, cap, replace=False)
    return replace(split, valid=split.valid[np.isin(user, keep)]), cap


def tuning_cache_mb() -> int:
    """Memory a model may keep between the grid points of a validation search: a quarter of the
    memory available now, at most 4 GB."""
    free = available_memory()
    return 512 if free is None else int(min(4096, free // 4 // 2**20))


def _coordinate_search(
    model: Recommender,
    grid: dict[str, list[Any]],
    score: Callable[[], float],
    metric: str,
    rounds: int,
    progress: Callable[[int, int], None] | None,
    check: Callable[[], dict[str, float] | None] | None = None,
    rule: StabilityRule | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    began = time.monotonic()
    best = score()
    steady = check() if check is not None else None
    longest = time.monotonic() - began  # the slowest step so far: a step that would end past the deadline is not begun
    if check is not None and not passes(steady, rule):
        log.warning(
            "%s: the starting options fail the stability check (%s); the search keeps only points that pass",
            model.name,
            steady,
        )
    total = rounds * sum(len(v) for v in grid.values())
    done = 0

    def point(config: Any) -> tuple[Any, ...]:
        return tuple(repr(getattr(config, opt)) for opt in grid)

    out_of_time, stopped_at = False, total
    seen = {point(model.config)}  # a point already scored lost to the best then, and still does: not scored again
    for _ in range(rounds):
        for opt, values in grid.items():
            for value in values:
                done += 1
                if value == getattr(model.config, opt) or point(replace(model.config, **{opt: value})) in seen:
                    continue
                if deadline is not None and time.monotonic() + longest > deadline:
                    if not out_of_time:
                        stopped_at = done - 1
                        log.warning(
                            "%s: the validation search ran out of its time budget after %d of %d grid steps; "
                            "it keeps the best point scored (%s = %.4f)",
                            model.name,
                            done - 1,
                            total,
                            metric,
                            best,
                        )
                    out_of_time = True
                    continue
                current = model.config
                model.config = replace(current, **{opt: value})
                seen.add(point(model.config))
                began = time.monotonic()
                s = score()
                found = check() if check is not None and s > best + 1e-9 else None
                longest = max(longest, time.monotonic() - began)
                if s > best + 1e-9 and (check is None or passes(found, rule)):
                    best, steady = s, found
                else:
                    model.config = current
                if progress:
                    progress(done, total)
    if progress:  # the last points may have been skipped: the step still ends, or a log shows it running on
        progress(total, total)
    chosen = {opt: getattr(model.config, opt) for opt in grid}
    log.info(
        "%s tuned on validation: %s (%s = %.4f%s)",
        model.name,
        chosen,
        metric,
        best,
        f", stability {steady}" if steady else "",
    )
    extra = {f"valid_{name}": v for name, v in (steady or {}).items() if name != "users"}
    if out_of_time:
        extra["valid_search_steps"] = stopped_at  # of the grid's ``total`` steps: the budget ended it there
    return {**chosen, f"valid_{metric}": round(best, 6), **extra}
