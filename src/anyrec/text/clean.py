"""Cleaning raw item text: HTML, entities, control characters, unicode, whitespace."""

from __future__ import annotations

import html
import re
import unicodedata

_BREAK_TAGS = re.compile(r"<\s*(br|/p|p|/div|div|li|/li|tr|/tr|h[1-6]|/h[1-6])\b[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<\s*(script|style)\b[^>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^<>]{0,2000}>")
_WHITESPACE = re.compile(r"\s+")


def _drop_control(text: str) -> str:
    # Category C* covers control, format, surrogate and unassigned code points;
    # tabs and newlines are whitespace and are folded later, not deleted.
    return "".join(ch if ch in "\t\n\r" or unicodedata.category(ch)[0] != "C" else " " for ch in text)


def clean_text(text: str | None) -> str:
    """Return ``text`` as one clean line.

    Removes script/style blocks and HTML tags (tags that break lines become spaces),
    decodes HTML entities (twice, since scraped catalogs often double-escape),
    applies NFKC normalisation, replaces control characters with spaces and
    collapses runs of whitespace.

    Args:
        text: raw text; ``None`` gives ``""``.

    Returns:
        The cleaned text, stripped.
    """
    if not text:
        return ""
    out = _SCRIPT.sub(" ", text)
    out = _BREAK_TAGS.sub(" ", out)
    out = _TAG.sub("", out)
    out = html.unescape(html.unescape(out))
    # Entities may have produced new tags ("&lt;b&gt;") only in double-escaped input;
    # those are text the author wrote, so they stay.
    out = unicodedata.normalize("NFKC", out)
    out = _drop_control(out)
    return _WHITESPACE.sub(" ", out).strip()
