"""The ``anyrec`` click group: the commands of the other modules of this package register on it."""

from __future__ import annotations

import logging
import os

import click
from rich.logging import RichHandler

from anyrec.cli.common import console


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="anyrec")
def cli(verbose: int) -> None:
    """anyrec: recommend anything that has text."""
    # Hugging Face libraries draw their own bars while loading weights; ours are enough.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True
    )
    # Library progress bars of third-party loaders are noise next to ours.
    logging.getLogger("sentence_transformers").setLevel(max(level, logging.WARNING))
    for noisy in ("httpx", "httpcore", "alembic"):  # a line per HTTP call or migration step is noise at -v
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
