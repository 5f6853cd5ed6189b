"""Pretrained language models: the text encoder (and, later, generators and pretraining)."""

from anyrec.lm.cache import EmbeddingCache
from anyrec.lm.encoder import DEFAULT_ENCODER, EncoderConfig, TextEncoder, resolve_encoder

__all__ = ["DEFAULT_ENCODER", "EmbeddingCache", "EncoderConfig", "TextEncoder", "resolve_encoder"]
