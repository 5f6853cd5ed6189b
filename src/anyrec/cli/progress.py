"""Progress on a terminal (rich bars) and in logs (plain lines on a timer).

Every long step reports ``progress(description, done, total)``. A description may carry its live
state after ``" · "`` (``"train sequential · epoch 3/50, 41 steps/s, loss 5.12, …"``): the part before
it names the task, so a changing state updates one bar or one line of the log instead of opening a new
one per epoch.

Where stderr is not a terminal (a log file, CI), :class:`LineProgress` prints a task's line when it
completes, at most every ``every_s`` seconds while it reports, and — from a timer thread — the last
state of the task that reported most recently when nothing has been printed for ``every_s``: a step
that goes quiet (a matrix inverse, a validation pass) still shows it is alive, with its elapsed time.

``progress(text, 0, 0)`` is a notice, not a task: the text is printed once as it is (a model saying
which settings it chose for the data before it trains), above the bars on a terminal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

SEPARATOR = " · "


def task_key(desc: str) -> str:
    """The task a description belongs to: the text before its live state."""
    return desc.split(SEPARATOR, 1)[0]


@dataclass
class _Task:
    started: float
    printed: float
    desc: str = ""
    done: int = 0
    total: int = 0
    finished: bool = False
    touched: float = 0.0


class LineProgress:
    """The callback behind progress in logs (see the module doc); ``close()`` stops its timer."""

    def __init__(self, every_s: float, emit: Callable[[str], None]) -> None:
        self.every_s = every_s
        self.emit = emit
        self.tasks: dict[str, _Task] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.last_print = time.monotonic()

    def __call__(self, desc: str, done: int, total: int) -> None:
        if done == 0 and total == 0:
            with self.lock:
                self.emit(desc)
            return
        now = time.monotonic()
        key = task_key(desc)
        with self.lock:
            task = self.tasks.get(key)
            if task is None or (task.finished and not (total > 0 and done >= total)):
                task = self.tasks[key] = _Task(started=now, printed=now)  # new, or the same step run again
            task.desc, task.done, task.total, task.touched = desc, done, total, now
            finished = total > 0 and done >= total
            if finished:
                if not task.finished:
                    task.finished = True
                    self._print(task, now)
            elif now - task.printed >= self.every_s:
                self._print(task, now)
        if self.thread is None and self.every_s > 0:
            self.thread = threading.Thread(target=self._heartbeat, name="anyrec-progress", daemon=True)
            self.thread.start()

    def _print(self, task: _Task, now: float, quiet: bool = False) -> None:
        share = f" ({100 * task.done / task.total:.0f} %)" if task.total else ""
        since = f", last report {now - task.touched:.0f} s ago" if quiet else ""
        self.emit(f"{task.desc}: {task.done:,}/{task.total:,}{share}, {now - task.started:.0f} s{since}")
        task.printed = self.last_print = now

    def _heartbeat(self) -> None:
        while not self.stopped.wait(min(self.every_s, 1.0)):
            now = time.monotonic()
            with self.lock:
                live = [t for t in self.tasks.values() if not t.finished]
                if not live or now - self.last_print < self.every_s:
                    continue
                latest = max(live, key=lambda t: t.touched)  # the innermost step is the one reporting last
                if now - latest.printed >= self.every_s:
                    self._print(latest, now, quiet=now - latest.touched >= self.every_s)

    def close(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=2.0)


@contextmanager
def progress_callback(console: Console, enabled: bool = True, every_s: float = 10.0) -> Iterator[Any]:
    """A callback ``(description, done, total)``: rich bars on a terminal; elsewhere :class:`LineProgress`
    lines on ``console``; ``None`` when disabled."""
    if not enabled:
        yield None
        return
    if not console.is_terminal:
        # In a log each line carries its wall-clock time: gaps between lines can be read off it.
        lines = LineProgress(every_s, lambda text: console.print(f"{time.strftime('%H:%M:%S')} {text}", highlight=False,
                                                                 soft_wrap=True))
        try:
            yield lines
        finally:
            lines.close()
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def update(desc: str, done: int, total: int) -> None:
            if done == 0 and total == 0:
                bar.console.print(desc, highlight=False)
                return
            key = task_key(desc)
            if key not in tasks:
                tasks[key] = bar.add_task(desc, total=total)
            bar.update(tasks[key], completed=done, total=total, description=desc)

        yield update
