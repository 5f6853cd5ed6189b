import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from anyrec.text import clean_text, render_template
from anyrec.text.template import check_template, template_fields


def test_html_tags_and_entities_are_removed():
    assert clean_text("<p>Hello&nbsp;<b>world</b></p><br/>It&#39;s &amp;amp; fine") == "Hello world It's & fine"


def test_script_blocks_are_dropped_and_breaks_become_spaces():
    assert clean_text("a<script>alert(1)</script>b<br>c") == "a b c"


def test_unicode_is_nfkc_normalised_and_controls_removed():
    assert clean_text("ﬁne\u0000 caf\u0065\u0301\x07 ｆｕｌｌ") == "fine café full"


def test_whitespace_is_collapsed():
    assert clean_text("  a \t\n b  ") == "a b"
    assert clean_text(None) == ""


@given(st.text())
def test_clean_text_invariants(text):
    out = clean_text(text)
    assert out == out.strip()
    assert "  " not in out
    assert not any(unicodedata.category(ch)[0] == "C" for ch in out)
    assert clean_text(out) == clean_text(clean_text(out))


def test_template_drops_empty_segments():
    t = "{title}. Genres: {genres}. {description}"
    assert (
        render_template(t, {"title": "Heat (1995)", "genres": "Crime", "description": ""})
        == "Heat (1995). Genres: Crime."
    )
    assert render_template(t, {"title": "Heat", "genres": "", "description": "A heist."}) == "Heat. A heist."
    assert render_template(t, {}) == ""
    assert template_fields(t) == ["title", "genres", "description"]


def test_check_template_names_the_missing_field():
    import pytest

    from anyrec.errors import ConfigError

    with pytest.raises(ConfigError, match="plot"):
        check_template("{title}. {plot}", ["title"])
