"""anyrec: recommend anything that has text, with pretrained language models."""

__version__ = "0.1.0"
