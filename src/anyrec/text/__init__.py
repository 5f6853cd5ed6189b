"""Text cleaning and item-text templates."""

from anyrec.text.clean import clean_text
from anyrec.text.template import DEFAULT_TEMPLATE, render_template

__all__ = ["DEFAULT_TEMPLATE", "clean_text", "render_template"]
