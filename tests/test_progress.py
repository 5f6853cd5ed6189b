"""Progress in logs: lines on a timer while a step runs, one task per name, and a training fit's live state."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from anyrec.cli.progress import LineProgress, task_key


def test_a_quiet_step_still_prints_on_the_timer_and_stops_when_done():
    lines: list[str] = []
    update = LineProgress(0.2, lines.append)
    try:
        update("fit ease · solving", 0, 1)  # then nothing is reported for a while (a matrix inverse)
        time.sleep(0.9)
        quiet = [line for line in lines if "last report" in line]
        assert len(quiet) >= 2 and all(line.startswith("fit ease · solving: 0/1 (0 %)") for line in quiet)
        update("fit ease · solved", 1, 1)
        n = len(lines)
        assert lines[-1].startswith("fit ease · solved: 1/1 (100 %)")
        time.sleep(0.5)
        assert len(lines) == n  # a finished task is not repeated
    finally:
        update.close()


def test_the_state_after_the_separator_updates_one_task():
    lines: list[str] = []
    update = LineProgress(3600, lines.append)
    for epoch in range(5):
        update(f"train x · epoch {epoch + 1}/5, loss {5 - epoch}", epoch, 5)
    update("train x · stopped", 5, 5)
    update.close()
    assert task_key("train x · epoch 1/5") == "train x" and lines == [lines[-1]] and "stopped: 5/5" in lines[0]


def test_a_training_fit_whose_stderr_is_a_file_prints_its_state_on_a_timer(tmp_path):
    from tests.models.test_sequential import successor_task

    ds = successor_task(n_users=300, length=8)
    rows = ["u,i,t"] + [f"{ds.users.raw(u)},{ds.catalog.ids.raw(i)},{t}" for u, i, t in
                        zip(ds.interactions.user, ds.interactions.item, ds.interactions.time)]
    (tmp_path / "inter.csv").write_text("\n".join(rows) + "\n")
    opts = [
        f"sequential.{o}"
        for o in (
            "encoder=hashing:16",
            "hidden=16",
            "layers=1",
            "epochs=30",
            "patience=30",
            "threads=1",
            "batch_size=8",
        )
    ]
    cmd = [
        sys.executable,
        "-m",
        "anyrec",
        "fit",
        "--model",
        "sequential",
        "--interactions",
        str(tmp_path / "inter.csv"),
        "--user",
        "u",
        "--item",
        "i",
        "--time",
        "t",
        "--no-cache",
        "--out",
        str(tmp_path / "seq"),
    ]
    for o in opts:
        cmd += ["--option", o]
    log = tmp_path / "fit.log"
    with open(log, "w") as fh:  # stderr is a file, as under nohup or CI
        started = time.monotonic()
        proc = subprocess.run(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=fh,
            env={**os.environ, "ANYREC_PROGRESS_EVERY": "0.2"},
            timeout=600,
            check=False,
        )
        took = time.monotonic() - started
    text = log.read_text()
    assert proc.returncode == 0, text
    stamped = [line.split(" ", 1) for line in text.splitlines() if line[:2].isdigit() and line[2:3] == ":"]
    assert stamped and all(len(p) == 2 and time.strptime(p[0], "%H:%M:%S") for p in stamped)  # wall-clock time first
    lines = [p[1] for p in stamped]
    train = [line for line in lines if line.startswith("train sequential · epoch")]
    assert len(train) >= 3, text
    # A rate needs two reports a second apart: the timer may print the first state again before that.
    assert all("loss" in line for line in train) and sum("steps/s" in line for line in train) >= len(train) // 2
    assert any("valid ndcg@10" in line and "patience" in line for line in train)
    assert any(line.startswith("train sequential · stopped after 30 epochs (all epochs run)") for line in lines)
    assert took > 1.0
