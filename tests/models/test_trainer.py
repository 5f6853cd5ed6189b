"""The shared training bookkeeping: early stopping by a margin, the budget, the log and checkpoint, resume."""

from __future__ import annotations

import json
import time

import pytest

from anyrec.training import TrainingLoop


def test_patience_counts_validations_without_a_gain_above_the_margin() -> None:
    loop = TrainingLoop(patience=2, min_delta=0.01)
    assert loop.record({"epoch": 0}, 0.5, lambda: "w0") and loop.best_state == "w0"
    assert not loop.record({"epoch": 1}, 0.505, lambda: "w1")  # within the margin: no gain
    assert not loop.record({"epoch": 2}, None) and loop.waited == 1  # an epoch without validation counts nothing
    assert not loop.out_of_patience()
    assert not loop.record({"epoch": 3}, 0.4, lambda: "w3")
    assert loop.out_of_patience() and loop.should_stop() and loop.best == 0.5 and loop.best_state == "w0"
    assert [e["epoch"] for e in loop.history] == [0, 1, 2, 3]


def test_the_budget_stops_the_loop() -> None:
    loop = TrainingLoop(patience=100, max_minutes=1e-4)  # 6 ms
    assert not loop.out_of_time()
    time.sleep(0.02)
    assert loop.out_of_time() and loop.should_stop()
    assert not TrainingLoop(patience=1).out_of_time()  # 0 = no budget


def test_no_epoch_begins_that_would_end_past_the_budget() -> None:
    """With epochs of 0.6 s and a budget of 1 s, the loop stops after the first: a second would end at 1.2 s,
    though the clock (0.6 s) is still inside the budget; the check counts the longest epoch, validation included."""
    loop = TrainingLoop(patience=100, max_minutes=1 / 60)
    loop.started = time.perf_counter() - 0.6
    assert not loop.no_time_for_an_epoch()  # nothing recorded: no epoch length known yet
    assert loop.no_time_for_an_epoch(pending=0.6) and not loop.out_of_time()
    loop.record({"epoch": 0, "seconds": 0.6}, 0.1)
    assert loop.no_time_for_an_epoch() and loop.should_stop() and not loop.out_of_time()
    quick = TrainingLoop(patience=100, max_minutes=1 / 60)
    quick.started = time.perf_counter() - 0.2
    quick.record({"epoch": 0, "seconds": 0.1}, 0.1)
    quick.record({"epoch": 1, "seconds": 0.2}, 0.1)
    assert not quick.no_time_for_an_epoch() and not quick.should_stop()  # 0.2 s + 0.1 s < 1 s
    assert not TrainingLoop(patience=1).no_time_for_an_epoch(pending=1e9)  # 0 = no budget


def test_log_checkpoint_and_resume(tmp_path) -> None:
    pytest.importorskip("torch")
    first = TrainingLoop(patience=3, folder=tmp_path)
    first.record({"epoch": 0, "seconds": 1.5}, 0.2, lambda: {"w": 1})
    first.save(0, {"net": {"w": 2}})
    first.record({"epoch": 1, "seconds": 3.0}, 0.1, lambda: {"w": 9})
    first.save(1, {"net": {"w": 3}})
    lines = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [0, 1]
    restored = {}
    again = TrainingLoop(patience=3, folder=tmp_path)
    assert again.resume(lambda state: restored.update(state["net"]))
    assert restored == {"w": 3} and again.next_epoch == 2 and again.best == 0.2 and again.best_state == {"w": 1}
    assert (
        again.waited == 1 and again.new_entries() == [] and again.seconds() >= 3.0
    )  # earlier epochs count toward the budget
    silent = TrainingLoop(patience=3, folder=tmp_path / "other", writes=False)
    silent.record({"epoch": 0}, 0.3)
    silent.save(0, {})
    assert not (tmp_path / "other").exists()
    assert not TrainingLoop(patience=3, folder=tmp_path / "none").resume(lambda state: None)
