"""One-sentence explanations that name only what the user really did.

A sentence comes from a template over the attribution (the cited history items and the words
their texts share with the recommended item) or from a generator (a causal LM, any callable
``prompt -> text``). Either way it passes :class:`SentenceGuard` before anyone sees it: every
quoted title and every catalog title found in the sentence must be one of the cited history
items or the recommended item itself. A generated sentence that names anything else is
rejected and the template is shown instead; the rejection is counted. Titles are matched by catalog identity: an
allowed title is taken out of the sentence as it is written before quotation marks are read, so a title that holds
quote-like characters itself (``Chalkboard, 14" x 14"``) is no stray quotation. A sentence that cannot be built is
left out of its card (``None``) and counted (``unbuilt``), never raised.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anyrec.data.dataset import Catalog

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
_QUOTED = re.compile(r"[“\"«]([^”\"»]{2,200})[”\"»]")
_QUOTE_MARK = re.compile(r"[“”\"«»]")
_YEAR = re.compile(r"\s*\((?:\d{4}|[ivx]+)\)\s*$", re.IGNORECASE)
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i in into is it its of on or our she that the their "
    "them "
    "then there these they this to was we were what when which who will with you your not no so than too very can "
    "genres genre title description category categories brand price new one two more most other all any about".split()
)
MAX_TITLE_WORDS = 16


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def title_keys(title: str) -> set[str]:
    """The forms a title may appear in: as written, and without a trailing year ``(1977)``."""
    keys = {" ".join(words(title))}
    bare = _YEAR.sub("", title)
    keys.add(" ".join(words(bare)))
    if bare.endswith(", The"):  # MovieLens writes "Shining, The"
        keys.add(" ".join(words("The " + bare[: -len(", The")])))
    return {k for k in keys if k}


def shared_words(catalog: Catalog, target: int, cited: Sequence[int], n: int = 5) -> list[str]:
    """Content words of the target's text that also occur in a cited history item's text, in the target's order."""
    mine = [w for w in words(catalog.text(target)) if len(w) > 2 and w not in STOPWORDS and not w.isdigit()]
    theirs = {w for h in cited for w in words(catalog.text(h))}
    out: list[str] = []
    for w in mine:
        if w in theirs and w not in out:
            out.append(w)
    return out[:n]


@dataclass
class SentenceGuard:
    """Rejects a sentence that names an item outside ``allowed`` (raw title strings are matched as word
    sequences, so "Alien" is not found inside "Aliens"). ``rejected`` counts refusals, ``unbuilt`` the cards left
    without a sentence."""

    catalog: Catalog
    rejected: int = 0
    checked: int = 0
    unbuilt: int = 0
    _titles: dict[str, set[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for i in range(len(self.catalog)):
            for key in title_keys(self.catalog.title(i)):
                self._titles.setdefault(key, set()).add(i)

    def named_items(self, sentence: str) -> tuple[set[int], list[str]]:
        """Catalog items whose title appears in ``sentence`` (as a word sequence), and quoted spans that
        are no catalog title."""
        found: set[int] = set()
        for part in _QUOTE_MARK.split(sentence):  # a title does not run across a quotation mark
            toks = words(part)
            for start in range(len(toks)):
                for end in range(start + 1, min(len(toks), start + MAX_TITLE_WORDS) + 1):
                    found |= self._titles.get(" ".join(toks[start:end]), set())
        unknown = [q for q in _QUOTED.findall(sentence) if not any(k in self._titles for k in title_keys(q))]
        return found, unknown

    def strays(self, sentence: str, allowed: set[int]) -> tuple[set[int], list[str]]:
        """Items named in ``sentence`` outside ``allowed``, and quoted spans that are no allowed title.

        A title that is a word sequence inside an allowed title (history "Star Wars", catalog item
        "Star") is not counted against the sentence.
        """
        found, _ = self.named_items(sentence)
        allowed_keys = {k for i in allowed for k in title_keys(self.catalog.title(i))}
        allowed_text = " | ".join(sorted(allowed_keys))
        stray = {
            i
            for i in found - allowed
            if not any(f" {k} " in f" {allowed_text} " for k in title_keys(self.catalog.title(i)))
        }
        rest = sentence  # the allowed titles out, as written (with their own quote marks), before quotations are read
        for title in sorted((self.catalog.title(i) for i in allowed), key=len, reverse=True):
            if title:
                for written in (f"“{title}”", f'"{title}"', f"«{title}»", title):
                    rest = rest.replace(written, " … ")
        bad_quotes = [q for q in _QUOTED.findall(rest) if not title_keys(q) & allowed_keys]
        return stray, bad_quotes

    def allows(self, sentence: str, allowed: set[int]) -> bool:
        """True when the sentence names no item outside ``allowed`` and quotes only allowed titles."""
        self.checked += 1
        stray, bad_quotes = self.strays(sentence, allowed)
        if stray or bad_quotes:
            self.rejected += 1
            return False
        return True


def template_sentence(
    catalog: Catalog, target: int, cited: Sequence[int], verb: str = "liked", phrases: Sequence[str] | None = None
) -> str:
    """ "Because you liked “A” and “B” (shared: space, robots)." — or a plain note when nothing is cited.

    ``phrases`` (one per cited item, ``{title}`` where its title goes: ``"rated {title} 5"``,
    ``"bought {title}"``) say what the user did with each; without them every item is ``verb``-ed.
    """
    if not cited:
        return f"“{catalog.title(target)}” is recommended without a history item behind it (popular or new)."
    names = [f"“{catalog.title(h)}”" for h in cited]
    if phrases is not None:
        groups: dict[str, list[str]] = {}  # one verb, its items: "rated “A” 5 and “B” 4, and viewed “C”"
        for ph, name in zip(phrases, names):
            verb, _, rest = ph.partition("{title}")
            groups.setdefault(verb, []).append(name + rest)
        parts = [verb + _and(members) for verb, members in groups.items()]
        joined = _and(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + ", and " + parts[-1]
        lead = "Because you "
    else:
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        lead = f"Because you {verb} "
    common = shared_words(catalog, target, cited)
    tail = f" (shared: {', '.join(common)})" if common else ""
    return f"{lead}{joined}{tail}."


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def explain_sentence(
    catalog: Catalog,
    target: int,
    cited: Sequence[int],
    guard: SentenceGuard,
    generator: Callable[[str], str] | None = None,
    phrases: Sequence[str] | None = None,
) -> tuple[str | None, str]:
    """The sentence shown and its source (``"generator"``, ``"template"``, or ``"none"`` with no sentence).

    The generator gets a prompt with the recommended item and the cited history items only; its
    answer is shown when the guard allows it, else the template is. A template the guard refuses (a
    catalog whose titles defeat it) leaves the card without a sentence, counted in ``guard.unbuilt``.
    """
    allowed = {int(target), *map(int, cited)}
    if generator is not None:
        prompt = (
            f"A user liked: {'; '.join(catalog.title(h) for h in cited)}. We recommend: {catalog.title(target)}. "
            "In one sentence, say why, naming only these titles."
        )
        text = " ".join(generator(prompt).split())
        if text and guard.allows(text, allowed):
            return text, "generator"
    text = template_sentence(catalog, target, cited, phrases=phrases)
    # The "(shared: …)" tail lists words of the item's own text, not names; the naming part is checked.
    if not guard.allows(text.split(" (shared: ")[0], allowed):
        guard.unbuilt += 1
        log.warning("no sentence for item %d: the template failed the guard (%r)", target, text)
        return None, "none"
    return text, "template"
