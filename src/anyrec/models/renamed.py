"""Options under an earlier name, options since removed, and the earlier spelling of "sized from the data": how a
saved folder, a TOML file or ``--option`` written for an earlier anyrec is read today (one name per concept across
the models: ``push`` / ``kin`` for what a negative event does, ``init`` for the folder a model starts from,
``half_life`` for a text profile's recency)."""

from __future__ import annotations

import logging
from dataclasses import MISSING, fields
from typing import Any

log = logging.getLogger(__name__)

RENAMED = {"dislike_weight": "push", "dislike_kin": "kin", "text_half_life": "half_life", "pretrained": "init"}
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
    return out
