"""Options under an earlier name, options since removed, and the earlier spelling of "sized from the data": how a
saved folder, a TOML file or ``--option`` written for an earlier anyrec is read today (one name per concept across
the models: ``push`` / ``kin`` for what a negative event does, ``init`` for the folder a model starts from,
``half_life`` for a text profile's recency), and the text encoder's settings, once copied beside ``encoder`` in each
model, now nested under it (``encoder.cache_dir``, ``encoder.batch_size``, …)."""

from __future__ import annotations

import logging
from dataclasses import MISSING, asdict, fields, replace
from typing import Any

from anyrec.lm.encoder import EncoderConfig, encoder_settings

log = logging.getLogger(__name__)

RENAMED = {"dislike_weight": "push", "dislike_kin": "kin", "text_half_life": "half_life", "pretrained": "init"}
# The encoder's settings once spelt beside ``encoder`` in each text model (``zeroshot.cache_dir``): now
# ``encoder.cache_dir`` (a model's own ``batch_size`` / ``threads``, for its training, keep their names).
ENCODER_MOVED = ("cache_dir", "batch_size", "threads", "backend")
REMOVED = {
    "init_from_codebooks": "a lost experiment: code embeddings started at their centroids trailed the random start"
}


def upgrade_options(name: str, config_class: Any, options: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``options`` of model ``name`` (its config dataclass ``config_class``) in today's terms: a renamed option takes
    its new name, a removed one is dropped, and "sized from the data", once spelt ``-1`` (``0`` for ``batch_size``),
    is ``None``; each renaming and removal is said in the log, naming the option."""
    known = {f.name: f for f in fields(config_class)}
    said = f"{where}: " if where else ""
    out: dict[str, Any] = {}
    for key, value in options.items():
        new = RENAMED[key] if key not in known and RENAMED.get(key) in known else key
        if new != key:
            log.warning("%s%s.%s is now %s.%s", said, name, key, name, new)
        if key in REMOVED and key not in known:
            log.warning("%s%s.%s no longer exists (%s); ignored", said, name, key, REMOVED[key])
            continue
        f = known.get(new)
        if (
            f is not None
            and f.default is None
            and f.default_factory is MISSING
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (value < 0 or (new == "batch_size" and value == 0))
        ):
            value = None  # the earlier spelling of "sized from the data"
        out[new] = value
    f = known.get("encoder")
    if f is not None and f.default_factory is EncoderConfig:
        out = _nest_encoder(name, out, {k for k in known if k != "encoder"}, said)
    return out


def with_options(config: Any, options: dict[str, Any]) -> Any:
    """``config`` with ``options`` (today's names) set; an ``encoder`` name or table changes what it names and
    keeps the other settings of ``config.encoder``."""
    if "encoder" in options and isinstance(getattr(config, "encoder", None), EncoderConfig):
        options = {**options, "encoder": encoder_settings(options["encoder"], base=config.encoder)}
    return replace(config, **options)


def encoder_table(value: Any) -> dict[str, Any]:
    """An ``encoder`` option as a table of settings: a name is ``{"model": name}``."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"model": value}
    if isinstance(value, EncoderConfig):
        return asdict(value)
    return dict(value)


def _nest_encoder(name: str, options: dict[str, Any], own: set[str], said: str) -> dict[str, Any]:
    """``encoder.FIELD`` keys, and the flat settings of earlier versions (said in the log), folded into one
    ``encoder`` table; the keys given last win over the ``encoder`` value."""
    out = dict(options)
    moved: dict[str, Any] = {}
    for key in list(out):
        if key.startswith("encoder."):
            moved[key.partition(".")[2]] = out.pop(key)
        elif key in ENCODER_MOVED and key not in own:
            log.warning("%s%s.%s is now %s.encoder.%s", said, name, key, name, key)
            moved[key] = out.pop(key)
    if moved:
        out["encoder"] = {**encoder_table(out.get("encoder")), **moved}
    return out
