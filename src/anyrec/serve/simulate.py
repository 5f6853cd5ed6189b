"""Replay a held-out part of a dataset as users, to exercise an A/B experiment with a known answer.

Each user's last ``holdout`` interactions (by time) are their future; every model is fitted on
the past only, and the store is seeded with the past. Simulated users then ask the service (the
real app, in process) for recommendations, and click the recommended items they really consumed
later, with the list's recommendation id. The right answer is known before the replay: the model
whose top-k, scored offline on the same past, holds more of the users' future items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.app.fitting import fit_for_serving
from anyrec.app.persist import save_model
from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.serve.service import register_folder, seed_store
from anyrec.serve.settings import ServeSettings
from anyrec.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationConfig:
    """Attributes:
        models: two (or more) model names; each becomes a version and a variant with an equal share.
        holdout: interactions per user held out as their future (users need ``holdout + 3``).
        users: simulated users at most (in a seeded random order).
        rounds: requests per user (after clicks, the next list is fresh).
        k: list length.
        check_every: the report is read after every this many users.
        seed: user order.
    """

    models: tuple[str, ...] = ("popularity", "sequential")
    holdout: int = 5
    users: int = 0
    rounds: int = 2
    k: int = 10
    check_every: int = 25
    seed: int = 0


def split_future(ds: Dataset, holdout: int) -> tuple[Dataset, dict[int, set[int]]]:
    """The past as a dataset, and each eligible user's held-out future items."""
    inter = ds.interactions
    index = inter.history(ds.n_users)
    keep = np.ones(len(inter), dtype=bool)
    future: dict[int, set[int]] = {}
    for u in np.flatnonzero(np.diff(index.offsets) >= holdout + 3):
        rows = index.rows(int(u))[-holdout:]
        keep[rows] = False
        future[int(u)] = set(inter.item[rows].tolist())
    past = Dataset(
        name=f"{ds.name}-past", catalog=ds.catalog, users=ds.users, interactions=inter.subset(np.flatnonzero(keep))
    )
    return past, future


def offline_hits(model: Any, past: Dataset, future: dict[int, set[int]], k: int) -> float:
    """Share of users whose top-k (from the past) holds at least one future item."""
    users = np.array(sorted(future))
    ids, _ = model.recommend(users, k)
    return float(np.mean([bool(set(row[row >= 0].tolist()) & future[int(u)]) for u, row in zip(users, ids)]))


def simulate(
    ds: Dataset,
    store_url: str,
    out_dir: str | Path,
    cfg: SimulationConfig,
    options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Fit the versions, seed the store, run the experiment over simulated users; the JSON-ready result."""
    from fastapi.testclient import TestClient

    from anyrec.serve.app import create_app

    if len(cfg.models) < 2:
        raise ConfigError("--models: an experiment needs at least two models")
    store = Store.open(store_url)
    if not store.is_empty():
        raise ConfigError(f"--store {store_url}: the simulation needs an empty store (it seeds it with the past)")
    past, future = split_future(ds, cfg.holdout)
    log.info("%s: %d users with a held-out future of %d items", ds.name, len(future), cfg.holdout)
    folders, offline = {}, {}
    for name in cfg.models:
        t0 = time.perf_counter()
        model, _tuned, metrics, index = fit_for_serving(
            name, past, dict((options or {}).get(name, {})), progress=progress
        )
        folders[name] = save_model(model, past, Path(out_dir) / name, index, extra={"metrics": metrics})
        offline[name] = offline_hits(model, past, future, cfg.k)
        log.info(
            "fitted %s on the past in %.0f s; offline hit rate@%d %.4f",
            name,
            time.perf_counter() - t0,
            cfg.k,
            offline[name],
        )
    seed_store(store, folders[cfg.models[0]])
    for name in cfg.models:
        register_folder(store, folders[name], version=name)
    store.set_active(cfg.models[0])
    store.close()
    expected = max(offline, key=lambda n: offline[n])
    rng = np.random.default_rng(cfg.seed)
    users = [int(u) for u in rng.permutation(sorted(future))]
    if cfg.users:
        users = users[: cfg.users]
    checkpoints: list[dict[str, Any]] = []
    exp = "simulated"
    with TestClient(create_app(ServeSettings(store_url=store_url))) as client:
        key = client.app.state.service.store.create_key("simulator")  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {key}"
        share = round(1.0 / len(cfg.models), 6)
        resp = client.put(
            f"/v1/experiments/{exp}",
            json={"variants": [{"name": n, "model_version": n, "share": share} for n in cfg.models]},
        )
        resp.raise_for_status()
        clicks = 0
        for done, u in enumerate(users, 1):
            raw = ds.users.raw(u)
            todo = {ds.catalog.ids.raw(i) for i in future[u]}
            for _ in range(cfg.rounds):
                body = client.get(f"/v1/users/{raw}/recommendations", params={"k": cfg.k}).json()
                hits = [item["id"] for item in body["items"] if item["id"] in todo]
                if hits:
                    client.post(
                        "/v1/events",
                        json=[
                            {"user": raw, "item": h, "type": "click", "recommendation_id": body["recommendation_id"]}
                            for h in hits
                        ],
                    ).raise_for_status()
                    todo -= set(hits)
                    clicks += len(hits)
            if done % cfg.check_every == 0 or done == len(users):
                checkpoints.append(_checkpoint(client, exp, done, done * cfg.rounds))
                if progress:
                    progress("simulated users", done, len(users))
        final = _checkpoint(client, exp, len(users), len(users) * cfg.rounds)
    detected = _detected_at(checkpoints, expected)
    return {
        "dataset": ds.name,
        "holdout": cfg.holdout,
        "k": cfg.k,
        "rounds": cfg.rounds,
        "users": len(users),
        "clicks": clicks,
        "offline_hit_rate": offline,
        "expected_winner": expected,
        "detected_at_users": detected,
        "final": final["report"],
        "checkpoints": [{k: v for k, v in c.items() if k != "report"} for c in checkpoints],
    }


def _checkpoint(client: Any, exp: str, users: int, lists: int) -> dict[str, Any]:
    for _ in range(200):  # the shown lists reach the log within its flush interval
        rep = client.get(f"/v1/experiments/{exp}/report").json()
        if sum(v["impressions"] for v in rep["variants"]) >= lists:  # every list shown so far is counted
            break
        time.sleep(0.05)
    return {
        "users": users,
        "p_value": rep["p_value"],
        "leader": rep["leader"],
        "significant": rep["significant"],
        "report": rep,
    }


def _detected_at(checkpoints: Sequence[dict[str, Any]], expected: str) -> int | None:
    """The first checkpoint from which the expected winner is significant at every later checkpoint."""
    found = None
    for c in checkpoints:
        if c["significant"] and c["leader"] == expected:
            found = found or c["users"]
        else:
            found = None
    return found
