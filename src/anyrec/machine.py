"""What this machine can give a fit: memory available now (read by every layer that sizes from the machine)."""

from __future__ import annotations

import os


def available_memory() -> int | None:
    """Bytes that can be allocated without swapping: Linux's ``MemAvailable`` (free memory plus the
    page cache it can drop), else the free pages; ``None`` where neither is known.

    Free pages alone undercount once large files have been read (the page cache holds them): the
    budget then shrank for no reason, e.g. 13 GB free of 20 GB available on this 24 GB machine."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def available_memory_mb(share: float = 1.0, unknown_mb: float = 8192.0) -> float:
    """``share`` of :func:`available_memory` in MB; ``unknown_mb`` where the machine does not say."""
    free = available_memory()
    return unknown_mb if free is None else share * free / 2**20
