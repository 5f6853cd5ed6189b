"""Exceptions raised on bad input.

Every message names where the problem is (file, line or row, field) and what was
expected, so that a user can fix the input without reading the code.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path


class AnyrecError(Exception):
    """Base class of all errors anyrec raises on purpose."""


class DataError(AnyrecError):
    """Bad input data; the message names the file, the line and the field.

    Attributes:
        path: the file, if known.
        line: 1-based line (or row) number in that file, if known.
        field: the column or field name, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class EmptyFileError(DataError):
    """A file that must hold data holds none."""


class MissingColumnError(DataError):
    """A mapped column is not in the file's header."""

    @classmethod
    def build(cls, column: str, available: Sequence[str], *, path: str | Path, role: str) -> MissingColumnError:
        close = difflib.get_close_matches(column, list(available), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return cls(
            f"column '{column}' (the {role}) is not in the header; columns found: "
            f"{', '.join(available) or '(none)'}.{hint}",
            path=path,
            field=column,
        )


class MalformedRowError(DataError):
    """A row has the wrong number of fields or a value that cannot be parsed."""


class EncodingError(DataError):
    """A file is not in the expected text encoding."""


class DuplicateIdError(DataError):
    """The same id appears twice where ids must be unique."""


class UnknownIdError(DataError):
    """An id that the catalog or the user map does not know."""


class IdempotencyConflict(DataError):
    """An idempotency key sent again with a different request."""


class FormatDetectionError(AnyrecError):
    """A dataset folder matches none of the known formats."""


class ConfigError(AnyrecError):
    """A configuration value is missing or invalid."""
