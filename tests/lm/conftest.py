"""Fixtures of the language-model tests: a tiny sentence-transformers folder built from a config (no download)."""

from pathlib import Path

import pytest

from anyrec.lm.encoder import resolve_encoder


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers folder: a 2-layer BERT from a config + mean pooling + normalisation."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)  # the same random encoder in every run
    base = tmp_path_factory.mktemp("tiny")
    tok = AutoTokenizer.from_pretrained(resolve_encoder("default"))
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(base / "hf")
    tok.save_pretrained(base / "hf")
    word = models.Transformer(str(base / "hf"), max_seq_length=64)
    st = SentenceTransformer(
        modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean"), models.Normalize()]
    )
    st.save(str(base / "st"))
    return base / "st"
