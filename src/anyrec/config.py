"""The TOML configuration file: ``[data]``, ``[evaluate]`` and ``[models.<name>]`` tables.

Only the CLI (and later the service) read files or argv; everything else receives these
frozen dataclasses.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyrec.data.builder import ReadPolicy
from anyrec.data.table import ColumnMapping, mapping_from_toml
from anyrec.errors import ConfigError


@dataclass(frozen=True)
class FileConfig:
    """Everything a TOML file can set; every field is optional."""

    dataset: str | None = None
    format: str | None = None
    mapping: ColumnMapping | None = None
    policy: dict[str, str] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)


EVALUATE_KEYS = {"models", "k", "protocol", "seed", "cold_rank_among", "valid", "test"}


def load_config(path: str | Path) -> FileConfig:
    """Read and check a TOML config; unknown tables or keys raise :class:`ConfigError`."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"data", "evaluate", "models"})
    if unknown:
        raise ConfigError(f"{p}: unknown table(s) {', '.join(unknown)}; known: data, evaluate, models")
    data = doc.get("data", {})
    mapping = mapping_from_toml(p) if "interactions" in data else None
    policy = {k: str(data[k]) for k in ("bad_rows", "unknown_items", "duplicate_items", "encoding") if k in data}
    ev = doc.get("evaluate", {})
    bad = sorted(set(ev) - EVALUATE_KEYS)
    if bad:
        raise ConfigError(f"{p}: unknown key(s) in [evaluate]: {', '.join(bad)}; known: {', '.join(sorted(EVALUATE_KEYS))}")
    models = doc.get("models", {})
    if not all(isinstance(v, dict) for v in models.values()):
        raise ConfigError(f"{p}: [models] must hold one table per model, e.g. [models.itemknn] k = 50")
    dataset = data.get("name") or data.get("path")
    if dataset and data.get("path") and not Path(dataset).is_absolute():
        dataset = str(p.parent / dataset)
    return FileConfig(dataset=dataset, format=data.get("format"), mapping=mapping, policy=policy, evaluate=ev,
                      model_options={k: dict(v) for k, v in models.items()})


def make_policy(values: dict[str, str | None]) -> ReadPolicy | None:
    """A :class:`ReadPolicy` from the given values, or ``None`` when none is set (format defaults apply)."""
    given = {k: v for k, v in values.items() if v is not None}
    return ReadPolicy(**given) if given else None  # type: ignore[arg-type]
