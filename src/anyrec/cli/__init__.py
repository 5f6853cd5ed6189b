"""The ``anyrec`` command line: ``anyrec --help``."""

from __future__ import annotations

import sys

import click

from anyrec.cli import encoder as _encoder  # noqa: F401  (each command module registers its commands on the group)
from anyrec.cli import evaluate as _evaluate  # noqa: F401
from anyrec.cli import explain as _explain  # noqa: F401
from anyrec.cli import rank as _rank  # noqa: F401
from anyrec.cli import serve as _serve  # noqa: F401
from anyrec.cli import transfer as _transfer  # noqa: F401
from anyrec.cli import use as _use  # noqa: F401
from anyrec.cli.common import console
from anyrec.cli.group import cli
from anyrec.errors import AnyrecError


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


__all__ = ["cli", "main"]
