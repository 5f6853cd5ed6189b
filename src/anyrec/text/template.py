"""Item-text templates such as ``"{title}. Genres: {genres}. {description}"``.

A template is split into segments at ``". "``; a segment whose placeholders are all
empty for an item is left out, so an item without a description does not end in a
dangling ``". ."``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from anyrec.errors import ConfigError

DEFAULT_TEMPLATE = "{title}. Genres: {genres}. {description}"

_FIELD = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")


def template_fields(template: str) -> list[str]:
    """Names of the placeholders in ``template``, in order."""
    return _FIELD.findall(template)


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template`` with ``values``, dropping segments whose fields are all empty.

    Args:
        template: text with ``{field}`` placeholders.
        values: field values; a missing key counts as empty.

    Returns:
        The rendered text.
    """
    parts = []
    for segment in template.split(". "):
        names = _FIELD.findall(segment)
        if names and not any(str(values.get(n, "") or "").strip() for n in names):
            continue
        rendered = _FIELD.sub(lambda m: str(values.get(m.group(1), "") or "").strip(), segment)
        rendered = rendered.strip()
        if rendered:
            parts.append(rendered.rstrip("."))
    return ". ".join(parts) + ("." if parts else "")


def check_template(template: str, available: list[str]) -> None:
    """Raise :class:`ConfigError` when ``template`` names a field the catalog lacks."""
    missing = [f for f in template_fields(template) if f not in available]
    if missing:
        raise ConfigError(
            f"template {template!r} names field(s) {', '.join(missing)} that the catalog does not have; "
            f"fields: {', '.join(available)}"
        )
