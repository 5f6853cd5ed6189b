"""Ray: catalog embedding and evaluation on a local 2-CPU cluster equal the single-process results exactly."""

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'anyrec[ray]')")

from anyrec.cluster import LOCAL, RayRunner, ray_runner  # noqa: E402
from anyrec.data.split import leave_one_out  # noqa: E402
from anyrec.eval.evaluate import evaluate_model  # noqa: E402
from anyrec.models.registry import build_model  # noqa: E402


@pytest.fixture(scope="module")
def runner():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield RayRunner()
    finally:
        ray.shutdown()


def test_runners_keep_the_order_of_the_items(runner):
    items = list(range(23))
    assert runner.map_tasks(lambda shared, x: shared * x, 3, items) == LOCAL.map_tasks(lambda s, x: s * x, 3, items)
    assert runner.map_actors(lambda: (lambda x: -x), items) == [-x for x in items]
    seen = []
    runner.map_tasks(lambda s, x: x, None, items, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (23, 23) and len(seen) == runner.workers * 2  # one report per shard


def test_embedding_on_ray_equals_local(runner):
    """The real offline MiniLM in two Ray Data actors: the same chunks give bit-identical vectors."""
    from anyrec.lm.encoder import EncoderConfig, TextEncoder

    texts = [f"{w} story number {i}, {'with a long tail of words ' * (i % 4)}" for i, w in
             enumerate(["space", "love", "ghost", "robot", "paris"] * 8)]
    enc = TextEncoder(EncoderConfig(batch_size=2))  # chunks of 32 texts: two chunks, one per actor
    local = enc.encode(texts)
    on_ray = enc.encode(texts, runner=runner)
    assert local.shape == (40, 384) and np.array_equal(local, on_ray)


@pytest.mark.parametrize("name", ["itemknn", "zeroshot"])
def test_evaluation_on_ray_equals_local(runner, board, name):
    split = leave_one_out(board)
    model = build_model(name, 0, {"encoder": "hashing:64"} if name == "zeroshot" else {}).fit(
        split.train_dataset(board)
    )
    model.progress = lambda *a: None  # a callback of this process: not shipped
    local = evaluate_model(model, board, split, "test", (5, 10), batch_size=7)
    on_ray = evaluate_model(model, board, split, "test", (5, 10), batch_size=7, runner=runner)
    assert on_ray == local and local["ndcg@10"] > 0


def test_cli_evaluate_with_ray_equals_local(runner, tmp_path):
    from click.testing import CliRunner

    from anyrec.cli import cli

    args = [
        "evaluate",
        "--dataset",
        "ml-100k",
        "--models",
        "popularity,zeroshot",
        "--k",
        "10",
        "--encoder",
        "hashing:64",
        "--no-tune",
        "--no-progress",
    ]
    res = {}
    for mode, extra in (("local", []), ("ray", ["--ray"])):
        out = CliRunner().invoke(cli, [*args, *extra, "--json", str(tmp_path / f"{mode}.json")])
        assert out.exit_code == 0, out.output
        res[mode] = json.loads((tmp_path / f"{mode}.json").read_text())
    assert res["ray"]["runner"]["name"] == "ray" and res["local"]["runner"]["name"] == "local"
    for name in ("popularity", "zeroshot"):
        a, b = res["local"]["models"][name], res["ray"]["models"][name]
        assert {k: v for k, v in a.items() if "@" in k} == {k: v for k, v in b.items() if "@" in k}


def test_ray_runner_reuses_a_running_cluster(runner):
    with ray_runner("local") as r:
        assert r.name == "ray" and ray.is_initialized()
    assert ray.is_initialized()  # not shut down: this call did not start it


def test_sequential_trains_data_parallel_with_ray_train(runner):
    """Two Ray Train workers, each on half of every epoch, gradients averaged: the model learns the
    rule as the single-process fit does (test Recall@1 within 0.05 of it: the batches differ, so
    the weights are not bit-identical)."""
    from tests.models.test_sequential import TINY, successor_task

    ds = successor_task()
    split = leave_one_out(ds)

    def validate(m):
        return evaluate_model(m, ds, split, "valid", (1,))["ndcg@1"]

    opts = {**TINY, "use_text": False, "epochs": 40, "patience": 40, "lr": 1e-2}
    recall = {}
    for name, r in (("local", LOCAL), ("ray", runner)):
        model = build_model("sequential", 0, opts)
        reports: list[tuple[str, int, int]] = []
        model.progress = lambda label, done, total, seen=reports: seen.append((label, done, total))
        model = r.fit(model, split.train_dataset(ds), validate)
        assert len(model.report_.epochs) == 40 and model.worker == (0, 1)
        # The epochs reach this process's progress (the bar and the log), also from the Ray workers.
        assert reports and reports[-1][1:] == (1, 1), (name, reports[-3:])
        assert reports[-1][0].startswith("train sequential · stopped after 40 epochs (all epochs run)"), (
            name,
            reports[-3:],
        )
        # Every epoch's report reaches the driver, in order, however short the fit (the relay keeps them all
        # until the driver drains it; a relay holding only the latest lost them when the fit took under a second).
        epochs = [int(label.split("epoch ")[1].split("/")[0]) for label, _, _ in reports
                  if label.startswith("train sequential · epoch ")]
        assert sorted(set(epochs)) == list(range(1, 41)) and epochs == sorted(epochs), (name, epochs)
        model.set_history(split.history_dataset(ds, "test"))
        recall[name] = evaluate_model(model, ds, split, "test", (1,))["recall@1"]
    assert recall["local"] > 0.9 and abs(recall["ray"] - recall["local"]) <= 0.05, recall


def test_cli_fit_with_ray_saves_the_same_model(runner, tmp_path):
    """``anyrec fit --ray``: embedding on Ray Data actors, validation on Ray tasks; the saved model's
    vectors and validation figures equal the local fit's."""
    from click.testing import CliRunner

    from anyrec.app.persist import load_model
    from anyrec.cli import cli

    args = ["fit", "--model", "zeroshot", "--dataset", "ml-100k", "--encoder", "hashing:64", "--no-cache"]
    saved = {}
    for mode, extra in (("local", []), ("ray", ["--ray"])):
        out = CliRunner().invoke(cli, [*args, *extra, "--out", str(tmp_path / mode)])
        assert out.exit_code == 0, out.output
        saved[mode] = load_model(tmp_path / mode)
    (a, _, _, meta_a), (b, _, _, meta_b) = saved["local"], saved["ray"]
    assert np.array_equal(a.item_vectors_, b.item_vectors_)
    assert meta_a["metrics"] == meta_b["metrics"] and meta_a["tuned"] == meta_b["tuned"]


def test_data_parallel_workers_stop_together_on_the_time_budget(runner):
    """The budget is read on each worker's clock; the stop is agreed (all-reduced), so no worker is
    left waiting for gradients that never come."""
    from tests.models.test_sequential import TINY, successor_task

    ds = successor_task(n_users=40)
    opts = {**TINY, "use_text": False, "epochs": 50, "patience": 50, "max_minutes": 1e-6}
    model = runner.fit(build_model("sequential", 0, opts), ds)
    assert len(model.report_.epochs) == 1
