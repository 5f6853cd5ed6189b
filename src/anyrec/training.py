"""The bookkeeping every training loop shares: early stopping, a time budget, checkpoints, a training log.

The sequential model (and SASRec), the generative decoder and the click classifier each own their
epoch — data, loss, optimiser step — and hand the rest to one :class:`TrainingLoop`:

- ``resume(restore)``: load ``checkpoint.pt`` when asked and present (the loop's own fields, the rest
  through ``restore``); the epochs run before count toward the time budget;
- ``record(entry, score, snapshot)``: one epoch's log entry; with a validation ``score`` the best one
  keeps ``snapshot()`` (e.g. the weights) and a worse one counts toward the patience;
- ``save(state)``: append the entry to ``train_log.jsonl`` and write the checkpoint (``state`` plus the
  loop's fields), both only where a folder was given;
- ``should_stop()``: out of patience or of time; data-parallel workers agree (one all-reduce), so no
  worker waits in a collective for one that stopped;
- ``report(progress, name, …)`` after each batch (at most once a second) and ``finish(…)`` at the end:
  the live state — epoch, step, steps/s, loss, the last validation figure, time left in the budget —
  as ``"train NAME · …"`` for the progress bar or the log lines (:mod:`anyrec.cli.progress`).

Torch is imported only when a checkpoint is read or written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class TrainingLoop:
    """Early stopping (``patience`` validations without a gain above ``min_delta``), a budget of
    ``max_minutes`` (0 = none), and with ``folder`` its ``train_log.jsonl`` and ``checkpoint.pt``.

    ``best`` starts at ``start_best``; ``next_epoch`` is where the epoch loop starts (after a resume,
    the one after the last saved). ``world`` > 1: data-parallel, the stop is all-reduced; every worker
    resumes from the folder, only the one with ``writes`` writes to it.
    """

    patience: int
    max_minutes: float = 0.0
    min_delta: float = 0.0
    folder: str | Path | None = None
    start_best: float = -1.0
    world: int = 1
    writes: bool = True
    unit: str = "epoch"  # what one recorded entry is called in the live state ("round" for a validation every N steps)
    best: float = field(init=False)
    best_state: Any = field(init=False, default=None)
    waited: int = field(init=False, default=0)
    next_epoch: int = field(init=False, default=0)
    history: list[dict[str, Any]] = field(init=False, default_factory=list)
    resumed_entries: int = field(init=False, default=0)
    started: float = field(init=False, default_factory=time.perf_counter)
    _reported: tuple[float, int] = field(init=False, default=(0.0, 0))  # (when, global step) of the last report
    _rate: float | None = field(init=False, default=None)  # steps/s between the last two reports

    def __post_init__(self) -> None:
        self.best = self.start_best

    @property
    def log_path(self) -> Path | None:
        return Path(self.folder) / "train_log.jsonl" if self.folder else None

    @property
    def checkpoint(self) -> Path | None:
        return Path(self.folder) / "checkpoint.pt" if self.folder else None

    def seconds(self) -> float:
        """Training seconds so far, the epochs before a resume included."""
        return time.perf_counter() - self.started

    def resume(self, restore: Callable[[dict[str, Any]], None], map_location: Any = None) -> bool:
        """Continue from the checkpoint when there is one: ``restore(state)`` loads the trainer's own
        part (weights, optimiser, random generators); the loop takes back its fields."""
        ckpt = self.checkpoint
        if ckpt is None or not ckpt.exists():
            return False
        import torch

        state = torch.load(ckpt, map_location=map_location, weights_only=False)
        restore(state)
        loop = state["loop"]
        self.best, self.best_state, self.waited = loop["best"], loop["best_state"], loop["waited"]
        self.next_epoch, self.history = loop["epoch"] + 1, list(loop["history"])
        self.resumed_entries = len(self.history)
        self.started = time.perf_counter() - (self.history[-1].get("seconds", 0.0) if self.history else 0.0)
        log.info("resumed from %s after epoch %d (best %.5f)", ckpt, self.next_epoch - 1, self.best)
        return True

    def record(
        self, entry: dict[str, Any], score: float | None = None, snapshot: Callable[[], Any] | None = None
    ) -> bool:
        """Log one epoch; with a validation ``score``, keep ``snapshot()`` when it beats the best by more
        than ``min_delta``, else count one more validation without a gain. Returns whether it improved."""
        self.history.append(entry)
        if score is None:
            return False
        if score > self.best + self.min_delta:
            self.best, self.waited = score, 0
            if snapshot is not None:
                self.best_state = snapshot()
            return True
        self.waited += 1
        return False

    def new_entries(self) -> list[dict[str, Any]]:
        """The entries of this run (not those read back by :meth:`resume`)."""
        return self.history[self.resumed_entries :]

    def save(self, epoch: int, state: dict[str, Any] | None = None) -> None:
        """Append the last entry to the log and write the checkpoint after ``epoch`` (only with a folder)."""
        if self.folder is None or not self.writes or not self.history:
            return
        import torch

        path = Path(self.folder)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / "train_log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(self.history[-1]) + "\n")
        loop = {
            "epoch": epoch,
            "best": self.best,
            "best_state": self.best_state,
            "waited": self.waited,
            "history": self.history,
        }
        torch.save({**(state or {}), "loop": loop}, path / "checkpoint.pt")

    def status(self, epoch: int, epochs: int, loss: float | None, rate: float | None) -> str:
        """One line of live state: ``epoch 3/50, 41.2 steps/s, loss 5.1234, valid …, … left`` (the steps done
        and in all go to the progress callback as ``done`` / ``total``)."""
        parts = [f"{self.unit} {epoch + 1}/{epochs}" if epochs else f"{self.unit} {epoch + 1}"]
        if rate is not None:
            parts.append(f"{rate:.1f} steps/s")
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        last = next((e for e in reversed(self.history) if e.get("valid_ndcg@10") is not None), None)
        if last is not None:
            parts.append(
                f"valid ndcg@10 {last['valid_ndcg@10']:.4f} (best {self.best:.4f}, patience "
                f"{self.waited}/{self.patience})"
            )
        if self.max_minutes > 0:
            parts.append(f"{max(0.0, self.max_minutes - self.seconds() / 60):.1f} of {self.max_minutes:g} min left")
        return ", ".join(parts)

    def report(
        self,
        progress: Callable[[str, int, int], None] | None,
        name: str,
        epoch: int,
        epochs: int,
        batch: int,
        batches: int,
        loss: float | None,
    ) -> None:
        """After batch ``batch`` (1-based) of ``batches`` in ``epoch``: the state to ``progress``, at most once a
        second."""
        if progress is None:
            return
        now, step = time.perf_counter(), epoch * batches + batch
        when, before = self._reported
        if when and now - when < 1.0 and batch < batches:
            return
        if when and now > when and step > before:
            self._rate = (step - before) / (now - when)
        self._reported = (now, step)
        total = epochs * batches  # the task completes in finish(), however training stops
        progress(f"train {name} · {self.status(epoch, epochs, loss, self._rate)}", min(step, total - 1), total)

    def finish(self, progress: Callable[[str, int, int], None] | None, name: str) -> None:
        """The training task completes (however it stopped), with why it stopped and the best figure."""
        if progress is None:
            return
        why = (
            "out of patience"
            if self.out_of_patience()
            else "out of time"
            if self.no_time_for_an_epoch()
            else "all epochs run"
        )
        best = f", best valid ndcg@10 {self.best:.4f}" if self.best > self.start_best else ""
        progress(
            f"train {name} · stopped after {len(self.history)} {self.unit}s ({why}){best}, {self.seconds():.0f} s", 1, 1
        )

    def out_of_patience(self) -> bool:
        return self.waited >= self.patience

    def out_of_time(self) -> bool:
        return self.max_minutes > 0 and self.seconds() / 60 > self.max_minutes

    def no_time_for_an_epoch(self, pending: float | None = None) -> bool:
        """Out of time, or another epoch as long as the longest so far (its validation included) would end past
        the budget: the budget bounds the fit's time, not only when its last epoch begins (on the 50,000-user
        log a 9-minute budget ended at 565 s when an epoch, about 34 s, began just before it). ``pending``: the
        seconds mark of an epoch trained but not yet recorded, counted too."""
        if self.max_minutes <= 0:
            return False
        ends = [float(e["seconds"]) for e in self.history if e.get("seconds") is not None] + (
            [pending] if pending is not None else []
        )
        longest = max((b - a for a, b in zip([0.0, *ends], ends)), default=0.0)
        return self.seconds() + longest > 60 * self.max_minutes

    def should_stop(self) -> bool:
        """Out of patience or of time for another epoch; with several data-parallel workers, all of them or none."""
        stop = self.out_of_patience() or self.no_time_for_an_epoch()
        if self.world > 1:
            import torch

            flag = torch.tensor([float(stop)])
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop
