"""What the models that size their training to the data share: the large-log threshold, an option sized by
the log with its reason, and saying aloud what was chosen. The training loop itself is :mod:`anyrec.training`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# A large log, for the models that size their training to the data (sequential, sasrec, generative): from this
# many training windows, batches of 256 (fewer, fuller steps) and a time budget of LARGE_LOG_MINUTES. On the
# 50,000-user log with 2 cores an evaluate of the sequential model took 10 minutes of fit (this budget at 10), 2 of
# validation search and 3 of test scoring: 15:27 in all; at 9 the whole run is meant to end within 15 minutes.
LARGE_LOG_WINDOWS = 40_000
LARGE_LOG_MINUTES = 9.0


def by_log_size(windows: int, small: Any, large: Any, why_small: str = "", why_large: str = "") -> tuple[Any, str]:
    """An option left to the data: ``large`` from :data:`LARGE_LOG_WINDOWS` training windows, else ``small``, and the
    reason a fit prints, e.g. ``9 (53,671 training windows ≥ 40,000: the best epoch within the budget is kept)``."""
    big = windows >= LARGE_LOG_WINDOWS
    value, why = (large, why_large) if big else (small, why_small)
    shown = f"{value:g}" if isinstance(value, float) else f"{value:,}"
    return (
        value,
        f"{shown} ({windows:,} training windows {'≥' if big else '<'} "
        f"{LARGE_LOG_WINDOWS:,}{': ' + why if why else ''})",
    )


BUDGET_REASONS = ("no budget", "the best epoch within the budget is kept; max_minutes=0 trains to early stopping")


def announce_sizing(name: str, chosen: dict[str, str], progress: Callable[[str, int, int], None] | None) -> None:
    """Say which options a model set from the log, and why (the log, and the progress bar as a notice)."""
    if not chosen:
        return
    text = f"{name} settings for this log: " + "; ".join(f"{k}={v}" for k, v in chosen.items())
    log.info(text)
    if progress:
        progress(text, 0, 0)  # a notice (see anyrec.cli.progress)
