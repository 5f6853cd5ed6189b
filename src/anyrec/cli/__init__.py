"""The ``anyrec`` command line: ``anyrec --help``."""

from __future__ import annotations

import logging
import os
import sys

import click
from rich.logging import RichHandler

from anyrec.cli.common import console
from anyrec.errors import AnyrecError


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="anyrec")
def cli(verbose: int) -> None:
    """anyrec: recommend anything that has text."""
    # Hugging Face libraries draw their own bars while loading weights; ours are enough.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True)
    # Library progress bars of third-party loaders are noise next to ours.
    logging.getLogger("sentence_transformers").setLevel(max(level, logging.WARNING))
    for noisy in ("httpx", "httpcore", "alembic"):  # a line per HTTP call or migration step is noise at -v
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main() -> None:
    """Console-script entry point: bad input ends with a one-paragraph message and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AnyrecError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)


from anyrec.cli import evaluate as _evaluate  # noqa: E402,F401  (registers commands)
from anyrec.cli import explain as _explain  # noqa: E402,F401
from anyrec.cli import rank as _rank  # noqa: E402,F401
from anyrec.cli import serve as _serve  # noqa: E402,F401
from anyrec.cli import use as _use  # noqa: E402,F401

__all__ = ["cli", "main"]
