"""The TOML configuration file: ``[data]``, ``[evaluate]`` and ``[models.<name>]`` tables.

Only the CLI (and later the service) read files or argv; everything else receives these
frozen dataclasses.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from anyrec.data.builder import ReadPolicy
from anyrec.data.split import SplitConfig
from anyrec.data.table import ColumnMapping, mapping_from_toml
from anyrec.errors import ConfigError
from anyrec.eval.experiment import ExperimentConfig


@dataclass(frozen=True)
class FileConfig:
    """Everything a TOML file can set; every field is optional."""

    dataset: str | None = None
    format: str | None = None
    mapping: ColumnMapping | None = None
    policy: dict[str, str] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)


# [evaluate] holds ExperimentConfig's fields (``k`` for ``ks``) and the split's (protocol, shares, cold ranking);
# the models' own options live in [models.<name>], the ranker's in [models.ranker].
_SPLIT_KEYS = {f.name for f in fields(SplitConfig)} - {"seed"}
EVALUATE_KEYS = (
    ({f.name for f in fields(ExperimentConfig)} - {"ks", "split", "model_options", "ranker_options"})
    | {"k"}
    | _SPLIT_KEYS
)


def experiment_config(ev: dict[str, Any], where: str = "[evaluate]") -> ExperimentConfig:
    """The ``[evaluate]`` table as an :class:`ExperimentConfig` (its defaults where the table is silent; the
    command line's options go over it): each value checked against the field's type, the error naming the key."""
    base = ExperimentConfig()
    given: dict[str, Any] = {}
    for key, value in ev.items():
        name = "ks" if key == "k" else key
        if key in _SPLIT_KEYS:
            continue
        default = getattr(base, name)
        if isinstance(default, tuple):
            items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
            if not isinstance(items, list):
                raise ConfigError(f"{where}: {key} is a list (or a comma-separated string), not {value!r}")
            value = tuple(int(v) for v in items) if name == "ks" else tuple(str(v) for v in items)
        elif isinstance(default, bool) != isinstance(value, bool) or not isinstance(
            value, (type(default), int) if isinstance(default, float) else type(default)
        ):
            raise ConfigError(f"{where}: {key} = {value!r}; a {type(default).__name__} is expected (e.g. {default!r})")
        given[name] = float(value) if isinstance(default, float) else value
    split = {k: ev[k] for k in _SPLIT_KEYS if k in ev}
    for k in ("valid", "test"):
        if k in split and (isinstance(split[k], bool) or not isinstance(split[k], (int, float))):
            raise ConfigError(f"{where}: {k} = {split[k]!r}; a share between 0 and 1 is expected")
    seed = int(given.get("seed", base.seed))
    protocol = str(split.get("protocol", base.split.protocol))
    return replace(
        base,
        **given,
        split=replace(
            base.split, **{**split, "seed": seed, "protocol": "loo" if protocol == "impressions" else protocol}
        ),
    )


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
        raise ConfigError(
            f"{p}: unknown key(s) in [evaluate]: {', '.join(bad)}; known: {', '.join(sorted(EVALUATE_KEYS))}"
        )
    experiment_config(ev, f"{p}: [evaluate]")  # each value checked now, naming the file and the key
    models = doc.get("models", {})
    if not all(isinstance(v, dict) for v in models.values()):
        raise ConfigError(f"{p}: [models] must hold one table per model, e.g. [models.itemknn] k = 50")
    dataset = data.get("name") or data.get("path")
    if dataset and data.get("path") and not Path(dataset).is_absolute():
        dataset = str(p.parent / dataset)
    return FileConfig(
        dataset=dataset,
        format=data.get("format"),
        mapping=mapping,
        policy=policy,
        evaluate=ev,
        model_options={k: dict(v) for k, v in models.items()},
    )


def make_policy(values: dict[str, str | None]) -> ReadPolicy | None:
    """A :class:`ReadPolicy` from the given values, or ``None`` when none is set (format defaults apply)."""
    given = {k: v for k, v in values.items() if v is not None}
    return ReadPolicy(**given) if given else None  # type: ignore[arg-type]
